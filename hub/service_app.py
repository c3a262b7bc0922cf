"""What LearnHub's three hub services (course, grading, retention) share: one traitlets
Application that listens where JupyterHub says and serves until the hub stops it, and one
base for their JSON APIs, which only a hub token in the Authorization header reaches.

Who holds a token is asked of the hub by JupyterHub's own HubAuth, with its cache: the
course and grading services through TokenIdentities (users holding the service's access
scope, and the service's own token for the hub), the retention service through
HubAuthenticated (it is also called by another service, the course service's roster).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubAuth
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Unicode, default
from traitlets.config import Application

from .service_environment import LISTEN_IP_ENV
from .stopping import skip_exit_collection

# How long the hub's answer about a token is kept (HubAuth's cache, by the token's hash).
IDENTITY_TTL = 60.0
LOG_FORMAT = "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"


class ServiceApp(Application):
    """A LearnHub hub service: `learnhub-<name>`, started by the hub as a managed service.

    Subclasses write `serve()`: build what they need from the settings, `listen()`, and
    return once `stopping.stop_signal` came and everything is closed."""

    service_url = Unicode(
        help="URL the service listens on. Default: $JUPYTERHUB_SERVICE_URL, set by the hub."
    ).tag(config=True)

    @default("service_url")
    def _service_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "")

    prefix = Unicode(
        help="URL prefix of the service's routes. Default: $JUPYTERHUB_SERVICE_PREFIX, set "
        "by the hub, else /services/<name>/."
    ).tag(config=True)

    @default("prefix")
    def _prefix(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.name}/")

    listen_ip = Unicode(
        help="Address to listen on instead of service_url's host (on Kubernetes every "
        f"interface of the hub's pod). Default: ${LISTEN_IP_ENV}."
    ).tag(config=True)

    @default("listen_ip")
    def _listen_ip(self):
        return os.environ.get(LISTEN_IP_ENV, "")

    def start(self):
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        asyncio.run(self.serve())
        skip_exit_collection()

    async def serve(self) -> None:
        raise NotImplementedError

    def address(self) -> tuple[str, int]:
        if not self.service_url:
            raise SystemExit(
                f"{self.name}: no service URL: the hub starts this service and sets "
                "$JUPYTERHUB_SERVICE_URL (or pass --ServiceApp.service_url)"
            )
        where = urlsplit(self.service_url)
        return self.listen_ip or where.hostname or "127.0.0.1", where.port or 80

    def listen(self, app: web.Application, **server_options) -> HTTPServer:
        """Serve `app` at the service's address; the HTTPServer, to stop and close."""
        host, port = self.address()
        server = HTTPServer(app, **server_options)
        server.listen(port, host)
        logging.getLogger(f"learnhub.{self.name}").info(
            "%s listening on %s:%d%s", self.name, host, port, self.prefix
        )
        return server


@dataclass
class Caller:
    username: str
    is_service: bool = False


@dataclass
class TokenIdentities:
    """Who holds a token, asked of the hub with that token by JupyterHub's own HubAuth (which
    caches each answer a minute, by the token's hash).

    A token is accepted when it belongs to a user and carries `access_scope`; the
    service's own token stands for the hub itself.
    """

    hub_api_url: str
    own_token: str
    service_name: str

    def __post_init__(self):
        self.hub_auth = HubAuth(
            api_url=self.hub_api_url,
            api_token=self.own_token,
            cache_max_age=int(IDENTITY_TTL),
            access_scopes={self.access_scope},
        )

    @property
    def access_scope(self) -> str:
        return f"access:services!service={self.service_name}"

    async def identify(self, token: str) -> Caller | None:
        if hmac.compare_digest(token, self.own_token):
            return Caller(self.service_name, is_service=True)
        model = await self.hub_auth.user_for_token(token, sync=False)
        if (
            model
            and model.get("kind") == "user"
            and self.hub_auth.check_scopes(self.hub_auth.access_scopes, model)
        ):
            return Caller(model["name"])
        return None


class JSONHandler(web.RequestHandler):
    """An API answering JSON (a handler that answers anything else says so), never kept by
    a cache, its errors as {status, message}."""

    log: logging.Logger = logging.getLogger("learnhub.services")

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Type", "application/json")

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def log_exception(self, typ, value, tb) -> None:
        # Refusals are the caller's business; only real faults need a traceback.
        if isinstance(value, web.HTTPError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.status_code)
        else:
            super().log_exception(typ, value, tb)

    def send_json(self, value, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))


class TokenHandler(JSONHandler):
    """A JSON API of the course or grading service: the caller is whoever holds the hub
    token of the Authorization header (`self.caller`), or 401 before any method runs."""

    caller: Caller
    # How the refusal of a token names the service ("course service").
    service_title = "service"

    def identities(self) -> TokenIdentities:
        raise NotImplementedError

    async def prepare(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise web.HTTPError(401, "Send a hub token: Authorization: token ...")
        caller = await self.identities().identify(token.strip())
        if caller is None:
            raise web.HTTPError(401, f"This token is not valid for the {self.service_title}.")
        self.caller = caller
