"""What courses keep about a person, for export, expiry and erasure (learnhub.privacy.erasure).

A learner's gradebook entry (name and email when the LMS sent them, submissions, grades,
comments), their files in the course directory (submitted/, autograded/, feedback/), their
submissions and feedback in the exchange, their grading jobs and the scores queued for the
LMS. A course goes with its directory, its exchange folder, its grader account and all of
the above for everyone in it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbgrader.api import (
    Comment,
    Grade,
    Gradebook,
    MissingEntry,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from sqlalchemy import column, delete, or_, select, table, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import SQLAlchemyError

from ..grading.queue import GradingJob, GradingQueue
from ..grading.service import FeedbackMode, GradeSnapshot
from ..passback.outbox import GradeOutbox, OutboxGrade
from ..privacy.erasure import WRITE_PAUSE, PartlyErased, batches
from ..privacy.retention import SecureDeleteConnection
from ..store import Enrollment
from .coursedir import COURSE_ID, CourseDirectories, grader_username
from .exchange import USERNAME, ExchangeStore

log = logging.getLogger(__name__)

STUDENT_FOLDERS = ("submitted", "autograded", "feedback")
# Folders of the exchange named after a student: their submissions, their feedback.
EXCHANGE_FOLDERS = ("inbound", "feedback")
# Up to this many people, a folder is asked about each of them (a stat each); for more, it
# is listed once: a sweep erasing thousands must not stat every course once per person.
FEW = 8
# Seconds to wait for a gradebook that a grading run holds locked.
GRADEBOOK_LOCK_WAIT = 30
# Courses erased from at once: deleting folders waits on the disk, not on this process.
PARALLEL_COURSES = 4


def _with_alembic_on_path() -> None:
    # nbgrader's Gradebook runs `alembic` from PATH; services start with a bare one.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])


class CourseDataStore:
    """Gradebooks, course folders, the exchange, grading jobs and the grade outbox."""

    name = "courses"

    def __init__(self, context):
        self.store = context.store
        self.hub = context.hub
        state = context.settings.state_dir
        self.courses = CourseDirectories(root=state / "courses")
        self.exchange = ExchangeStore(state / "exchange")
        # Make sure the tables exist even on a hub that has graded nothing yet.
        GradingQueue(self.store)
        GradeOutbox(self.store)
        _with_alembic_on_path()

    def _course_ids(self) -> list[str]:
        """Every course: known to the store, or with a folder left in the courses or exchange."""
        ids = {c.id for c in self.store.courses()}
        for root in (self.courses.root, self.exchange.root):
            if root.is_dir():
                ids.update(os.listdir(root))
        return sorted(i for i in ids if COURSE_ID.match(i))

    def _person_folders(self, course_id: str) -> list[Path]:
        """The folders of a course that hold one sub-folder per student, named after them."""
        course, exchange = self.courses.root / course_id, self.exchange.course(course_id)
        return [course / p for p in STUDENT_FOLDERS] + [exchange / p for p in EXCHANGE_FOLDERS]

    def _enrolled(self, people: set[str]) -> Iterable[tuple[str, str]]:
        """(course id, username) of every enrollment of these people, a batch per query."""
        for batch in batches(sorted(people)):
            with self.store.session() as s:
                yield from s.execute(
                    select(Enrollment.course_id, Enrollment.username).where(
                        Enrollment.username.in_(batch)
                    )
                ).all()

    def _holdings(self, people: set[str]) -> dict[str, Holding]:
        """Which courses hold anything of these people, and their folders there.

        A gradebook entry comes from an enrollment or a submission, so enrollments and
        folders find every course without opening each gradebook. Each course's student
        folders are looked at once for everyone (see _named_in), so the cost grows with the
        number of courses, not with courses times people.
        """
        held: dict[str, Holding] = defaultdict(Holding)
        for course_id, username in self._enrolled(people):
            if COURSE_ID.match(course_id):
                held[course_id].people.add(username)
        for course_id in self._course_ids():
            for folder in self._person_folders(course_id):
                for username in _named_in(folder, people):
                    held[course_id].people.add(username)
                    held[course_id].folders.append(folder / username)
        return dict(held)

    def _courses_of(self, username: str) -> list[str]:
        """Courses holding anything of `username`: enrollments, gradebook, exchange."""
        return sorted(self._holdings(_valid([username])))

    def _student(self, course_id: str, username: str) -> dict | None:
        with Gradebook(self.courses.gradebook_url(course_id), course_id=course_id) as gb:
            try:
                student = gb.find_student(username)
            except MissingEntry:
                return None
            grades = []
            for assignment in gb.assignments:
                try:
                    submission = gb.find_submission(assignment.name, username)
                except MissingEntry:
                    continue
                grades.append(
                    {
                        "assignment": assignment.name,
                        "score": submission.score,
                        "max_score": submission.max_score,
                        "needs_manual_grade": submission.needs_manual_grade,
                        "late_by_seconds": submission.total_seconds_late,
                        "comments": [
                            c.comment
                            for nb in submission.notebooks
                            for c in nb.comments
                            if c.comment
                        ],
                    }
                )
            return {
                "first_name": student.first_name,
                "last_name": student.last_name,
                "email": student.email,
                "grades": grades,
            }

    # the protocol

    def describe(self, username: str) -> dict[str, Any]:
        courses = {}
        for course_id in self._courses_of(username):
            student = self._student(course_id, username) if self.courses.exists(course_id) else None
            submissions = self.exchange.submissions(course_id, student=username)
            courses[course_id] = {
                "gradebook_entry": student is not None,
                "name_or_email_in_gradebook": bool(
                    student and (student["first_name"] or student["last_name"] or student["email"])
                ),
                "graded_assignments": len(student["grades"]) if student else 0,
                "submissions": len(submissions),
                "feedback_releases": sum(1 for s in submissions if s.feedback()),
            }
        return {"courses": courses}

    def export(self, username: str, archive, prefix: str) -> int:
        written = 0
        for course_id in self._courses_of(username):
            base = f"{prefix}{course_id}/"
            if self.courses.exists(course_id):
                student = self._student(course_id, username)
                if student is not None:
                    archive.writestr(base + "gradebook.json", json.dumps(student, indent=2))
                    written += 1
            for submission in self.exchange.submissions(course_id, student=username):
                where = f"{base}submissions/{submission.assignment_id}/{submission.id}/"
                written += _add_tree(archive, submission.path, where)
                written += _add_tree(archive, submission.feedback_dir, where + "feedback/")
            for job in GradingQueue(self.store).jobs(course_id=course_id):
                if job.student == username:
                    archive.writestr(
                        f"{base}grading/job-{job.id}.json", json.dumps(job.as_json(), indent=2)
                    )
                    written += 1
        for entry in GradeOutbox(self.store).entries(username=username):
            archive.writestr(
                f"{prefix}sent-to-lms/{entry.id}.json",
                json.dumps(
                    {
                        "course_id": entry.course_id,
                        "assignment": entry.assignment,
                        "score": entry.score,
                        "max_score": entry.max_score,
                        "state": getattr(entry.state, "value", entry.state),
                        "sent_at": entry.sent_at,
                    },
                    indent=2,
                ),
            )
            written += 1
        return written

    def scrub(self, username: str) -> int:
        return self.scrub_many([username])

    def scrub_many(self, usernames: Iterable[str]) -> int:
        """Drop the names and emails of these people from every gradebook they are in."""
        people = _valid(usernames)
        scrubbed = 0
        for course_id, holding in sorted(self._holdings(people).items()):
            with self._gradebook(course_id) as gradebook:
                if gradebook is not None:
                    scrubbed += _scrub_students(gradebook, holding.people)
        return scrubbed

    def erase(self, username: str) -> int:
        return self.erase_many([username])

    def erase_many(self, usernames: Iterable[str]) -> int:
        """Delete everything courses keep about these people, course by course.

        Each course they are in is visited once for all of them: one gradebook session, one
        pass over its folders; a few courses at a time, as deleting folders mostly waits on
        the disk. Then their grading jobs, grade snapshots and queued grades of every course
        go, a batch of people per short transaction.
        """
        people = _valid(usernames)
        if not people:
            return 0
        held = sorted(self._holdings(people).items())
        with ThreadPoolExecutor(max_workers=PARALLEL_COURSES) as pool:
            done = list(pool.map(lambda course: self._erase_in(*course), held))
        removed = sum(count for count, _ in done)
        failed = set().union(*(stuck for _, stuck in done))
        removed += self._forget_rows(people - failed)
        if failed:
            raise PartlyErased(failed, removed)
        return removed

    def _erase_in(self, course_id: str, holding: Holding) -> tuple[int, set[str]]:
        """One course's share: its gradebook's students among these people, their folders.

        Returns the count, and the people whose erasure failed here (a gradebook locked too
        long, a broken one): only they wait for the next sweep, not everyone in the batch.
        """
        try:
            removed = self._remove_students(course_id, holding.people)
            return removed + _remove_all(holding.folders), set()
        except (OSError, sqlite3.Error, SQLAlchemyError) as e:
            log.error("erasure in course %s failed: %s", course_id, type(e).__name__)
            return 0, holding.people

    def remove_from_course(self, username: str, course_id: str) -> int:
        if not USERNAME.match(username) or not COURSE_ID.match(course_id):
            return 0
        people = {username}
        folders = [f / u for f in self._person_folders(course_id) for u in _named_in(f, people)]
        removed = self._remove_students(course_id, people) + _remove_all(folders)
        return removed + self._forget_rows(people, course_id=course_id)

    def _gradebook(self, course_id: str) -> AbstractContextManager[sqlite3.Connection | None]:
        return _gradebook_connection(self.courses.path(course_id) / "gradebook.db")

    def _remove_students(self, course_id: str, people: set[str]) -> int:
        """Delete these students with their submissions, grades and comments from the
        course's gradebook; returns how many students were in it."""
        with self._gradebook(course_id) as gradebook:
            if gradebook is None:
                return 0
            return sum(_delete_students(gradebook, batch) for batch in batches(sorted(people)))

    def _forget_rows(self, people: set[str], course_id: str | None = None) -> int:
        """Delete these people's grading jobs, grade snapshots and queued grades (of one
        course, or of all), a batch of people per transaction so launches never wait long."""
        removed = 0
        for batch in batches(sorted(people), pause=WRITE_PAUSE):
            with self.store.session() as s:
                for table, column in (
                    (GradingJob, GradingJob.student),
                    (GradeSnapshot, GradeSnapshot.student),
                    (OutboxGrade, OutboxGrade.username),
                ):
                    query = delete(table).where(column.in_(batch))
                    if course_id is not None:
                        query = query.where(table.course_id == course_id)
                    removed += s.execute(query).rowcount
                s.commit()
        return removed

    def erase_course(self, course_id: str) -> int:
        if not COURSE_ID.match(course_id):
            return 0
        removed = 0
        if self.hub is not None:
            # The course's grader account and its server go first: it writes the course.
            removed += int(bool(self.hub.delete_user(grader_username(course_id))))
        for folder in (self.courses.root / course_id, self.exchange.course(course_id)):
            if folder.is_dir():
                shutil.rmtree(folder)
                removed += 1
        with self.store.session() as s:
            for table in (GradingJob, GradeSnapshot, FeedbackMode, OutboxGrade):
                removed += s.execute(delete(table).where(table.course_id == course_id)).rowcount
            s.commit()
        return removed


