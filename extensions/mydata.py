"""A learner's own data page in their server: what is kept, one archive of it all, erase now.

Served by the learner's server so it works inside the LMS frame without cookies: the
launch token JupyterLab holds authenticates the browser here, and this server asks the
hub's learnhub-retention service with its own JUPYTERHUB_API_TOKEN (which needs the scope
access:services!service=learnhub-retention).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.utils import url_path_join
from tornado import web

from .learner_pages import TEMPLATES, HubService, LearnerHandler, LearnerPage, script_json

PATH = "learnhub/my-data"
SERVICE_URL_ENV = "LEARNHUB_RETENTION_URL"
# The person's files go in the archive under this folder; the stores' exports under "learnhub/".
FILES_FOLDER = "files"
CHUNK = 1 << 16


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


class RetentionService(HubService):
    """The hub's learnhub-retention service, as this server's user."""

    @classmethod
    def from_environment(cls) -> RetentionService:
        return super().from_environment(SERVICE_URL_ENV, "data service")

    async def describe(self) -> dict[str, Any]:
        return json.loads(await self.fetch(f"api/people/{self.username}"))

    async def archive(self) -> bytes:
        return await self.fetch(f"api/people/{self.username}/archive")

    async def erase(self) -> dict[str, Any]:
        body = await self.fetch(f"api/people/{self.username}", "DELETE", {"confirm": self.username})
        return json.loads(body or b"{}")


class MyDataHandler(LearnerHandler):
    @property
    def service(self) -> RetentionService:
        return RetentionService.from_environment()

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser()


class MyDataPage(LearnerPage, MyDataHandler):
    """/learnhub/my-data: what is kept about me, a download, and erase.

    JupyterLab's Help > My Data posts the session's token to it (see learner_pages); the
    page's script then uses the token in headers only.
    """

    title = "My Data"
    opened_from = "JupyterLab's Help menu"

    async def render_page(self, token: str) -> None:
        described = await self.service.describe()
        stores = described.get("stores", {})
        self.finish_template(
            "learnhub-my-data.html",
            username=self.service.username,
            stores=stores,
            titles=course_titles(stores),
            files=sum(1 for _ in _visible_files(self.root)),
            base=url_path_join(self.base_url, PATH),
            session=script_json({"token": token, "username": self.service.username}),
        )


def course_titles(stores: dict[str, Any]) -> dict[str, str]:
    """course id -> the course's title, as the enrollments the data service described say
    (the course stores key what they keep by course id)."""
    courses = stores.get("enrollments", {}).get("courses", [])
    return {c["course_id"]: c["course"] for c in courses if c.get("course_id")}


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
