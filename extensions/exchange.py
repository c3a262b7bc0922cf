"""nbgrader exchange classes that go through LearnHub's course service, not a shared folder.

nbgrader's default exchange is a world-writable directory every learner mounts; in
containers where all learners share a uid, anyone can read anyone's submission. Here each
call is an HTTP request carrying this server's own hub token, and the course service
decides what the caller may see and do. nbgrader uses them in the servers the hub starts
(jupyter_config/nbgrader_config.py, which learnhub_singleuser.course_service puts on
nbgrader's config path); without `LEARNHUB_EXCHANGE_URL` each refuses before doing anything.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import requests
from nbgrader.exchange.abc import Exchange as ABCExchange
from nbgrader.exchange.abc import ExchangeCollect as ABCExchangeCollect
from nbgrader.exchange.abc import ExchangeError
from nbgrader.exchange.abc import ExchangeFetchAssignment as ABCExchangeFetchAssignment
from nbgrader.exchange.abc import ExchangeFetchFeedback as ABCExchangeFetchFeedback
from nbgrader.exchange.abc import ExchangeList as ABCExchangeList
from nbgrader.exchange.abc import ExchangeReleaseAssignment as ABCExchangeReleaseAssignment
from nbgrader.exchange.abc import ExchangeReleaseFeedback as ABCExchangeReleaseFeedback
from nbgrader.exchange.abc import ExchangeSubmit as ABCExchangeSubmit
from nbgrader.utils import parse_utc
from traitlets import Bool, Float, Unicode, default

from .course_folders import find_course_folder, make_course_folder

# Never uploaded: checkpoints, hidden files, and feedback fetched into the assignment folder.
SKIPPED_PARTS = ("feedback",)
EXCHANGE_URL_ENV = "LEARNHUB_EXCHANGE_URL"
NOT_CONFIGURED = (
    f"This server has no course service: {EXCHANGE_URL_ENV} is not set (the LearnHub hub "
    "sets it when it starts a server). Nothing can be listed, fetched, submitted, released "
    "or collected here, and nbgrader's shared exchange folder is not used instead; ask the "
    "platform's operator."
)


def pack_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.is_symlink() or not path.is_file():
                continue
            if any(p.startswith(".") for p in parts) or parts[0] in SKIPPED_PARTS:
                continue
            tar.add(path, arcname="/".join(parts), recursive=False)
    return buffer.getvalue()


def unpack_into(data: bytes, folder: Path, *, only_missing: bool = False) -> list[str]:
    """Extract a tarball from the course service; regular files inside `folder` only."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not member.isfile() or not target.is_relative_to(root):
                continue
            if only_missing and target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source, open(target, "wb") as out:
                out.write(source.read())
            written.append(member.name)
    return written