def _add_tree(archive, folder: Path, prefix: str) -> int:
    if not folder.is_dir():
        return 0
    count = 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() and not relative.name.startswith("."):
            archive.write(path, prefix + relative.as_posix())
            count += 1
    return count


@dataclass
class Holding:
    """What one course holds of the people being erased: who, and their folders."""

    people: set[str] = field(default_factory=set)
    folders: list[Path] = field(default_factory=list)


def _valid(usernames: Iterable[str]) -> set[str]:
    # Names become paths and SQL parameters: anything but a LearnHub username is skipped.
    return {u for u in usernames if isinstance(u, str) and USERNAME.match(u)}


def _named_in(folder: Path, people: set[str]) -> set[str]:
    """Which of `people` have an entry in `folder`: a stat each for a few people, one
    listing of the folder for many."""
    if len(people) <= FEW:
        return {p for p in people if os.path.lexists(folder / p)}
    try:
        return people.intersection(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _remove_all(paths: Iterable[Path]) -> int:
    """Delete these folders (a link or file of the same name is unlinked, never followed)."""
    removed = 0
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


# The students at hand, in a temporary table of the gradebook's connection: the statements
# below are compiled once from nbgrader's models, whatever the number of students.
_AT_HAND = table("learnhub_students_at_hand", column("id"))
CREATE_AT_HAND = "CREATE TEMP TABLE learnhub_students_at_hand (id TEXT PRIMARY KEY)"
CLEAR_AT_HAND = "DELETE FROM learnhub_students_at_hand"
ADD_AT_HAND = "INSERT INTO learnhub_students_at_hand VALUES (?)"


def _sql(statement) -> str:
    dialect = sqlite_dialect.dialect()
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _student_statements() -> tuple[list[str], str, str]:
    """(deletes of what hangs off the students, delete of the students, scrub of them)."""
    students = select(_AT_HAND.c.id)
    submissions = select(SubmittedAssignment.id).where(SubmittedAssignment.student_id.in_(students))
    notebooks = select(SubmittedNotebook.id).where(SubmittedNotebook.assignment_id.in_(submissions))
    dependents = [
        *(delete(t).where(t.notebook_id.in_(notebooks)) for t in (Grade, Comment)),
        delete(SubmittedNotebook).where(SubmittedNotebook.assignment_id.in_(submissions)),
        delete(SubmittedAssignment).where(SubmittedAssignment.student_id.in_(students)),
    ]
    named = or_(
        Student.first_name.is_not(None), Student.last_name.is_not(None), Student.email.is_not(None)
    )
    scrub = (
        update(Student)
        .where(Student.id.in_(students), named)
        .values(first_name=None, last_name=None, email=None)
    )
    return (
        [_sql(d) for d in dependents],
        _sql(delete(Student).where(Student.id.in_(students))),
        _sql(scrub),
    )


DELETE_DEPENDENTS, DELETE_STUDENTS, SCRUB_STUDENTS = _student_statements()


@contextmanager
def _gradebook_connection(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A connection to a course's gradebook; None without a gradebook (a missing one is
    never created).

    nbgrader's Gradebook commits once per submitted notebook when it removes a student and
    checks its whole schema when opened; a sweep removes many students of many courses, so
    it deletes their rows with a few statements (compiled from nbgrader's models), one
    transaction per batch of students, on a plain connection (an engine and session per
    course cost more than the deletions). With secure_delete (the default of Debian's
    SQLite, not of every build), as on LearnHub's own database: deleted names, emails,
    answers and comments are overwritten in the file.
    """
    if not path.is_file():
        yield None
        return
    connection = sqlite3.connect(path, timeout=GRADEBOOK_LOCK_WAIT, factory=SecureDeleteConnection)
    try:
        connection.execute(CREATE_AT_HAND)
        yield connection
    finally:
        connection.close()


def _with_students_at_hand(gradebook: sqlite3.Connection, students: list[str]) -> None:
    gradebook.execute(CLEAR_AT_HAND)
    gradebook.executemany(ADD_AT_HAND, [(s,) for s in students])


def _delete_students(gradebook: sqlite3.Connection, students: list[str]) -> int:
    """Delete students with everything nbgrader keeps of them, in one transaction."""
    with gradebook:  # commits, or rolls back on an error
        _with_students_at_hand(gradebook, students)
        for statement in DELETE_DEPENDENTS:
            gradebook.execute(statement)
        return gradebook.execute(DELETE_STUDENTS).rowcount


def _scrub_students(gradebook: sqlite3.Connection, people: set[str]) -> int:
    """Drop the names and emails of these students; returns how many had any."""
    scrubbed = 0
    for batch in batches(sorted(people)):
        with gradebook:
            _with_students_at_hand(gradebook, batch)
            scrubbed += gradebook.execute(SCRUB_STUDENTS).rowcount
    return scrubbed


def courses_store(context) -> CourseDataStore | None:
    """The entry point of learnhub.personal_data."""
    return CourseDataStore(context)
