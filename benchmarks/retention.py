"""How long one retention sweep takes at 10,000 and 100,000 learners, and what it does to launches.

A script, not a test. For each size it makes a fresh state directory, starts a real hub
(local learner servers) once so JupyterHub creates its tables, stops it, and fills the
database in bulk: N hub users with encrypted auth state and the spawner row of a stopped
server, N enrollments (name and email encrypted) over N/100 courses, and a home folder with
a notebook per learner. Each course gets an nbgrader course directory and gradebook with one
assignment; each learner a gradebook entry with a graded submission, submitted/ and
autograded/ folders, a submission in the exchange, a grading job, a grade snapshot and a
grade sent to the LMS. One learner in ten of every course last came 800 days ago. The hub is
started again, one real learner is launched over LTI 1.1, and while `learnhub retention run`
deletes the 10% a loop keeps launching that learner and times each launch. Prints the
sweep's wall time and launch latency (median, p95, max) before and during the sweep, then
what is left of the deleted learners in the courses (must be nothing) and whether the other
learners' grades are all still there.

    .venv/bin/python benchmarks/retention.py            # 10,000 and 100,000
    .venv/bin/python benchmarks/retention.py 2000       # any sizes
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from learnhub.auth import auth_state_key  # noqa: E402
from learnhub.courses.coursedir import nbgrader_config  # noqa: E402
from learnhub.demo.lti11 import lti11_launch_params, sign_lti11_launch  # noqa: E402
from learnhub.grading.queue import GradingJob  # noqa: E402
from learnhub.grading.service import GradeSnapshot  # noqa: E402
from learnhub.passback.outbox import OutboxGrade  # noqa: E402
from learnhub.settings import load_settings  # noqa: E402
from learnhub.store import Base, Cipher, Store  # noqa: E402
from tests import support  # noqa: E402
from tests.integration.test_course_workflow import ASSIGNMENT, source_notebook  # noqa: E402
from tests.support import Hub, free_port, write_settings  # noqa: E402

# JupyterHub's start-up reads every user: allow for large databases.
support.HUB_START_TIMEOUT = 3600

CONSUMER = "bench-consumer"
SECRET = "bench-secret-" + secrets.token_hex(8)
DAY = 86400


# Pseudonyms in the shape LMS launches make ("l" + 19 base32 letters), from a number.
DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")
LETTERS_AS_DIGITS = str.maketrans("abcdefghij", "0123456789")


def learner_name(i: int) -> str:
    return "l" + f"{i:019d}".translate(DIGITS_AS_LETTERS)


def sql_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def courses_for(n: int) -> int:
    return max(1, n // 100)


def inactive(i: int, n: int, every: int = 10) -> bool:
    """Whether learner i last came 800 days ago: one in `every` of each course's learners
    (learner i is in course i % courses), so every course has some to delete."""
    return (i // courses_for(n)) % every == 0


def fill(hub: Hub, n: int) -> int:
    """Bulk-insert n learners; one in ten of each course's last came 800 days ago."""
    import base64

    from cryptography.fernet import Fernet, MultiFernet

    settings = load_settings(hub.config_file, environ=hub.env())
    cipher = Cipher(settings.crypt_key)
    hub_fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(auth_state_key(settings.crypt_key)))])
    now = time.time()
    old = now - 800 * DAY
    courses = courses_for(n)
    homes = hub.state_dir / "homes"
    started = time.monotonic()
    # The grading tables, as the grading service and the grade outbox make them.
    tables = [GradingJob.__table__, GradeSnapshot.__table__, OutboxGrade.__table__]
    Base.metadata.create_all(Store(settings.database_url, settings.crypt_key).engine, tables=tables)
    with sqlite3.connect(hub.db_path) as db:
        (user_role,) = db.execute("select id from roles where name = 'user'").fetchone()
        next_id = (db.execute("select max(id) from users").fetchone()[0] or 0) + 1
        db.executemany(
            "insert into learnhub_courses (id, platform, context_id, title, created, last_launch)"
            " values (?, 'bench', ?, ?, ?, ?)",
            [(f"cbench{c:06d}", f"ctx-{c}", f"Course {c}", old, now) for c in range(courses)],
        )
        users, roles, enrollments = [], [], []
        members = [(f"cbench{i % courses:06d}", learner_name(i)) for i in range(n)]
        gone = 0
        for i in range(n):
            name = learner_name(i)
            seen = old if inactive(i, n) else now - (i % 300) * DAY / 10
            gone += inactive(i, n)
            person = f"Learner Number{i}"
            email = f"learner{i}@example.edu"
            state = {"platform": "bench", "lms_user_id": str(i), "name": person, "email": email}
            users.append(
                (
                    next_id + i, name, False, sql_time(seen), sql_time(seen),
                    secrets.token_hex(16), hub_fernet.encrypt(json.dumps(state).encode()),
                )
            )  # fmt: skip
            roles.append((next_id + i, user_role))
            enrollments.append(
                (
                    members[i][0], name, "learner", "1.1", "bench",
                    cipher.encrypt("{}"), cipher.encrypt(person), cipher.encrypt(email),
                    seen, seen,
                )
            )  # fmt: skip
        db.executemany(
            "insert into users (id, name, admin, created, last_activity, cookie_id,"
            " encrypted_auth_state) values (?, ?, ?, ?, ?, ?, ?)",
            users,
        )
        db.executemany(
            "insert into user_role_map (user_id, role_id, managed_by_auth) values (?, ?, 0)",
            roles,
        )
        # The spawner row a learner's first launch leaves, its server stopped since.
        db.executemany(
            "insert into spawners (user_id, name, state, last_activity) values (?, '', '{}', ?)",
            [(user_id, seen) for user_id, _, _, seen, *_ in users],
        )
        db.executemany(
            "insert into learnhub_grading_jobs (course_id, assignment_id, student, submission_id,"
            " timestamp, state, attempts, enqueued, started, finished, score, max_score,"
            " needs_manual_grade, sandbox, tampered, messages_json)"
            " values (?, ?, ?, ?, ?, 'graded', 1, ?, ?, ?, 2, 3, 1, 'process', 0, '[]')",
            [(c, ASSIGNMENT, u, SUBMISSION_ID, NBGRADER_TIME, old, old, old) for c, u in members],
        )
        db.executemany(
            "insert into learnhub_grade_snapshots (course_id, student, assignment_id, score,"
            " max_score, needs_manual_grade) values (?, ?, ?, 2, 3, 1)",
            [(c, u, ASSIGNMENT) for c, u in members],
        )
        db.executemany(
            "insert into learnhub_grade_outbox (username, course_id, assignment, score, max_score,"
            " pending_manual, graded_at, message_id, state, attempts, permanent_failures,"
            " sent_at, lms_status, lti_version, created, updated)"
            " values (?, ?, ?, 2, 3, 1, ?, ?, 'sent', 1, 0, ?, 200, '1.1', ?, ?)",
            [(u, c, ASSIGNMENT, old, uuid.uuid4().hex, old, old, old) for c, u in members],
        )
        db.executemany(
            "insert into learnhub_enrollments (course_id, username, role, lti_version, platform,"
            " launch_enc, name_enc, email_enc, first_launch, last_launch)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            enrollments,
        )
    for i in range(n):
        home = homes / learner_name(i)
        home.mkdir(parents=True)
        (home / "work.ipynb").write_text('{"cells": [], "nbformat": 4}')
    fill_courses(settings.state_dir, members)
    print(f"  filled {n} learners in {time.monotonic() - started:.1f}s", flush=True)
    return gone


