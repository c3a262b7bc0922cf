"""nbgrader in local learner servers goes through the course service, from any install.

The embedded default runs learner and grader servers as local processes of this checkout's
editable install, which puts nothing in the environment's etc/jupyter. Their nbgrader must
still release, list, fetch and submit through the course service, and never fall back to
nbgrader's own shared exchange folder; a server the hub started without a course service
refuses instead.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import nbformat
import pytest
import requests
from nbgrader.exchange.default.exchange import Exchange as DefaultExchange
from traitlets.config import Config

from learnhub.config import update_spawner
from learnhub.demo.constants import Role
from learnhub.demo.lms import DemoLMS
from learnhub.settings import load_settings
from learnhub.spawners import SpawnerBackend, nbgrader_extension_args
from tests.integration.test_course_workflow import (
    ASSIGNMENT,
    CONTEXT,
    Formgrader,
    answer,
    course_id_of,
    graded_row,
    learner_api,
    source_notebook,
    until,
)
from tests.support import (
    CookielessClient,
    Launch,
    execute,
    free_port,
    launch_from,
    lti13_launch,
    registered_hub,
    wait_until_ready,
    write_settings,
)
from tests.unit.test_singleuser_extension import LEARNER_TOKEN, HubAPI, wait_until_serving

pytestmark = pytest.mark.integration

# nbgrader's default exchange: a world-writable folder, and a submission cache in the home.
DEFAULT_ROOT = Path(DefaultExchange.class_traits()["root"].default_value)
NBGRADER_SHARE = DEFAULT_ROOT.parent
NOT_CONFIGURED = "LEARNHUB_EXCHANGE_URL is not set"
# The course's title as the LMS sends it; the learner's folder of it and the panel's label.
TITLE = "Python 101: Loops & Lists"
FOLDER = "Python 101\uff1a Loops & Lists"
LABEL = "Python 101: Loops \uff06 Lists"


def nbgrader_cache(home: Path) -> Path:
    return home / ".local" / "share" / "jupyter" / "nbgrader_cache"


@pytest.fixture(scope="module")
def no_default_exchange():
    """nbgrader's default exchange folder, removed before the module (a run of the old code
    left it) so the tests can tell whether anything made it again."""
    if NBGRADER_SHARE.exists():
        shutil.rmtree(NBGRADER_SHARE)
    yield NBGRADER_SHARE


@pytest.fixture(scope="module")
def local_lms(loop_thread):
    peer = DemoLMS(consumer_key="local-consumer", client_id="local-tool", deployment_id="d-l")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def local_hub(local_lms, tmp_path_factory, no_default_exchange):
    template = tmp_path_factory.mktemp("local-template")
    (template / "nbgrader_config.py").write_text(
        "c = get_config()\nc.ClearSolutions.code_stub = "
        "{'python': '# YOUR CODE HERE\\nraise NotImplementedError()'}\n"
    )
    (template / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), template / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    state = tmp_path_factory.mktemp("local-hub")
    instance = registered_hub(
        state,
        local_lms,
        spawner={"backend": "local"},
        courses={"template": str(template), "submission_limit_mb": 1},
    )
    instance.start()
    yield instance
    instance.shutdown_everything()


def test_course_workflow_on_local_servers_uses_the_course_service(
    local_hub, local_lms, no_default_exchange
):
    instructor = launch_from(
        local_hub.url,
        lti13_launch(
            CookielessClient(), local_lms, user_id="teacher-l", roles=[Role.INSTRUCTOR],
            context=CONTEXT, context_title=TITLE,
        ),
    )  # fmt: skip
    course_id = course_id_of(local_hub, CONTEXT)
    formgrader = Formgrader(local_hub, course_id, instructor.token)
    formgrader.action(f"assignment/{ASSIGNMENT}/assign")
    released = formgrader.action(f"assignment/{ASSIGNMENT}/release")
    # Released into the course service's exchange, not into nbgrader's shared folder.
    outbound = local_hub.state_dir / "exchange" / course_id / "outbound" / ASSIGNMENT
    assert (outbound / f"{ASSIGNMENT}.ipynb").is_file(), released
    assert not no_default_exchange.exists(), f"formgrader's release made {no_default_exchange}"

    client = CookielessClient()
    learner = launch_from(
        local_hub.url,
        lti13_launch(
            client, local_lms, user_id="student-l", roles=[Role.LEARNER], context=CONTEXT,
            context_title=TITLE,
        ),
    )  # fmt: skip
    wait_until_ready(client, learner)
    # A local process, not a container.
    ((state,),) = local_hub.query(
        "select s.state from spawners s join users u on s.user_id = u.id where u.name = ?",
        learner.username,
    )
    assert set(json.loads(state)) == {"pid"}, state
    # nbgrader's Assignments panel names the course by its title, and asks with that label.
    courses = learner_api(learner, "GET", "courses").json()
    assert courses == {"success": True, "value": [LABEL]}, courses
    listed = learner_api(learner, "GET", "assignments", params={"course_id": LABEL}).json()
    assert listed["success"], listed
    assert [(a["course_id"], a["assignment_id"], a["status"]) for a in listed["value"]] == [
        (LABEL, ASSIGNMENT, "released")
    ], listed
    fetched = learner_api(
        learner, "POST", "assignments/fetch",
        json={"course_id": LABEL, "assignment_id": ASSIGNMENT},
    ).json()  # fmt: skip
    assert fetched["success"], fetched
    mine = next(a for a in fetched["value"] if a["assignment_id"] == ASSIGNMENT)
    assert (mine["status"], mine["path"]) == ("fetched", f"{FOLDER}/{ASSIGNMENT}"), fetched
    home = local_hub.state_dir / "homes" / learner.username
    # Fetched under <course folder>/<assignment> in the learner's home, the folder named
    # after the course's title and marked with its id (the exchange keys on the id).
    local_copy = home / FOLDER / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert local_copy.is_file(), sorted(str(p) for p in home.rglob("*.ipynb"))
    assert (home / FOLDER / ".learnhub-course").read_text() == course_id + "\n"
    assert not (home / course_id).exists()
    path = f"api/contents/{FOLDER}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    notebook = learner_api(learner, "GET", path).json()["content"]
    saved = learner_api(
        learner, "PUT", path, json={"type": "notebook", "content": answer(notebook)}
    )
    assert saved.status_code == 200, saved.text

    submitted = learner_api(
        learner, "POST", "assignments/submit",
        json={"course_id": LABEL, "assignment_id": ASSIGNMENT},
    ).json()  # fmt: skip
    assert submitted["success"], submitted
    # The Assignments list shows the submission, as the course service lists it.
    mine = [a for a in submitted["value"] if a.get("status") == "submitted"]
    assert len(mine) == 1 and len(mine[0]["submissions"]) == 1, submitted
    inbound = local_hub.state_dir / "exchange" / course_id / "inbound" / learner.username
    assert list(inbound.glob(f"{ASSIGNMENT}/*/{ASSIGNMENT}.ipynb")), "not in the course service"

    # The grading service graded it (it only sees what reached the course service).
    row = until(lambda: graded_row(formgrader, learner.username, 2.0))
    assert row["max_score"] == 3.0, row
    collected = formgrader.action(f"assignment/{ASSIGNMENT}/collect")
    course_dir = local_hub.state_dir / "courses" / course_id
    assert (course_dir / "submitted" / learner.username / ASSIGNMENT / "timestamp.txt").is_file()

    # Nothing of nbgrader's default exchange, anywhere.
    assert not no_default_exchange.exists(), f"{no_default_exchange} was made"
    for folder in (home, course_dir):
        assert not nbgrader_cache(folder).exists(), f"{nbgrader_cache(folder)} was made"
    assert "/usr/local/share/nbgrader" not in json.dumps([released, collected, submitted])


# --- a server the hub started without a course service -------------------------------------


@pytest.fixture
def hub_api():
    """The stand-in hub API the learner-server tests use (the network boundary)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubAPI)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api"
    server.shutdown()
    server.server_close()


