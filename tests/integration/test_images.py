"""The learner image, built for real and run with no network: non-root, the promised tools."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import uuid

import pytest

from learnhub.images import DockerEngine, LearnerBuild, build_learner_image

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 180
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
LAB_START_TIMEOUT = 60


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    engine = DockerEngine()
    if engine.version() is None:
        reason = "no Docker engine answers: run scripts/provision-docker.sh (as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the image tests may not skip")
        pytest.skip(reason)
    return engine


@pytest.fixture(scope="module")
def learner(engine) -> LearnerBuild:
    # Tests keep their traffic on this machine: no registry is tried, so the base is the
    # default image when it is here, else the local Debian one. With the image already built,
    # this is docker's layer cache answering in seconds.
    return build_learner_image(pull=False, engine=engine)


def run_in(image: str, *command: str, timeout: float = RUN_TIMEOUT) -> str:
    """Run a command in a fresh container of `image` with no network; its output."""
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            image,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # Jupyter's extension lists colour "enabled" and "OK" even when not on a terminal.
    output = ANSI_ESCAPE.sub("", result.stdout + result.stderr)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output}"
    return output


def test_runs_as_the_learner_not_root(learner):
    out = run_in(
        learner.tags[0],
        "bash",
        "-c",
        'id -u; id -g; id -un; echo "$HOME"; touch "$HOME/notes.txt" && echo home-writable',
    )
    uid, gid, name, home, writable = out.split()
    assert uid != "0"
    assert (uid, gid, name) == ("1000", "1000", "learner")
    assert home == "/home/learner"
    assert writable == "home-writable"


def test_image_config(engine, learner):
    config = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config}}", learner.tags[0]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert config["User"] == "1000:1000"
    assert config["Cmd"] == ["jupyterhub-singleuser"]
    assert set(config["ExposedPorts"]) == {"8888/tcp"}
    assert config["WorkingDir"] == "/home/learner"
    assert not config.get("Volumes")
    names = [entry.split("=", 1)[0] for entry in config["Env"]]
    assert [n for n in names if re.search("TOKEN|SECRET|PASSWORD|KEY$", n) and n != "GPG_KEY"] == []
    assert engine.image_id(learner.tags[1]) == learner.image_id


def test_singleuser_is_jupyterhub_6_1_1(learner):
    assert run_in(learner.tags[0], "jupyterhub-singleuser", "--version").strip() == "6.1.1"


def test_learner_libraries_import(learner):
    code = (
        "import learnhub_singleuser, nbgrader, pandas, bs4, lxml, matplotlib, requests, "
        "jupyterlab; print(nbgrader.__version__, jupyterlab.__version__, "
        "learnhub_singleuser.__file__)"
    )
    nbgrader, jupyterlab, module = run_in(learner.tags[0], "python", "-c", code).split()
    assert nbgrader == "0.9.6"
    assert jupyterlab.startswith("4.6.")
    assert module.startswith("/opt/venv/lib/python3.11/site-packages/learnhub_singleuser/")


def test_lab_extensions(learner):
    out = run_in(learner.tags[0], "jupyter", "labextension", "list")
    assert re.search(r"@jupyter/nbgrader v0\.9\.6 enabled\s+OK", out), out
    assert re.search(r"@learnhub/lab v\S+ enabled\s+OK", out), out
    # Learners get no instructor tools and no news feed.
    disabled = out.split("Disabled extensions:", 1)[1]
    for plugin in (
        "@jupyter/nbgrader:formgrader",
        "@jupyter/nbgrader:create-assignment",
        "@jupyter/nbgrader:course-list",
        "@jupyterlab/apputils-extension:announcements",
    ):
        assert plugin in disabled, out


def test_server_extensions(learner):
    out = run_in(learner.tags[0], "jupyter", "server", "extension", "list")
    assert re.search(r"^\s*learnhub_singleuser enabled$", out, re.MULTILINE), out
    assert re.search(r"^\s*learnhub_singleuser\s.*OK$", out, re.MULTILINE), out
    assert re.search(r"^\s*nbgrader\.server_extensions\.assignment_list enabled$", out, re.M), out
    assert re.search(r"^\s*nbgrader\.server_extensions\.formgrader disabled$", out, re.M), out


LAB_PROBE = """
import json, re, sys, time, urllib.request
url = "http://127.0.0.1:8888/lab?token=" + sys.argv[1]
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        response = urllib.request.urlopen(url, timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
html = response.read().decode()
config = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S).group(1)
print(json.dumps({"csp": response.headers.get("Content-Security-Policy"),
                  "config": json.loads(config)}))
"""


def test_lab_serves_learnhubs_extension(learner):
    """JupyterLab in the image starts, loads LearnHub's server extension and offers its lab one."""
    name = f"learnhub-test-{uuid.uuid4().hex[:8]}"
    token = secrets.token_hex(16)
    subprocess.run(
        [
            "docker",
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "none",
            learner.tags[0],
            "jupyter",
            "lab",
            "--ip=127.0.0.1",
            "--port=8888",
            "--no-browser",
            f"--IdentityProvider.token={token}",
        ],
        capture_output=True,
        check=True,
        timeout=RUN_TIMEOUT,
    )
    try:
        probe = subprocess.run(
            ["docker", "exec", name, "python", "-c", LAB_PROBE, token, str(LAB_START_TIMEOUT)],
            capture_output=True,
            text=True,
            timeout=LAB_START_TIMEOUT + 30,
            check=False,
        )
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
        assert probe.returncode == 0, f"{probe.stderr}\n--- server log ---\n{logs}"
        page = json.loads(probe.stdout)
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
    # Set by LearnHub's server extension (JupyterHub's default would be frame-ancestors 'none').
    assert page["csp"] == "frame-ancestors 'self'", logs
    extensions = {e["name"] for e in page["config"]["federated_extensions"]}
    assert {"@learnhub/lab", "@jupyter/nbgrader"} <= extensions
    for plugin in ("@jupyter/nbgrader:formgrader", "@jupyterlab/apputils-extension:announcements"):
        assert plugin in page["config"]["disabledExtensions"]
        # Locked: a learner cannot turn it back on in the plugin manager.
        assert plugin in page["config"]["lockedExtensions"]
    assert "LearnHub: frame-ancestors" in logs


def test_second_build_comes_from_the_cache(engine, learner, capsys):
    started = time.monotonic()
    again = build_learner_image(pull=False, engine=engine)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\nlearner image: first build in this session {learner.seconds:.0f}s "
            f"(base {'made' if learner.base_built else 'reused'}: {learner.base_image}), "
            f"second build {seconds:.1f}s"
        )
    # Nothing changed, so every layer came from the cache: the very same image.
    assert again.image_id == learner.image_id
    assert again.base_image == learner.base_image
    assert not again.base_built
    assert seconds < 120
