"""`learnhub images build --push REGISTRY` against a real registry: Debian's docker-registry
(the Distribution registry), on loopback, as an operator runs one for the nodes of a cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from learnhub import __version__
from learnhub.images import DockerEngine, docker_tag, grader_tags, learner_tags
from tests.support import free_port

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
REGISTRY_BINARY = "docker-registry"


def required(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the registry tests may not skip")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    engine = DockerEngine()
    if engine.version() is None:
        required("no Docker engine answers: run scripts/provision-docker.sh (as root)")
    return engine


@pytest.fixture(scope="module")
def registry(tmp_path_factory, engine):
    """A registry on 127.0.0.1 with its storage in a temporary folder; its host:port."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        required("docker-registry is not installed: scripts/provision-docker.sh installs it")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (folder / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"http://{address}/v2/", timeout=2).status_code == 200:
                break
        assert process.poll() is None, (folder / "registry.log").read_text()
        assert time.monotonic() < deadline, "the registry did not answer within 30 s"
        time.sleep(0.2)
    yield address
    process.terminate()
    process.wait(10)
    for tag in (*learner_tags(), *grader_tags()):
        subprocess.run(["docker", "rmi", f"{address}/{tag}"], capture_output=True, check=False)


def learnhub(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "learnhub"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_images_are_pushed_and_a_node_can_pull_them(registry, engine):
    done = learnhub("images", "build", "--no-pull", "--push", registry)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    catalog = requests.get(f"http://{registry}/v2/_catalog", timeout=10).json()
    assert {"learnhub/learner", "learnhub/grader"} <= set(catalog["repositories"])
    for repository in ("learnhub/learner", "learnhub/grader"):
        tags = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10).json()
        assert set(tags["tags"]) == {docker_tag(__version__), "latest"}
    # What the command tells the operator: each pushed name with the registry's digest.
    pushed = f"{registry}/learnhub/learner:latest  sha256:"
    assert pushed in done.stdout

    # A node without the image pulls it from the registry: the very image that was built.
    image = f"{registry}/{learner_tags()[1]}"
    built = engine.image_id(learner_tags()[1])
    subprocess.run(["docker", "rmi", image], capture_output=True, check=True)
    assert engine.image_id(image) is None
    assert engine.pull(image)[0]
    assert engine.image_id(image) == built


def test_a_registry_that_is_not_a_registry_name_is_refused_before_building(engine):
    started = time.monotonic()
    done = learnhub("images", "build", "--no-pull", "--push", "https://registry.example.edu")
    assert done.returncode == 1
    assert "give host[:port] without a scheme" in done.stderr
    assert "docker build" not in done.stdout
    assert time.monotonic() - started < 30


def test_a_registry_that_does_not_answer_fails_with_its_name(engine):
    down = f"127.0.0.1:{free_port()}"
    done = learnhub("images", "build", "--no-pull", "--push", down)
    assert done.returncode == 1
    assert f"docker push {down}/learnhub/learner:" in done.stderr
    assert "failed" in done.stderr
    subprocess.run(
        ["docker", "rmi", *(f"{down}/{tag}" for tag in learner_tags())],
        capture_output=True,
        check=False,
    )