class LearnHubExchange(ABCExchange):
    """The base: where the course service is, and one request method that says what failed."""

    service_url = Unicode(
        config=True,
        help="The course service's URL with its prefix. Default: $LEARNHUB_EXCHANGE_URL, "
        "which the hub's spawner sets; empty makes every exchange step refuse.",
    )
    request_timeout = Float(
        120.0, config=True, help="Seconds to wait for the course service. Default 120."
    )
    path_includes_course = Bool(
        True,
        config=True,
        help="Keep fetched assignments under <course folder>/<assignment>, the course's "
        "folder named after its title (learnhub_singleuser.course_folders): a learner can be "
        "in several courses. Default True.",
    )

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get(EXCHANGE_URL_ENV, "")

    @property
    def root(self) -> str:
        # What formgrader names as "the exchange directory" when its first listing fails.
        return self.service_url or f"(none: {EXCHANGE_URL_ENV} is not set)"

    def start(self):
        # Refuse before nbgrader's steps touch anything, local folders included.
        if not self.service_url:
            self.fail(NOT_CONFIGURED)
        return super().start()

    def request(self, method: str, path: str, *, data: bytes | None = None, params=None):
        if not self.service_url:
            self.fail(NOT_CONFIGURED)
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        url = self.service_url.rstrip("/") + "/api/courses" + (f"/{path}" if path else "")
        try:
            response = requests.request(
                method,
                url,
                data=data,
                params=params,
                headers={"Authorization": f"token {token}"},
                timeout=self.request_timeout,
            )
        except requests.RequestException:
            self.fail("The course service is not answering; try again in a minute.")
        if response.status_code >= 400:
            try:
                message = response.json()["message"]
            except (ValueError, KeyError):
                message = f"the course service answered {response.status_code}"
            self.fail(message)
        return response

    def json(self, method: str, path: str, **kwargs) -> dict:
        return self.request(method, path, **kwargs).json()

    def fail(self, msg):
        # nbgrader logs at FATAL and raises; the message is what the learner sees.
        self.log.error(msg)
        raise ExchangeError(msg)

    def courses(self) -> list[dict]:
        """The caller's courses: {"course_id", "title", "role"} each."""
        return self.json("GET", "")["courses"]

    def course_folder(self, course_id: str, *, create: bool = False) -> Path | None:
        """The learner's folder of the course's assignments, or None while they have none;
        `create` makes it, named after the course's title (see course_folders)."""
        base = Path(self.assignment_dir)
        if not self.path_includes_course:
            return base
        folder = find_course_folder(base, course_id)
        if folder is None and create:
            titles = {c["course_id"]: c.get("title") for c in self.courses()}
            try:
                folder = make_course_folder(base, course_id, titles.get(course_id))
            except OSError as e:
                self.fail(f"No folder could be made for the course's assignments: {e}")
        return folder

    def local_assignment_dir(
        self, course_id: str, assignment_id: str, *, create: bool = False
    ) -> Path | None:
        """Where the learner has the assignment, fetched or not (None: no course folder)."""
        folder = self.course_folder(course_id, create=create)
        return None if folder is None else folder / assignment_id

    def course_ids(self) -> list[str]:
        if self.coursedir.course_id:
            return [self.coursedir.course_id]
        return [c["course_id"] for c in self.courses()]

    def init_src(self):
        pass

    def init_dest(self):
        pass

    def copy_files(self):
        pass


