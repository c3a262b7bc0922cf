"""Course directories: made once, whoever else is making the same course at that moment."""

import contextlib
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook, MissingEntry

from learnhub.courses.coursedir import (
    STALE_STAGING_SECONDS,
    CourseDirectories,
    gradebook_revision,
    new_gradebook,
)
from learnhub.store import EnrollmentInfo

COURSE = "cabcdefghijk"


@pytest.fixture(autouse=True)
def alembic_on_path(monkeypatch):
    # nbgrader runs `alembic` from PATH when it makes a gradebook (as the services' PATH has).
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))


@pytest.mark.parametrize("processes", [1, 3], ids=["one-service", "three-processes"])
def test_concurrent_first_launches_make_the_course_once(tmp_path, processes):
    """The launch's notice and formgrader's ensure ran at once, and one deleted the other's
    half-written gradebook ("attempt to write a readonly database"). Within one service the
    course's lock makes it once; across processes, the first rename wins."""
    writers = [CourseDirectories(tmp_path / "courses") for _ in range(processes)]
    start = threading.Barrier(3)
    results, errors = [], []

    def make(courses):
        start.wait()
        try:
            results.append(courses.ensure(COURSE))
        except Exception as e:  # a failure must show up as a failure of the test
            errors.append(e)

    threads = [threading.Thread(target=make, args=(writers[i % processes],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results) == [False] * 2 + [True]
    gradebook = tmp_path / "courses" / COURSE / "gradebook.db"
    with sqlite3.connect(gradebook) as db:
        assert db.execute("select count(*) from course").fetchone() == (1,)
    assert list((tmp_path / "courses").glob(f".{COURSE}.new-*")) == []


def test_staging_left_by_a_crash_is_removed_later(tmp_path):
    root = tmp_path / "courses"
    courses = CourseDirectories(root)
    stale = root / f".{COURSE}.new-crashed"
    fresh = root / f".{COURSE}.new-running"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
    old = time.time() - STALE_STAGING_SECONDS - 60
    os.utime(stale, (old, old))
    assert courses.ensure(COURSE)
    assert not stale.exists()
    assert fresh.exists()  # another process may still be making it


def learner(username: str, name: str = "Ada Lovelace") -> EnrollmentInfo:
    return EnrollmentInfo(
        course_id=COURSE, username=username, role="Learner", lti_version="1.3",
        platform="https://lms.example", launch={}, name=name, email=None,
        first_launch=0.0, last_launch=0.0,
    )  # fmt: skip


@pytest.mark.parametrize("processes", [1, 2], ids=["one-service", "two-processes"])
def test_a_new_learner_launched_twice_at_once_becomes_one_student(tmp_path, monkeypatch, processes):
    """Seen in CI: the launch's notice and formgrader's ensure both found no gradebook
    student and both inserted one; the second failed UNIQUE and formgrader answered 503.
    With two CourseDirectories (as the course service and another writer are) only the
    retry can save it; within one, the course's lock does."""
    find_student = Gradebook.find_student

    def slow_miss(self, student_id):
        # Widens the window between nbgrader's lookup and its insert, as a loaded machine did.
        try:
            return find_student(self, student_id)
        except MissingEntry:
            time.sleep(0.3)
            raise

    monkeypatch.setattr(Gradebook, "find_student", slow_miss)
    writers = [CourseDirectories(tmp_path / "courses") for _ in range(processes)]
    writers[0].ensure(COURSE)
    threads_per_writer = 8 // processes
    start = threading.Barrier(8)
    errors = []

    def sync(courses, index):
        start.wait()
        try:
            courses.sync_students(COURSE, [learner("lnew", name=f"Ada {index}")])
        except Exception as e:  # a failure must show up as a failure of the test
            errors.append(e)

    threads = [
        threading.Thread(target=sync, args=(courses, index))
        for courses in writers
        for index in range(threads_per_writer)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    gradebook = tmp_path / "courses" / COURSE / "gradebook.db"
    with sqlite3.connect(gradebook) as db:
        assert db.execute("select id from student").fetchall() == [("lnew",)]


def test_a_new_gradebook_is_the_one_nbgrader_makes(tmp_path):
    """new_gradebook stamps nbgrader's head revision itself (no `alembic heads` subprocess):
    same tables, same columns, same revision as nbgrader's own Gradebook on an empty file."""

    def schema(path):
        with contextlib.closing(sqlite3.connect(path)) as db:
            tables = sorted(db.execute("select type, name, sql from sqlite_master").fetchall())
            return (
                tables,
                db.execute("select * from alembic_version").fetchall(),
                (db.execute("select id from course").fetchall()),
            )

    with Gradebook(f"sqlite:///{tmp_path / 'nbgrader.db'}", course_id=COURSE):
        pass
    new_gradebook(tmp_path / "ours.db", COURSE)
    ours, theirs = schema(tmp_path / "ours.db"), schema(tmp_path / "nbgrader.db")
    assert ours == theirs
    assert ours[1] == [(gradebook_revision(),)] and ours[2] == [(COURSE,)]