def spawner_command(tmp_path: Path, grader: bool) -> list[str]:
    """What the hub's local spawner runs: LearnHub's command line for this kind of server."""
    settings_file = tmp_path / "learnhub.yaml"
    write_settings(settings_file, "http://127.0.0.1:8000", spawner={"backend": "local"})
    settings = load_settings(settings_file, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "s")})
    c = Config()
    update_spawner(c, settings, [], SpawnerBackend("local", "test"))
    return [*c.LocalLearnerSpawner.cmd, *c.Spawner.args, *nbgrader_extension_args(grader)]


@pytest.fixture
def server_without_exchange(hub_api, tmp_path):
    """Start a learner or grader server as the hub's local spawner does, but with no
    LEARNHUB_EXCHANGE_URL (a hub or spawner that forgot it)."""
    started = []

    def start(role: str, home: Path) -> tuple[str, subprocess.Popen]:
        port = free_port()
        url = f"http://127.0.0.1:{port}/user/learner/"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("LEARNHUB_", "JUPYTER"))
        }
        env |= {
            "HOME": str(home),
            # nbgrader's gradebook runs `alembic`, beside the interpreter.
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            "JUPYTERHUB_API_TOKEN": "server-api-token",
            "JUPYTERHUB_API_URL": hub_api,
            "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-learner",
            "JUPYTERHUB_USER": "learner",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/learner/",
            "JUPYTERHUB_SERVICE_URL": url,
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:servers!user=learner"]),
            "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1",
            "LEARNHUB_SERVER_ROLE": role,
        }
        log = tmp_path / f"{role}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*spawner_command(tmp_path, role == "grader"), "--allow-root"],
                env=env,
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append((proc, log))
        wait_until_serving(proc, url, log)
        return url, proc

    yield start
    for proc, log in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Shown by pytest only when the test failed.
        print(log.read_text())