class ExchangeList(LearnHubExchange, ABCExchangeList):
    def list_files(self):
        if self.inbound or self.cached:
            return self._submitted()
        return self._released()

    def remove_files(self):
        if self.inbound or self.cached:
            self.fail("Submissions cannot be removed from the exchange.")
        assignments = self._released()
        for info in assignments:
            self.request("DELETE", f"{info['course_id']}/assignments/{info['assignment_id']}")
            info["status"] = "removed"
        return assignments

    def _released(self) -> list[dict]:
        wanted = self.coursedir.assignment_id
        found = []
        for course_id in self.course_ids():
            folder = self.course_folder(course_id)
            for item in self.json("GET", f"{course_id}/assignments")["assignments"]:
                if wanted and item["assignment_id"] != wanted:
                    continue
                local = None if folder is None else folder / item["assignment_id"]
                info = {"course_id": course_id, "assignment_id": item["assignment_id"]}
                if local is not None and local.is_dir():
                    info["status"] = "fetched"
                    info["path"] = str(local.resolve())
                    notebooks = sorted(local.glob("*.ipynb"))
                    info["notebooks"] = [
                        {"notebook_id": p.stem, "path": str(p.resolve())} for p in notebooks
                    ]
                else:
                    info["status"] = "released"
                    info["path"] = ""
                    info["notebooks"] = [
                        {"notebook_id": n, "path": ""} for n in item.get("notebooks", [])
                    ]
                found.append(info)
        return found

    def _submitted(self) -> list[dict]:
        wanted = self.coursedir.assignment_id or "*"
        groups: dict[tuple, list[dict]] = {}
        for course_id in self.course_ids():
            folder = self.course_folder(course_id)
            params = {}
            if self.inbound and self.coursedir.student_id not in ("", "*"):
                params["student"] = self.coursedir.student_id
            path = f"{course_id}/assignments/{wanted}/submissions"
            listed = self.json("GET", path, params=params)
            for item in listed["submissions"]:
                local = None if folder is None else folder / item["assignment_id"]
                info = self._submission_info(item, local)
                key = (item["course_id"], item["student_id"], item["assignment_id"])
                groups.setdefault(key, []).append(info)
        return [
            {
                "course_id": key[0],
                "student_id": key[1],
                "assignment_id": key[2],
                "status": "submitted",
                "submissions": sorted(subs, key=lambda s: s["timestamp"]),
            }
            for key, subs in sorted(groups.items())
        ]

    def _submission_info(self, item: dict, local: Path | None) -> dict:
        feedback_dir = None if local is None else local / "feedback" / item["timestamp"]
        exchange_feedback = item.get("feedback") or {}
        notebooks = []
        for notebook_id in item.get("notebooks", []):
            local_path = None if feedback_dir is None else feedback_dir / f"{notebook_id}.html"
            has_local = local_path is not None and local_path.is_file()
            updated = False
            if has_local and notebook_id in exchange_feedback:
                checksum = hashlib.md5(local_path.read_bytes(), usedforsecurity=False).hexdigest()
                updated = checksum != exchange_feedback[notebook_id]
            notebooks.append(
                {
                    "notebook_id": notebook_id,
                    "path": "",
                    "has_local_feedback": has_local,
                    "has_exchange_feedback": notebook_id in exchange_feedback,
                    "local_feedback_path": str(local_path) if has_local else None,
                    "feedback_updated": updated,
                }
            )
        has_local = bool(notebooks) and all(n["has_local_feedback"] for n in notebooks)
        return {
            "course_id": item["course_id"],
            "student_id": item["student_id"],
            "assignment_id": item["assignment_id"],
            "timestamp": item["timestamp"],
            "submission_id": item["submission_id"],
            "late": item.get("late", False),
            "status": "submitted",
            "path": item["submission_id"],
            "notebooks": notebooks,
            "has_local_feedback": has_local,
            "has_exchange_feedback": bool(notebooks)
            and all(n["has_exchange_feedback"] for n in notebooks),
            "feedback_updated": any(n["feedback_updated"] for n in notebooks),
            "local_feedback_path": str(feedback_dir) if has_local else None,
        }


class ExchangeFetchAssignment(LearnHubExchange, ABCExchangeFetchAssignment):
    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        if not course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        dest = self.local_assignment_dir(course_id, assignment_id)
        if dest is not None and dest.exists() and not self.replace_missing_files:
            self.fail(
                f"You already have a copy of the assignment in {dest}; rename or remove it "
                "to fetch a fresh copy."
            )
        data = self.request("GET", f"{course_id}/assignments/{assignment_id}").content
        # The course's folder is made only once the course service has given the files.
        dest = dest or self.local_assignment_dir(course_id, assignment_id, create=True)
        written = unpack_into(data, dest, only_missing=self.replace_missing_files)
        self.log.info("Fetched %s/%s: %d files", course_id, assignment_id, len(written))


class ExchangeSubmit(LearnHubExchange, ABCExchangeSubmit):
    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        if not course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        source = self.local_assignment_dir(course_id, assignment_id)
        if source is None or not source.is_dir():
            self.fail(f"Assignment not found: {source or assignment_id}. Fetch it first.")
        kept = self.json(
            "POST", f"{course_id}/assignments/{assignment_id}/submissions", data=pack_folder(source)
        )
        self.timestamp = kept["timestamp"]
        late = " (after the due date)" if kept.get("late") else ""
        self.log.info("Submitted as: %s %s %s%s", course_id, assignment_id, self.timestamp, late)


