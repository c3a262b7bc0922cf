"""nbgrader in a server the hub started: configured from the package, or refusing.

nbgrader's own classes run here (its assignment list manager and exchange factory, loading
config as they do in a server); the course service is a loopback peer.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError, ExchangeFactory
from nbgrader.exchange.default.exchange import Exchange as DefaultExchange
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

from learnhub_singleuser import exchange
from learnhub_singleuser.course_service import (
    CONFIG_DIR,
    NoCourseServiceHandler,
    no_course_service_handlers,
    use_course_service,
)
from learnhub_singleuser.exchange import NOT_CONFIGURED

COURSE = "cabcdefghijk"
DEFAULT_ROOT = Path(DefaultExchange.class_traits()["root"].default_value)


@pytest.mark.parametrize(
    ("environ", "used", "config_path"),
    [
        ({}, False, None),
        ({"JUPYTER_CONFIG_PATH": "/etc/x"}, False, "/etc/x"),
        ({"JUPYTERHUB_API_TOKEN": "t"}, True, str(CONFIG_DIR)),
        (
            {"JUPYTERHUB_API_TOKEN": "t", "JUPYTER_CONFIG_PATH": "/etc/x"},
            True,
            f"{CONFIG_DIR}{os.pathsep}/etc/x",
        ),
        (
            {"JUPYTERHUB_API_TOKEN": "t", "JUPYTER_CONFIG_PATH": f"/etc/x{os.pathsep}{CONFIG_DIR}"},
            True,
            f"/etc/x{os.pathsep}{CONFIG_DIR}",
        ),
    ],
    ids=["not-hub-started", "not-hub-started-keeps-path", "hub", "hub-first", "already-there"],
)
def test_use_course_service_only_in_servers_the_hub_started(environ, used, config_path):
    assert use_course_service(environ) is used
    assert environ.get("JUPYTER_CONFIG_PATH") == config_path
    # Idempotent: a second link (tests, reloads) adds nothing.
    use_course_service(environ)
    assert environ.get("JUPYTER_CONFIG_PATH") == config_path


def test_the_config_folder_ships_inside_the_package():
    # Found beside the module in every install; nothing else in it for other Jupyter tools.
    assert CONFIG_DIR.parent == Path(exchange.__file__).parent
    assert sorted(p.name for p in CONFIG_DIR.iterdir() if p.name != "__pycache__") == [
        "nbgrader_config.py"
    ]


@pytest.mark.parametrize(
    ("environ", "routes"),
    [
        ({}, []),
        ({"JUPYTERHUB_API_TOKEN": "t", "LEARNHUB_EXCHANGE_URL": "http://127.0.0.1:1/s/"}, []),
        (
            {"JUPYTERHUB_API_TOKEN": "t"},
            [
                "/user/x/assignments",
                "/user/x/assignments/(fetch|submit|fetch_feedback)",
                "/user/x/courses",
            ],
        ),
    ],
    ids=["not-hub-started", "configured", "hub-started-without-service"],
)
def test_no_course_service_handlers(environ, routes):
    handlers = no_course_service_handlers("/user/x/", environ)
    assert [pattern for pattern, _ in handlers] == routes
    assert {handler for _, handler in handlers} <= {NoCourseServiceHandler}


class CourseService(BaseHTTPRequestHandler):
    """The course service's listing of released assignments, and who asked."""

    calls: list[tuple[str, str]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.calls.append((self.path, self.headers.get("Authorization", "")))
        if self.path == f"/services/learnhub-courses/api/courses/{COURSE}/assignments":
            body = {"assignments": [{"assignment_id": "ps1", "notebooks": ["ps1"]}]}
            status = 200
        else:
            body, status = {"message": "no such thing"}, 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())


@pytest.fixture
def course_service():
    CourseService.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CourseService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/services/learnhub-courses/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hub_started_server(monkeypatch, tmp_path):
    """The environment of a server the hub started, after LearnHub's extension linked:
    nothing in the user's or the environment's Jupyter config, the home as root_dir."""
    for name in ("JUPYTER_CONFIG_PATH", "LEARNHUB_EXCHANGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / ".jupyter"))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("HOME", str(tmp_path))
    environ = dict(os.environ)
    use_course_service(environ)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", environ["JUPYTER_CONFIG_PATH"])
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    return home


def manager(home: Path) -> AssignmentList:
    assignments = AssignmentList()
    assignments.root_dir = str(home)
    return assignments


def test_nbgraders_assignment_list_reaches_the_course_service(
    hub_started_server, course_service, monkeypatch
):
    monkeypatch.setenv("LEARNHUB_EXCHANGE_URL", course_service)
    listed = manager(hub_started_server).list_released_assignments(course_id=COURSE)
    assert listed == {
        "success": True,
        "value": [
            {
                "course_id": COURSE,
                "assignment_id": "ps1",
                "status": "released",
                "path": "",
                "notebooks": [{"notebook_id": "ps1", "path": ""}],
            }
        ],
    }
    assert CourseService.calls == [
        (f"/services/learnhub-courses/api/courses/{COURSE}/assignments", "token server-token")
    ]


def test_without_our_config_folder_nbgrader_falls_back(hub_started_server, monkeypatch):
    """What the folder prevents: stock nbgrader picks its shared folder exchange."""
    monkeypatch.delenv("JUPYTER_CONFIG_PATH")
    config = manager(hub_started_server).load_config()
    assert ExchangeFactory(config=config).list.__module__.startswith("nbgrader.exchange.default")


@pytest.mark.parametrize(
    "step",
    [
        "fetch_assignment",
        "fetch_feedback",
        "submit",
        "list",
        "release_assignment",
        "release_feedback",
        "collect",
    ],
)
def test_every_step_refuses_without_a_course_service(hub_started_server, tmp_path, step):
    config = manager(hub_started_server).load_config()
    cls = getattr(ExchangeFactory(config=config), step)
    assert cls.__module__ == "learnhub_singleuser.exchange"
    coursedir = CourseDirectory(
        config=config, root=str(hub_started_server), course_id=COURSE, assignment_id="ps1"
    )
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ExchangeError, match="LEARNHUB_EXCHANGE_URL is not set"):
        cls(coursedir=coursedir, config=config).start()
    assert sorted(tmp_path.rglob("*")) == before, "a refused step wrote files"
    assert not DEFAULT_ROOT.exists()


def test_nbgraders_list_hides_the_reason_which_is_why_we_answer_instead(hub_started_server):
    # nbgrader's manager answers any ExchangeError with its own words about a missing
    # directory (so NoCourseServiceHandler answers those routes in such a server).
    listed = manager(hub_started_server).list_released_assignments(course_id=COURSE)
    assert listed["success"] is False
    assert "exchange directory does not exist" in listed["value"]
    assert NOT_CONFIGURED not in listed["value"]
    assert not DEFAULT_ROOT.exists()


def test_formgrader_names_the_missing_service_as_its_exchange(hub_started_server):
    config = manager(hub_started_server).load_config()
    lister = ExchangeFactory(config=config).List(config=config)
    assert lister.root == "(none: LEARNHUB_EXCHANGE_URL is not set)"
    lister.service_url = "http://127.0.0.1:1/services/learnhub-courses/"
    assert lister.root == "http://127.0.0.1:1/services/learnhub-courses/"
