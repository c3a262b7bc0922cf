"""The exchange's files: released assignments, submissions and feedback, kept by the service.

Nothing here is reachable by learners except through the course service, which decides
who may do what; paths are built only from names checked against strict patterns.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import nbformat

ASSIGNMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SUBMISSION_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z(-[0-9a-f]{6})?$")
# nbgrader's own timestamp format (Exchange.timestamp_format), as written to timestamp.txt.
NBGRADER_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f %Z"
MAX_FILES = 200


class ExchangeRefused(ValueError):
    """An upload the exchange will not keep; the message says why, for the learner."""


def check_name(pattern: re.Pattern, value: str, what: str) -> str:
    if not pattern.match(value or ""):
        raise ExchangeRefused(f"{what} {value!r} is not a valid name")
    return value


def pack(directory: Path, *, only: tuple[str, ...] = ()) -> bytes:
    """A gzipped tar of a directory's regular files (or of the names in `only`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if not path.is_file() or path.is_symlink():
                continue
            if only and relative not in only:
                continue
            if any(part.startswith(".") for part in path.relative_to(directory).parts):
                continue
            tar.add(path, arcname=relative, recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, destination: Path, *, limit_bytes: int) -> list[str]:
    """Extract an uploaded tar.gz safely: regular files and folders only, inside `destination`.

    Refuses links, devices, absolute or escaping paths, too many files and archives larger
    than `limit_bytes` once extracted; returns the relative paths written.
    """
    if len(data) > limit_bytes:
        raise ExchangeRefused(
            f"the upload is {len(data) / 1e6:.1f} MB; the limit is {limit_bytes / 1e6:.0f} MB"
        )
    # Decompressed with a cap first: a small gzip can expand a thousandfold.
    cap = limit_bytes + MAX_FILES * 1024 + 10240
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = inflater.decompress(data, cap + 1)
    except zlib.error:
        raise ExchangeRefused("the upload is not a gzipped tar archive") from None
    if len(raw) > cap or inflater.unconsumed_tail:
        raise ExchangeRefused(
            f"the upload expands to more than the limit of {limit_bytes / 1e6:.0f} MB"
        )
    try:
        tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")  # noqa: SIM115 (in memory)
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError):
        raise ExchangeRefused("the upload is not a gzipped tar archive") from None
    if len(members) > MAX_FILES:
        raise ExchangeRefused(f"the upload holds {len(members)} files; the limit is {MAX_FILES}")
    total = sum(m.size for m in members if m.isfile())
    if total > limit_bytes:
        raise ExchangeRefused(
            f"the files add up to {total / 1e6:.1f} MB; the limit is {limit_bytes / 1e6:.0f} MB"
        )
    written = []
    root = destination.resolve()
    for member in members:
        name = member.name
        target = (root / name).resolve()
        if name.startswith("/") or ".." in Path(name).parts or not target.is_relative_to(root):
            raise ExchangeRefused(f"the upload holds a path outside its folder: {name!r}")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if not member.isfile():
            raise ExchangeRefused(f"the upload holds a link or special file: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        with open(target, "wb") as out:
            shutil.copyfileobj(source, out)
            out.flush()
            os.fsync(out.fileno())
        written.append(target.relative_to(root).as_posix())
    return written


def check_notebooks(folder: Path, files: list[str], expected: set[str]) -> None:
    """A submission must hold the released notebooks, and every notebook must be one."""
    notebooks = [f for f in files if f.endswith(".ipynb")]
    if not notebooks:
        raise ExchangeRefused(
            "the submission holds no notebook: submit the assignment's .ipynb files"
        )
    for name in notebooks:
        try:
            nbformat.validate(nbformat.read(folder / name, as_version=4))
        except Exception:
            raise ExchangeRefused(f"{name} is not a valid Jupyter notebook") from None
    if expected and not expected & set(notebooks):
        raise ExchangeRefused(
            "the submission holds none of the assignment's notebooks ("
            + ", ".join(sorted(expected))
            + ")"
        )


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_folder(new: Path, old: Path) -> None:
    """Put the folder `new` where `old` is (same filesystem), durably, so that readers find
    one or the other and never neither: the old one is renamed aside, the new one in, and
    only then is the old one removed."""
    aside = old.with_name(f".{old.name}.old.{secrets.token_hex(4)}")
    if old.exists():
        old.rename(aside)
    new.rename(old)
    fsync_dir(old.parent)
    shutil.rmtree(aside, ignore_errors=True)


def checksum(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Submission:
    course_id: str
    assignment_id: str
    student: str
    id: str
    timestamp: str  # nbgrader's format, as collect writes it to timestamp.txt
    received: float
    late: bool
    size: int
    path: Path

    def feedback(self) -> dict[str, str]:
        """Released feedback files of this submission: notebook id → checksum."""
        folder = self.feedback_dir
        if not folder.is_dir():
            return {}
        return {p.stem: checksum(p) for p in sorted(folder.glob("*.html"))}

    @property
    def feedback_dir(self) -> Path:
        # <exchange>/<course>/inbound/<student>/<assignment>/<id> → .../feedback/...
        course = self.path.parents[3]
        return course / "feedback" / self.student / self.assignment_id / self.id

    def as_json(self) -> dict:
        return {
            "course_id": self.course_id,
            "assignment_id": self.assignment_id,
            "student_id": self.student,
            "submission_id": self.id,
            "timestamp": self.timestamp,
            "late": self.late,
            "size": self.size,
            "notebooks": sorted(p.stem for p in self.path.glob("*.ipynb")),
            "feedback": self.feedback(),
        }


class ExchangeStore:
    """`<root>/<course>/outbound/<assignment>/`, `inbound/<student>/<assignment>/<id>/`,
    `feedback/<student>/<assignment>/<id>/`: one folder per released assignment, per
    submission and per submission's feedback."""

    def __init__(self, root: Path, *, submission_limit_bytes: int = 25_000_000):
        self.root = root
        self.submission_limit_bytes = submission_limit_bytes

    def course(self, course_id: str) -> Path:
        return self.root / course_id

    # released assignments

    def released(self, course_id: str) -> list[dict]:
        outbound = self.course(course_id) / "outbound"
        if not outbound.is_dir():
            return []
        result = []
        for folder in sorted(outbound.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            notebooks = sorted(p.stem for p in folder.glob("*.ipynb"))
            result.append(
                {
                    "course_id": course_id,
                    "assignment_id": folder.name,
                    "notebooks": notebooks,
                    "released": folder.stat().st_mtime,
                }
            )
        return result

    def release(self, course_id: str, assignment_id: str, data: bytes) -> list[str]:
        check_name(ASSIGNMENT_ID, assignment_id, "assignment")
        outbound = self.course(course_id) / "outbound"
        outbound.mkdir(parents=True, exist_ok=True)
        staging = outbound / f".{assignment_id}.{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            files = unpack(data, staging, limit_bytes=self.submission_limit_bytes * 4)
            if not any(f.endswith(".ipynb") for f in files):
                raise ExchangeRefused("the release holds no notebook")
            replace_folder(staging, outbound / assignment_id)
            return files
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def unrelease(self, course_id: str, assignment_id: str) -> bool:
        check_name(ASSIGNMENT_ID, assignment_id, "assignment")
        folder = self.course(course_id) / "outbound" / assignment_id
        if not folder.is_dir():
            return False
        shutil.rmtree(folder)
        return True

    def released_files(self, course_id: str, assignment_id: str) -> bytes | None:
        check_name(ASSIGNMENT_ID, assignment_id, "assignment")
        folder = self.course(course_id) / "outbound" / assignment_id
        return pack(folder) if folder.is_dir() else None

    # submissions

    def submit(
        self,
        course_id: str,
        assignment_id: str,
        student: str,
        data: bytes,
        *,
        duedate: datetime.datetime | None = None,
        now: datetime.datetime | None = None,
    ) -> Submission:
        """Keep a submission; it is on disk (fsynced) when this returns."""
        check_name(ASSIGNMENT_ID, assignment_id, "assignment")
        check_name(USERNAME, student, "student")
        released = self.course(course_id) / "outbound" / assignment_id
        if not released.is_dir():
            raise ExchangeRefused(f"assignment {assignment_id!r} is not released in this course")
        now = now or datetime.datetime.now(datetime.UTC)
        folder = self.course(course_id) / "inbound" / student / assignment_id
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".incoming-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            files = unpack(data, staging, limit_bytes=self.submission_limit_bytes)
            check_notebooks(staging, files, {p.name for p in released.glob("*.ipynb")})
            submission_id = now.strftime("%Y%m%dT%H%M%S.%fZ")
            if (folder / submission_id).exists():
                submission_id += f"-{secrets.token_hex(3)}"
            meta = {
                "timestamp": now.strftime(NBGRADER_TIMESTAMP),
                "received": now.timestamp(),
                "late": bool(duedate and now > _as_utc(duedate)),
                "size": sum((staging / f).stat().st_size for f in files),
            }
            (staging / ".submission.json").write_text(json.dumps(meta))
            fsync_dir(staging)
            staging.rename(folder / submission_id)
            fsync_dir(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self._submission(course_id, assignment_id, student, folder / submission_id)

    def _submission(self, course_id, assignment_id, student, path: Path) -> Submission:
        meta = json.loads((path / ".submission.json").read_text())
        return Submission(
            course_id=course_id,
            assignment_id=assignment_id,
            student=student,
            id=path.name,
            timestamp=meta["timestamp"],
            received=meta["received"],
            late=meta["late"],
            size=meta["size"],
            path=path,
        )

    def submissions(
        self, course_id: str, assignment_id: str | None = None, student: str | None = None
    ) -> list[Submission]:
        """Submissions, oldest first, of one student or all, of one assignment or all."""
        inbound = self.course(course_id) / "inbound"
        if not inbound.is_dir():
            return []
        students = [student] if student else sorted(p.name for p in inbound.iterdir())
        found = []
        for name in students:
            if not USERNAME.match(name):
                continue
            assignments = inbound / name
            if not assignments.is_dir():
                continue
            for folder in sorted(assignments.iterdir()):
                if assignment_id and folder.name != assignment_id:
                    continue
                for path in sorted(folder.iterdir()):
                    if SUBMISSION_ID.match(path.name) and (path / ".submission.json").is_file():
                        found.append(self._submission(course_id, folder.name, name, path))
        return sorted(found, key=lambda s: (s.student, s.assignment_id, s.received))

    def submission(
        self, course_id: str, assignment_id: str, student: str, submission_id: str
    ) -> Submission | None:
        check_name(ASSIGNMENT_ID, assignment_id, "assignment")
        check_name(USERNAME, student, "student")
        check_name(SUBMISSION_ID, submission_id, "submission")
        path = self.course(course_id) / "inbound" / student / assignment_id / submission_id
        if not (path / ".submission.json").is_file():
            return None
        return self._submission(course_id, assignment_id, student, path)

    def submission_files(self, submission: Submission) -> bytes:
        return pack(submission.path)

    # feedback

    def release_feedback(self, submission: Submission, data: bytes) -> list[str]:
        folder = submission.feedback_dir
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = folder.parent / f".incoming-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            files = unpack(data, staging, limit_bytes=self.submission_limit_bytes)
            if not files or not all(f.endswith(".html") and "/" not in f for f in files):
                raise ExchangeRefused("feedback must be the HTML files of one submission")
            replace_folder(staging, folder)
            return files
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def feedback_files(self, submission: Submission) -> bytes | None:
        folder = submission.feedback_dir
        return pack(folder) if folder.is_dir() else None


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    # nbgrader stores due dates as naive UTC.
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
