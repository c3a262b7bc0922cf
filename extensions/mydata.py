"""A learner's own data page in their server: what is kept, one archive of it all, erase now.

Served by the learner's server so it works inside the LMS frame without cookies: the
launch token JupyterLab holds authenticates the browser here, and this server asks the
hub's learnhub-retention service with its own JUPYTERHUB_API_TOKEN (which needs the scope
access:services!service=learnhub-retention).
"""

from __future__ import annotations

import inspect
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .cookieless import request_token
from .headers import sent_from_this_site
from .upstream import no_xsrf_cookie

PATH = "learnhub/my-data"
SERVICE_URL_ENV = "LEARNHUB_RETENTION_URL"
TEMPLATES = Path(__file__).parent / "templates"
# The person's files go in the archive under this folder; the stores' exports under "learnhub/".
FILES_FOLDER = "files"
CHUNK = 1 << 16
MAX_FORM_BYTES = 16384


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def add_home_files(archive: zipfile.ZipFile, root: Path, folder: str = FILES_FOLDER) -> int:
    """Every file of the learner's home in the archive, except hidden ones (caches, config)."""
    added = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if _hidden(relative) or not path.is_file() or path.is_symlink():
            continue
        archive.write(path, f"{folder}/{relative.as_posix()}")
        added += 1
    return added


class RetentionService:
    """The hub's learnhub-retention service, as this server's user."""

    def __init__(self, url: str, token: str, username: str):
        self.url = url.rstrip("/") + "/"
        self.token = token
        self.username = username

    @classmethod
    def from_environment(cls) -> RetentionService:
        url = os.environ.get(SERVICE_URL_ENV)
        if not url:
            raise web.HTTPError(503, "this server was not started by a LearnHub hub")
        return cls(url, os.environ["JUPYTERHUB_API_TOKEN"], os.environ["JUPYTERHUB_USER"])

    async def _fetch(self, path: str, method: str = "GET", body: Any = None) -> bytes:
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=300,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            raise web.HTTPError(
                502, f"the data service answered {e.code}; please try again later"
            ) from None
        except OSError:
            raise web.HTTPError(503, "the data service cannot be reached right now") from None
        return response.body

    async def describe(self) -> dict[str, Any]:
        return json.loads(await self._fetch(f"api/people/{self.username}"))

    async def archive(self) -> bytes:
        return await self._fetch(f"api/people/{self.username}/archive")

    async def erase(self) -> dict[str, Any]:
        body = await self._fetch(
            f"api/people/{self.username}", "DELETE", {"confirm": self.username}
        )
        return json.loads(body or b"{}")


class MyDataHandler(JupyterHandler):
    """Base: token sessions only need no XSRF cookie; answers are never cached."""

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    async def prepare(self):
        # Reading xsrf_token (an error page does) would set an _xsrf cookie; requests here
        # carry the session's token, which skips XSRF checks, so none is needed.
        no_xsrf_cookie(self)
        result = super().prepare()
        if inspect.isawaitable(result):
            await result

    @property
    def service(self) -> RetentionService:
        return RetentionService.from_environment()

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser()


class MyDataPage(MyDataHandler):
    """/learnhub/my-data: what is kept about me, a download, and erase.

    GET answers a request authenticated as usual (a token header, a direct login's cookie).
    POST takes the session's token in the form body, which is how JupyterLab's Help > My
    Data opens it in a new tab: the token never goes in the tab's address, its history or a
    log. The page's script then uses it in headers only.
    """

    def check_xsrf_cookie(self):
        # The POST is authenticated by the token in its body and must come from a page of
        # this site; no cookie is involved.
        if self.request.method != "POST":
            super().check_xsrf_cookie()

    @web.authenticated
    async def get(self):
        await self.render_page(request_token(self))

    @allow_unauthenticated
    async def post(self):
        if len(self.request.body) > MAX_FORM_BYTES:
            raise web.HTTPError(413, "This request is too large.")
        if not sent_from_this_site(self.request.headers, self.request.host):
            raise web.HTTPError(403, "Open My Data from JupyterLab's Help menu on this site.")
        token = self.get_body_argument("token", "")
        hub_auth = getattr(self.identity_provider, "hub_auth", None)
        user = None
        if token and hub_auth is not None:
            user = await hub_auth.user_for_token(token, use_cache=False, sync=False)
        if (
            not user
            or user.get("name") != os.environ.get("JUPYTERHUB_USER")
            or not hub_auth.check_scopes(hub_auth.access_scopes, user)
        ):
            raise web.HTTPError(403, "Your session has expired: open the activity again.")
        await self.render_page(token)

    async def render_page(self, token: str) -> None:
        described = await self.service.describe()
        environment = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )
        page = environment.get_template("learnhub-my-data.html").render(
            username=self.service.username,
            stores=described.get("stores", {}),
            files=sum(1 for _ in _visible_files(self.root)),
            base=url_path_join(self.base_url, PATH),
            session=json.dumps({"token": token, "username": self.service.username})
            .replace("<", "\\u003c")
            .replace(">", "\\u003e"),
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)


def _visible_files(root: Path):
    for path in root.rglob("*"):
        if path.is_file() and not _hidden(path.relative_to(root)):
            yield path


class MyDataJSON(MyDataHandler):
    """GET /learnhub/my-data/api: the same as the page, as JSON."""

    @web.authenticated
    async def get(self):
        described = await self.service.describe()
        files = list(_visible_files(self.root))
        described["stores"]["files"] = {
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
        }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(described))


class MyDataArchive(MyDataHandler):
    """GET /learnhub/my-data/archive: one zip of everything, built in a temporary file."""

    @web.authenticated
    async def get(self):
        stored = await self.service.archive()
        with tempfile.TemporaryFile() as spool:
            with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
                with zipfile.ZipFile(_bytes_file(stored)) as exported:
                    for item in exported.infolist():
                        archive.writestr(f"learnhub/{item.filename}", exported.read(item))
                add_home_files(archive, self.root)
            size = spool.tell()
            spool.seek(0)
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Length", str(size))
            self.set_header(
                "Content-Disposition",
                f'attachment; filename="my-data-{self.service.username}.zip"',
            )
            while chunk := spool.read(CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()


def _bytes_file(data: bytes):
    return io.BytesIO(data)


class MyDataErase(MyDataHandler):
    """POST /learnhub/my-data/erase {"confirm": "<username>"}: erase everything now.

    Answers 202 as soon as the hub's service accepted: the erasure stops this very server.
    """

    @web.authenticated
    async def post(self):
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "send JSON") from None
        if body.get("confirm") != self.service.username:
            raise web.HTTPError(400, "type your username to confirm")
        await self.service.erase()
        self.set_status(202)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"erasing": True}))


class MyDataScript(MyDataHandler):
    """The page's script, as a file of this origin (no inline script); it holds no data, and
    a <script> request carries no token."""

    @allow_unauthenticated
    def get(self):
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.finish((TEMPLATES / "learnhub-my-data.js").read_text())


def my_data_handlers(base_url: str) -> list[tuple[str, type]]:
    base = url_path_join(base_url, PATH)
    return [
        (base, MyDataPage),
        (url_path_join(base, "api"), MyDataJSON),
        (url_path_join(base, "archive"), MyDataArchive),
        (url_path_join(base, "erase"), MyDataErase),
        (url_path_join(base, "page.js"), MyDataScript),
    ]
