"""Course directories: made once, whoever else is making the same course at that moment."""

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from learnhub.courses.coursedir import STALE_STAGING_SECONDS, CourseDirectories

COURSE = "cabcdefghijk"


@pytest.fixture(autouse=True)
def alembic_on_path(monkeypatch):
    # nbgrader runs `alembic` from PATH when it makes a gradebook (as the services' PATH has).
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))


def test_concurrent_first_launches_make_the_course_once(tmp_path):
    """The launch's notice and formgrader's ensure ran at once, and one deleted the other's
    half-written gradebook ("attempt to write a readonly database")."""
    courses = CourseDirectories(tmp_path / "courses")
    start = threading.Barrier(3)
    results, errors = [], []

    def make():
        start.wait()
        try:
            results.append(courses.ensure(COURSE))
        except Exception as e:  # a failure must show up as a failure of the test
            errors.append(e)

    threads = [threading.Thread(target=make) for _ in range(3)]
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