class ExchangeFetchFeedback(LearnHubExchange, ABCExchangeFetchFeedback):
    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        listed = self.json("GET", f"{course_id}/assignments/{assignment_id}/submissions")
        fetched = 0
        for item in listed["submissions"]:
            if not item.get("feedback"):
                continue
            path = (
                f"{course_id}/assignments/{assignment_id}/submissions/"
                f"{item['student_id']}/{item['submission_id']}/feedback"
            )
            data = self.request("GET", path).content
            dest = self.local_assignment_dir(course_id, assignment_id, create=True) / "feedback"
            unpack_into(data, dest / item["timestamp"])
            fetched += 1
        self.log.info("Fetched feedback of %d submissions of %s", fetched, assignment_id)


class ExchangeReleaseAssignment(LearnHubExchange, ABCExchangeReleaseAssignment):
    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        if not course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        release = self.coursedir.release_directory
        source = Path(self.coursedir.format_path(release, ".", assignment_id))
        if not source.is_dir():
            self.fail(f"Assignment not found: {source}. Generate it first.")
        listed = self.json("GET", f"{course_id}/assignments")["assignments"]
        released = {a["assignment_id"] for a in listed}
        if assignment_id in released and not self.force:
            self.fail(f"Assignment {assignment_id} is already released; unrelease it first.")
        self.request("PUT", f"{course_id}/assignments/{assignment_id}", data=pack_folder(source))
        self.log.info("Released %s in %s", assignment_id, course_id)


class ExchangeCollect(LearnHubExchange, ABCExchangeCollect):
    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        if not course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        params = {}
        if self.coursedir.student_id not in ("", "*"):
            params["student"] = self.coursedir.student_id
        listed = self.json(
            "GET", f"{course_id}/assignments/{assignment_id}/submissions", params=params
        )
        latest: dict[str, dict] = {}
        for item in listed["submissions"]:
            # Listed oldest first: the last one of each student wins.
            latest[item["student_id"]] = item
        if not latest:
            self.log.warning("No submissions of '%s' for course '%s'", assignment_id, course_id)
        for student, item in sorted(latest.items()):
            dest = Path(
                self.coursedir.format_path(
                    self.coursedir.submitted_directory, student, assignment_id
                )
            )
            if dest.is_dir():
                existing = self.coursedir.get_existing_timestamp(str(dest))
                newer = existing is None or parse_utc(item["timestamp"]) > existing
                if not (self.update and newer):
                    self.log.info("Submission already collected: %s %s", student, assignment_id)
                    continue
                shutil.rmtree(dest)
            path = (
                f"{course_id}/assignments/{assignment_id}/submissions/"
                f"{student}/{item['submission_id']}"
            )
            unpack_into(self.request("GET", path).content, dest)
            (dest / "timestamp.txt").write_text(item["timestamp"])
            self.log.info("Collected submission: %s %s", student, assignment_id)


class ExchangeReleaseFeedback(LearnHubExchange, ABCExchangeReleaseFeedback):
    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        if not course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        student_filter = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = self.coursedir.format_path(
            self.coursedir.feedback_directory, student_filter, assignment_id
        )
        listed = self.json("GET", f"{course_id}/assignments/{assignment_id}/submissions")
        by_student: dict[str, list[dict]] = {}
        for item in listed["submissions"]:
            by_student.setdefault(item["student_id"], []).append(item)
        released = 0
        for folder in map(Path, sorted(glob.glob(pattern))):
            student = folder.parent.name
            stamp_file = folder / "timestamp.txt"
            if not stamp_file.is_file() or not list(folder.glob("*.html")):
                continue
            stamp = parse_utc(stamp_file.read_text().strip())
            match = [i for i in by_student.get(student, []) if parse_utc(i["timestamp"]) == stamp]
            if not match:
                self.log.warning("No submission of %s at %s for this feedback", student, stamp)
                continue
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for html in sorted(folder.glob("*.html")):
                    tar.add(html, arcname=html.name, recursive=False)
            path = (
                f"{course_id}/assignments/{assignment_id}/submissions/"
                f"{student}/{match[-1]['submission_id']}/feedback"
            )
            self.request("PUT", path, data=buffer.getvalue())
            released += 1
            self.log.info("Released feedback for %s on %s", student, assignment_id)
        if not released:
            self.log.warning("No feedback of %s to release", assignment_id)
