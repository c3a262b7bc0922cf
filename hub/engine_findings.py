"""`learnhub doctor` on where LearnHub runs: the engine and its nodes, where each kind of data
lives, and which images this node has.

engine_findings is pure: it reads what `docker info` answered (a dict, as the engine's API
gives it) and the images this node lacks; doctor_engine_findings asks the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from docker.errors import DockerException, NotFound

from .docker_engine import docker_client
from .grading.sandbox import DEFAULT_IMAGE as DEFAULT_GRADER_IMAGE
from .settings import Settings


def grader_image(settings: Settings) -> str:
    return settings["grading"]["image"] or DEFAULT_GRADER_IMAGE


def database_place(settings: Settings) -> str:
    """Where the database is, without its password."""
    url = urlsplit(settings.database_url)
    if url.scheme.startswith("sqlite"):
        return f"SQLite at {settings.database_url.partition(':///')[2]}"
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL at {url.hostname}{port}{url.path}"


def engine_findings(
    info: Mapping[str, Any], missing: Iterable[str], settings: Settings
) -> list[tuple[str, str]]:
    """(level, message) pairs: the engine, its nodes, the storage, the images here."""
    swarm = info.get("Swarm") or {}
    name, version = info.get("Name", "this host"), info.get("ServerVersion", "unknown")
    findings = []
    if swarm.get("LocalNodeState") == "active":
        role = "manager" if swarm.get("ControlAvailable") else "worker"
        nodes, managers = swarm.get("Nodes", 0), swarm.get("Managers", 0)
        findings.append(
            (
                "warning",
                f"engine: Docker {version} on {name}, a Swarm {role} of {nodes} nodes "
                f"({managers} managers); learner servers and grading run on this node only "
                "(spawner.backend has no swarm yet), so the other nodes stay idle",
            )
        )
    else:
        findings.append(("ok", f"engine: Docker {version} on {name}, one host (no Swarm)"))
    findings.append(
        (
            "ok",
            "storage, all on this host: learners' files in Docker volumes "
            f"(learnhub-home-<learner>); courses, the exchange and gradebooks in "
            f"{settings.state_dir}; the database: "
            f"{database_place(settings)}",
        )
    )
    wanted = [*settings["spawner"]["images"], grader_image(settings)]
    absent = [image for image in wanted if image in set(missing)]
    present = [image for image in wanted if image not in set(missing)]
    if present:
        findings.append(("ok", f"images on {name}: {', '.join(present)}"))
    if absent:
        findings.append(
            (
                "warning",
                f"images not on {name}: {', '.join(absent)} (build them with `learnhub images "
                "build`, or pull them from your registry)",
            )
        )
    return findings


def doctor_engine_findings(settings: Settings) -> list[tuple[str, str]]:
    """Ask the engine, unless learner servers run as local processes."""
    if settings["spawner"]["backend"] == "local":
        return [("ok", f"storage: all in {settings.state_dir}; the database: "
                       f"{database_place(settings)}")]  # fmt: skip
    try:
        client = docker_client()
    except DockerException:
        return []  # learner_server_findings says why no engine answers
    try:
        info = client.info()
        missing = []
        for image in [*settings["spawner"]["images"], grader_image(settings)]:
            try:
                client.inspect_image(image)
            except NotFound:
                missing.append(image)
    except DockerException:
        return []
    finally:
        client.close()
    return engine_findings(info, missing, settings)