# Every learner submitted ps1 once, at this time (the exchange's id and nbgrader's format).
SUBMISSION_ID = "20240115T100000.000000Z"
NBGRADER_TIME = "2024-01-15 10:00:00.000000 UTC"
GRADEBOOK_TIME = "2024-01-15 10:00:00.000000"


def template_gradebook(path: Path) -> None:
    """A gradebook with ps1 and its graded cells, made once through nbgrader's API (its
    first open of a new file runs `alembic heads`: seconds, too slow for every course)."""
    from nbgrader.api import Gradebook

    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    with Gradebook(f"sqlite:///{path}", course_id="ctemplate000") as gradebook:
        gradebook.update_or_create_assignment(ASSIGNMENT)
        gradebook.update_or_create_notebook(ASSIGNMENT, ASSIGNMENT)
        for cell in source_notebook().cells:
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("grade"):
                gradebook.update_or_create_grade_cell(
                    grading["grade_id"], ASSIGNMENT, ASSIGNMENT,
                    max_score=grading["points"], cell_type=cell.cell_type,
                )  # fmt: skip
            if grading.get("solution"):
                gradebook.update_or_create_solution_cell(
                    grading["grade_id"], ASSIGNMENT, ASSIGNMENT
                )


def fill_gradebook(path: Path, course_id: str, learners: list[str]) -> None:
    """Each learner a student (with name and email), a submission of ps1 and its grades and
    comments, as nbgrader's add_submission and autograde leave them."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("update course set id = ?", (course_id,))
        db.execute("update assignment set course_id = ?", (course_id,))
        ((assignment_id,),) = db.execute("select id from assignment").fetchall()
        ((notebook_id,),) = db.execute("select id from notebook").fetchall()
        cells = db.execute(
            "select b.id, b.type, g.cell_type from base_cell b"
            " left join grade_cells g on g.id = b.id"
        ).fetchall()
        students, submissions, notebooks, grades, comments = [], [], [], [], []
        for username in learners:
            number = int(username[1:].translate(LETTERS_AS_DIGITS))
            students.append(
                (username, "Learner", f"Number{number}", f"learner{number}@example.edu")
            )
            submission, notebook = uuid.uuid4().hex, uuid.uuid4().hex
            submissions.append((submission, assignment_id, username, GRADEBOOK_TIME))
            notebooks.append((notebook, submission, notebook_id))
            for cell_id, kind, cell_type in cells:
                if kind == "GradeCell":
                    # Code cells are autograded; a markdown answer waits for a person.
                    manual = cell_type == "markdown"
                    score = None if manual else 2.0
                    grades.append((uuid.uuid4().hex, notebook, cell_id, score, int(manual)))
                else:
                    comments.append((uuid.uuid4().hex, notebook, cell_id))
        db.executemany(
            "insert into student (id, first_name, last_name, email) values (?, ?, ?, ?)", students
        )
        db.executemany(
            "insert into submitted_assignment (id, assignment_id, student_id, timestamp)"
            " values (?, ?, ?, ?)",
            submissions,
        )
        db.executemany(
            "insert into submitted_notebook (id, assignment_id, notebook_id, flagged,"
            " late_submission_penalty) values (?, ?, ?, 0, 0.0)",
            notebooks,
        )
        db.executemany(
            "insert into grade (id, notebook_id, cell_id, auto_score, needs_manual_grade)"
            " values (?, ?, ?, ?, ?)",
            grades,
        )
        db.executemany("insert into comment (id, notebook_id, cell_id) values (?, ?, ?)", comments)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fill_courses(state_dir: Path, members: list[tuple[str, str]]) -> None:
    """Course directories, gradebooks and exchange folders, laid out as CourseDirectories
    (<state>/courses) and ExchangeStore (<state>/exchange) lay them out."""
    learners_of: dict[str, list[str]] = defaultdict(list)
    for course_id, username in members:
        learners_of[course_id].append(username)
    (state_dir / "courses").mkdir(exist_ok=True)
    template = state_dir / "courses" / ".template-gradebook.db"
    template_gradebook(template)

    def fill_one(course: tuple[str, list[str]]) -> None:
        fill_course(state_dir, template, *course)

    # Creating files waits on the disk: a few courses at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fill_one, sorted(learners_of.items())))
    template.unlink()


def fill_course(state_dir: Path, template: Path, course_id: str, learners: list[str]) -> None:
    course, exchange = state_dir / "courses" / course_id, state_dir / "exchange" / course_id
    notebook = nbformat.writes(source_notebook())
    write(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", notebook)
    shutil.copyfile(template, course / "gradebook.db")
    fill_gradebook(course / "gradebook.db", course_id, learners)
    write(course / "nbgrader_config.py", nbgrader_config(course_id))
    write(exchange / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", notebook)
    submission = json.dumps(
        {"timestamp": NBGRADER_TIME, "received": 1705312800.0, "late": False,
         "size": len(notebook)}
    )  # fmt: skip
    for username in learners:
        for step in ("submitted", "autograded"):
            folder = course / step / username / ASSIGNMENT
            write(folder / f"{ASSIGNMENT}.ipynb", notebook)
            (folder / "timestamp.txt").write_text(NBGRADER_TIME)
        folder = exchange / "inbound" / username / ASSIGNMENT / SUBMISSION_ID
        write(folder / f"{ASSIGNMENT}.ipynb", notebook)
        (folder / ".submission.json").write_text(submission)


def course_census(state_dir: Path, people: set[str]) -> dict[str, int]:
    """What the courses keep of `people`: gradebook students, their grades, their folders in
    the course directories and the exchange, their grading and outbox rows."""
    found = {"students": 0, "grades": 0, "folders": 0, "rows": 0}
    for course in sorted((state_dir / "courses").glob("cbench*")):
        with contextlib.closing(sqlite3.connect(course / "gradebook.db")) as db:
            students = {row[0] for row in db.execute("select id from student")}
            grades = db.execute(
                "select a.student_id, count(*) from grade g"
                " join submitted_notebook n on n.id = g.notebook_id"
                " join submitted_assignment a on a.id = n.assignment_id group by a.student_id"
            ).fetchall()
        found["students"] += len(students & people)
        found["grades"] += sum(count for student, count in grades if student in people)
        exchange = state_dir / "exchange" / course.name
        for folder in (
            course / "submitted", course / "autograded", course / "feedback",
            exchange / "inbound", exchange / "feedback",
        ):  # fmt: skip
            if folder.is_dir():
                found["folders"] += len(people.intersection(os.listdir(folder)))
    with contextlib.closing(sqlite3.connect(state_dir / "learnhub.sqlite", timeout=30)) as db:
        for table, column in (
            ("learnhub_grading_jobs", "student"),
            ("learnhub_grade_snapshots", "student"),
            ("learnhub_grade_outbox", "username"),
        ):
            names = db.execute(f"select {column} from {table}").fetchall()  # noqa: S608
            found["rows"] += sum(1 for (name,) in names if name in people)
    return found


class LaunchLoop(threading.Thread):
    """Launches one learner again and again over LTI 1.1, timing each launch."""

    def __init__(self, hub: Hub):
        super().__init__(daemon=True)
        self.hub = hub
        self.times: list[tuple[float, float]] = []  # (start, seconds)
        self.failures = 0
        self.stop = threading.Event()

    def launch_once(self) -> float:
        params = lti11_launch_params(
            user_id="bench-active", roles="Learner", context_id="bench-course",
            context_title="Bench course", resource_link_id="bench-link",
        )  # fmt: skip
        form = sign_lti11_launch(f"{self.hub.url}/hub/lti11/launch", CONSUMER, SECRET, params)
        started = time.monotonic()
        response = requests.post(
            f"{self.hub.url}/hub/lti11/launch", data=form, allow_redirects=False, timeout=120
        )
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            self.failures += 1
        return elapsed

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            self.times.append((started, self.launch_once()))
            time.sleep(0.05)


def summary(values: list[float]) -> str:
    if not values:
        return "no launches"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{len(values)} launches: median {statistics.median(values) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


def run_size(n: int) -> dict:
    print(f"\n== {n} learners", flush=True)
    state = Path(tempfile.mkdtemp(prefix=f"retention-bench-{n}-"))
    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    extra = {
        "spawner": {"backend": "local"},
        "culler": {"enabled": False},
        # The benchmark runs the sweep by hand; the service must not start one of its own.
        "privacy": {"retention": {"enabled": False, "service_port": free_port()}},
    }
    from learnhub.settings import SCHEMA

    if "courses" in SCHEMA["properties"]:
        extra["courses"] = {"port": free_port()}
    write_settings(config, url, **extra)
    hub = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    added = hub.cli("lti", "add-consumer", CONSUMER, f"--secret={SECRET}")
    assert added.returncode == 0, added.stderr
    try:
        hub.start()
        hub.stop()
        expired = fill(hub, n)
        learners = {learner_name(i) for i in range(n)}
        staying = {learner_name(i) for i in range(n) if not inactive(i, n)}
        kept_before = course_census(state, staying)
        started = time.monotonic()
        hub.start()
        print(f"  hub start with {n} users: {time.monotonic() - started:.1f}s", flush=True)
        loop = LaunchLoop(hub)
        loop.launch_once()  # the first launch starts the learner's server
        loop.start()
        time.sleep(5)
        sweep_started = time.monotonic()
        now = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
        result = subprocess.run(
            [str(Path(sys.executable).with_name("learnhub")), "retention", "run", "--now", now],
            env=hub.env(), capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        sweep_ended = time.monotonic()
        time.sleep(3)
        loop.stop.set()
        loop.join(130)
        seconds = sweep_ended - sweep_started
        remaining = hub.query(
            "select count(*) from users where name glob 'la[a-j]*' and length(name) = 20"
        )[0][0]
        before = [s for t, s in loop.times if t < sweep_started]
        during = [s for t, s in loop.times if sweep_started <= t < sweep_ended]
        print(f"  sweep: {seconds:.1f}s, exit {result.returncode}; deleted "
              f"{n - remaining} of {expired} inactive learners", flush=True)  # fmt: skip
        for line in result.stdout.splitlines():
            if not line.startswith(("delete\t", "scrub\t", "delete-course\t")):
                print("    " + line)
        if result.returncode:
            print(result.stderr[-2000:])
        print(f"  launch latency before the sweep: {summary(before)}")
        print(f"  launch latency during the sweep: {summary(during)}")
        print(f"  failed launches: {loop.failures}", flush=True)
        gone = learners - {name for (name,) in hub.query("select name from users")}
        left = course_census(state, gone)
        kept_after = course_census(state, staying)
        print(
            f"  left of the {len(gone)} deleted learners in courses: "
            f"{left['students']} gradebook students, {left['grades']} grades, "
            f"{left['folders']} folders, {left['rows']} grading/outbox rows"
        )
        print(
            f"  grades of the {len(staying)} learners kept: {kept_before['grades']} before, "
            f"{kept_after['grades']} after; folders {kept_before['folders']} before, "
            f"{kept_after['folders']} after",
            flush=True,
        )
        return {"n": n, "sweep_seconds": seconds, "deleted": n - remaining}
    finally:
        stop(hub)


def stop(hub: Hub) -> None:
    """Stop the hub, the learner server and the proxy (Hub.shutdown_everything would also
    ask Docker about each of the N learners, which takes hours at 100,000)."""
    pids = hub.server_pids() if hub.db_path.exists() else []
    hub.stop()
    proxy = hub.state_dir / "proxy.pid"
    if proxy.exists():
        pids.append(int(proxy.read_text().strip() or 0))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    args = parser.parse_args(argv)
    results = [run_size(n) for n in args.sizes]
    print("\nlearners\tsweep seconds\tdeleted\tper deleted learner")
    for r in results:
        per = r["sweep_seconds"] / max(1, r["deleted"]) * 1000
        print(f"{r['n']}\t{r['sweep_seconds']:.1f}\t{r['deleted']}\t{per:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
