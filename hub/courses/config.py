"""Config for courses: the course service, and what learner and grader servers need of it."""

from __future__ import annotations

import secrets
import sys
from typing import Any

from ..service_environment import service_environment
from ..service_names import COURSE_ACCESS_SCOPE as ACCESS_SCOPE
from ..service_names import COURSE_SERVICE as SERVICE_NAME
from ..service_names import GRADING_SERVICE as GRADING
from ..service_names import RETENTION_SERVICE, RETENTION_URL_ENV, service_port
from ..services import _current, _with_entry
from ..settings import Settings
from .hub import COURSES_SETTINGS_KEY

# The uid of the learner image's user, who owns a course directory its grader server writes.
CONTAINER_UID = 1000
# What a learner or grader server's own token may do: report activity, be reached, and
# call the course service (fetch, submit; release and collect for a grader).
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", ACCESS_SCOPE]


def course_service(
    settings: Settings, *, ip: str, token: str, owner_uid: int | None
) -> dict[str, Any]:
    env = service_environment(settings)
    if owner_uid is not None:
        env["LEARNHUB_COURSE_OWNER_UID"] = str(owner_uid)
    return {
        "name": SERVICE_NAME,
        "url": f"http://{ip}:{service_port(settings, SERVICE_NAME)}",
        "command": [sys.executable, "-m", "learnhub.courses.service"],
        "api_token": token,
        "environment": env,
        "display": False,
    }


def course_service_role() -> dict[str, Any]:
    return {
        "name": SERVICE_NAME,
        "description": "Remove learners who left an LMS roster, through the retention service",
        "scopes": [f"access:services!service={RETENTION_SERVICE}"],
        "services": [SERVICE_NAME],
    }


def update_courses(c, settings: Settings, *, connect_ip: str, containers: bool) -> None:
    """The course service, the hub's link to it, and learner/grader server settings.

    Runs after update_services: the course service reaches the retention service, when
    there is one, to remove learners who left an LMS's roster.

    `connect_ip` is where learner servers reach the hub API (the learner network's gateway
    with containers, loopback otherwise); the course service listens there too.
    """
    token = secrets.token_hex(32)
    service = course_service(
        settings, ip=connect_ip, token=token, owner_uid=CONTAINER_UID if containers else None
    )
    services = _current(c.JupyterHub, "services", [])
    retention = next((s for s in services if s.get("name") == RETENTION_SERVICE), None)
    if retention is not None:
        # A learner who left the LMS's roster is removed by the retention service
        # (courses/roster.py): the course service may call it, and nothing else of the hub.
        service["environment"][RETENTION_URL_ENV] = (
            f"{retention['url']}/services/{RETENTION_SERVICE}/"
        )
        c.JupyterHub.load_roles = _with_entry(
            _current(c.JupyterHub, "load_roles", []), course_service_role()
        )
    c.JupyterHub.services = _with_entry(services, service)

    prefix = f"/services/{SERVICE_NAME}/"
    tornado = _current(c.JupyterHub, "tornado_settings", {})
    # Plain values: handlers make their CourseAccess of them (courses.hub).
    tornado[COURSES_SETTINGS_KEY] = {
        "service_url": service["url"],
        "service_prefix": prefix,
        "service_token": token,
    }
    c.JupyterHub.tornado_settings = tornado

    # A server token holds only scopes its owner holds: every user may call the service
    # (which then checks the course and role itself).
    c.JupyterHub.extra_user_scopes = set(_current(c.JupyterHub, "extra_user_scopes", set())) | {
        ACCESS_SCOPE
    }
    scopes = _current(c.Spawner, "server_token_scopes", [])
    c.Spawner.server_token_scopes = [
        *SERVER_TOKEN_SCOPES,
        *(s for s in scopes if s not in SERVER_TOKEN_SCOPES),
    ]
    environment = _current(c.Spawner, "environment", {})
    environment["LEARNHUB_EXCHANGE_URL"] = service["url"] + prefix
    c.Spawner.environment = environment
    courses = str(settings.state_dir / "courses")
    c.LocalLearnerSpawner.courses_dir = courses
    c.DockerLearnerSpawner.courses_dir = courses


def update_grading(c, settings: Settings, *, connect_ip: str, containers: bool) -> None:
    """The grading service: autogrades submissions in a sandbox, sends scores to the LMS.

    It needs nothing of the hub API but to recognise callers' tokens, so it has no role.
    Grader servers call it (formgrader's autograde button), so their tokens may too.
    """
    env = service_environment(settings)
    if containers:
        env["LEARNHUB_COURSE_OWNER_UID"] = str(CONTAINER_UID)
    service = {
        "name": GRADING,
        "url": f"http://{connect_ip}:{service_port(settings, GRADING)}",
        "command": [sys.executable, "-m", "learnhub.grading.service"],
        "environment": env,
        "display": False,
    }
    c.JupyterHub.services = _with_entry(_current(c.JupyterHub, "services", []), service)
    scope = f"access:services!service={GRADING}"
    c.JupyterHub.extra_user_scopes = set(_current(c.JupyterHub, "extra_user_scopes", set())) | {
        scope
    }
    scopes = _current(c.Spawner, "server_token_scopes", [])
    c.Spawner.server_token_scopes = [*scopes, *([scope] if scope not in scopes else [])]
    environment = _current(c.Spawner, "environment", {})
    environment["LEARNHUB_GRADING_URL"] = service["url"] + f"/services/{GRADING}/"
    c.Spawner.environment = environment
