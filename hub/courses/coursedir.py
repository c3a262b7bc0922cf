"""One nbgrader course directory and gradebook per LMS course, made idempotently."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alembic.script import ScriptDirectory
from nbgrader.api import Gradebook, InvalidEntry
from nbgrader.dbutil import ALEMBIC_DIR

from ..store import EnrollmentInfo

# Course ids are pseudonyms (identity.course_id_for); grader accounts are named after them.
COURSE_ID = re.compile(r"^c[a-z0-9]{11}$")
GRADER_PREFIX = "grader-"
# What nbgrader generates and a course template must not bring along.
GENERATED = ("release", "submitted", "autograded", "feedback", "gradebook.db", ".nbgrader.log")
# A course's staging folder older than this was left by a process that crashed making it.
STALE_STAGING_SECONDS = 3600


def grader_username(course_id: str) -> str:
    return GRADER_PREFIX + course_id


def course_of_grader(username: str) -> str | None:
    """The course whose grader account this is, or None for anyone else."""
    if not username.startswith(GRADER_PREFIX):
        return None
    course_id = username[len(GRADER_PREFIX) :]
    return course_id if COURSE_ID.match(course_id) else None


def nbgrader_config(course_id: str, template_config: str = "") -> str:
    """The course's nbgrader_config.py: the template's settings, then LearnHub's.

    No db_url and no root: nbgrader derives both from the directory it runs in, which is
    the host path for the course service and /home/learner in the course's grader server.
    """
    return (
        f"{template_config.rstrip()}\n\n"
        "# Added by LearnHub: this directory is the course of one LMS context.\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course_id!r}\n"
    ).lstrip()


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """nbgrader keeps first and last names apart; the LMS sends one full name."""
    if not name:
        return None, None
    first, _, last = name.strip().rpartition(" ")
    return (first or None, last or None) if first else (None, last)


@functools.cache
def gradebook_revision() -> str:
    """The revision nbgrader stamps a new gradebook with, read from its migrations in this
    process: nbgrader runs `alembic heads` in a subprocess for each new gradebook, which
    took 3 s of a course's first launch on a busy machine."""
    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def new_gradebook(path: Path, course_id: str) -> None:
    """An nbgrader gradebook at `path` for `course_id`, as nbgrader makes one: its tables, its
    alembic_version row at nbgrader's head, the course row."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (gradebook_revision(),))
    # Gradebook sees a database (the version table) and creates the rest of nbgrader's tables.
    with Gradebook(f"sqlite:///{path}", course_id=course_id):
        pass


@dataclass
class CourseDirectories:
    """Where courses live: `<root>/<course id>/`, each an nbgrader course directory.

    `template` is a course to copy into each new one (nbgrader_config.py and source/);
    `owner_uid` is who must be able to write the course (the grader server's uid in its
    container), or None when everything runs as one user.
    """

    root: Path
    template: Path | None = None
    owner_uid: int | None = None
    # One maker and one writer of a course's students at a time in this process: two
    # launches of a new learner at once both found no student and both inserted one (UNIQUE
    # failed, 500), and six first launches of a course each built a gradebook of their own.
    _course_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _locks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings, environ) -> CourseDirectories:
        """The courses of a service: the state directory's, the template of the settings (or
        of `learnhub run --demo`), and the grader servers' uid when they run in containers."""
        template = settings["courses"]["template"] or environ.get("LEARNHUB_DEMO_COURSE_TEMPLATE")
        owner = environ.get("LEARNHUB_COURSE_OWNER_UID")
        return cls(
            root=settings.state_dir / "courses",
            template=Path(template) if template else None,
            owner_uid=int(owner) if owner else None,
        )

    def path(self, course_id: str) -> Path:
        if not COURSE_ID.match(course_id):
            raise ValueError(f"not a course id: {course_id!r}")
        return self.root / course_id

    def gradebook_url(self, course_id: str) -> str:
        return f"sqlite:///{self.path(course_id) / 'gradebook.db'}"

    def exists(self, course_id: str) -> bool:
        return (self.path(course_id) / "nbgrader_config.py").is_file()

    def ensure(self, course_id: str) -> bool:
        """Make the course directory and its gradebook if missing; True when made now."""
        if self.exists(course_id):
            return False
        with self._lock(course_id):
            return self._make(course_id)

    def _make(self, course_id: str) -> bool:
        path = self.path(course_id)
        if self.exists(course_id):
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_staging(course_id)
        # A folder of this call's own: two first launches of a course at once (the launch's
        # notice and formgrader's) each build one, and the first rename wins. A shared
        # name let one call delete the other's half-written gradebook.
        staging = Path(tempfile.mkdtemp(prefix=f".{course_id}.new-", dir=self.root))
        staging.chmod(0o755)  # as a plain mkdir makes it (mkdtemp makes 0700)
        template_config = ""
        if self.template is not None:
            source = self.template / "source"
            if source.is_dir():
                shutil.copytree(
                    source, staging / "source", ignore=shutil.ignore_patterns(*GENERATED)
                )
            config = self.template / "nbgrader_config.py"
            if config.is_file():
                template_config = config.read_text()
        (staging / "source").mkdir(exist_ok=True)
        new_gradebook(staging / "gradebook.db", course_id)
        # Written last and renamed into place: a half-made course never looks made.
        (staging / "nbgrader_config.py").write_text(nbgrader_config(course_id, template_config))
        self.give_to_owner(staging)
        try:
            staging.rename(path)
        except OSError:
            # Another process made it first (two first launches at once).
            shutil.rmtree(staging, ignore_errors=True)
            return False
        return True

    def _remove_stale_staging(self, course_id: str) -> None:
        """Staging folders of this course that a crashed process left (older than an hour)."""
        cutoff = time.time() - STALE_STAGING_SECONDS
        for stale in self.root.glob(f".{course_id}.new-*"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < cutoff:
                    shutil.rmtree(stale, ignore_errors=True)

    def give_to_owner(self, path: Path) -> None:
        """Hand files this process wrote to the grader server's user."""
        if self.owner_uid is None or os.geteuid() != 0:
            return
        for entry in [path, *path.rglob("*")]:
            os.lchown(entry, self.owner_uid, self.owner_uid)

    def _lock(self, course_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._course_locks.setdefault(course_id, threading.Lock())

    def sync_students(self, course_id: str, enrollments: Iterable[EnrollmentInfo]) -> int:
        """Learners become gradebook students under their pseudonym; returns how many."""
        count = 0
        with (
            self._lock(course_id),
            Gradebook(self.gradebook_url(course_id), course_id=course_id) as gradebook,
        ):
            for enrollment in enrollments:
                if enrollment.is_staff:
                    continue
                first, last = split_name(enrollment.name)
                details = {"first_name": first, "last_name": last, "email": enrollment.email}
                try:
                    gradebook.update_or_create_student(enrollment.username, **details)
                except InvalidEntry:
                    # Another process (formgrader, an autograde) added them in between:
                    # nbgrader rolled back, and the student is there to update now.
                    gradebook.update_or_create_student(enrollment.username, **details)
                count += 1
        self.give_to_owner(self.path(course_id) / "gradebook.db")
        return count
