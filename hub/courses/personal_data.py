"""What courses keep about a person, for export, expiry and erasure (learnhub.privacy.erasure).

A learner's gradebook entry (name and email when the LMS sent them, submissions, grades,
comments), their files in the course directory (submitted/, autograded/, feedback/), their
submissions and feedback in the exchange, their grading jobs and the scores queued for the
LMS. A course goes with its directory, its exchange folder, its grader account and all of
the above for everyone in it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy import delete

from ..grading.queue import GradingJob, GradingQueue
from ..grading.service import FeedbackMode, GradeSnapshot
from ..passback.outbox import GradeOutbox, OutboxGrade
from .coursedir import COURSE_ID, CourseDirectories, grader_username
from .exchange import USERNAME, ExchangeStore

STUDENT_FOLDERS = ("submitted", "autograded", "feedback")


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
        ids = {c.id for c in self.store.courses()}
        if self.courses.root.is_dir():
            ids |= {p.name for p in self.courses.root.iterdir() if COURSE_ID.match(p.name)}
        return sorted(ids)

    def _courses_of(self, username: str) -> list[str]:
        """Courses holding anything of `username`: enrollments, gradebook, exchange."""
        # A gradebook entry comes from an enrollment or a submission, so enrollments and
        # folders find every course without opening each gradebook: a few stat calls per
        # course, which a sweep over many people and courses can afford.
        found = {e.course_id for e in self.store.enrollments_of(username)}
        for course_id in self._course_ids():
            if (self.exchange.course(course_id) / "inbound" / username).exists() or any(
                (self.courses.root / course_id / part / username).exists()
                for part in STUDENT_FOLDERS
            ):
                found.add(course_id)
        return sorted(found)

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
        scrubbed = 0
        for course_id in self._courses_of(username):
            if not self.courses.exists(course_id):
                continue
            with Gradebook(self.courses.gradebook_url(course_id), course_id=course_id) as gb:
                try:
                    gb.find_student(username)
                except MissingEntry:
                    continue
                gb.update_or_create_student(username, first_name=None, last_name=None, email=None)
                scrubbed += 1
        return scrubbed

    def remove_from_course(self, username: str, course_id: str) -> int:
        if not USERNAME.match(username) or not COURSE_ID.match(course_id):
            return 0
        removed = int(self.courses.remove_student(course_id, username))
        for part in STUDENT_FOLDERS:
            shutil.rmtree(self.courses.root / course_id / part / username, ignore_errors=True)
        removed += self.exchange.remove_student(course_id, username)
        removed += GradingQueue(self.store).forget_student(username, course_id)
        with self.store.session() as s:
            for table, column in (
                (GradeSnapshot, GradeSnapshot.student),
                (OutboxGrade, OutboxGrade.username),
            ):
                removed += s.execute(
                    delete(table).where(column == username, table.course_id == course_id)
                ).rowcount
            s.commit()
        return removed

    def erase(self, username: str) -> int:
        return sum(self.remove_from_course(username, c) for c in self._courses_of(username)) + (
            GradeOutbox(self.store).forget_user(username)
        )

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


def courses_store(context) -> CourseDataStore | None:
    """The entry point of learnhub.personal_data."""
    return CourseDataStore(context)
