"""The learnhub-retention hub service: scheduled expiry, and each person's data on request."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import HubAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop
from traitlets import Float

from ..addresses import connect_address
from ..service_app import JSONHandler, ServiceApp
from ..service_environment import API_MAX_BODY_SIZE, service_environment
from ..service_names import COURSE_SERVICE, RETENTION_SERVICE, RETENTION_URL_ENV, service_port
from ..settings import RETENTION_TOKEN_FILE as TOKEN_FILE
from ..settings import Settings, load_settings, missing_state
from ..stopping import stop_signal
from ..store import STAFF_ROLES, Store
from .config import configured
from .erasure import (
    LMS_USERNAME,
    ErasureContext,
    ErasureIncomplete,
    HubAPI,
    compact,
    describe_person,
    erase_person,
    export_person,
    remove_from_course,
)
from .retention import RetentionPolicy, hub_db_kwargs, sweep

# How long a stopping service waits for a sweep under way before it leaves the rest to the next.
SWEEP_STOP_S = 3.0
# Where a learner's server finds the service (the hub sets it in the server's environment).
SERVICE_URL_ENV = RETENTION_URL_ENV
# What every learner server's JUPYTERHUB_API_TOKEN needs to call the service for its user.
SERVER_TOKEN_SCOPE = f"access:services!service={RETENTION_SERVICE}"
# JupyterHub's "server" role, which server tokens get when server_token_scopes is unset.
DEFAULT_SERVER_TOKEN_SCOPES = ("users:activity!user", "access:servers!server")

# The service's role: exactly what erasure and expiry call in the hub's REST API.
RETENTION_SCOPES = (
    # GET /users, page by page: every account retention decides about.
    "list:users",
    # Each user's last_activity, created, admin flag, groups and running server: whether
    # they are active or protected.
    "read:users",
    # PATCH /users/:name {auth_state} (scrubbing names and emails) exists only under
    # admin:users; it also covers delete:users: DELETE /users/:name, which makes JupyterHub
    # stop the server, remove the user's tokens and auth state and call the spawner's
    # delete_forever, and LearnHub's bulk POST /learnhub/users/erase (privacy.bulk).
    "admin:users",
    # Reading the encrypted auth state: a person's data page, export and scrub.
    "admin:auth_state",
    # Removing a student from a course's <course>-<role> groups.
    "groups",
    # Deleting an expired course's groups.
    "delete:groups",
)


def service_token(state_dir: Path) -> str:
    """The service's hub API token (0600, made by `learnhub init`); the CLI acts with it too.
    Reading it writes nothing."""
    path = state_dir / TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise missing_state(path) from None


def _connect_ip(c) -> str:
    """The address learner servers reach the hub API at (update_network's gateway)."""
    hub = c.JupyterHub
    return connect_address(hub.get("hub_connect_ip") or hub.get("hub_ip"))


def retention_service(
    settings: Settings, url: str, token: str, python: str = sys.executable
) -> dict:
    # Keys given to the hub in its environment must reach the service the same way, or it
    # would make new ones in the state directory and decrypt nothing; so must PostgreSQL's
    # credentials (PGPASSWORD) and a PATH with nbgrader's alembic.
    environment = service_environment(settings)
    return {
        "name": RETENTION_SERVICE,
        "command": [python, "-m", "learnhub.privacy.service"],
        "url": url,
        "api_token": token,
        "environment": environment,
        "display": False,
    }


def retention_role() -> dict[str, Any]:
    return {
        "name": RETENTION_SERVICE,
        "description": "Expire inactive learners' data; export and erase a person's data",
        "scopes": list(RETENTION_SCOPES),
        "services": [RETENTION_SERVICE],
    }


def _with_entry(entries: list[dict], entry: dict) -> list[dict]:
    return [e for e in entries if e.get("name") != entry["name"]] + [entry]


def update_retention_service(c, settings: Settings, token: str) -> None:
    """The retention service, its role, the scope learners' servers need, secure_delete.

    Runs after update_spawner and update_network: it reads where the hub API listens and
    adds to Spawner.environment and server_token_scopes.
    """
    url = f"http://{_connect_ip(c)}:{service_port(settings, RETENTION_SERVICE)}"
    c.JupyterHub.services = _with_entry(
        configured(c.JupyterHub, "services", []), retention_service(settings, url, token)
    )
    c.JupyterHub.load_roles = _with_entry(
        configured(c.JupyterHub, "load_roles", []), retention_role()
    )
    environment = configured(c.Spawner, "environment", {})
    environment[SERVICE_URL_ENV] = url_path_join(url, "services", RETENTION_SERVICE) + "/"
    c.Spawner.environment = environment
    # A server token may hold only scopes its owner holds.
    c.JupyterHub.extra_user_scopes = configured(c.JupyterHub, "extra_user_scopes", set()) | {
        SERVER_TOKEN_SCOPE
    }
    scopes = c.Spawner.get("server_token_scopes")
    if not callable(scopes):
        scopes = list(scopes or DEFAULT_SERVER_TOKEN_SCOPES)
        if SERVER_TOKEN_SCOPE not in scopes:
            scopes.append(SERVER_TOKEN_SCOPE)
        c.Spawner.server_token_scopes = scopes
    # JupyterHub's own SQLite connections overwrite what they delete, as LearnHub's do.
    c.JupyterHub.db_kwargs = hub_db_kwargs(
        settings.database_url, configured(c.JupyterHub, "db_kwargs", {})
    )


def hub_api_url(settings: Settings) -> str:
    """Where the command line reaches the hub API: through the proxy at public_url."""
    return os.environ.get("LEARNHUB_HUB_API_URL") or f"{settings.public_url}/hub/api"


def erasure_context(settings: Settings, api_url: str, token: str, log=None) -> ErasureContext:
    return ErasureContext(
        settings=settings,
        store=Store(settings.database_url, settings.crypt_key),
        hub=HubAPI(api_url, token),
        log=log or logging.getLogger("learnhub.retention"),
    )


# The pure async core


async def sweep_forever(
    run_sweep: Callable[[], Any],
    interval: float,
    first_delay: float,
    sleep=asyncio.sleep,
) -> None:
    """Sweep after `first_delay` seconds, then every `interval`; a failed sweep is logged
    and retried at the next one (erasure is idempotent)."""
    await sleep(first_delay)
    while True:
        try:
            await asyncio.to_thread(run_sweep)
        except Exception:
            logging.getLogger("learnhub.retention").exception("retention sweep failed")
        await sleep(interval)


# The service's HTTP API (under /services/learnhub-retention/)


class ServiceHandler(HubAuthenticated, JSONHandler):
    """Token-authenticated (Authorization header); answers JSON."""

    @property
    def context(self) -> ErasureContext:
        return self.settings["erasure_context"]

    def check_xsrf_cookie(self):
        # Only tokens authenticate here (no cookie), so there is nothing to forge.
        return

    def caller(self) -> dict[str, Any]:
        # Not tornado's @authenticated: it would redirect an API call to a login page.
        user = self.current_user
        if user is None:
            raise web.HTTPError(403, "a token with access to this service is required")
        return user

    def own(self, username: str) -> None:
        """Only the person themselves reaches their data, from a token they hold."""
        user = self.caller()
        if user.get("kind", "user") != "user" or user["name"] != username:
            raise web.HTTPError(403, "a person's data is for that person only")
        if not LMS_USERNAME.fullmatch(username):
            # Staff accounts are the operator's to manage, not to erase from a page.
            raise web.HTTPError(400, "only accounts made by an LMS launch are managed here")


class PersonHandler(ServiceHandler):
    async def get(self, username: str):
        self.own(username)
        described = await asyncio.to_thread(describe_person, self.context, username)
        self.finish(json.dumps({"username": username, "stores": described}, default=str))

    async def delete(self, username: str):
        """Erase everything now. Answers 202 first: erasure stops the caller's server."""
        self.own(username)
        body = json.loads(self.request.body or b"{}")
        if body.get("confirm") != username:
            raise web.HTTPError(400, "confirm with the username")
        self.set_status(202)
        await self.finish(json.dumps({"erasing": True}))
        IOLoop.current().spawn_callback(self._erase, username)

    async def _erase(self, username: str):
        log = self.context.log
        try:
            counts = await asyncio.to_thread(erase_person, self.context, username)
        except ErasureIncomplete as e:
            log.error("erase on request: incomplete (%s); the next sweep retries", e)
            return
        try:
            await asyncio.to_thread(compact, self.context.engine)
        except Exception as e:  # a busy database: the next sweep compacts
            log.warning("erase on request: could not compact the database: %s", e)
        log.info("erase on request: done (%d stores)", len(counts))


class ArchiveHandler(ServiceHandler):
    async def get(self, username: str):
        self.own(username)

        def build() -> bytes:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                export_person(self.context, username, archive)
            return buffer.getvalue()

        data = await asyncio.to_thread(build)
        self.set_header("Content-Type", "application/zip")
        self.finish(data)


class CourseMemberHandler(ServiceHandler):
    """An instructor (or TA) of a course removes a student from it; so does the course
    service when the LMS's roster says the student left (courses/roster.py)."""

    async def delete(self, course_id: str, username: str):
        caller = self.caller()
        store = self.context.store
        roster = caller.get("kind") == "service" and caller.get("name") == COURSE_SERVICE
        mine = store.enrollment(caller["name"], course_id) if caller.get("name") else None
        staff = mine is not None and mine.role in STAFF_ROLES and caller.get("kind") != "service"
        if not (caller.get("admin") or staff or roster):
            raise web.HTTPError(403, "only the course's instructors remove students")
        theirs = store.enrollment(username, course_id)
        if theirs is None:
            raise web.HTTPError(404, "no such student in this course")
        if theirs.role in STAFF_ROLES:
            raise web.HTTPError(400, "instructors and TAs are removed in the LMS")
        counts = await asyncio.to_thread(remove_from_course, self.context, username, course_id)
        self.finish(json.dumps({"removed": counts}))


class HealthHandler(web.RequestHandler):
    def get(self):
        last = self.settings["last_sweep"]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok", **last}))


def make_app(context: ErasureContext, prefix: str, last_sweep: dict) -> web.Application:
    name = r"([a-z0-9._-]+)"
    return web.Application(
        [
            (url_path_join(prefix, "api/health"), HealthHandler),
            (url_path_join(prefix, rf"api/people/{name}"), PersonHandler),
            (url_path_join(prefix, rf"api/people/{name}/archive"), ArchiveHandler),
            (
                url_path_join(prefix, rf"api/courses/{name}/people/{name}"),
                CourseMemberHandler,
            ),
        ],
        erasure_context=context,
        last_sweep=last_sweep,
    )


class RetentionService(ServiceApp):
    """learnhub-retention: sweeps on the interval and serves people's data requests."""

    name = RETENTION_SERVICE

    first_delay = Float(
        60.0,
        help="Seconds after start before the first sweep. Default 60, so a restarting hub "
        "settles first.",
    ).tag(config=True)

    async def serve(self):
        """Sweep and serve until the hub stops the service (SIGINT, or SIGTERM)."""
        settings = load_settings()
        policy = RetentionPolicy.from_settings(settings.values)
        context = erasure_context(
            settings, os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"]
        )
        last_sweep: dict[str, Any] = {"enabled": policy.enabled, "last_sweep": None}
        idle = threading.Event()
        idle.set()

        def run_sweep():
            idle.clear()
            try:
                report = sweep(context, policy)
            finally:
                idle.set()
            last_sweep.update(
                last_sweep=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                seconds=round(report.seconds, 1),
                failed=report.failed,
                **report.plan.counts(),
            )

        server = self.listen(
            make_app(context, self.prefix, last_sweep),
            xheaders=True,
            max_body_size=API_MAX_BODY_SIZE,
        )
        sweeping = None
        if policy.enabled:
            sweeping = asyncio.create_task(
                sweep_forever(run_sweep, policy.interval, self.first_delay)
            )
        else:
            context.log.info("retention: privacy.retention.enabled is false; no sweeps")
        await stop_signal(self.name, context.log)
        server.stop()
        if sweeping is not None:
            sweeping.cancel()
        await server.close_all_connections()
        if not await asyncio.to_thread(idle.wait, SWEEP_STOP_S):
            # Erasure is idempotent: the next sweep does what this one had left.
            context.log.warning("retention: stopping in the middle of a sweep")
            logging.shutdown()
            os._exit(0)


def main(argv=None):
    RetentionService.launch_instance(argv)


if __name__ == "__main__":
    main()