AUTH = {"Authorization": f"token {LEARNER_TOKEN}"}
COURSE = "cabcdefghijk"


def test_learner_server_without_course_service_refuses(
    server_without_exchange, tmp_path, no_default_exchange
):
    home = tmp_path / "home"
    home.mkdir()
    url, _server = server_without_exchange("learner", home)
    course = {"course_id": COURSE, "assignment_id": ASSIGNMENT}
    answers = {
        "list": requests.get(url + "assignments", params=course, headers=AUTH, timeout=60),
        "courses": requests.get(url + "courses", headers=AUTH, timeout=60),
        "fetch": requests.post(url + "assignments/fetch", data=course, headers=AUTH, timeout=60),
        "submit": requests.post(url + "assignments/submit", data=course, headers=AUTH, timeout=60),
        "fetch_feedback": requests.post(
            url + "assignments/fetch_feedback", data=course, headers=AUTH, timeout=60
        ),
    }
    for action, response in answers.items():
        assert response.status_code == 200, f"{action}: {response.status_code} {response.text}"
        body = response.json()
        assert body["success"] is False, f"{action}: {body}"
        assert NOT_CONFIGURED in body["value"], f"{action}: {body}"
    assert not no_default_exchange.exists(), f"{no_default_exchange} was made"
    assert not nbgrader_cache(home).exists()
    assert not (home / COURSE).exists(), "fetch wrote into the home"

    # nbgrader's own commands, run from this server's kernel (a terminal inherits the same
    # environment), refuse the same way.
    port = url.split(":")[2].split("/")[0]
    kernel_of_server = Launch(f"http://127.0.0.1:{port}", LEARNER_TOKEN, "", url + "lab")
    typed = json.loads(ast.literal_eval(execute(kernel_of_server, TYPED, timeout=240)))
    assert set(typed) == {"fetch_assignment", "submit", "list"}, typed
    for command, (returncode, output) in typed.items():
        assert returncode != 0, f"{command}: {output}"
        assert NOT_CONFIGURED in output, f"{command}: {output}"
    assert not no_default_exchange.exists(), f"{no_default_exchange} was made"
    assert not nbgrader_cache(home).exists()


# What a learner types in their server's terminal, run from a kernel of that server.
TYPED = f"""
import json, os, subprocess, sys
nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
typed = {{}}
for command in (["fetch_assignment", "{ASSIGNMENT}", "--course", "{COURSE}"],
                ["submit", "{ASSIGNMENT}", "--course", "{COURSE}"],
                ["list", "--course", "{COURSE}"]):
    done = subprocess.run([nbgrader, *command], capture_output=True, text=True, timeout=120,
                          cwd=os.path.expanduser("~"))
    typed[command[0]] = [done.returncode, done.stdout + done.stderr]
json.dumps(typed)
"""


def test_grader_server_without_course_service_refuses_release_and_collect(
    server_without_exchange, tmp_path, no_default_exchange
):
    course = tmp_path / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n"
    )
    nbformat.write(source_notebook(), course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    url, _server = server_without_exchange("grader", course)
    api = url + "formgrader/api/"
    generated = requests.post(api + f"assignment/{ASSIGNMENT}/assign", headers=AUTH, timeout=120)
    assert generated.status_code == 200, generated.text
    assert generated.json()["success"], generated.text
    for action in ("release", "unrelease", "collect", "release_feedback"):
        answer_ = requests.post(
            api + f"assignment/{ASSIGNMENT}/{action}", headers=AUTH, timeout=120
        )
        assert answer_.status_code == 200, f"{action}: {answer_.status_code} {answer_.text}"
        result = answer_.json()
        assert result["success"] is False, f"{action}: {result}"
        assert NOT_CONFIGURED in result["log"], f"{action}: {result}"
    page = requests.get(url + "formgrader/manage_assignments", headers=AUTH, timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert NOT_CONFIGURED in page.text
    assert not no_default_exchange.exists(), f"{no_default_exchange} was made"
    assert not (course / "submitted").exists()
