"""Autograding a class: stock `nbgrader autograde` against LearnHub's grading service.

A script, not a test. It builds a course from this repository's `assignments/` (ps03-functions,
made with `nbgrader generate_assignment`), writes N learners' submissions (correct, partly
wrong, erroring, blank, and exactly one that loops until its cell timeout), then grades them:

- **stock**: `nbgrader autograde ps03-functions`, one call for every learner, in its own copy
  of the course, sequential, no sandbox; its config's `Execute.timeout` (and
  `ExecutePreprocessor.timeout`) set to the service's `grading.cell_timeout`;
- **LearnHub**: `python -m learnhub.grading.service` on a fresh state directory per worker
  count, learners' code in the sandbox (Docker when an engine answers, else the process
  sandbox). Timed from when the class submits (into the exchange, and queued) to a running
  service until the queue says every job is graded; the table also gives the time counted
  from the service's start (its worker processes start with their first job either way).

Every learner's score must be the same in both gradebooks, or the script fails. It prints the
wall times, the ratio stock/LearnHub, the curve against the worker count, and the machine's
load average before and after each run; `--profile` also times the parts of one submission.

    .venv/bin/python benchmarks/autograde.py                     # 40 submissions, 1-4 workers
    .venv/bin/python benchmarks/autograde.py --workers 2 --submissions 60 --sandbox process
    .venv/bin/python benchmarks/autograde.py --profile --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from learnhub.courses.coursedir import CourseDirectories
from learnhub.courses.exchange import ExchangeStore
from learnhub.grading.queue import GradingQueue, JobState
from learnhub.grading.sandbox import DEFAULT_IMAGE, DockerSandbox, Limits
from learnhub.grading.service import _engine_answers
from learnhub.settings import load_settings
from learnhub.store import Store

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import tarball  # noqa: E402

ASSIGNMENT = "ps03-functions"
COURSE = "cbenchgrader"
VENV_BIN = Path(sys.executable).parent

# Answers by grade_id: the instructor's solution, and ways learners get it partly wrong.
RIGHT = {
    "greeting": (
        'def greeting(name, language="en"):\n'
        '    words = {"fr": "Bonjour", "es": "Hola"}\n'
        '    return words.get(language, "Hello") + ", " + name + "!"'
    ),
    "is-leap-year": (
        "def is_leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)"
    ),
    "clamp": (
        "def clamp(value, low, high):\n"
        "    if low > high:\n"
        '        raise ValueError("low > high")\n'
        "    return max(low, min(value, high))"
    ),
    "why-functions": "They name code and remove repetition; printing returns None.",
}
WRONG = {
    "greeting": [
        'def greeting(name, language="en"):\n'
        '    return ("Bonjour" if language == "fr" else "Hello") + ", " + name + "!"',
        'def greeting(name, language="en"):\n    print("Hello, " + name + "!")',
    ],
    "is-leap-year": [
        "def is_leap_year(year):\n    return year % 4 == 0",
        "def is_leap_year(year):\n    return year % 400 == 0",
    ],
    "clamp": [
        "def clamp(value, low, high):\n    return max(low, min(value, high))",
        "def clamp(value, low, high):\n    return min(low, max(value, high))",
    ],
}
ERRORING = {
    "greeting": 'def greeting(name, language="en")\n    return "Hello"',  # SyntaxError
    "is-leap-year": "def is_leap_year(year):\n    return year % four == 0",  # NameError
    "clamp": "import clamp_helpers\n\ndef clamp(value, low, high):\n    return value",
}
LOOPS = "while True:\n    pass"
KINDS = ("correct", "partly wrong", "erroring", "blank")


# Building the work


def answers_for(n: int, kind: str, rng: random.Random) -> dict[str, str]:
    """What learner number `n` of `kind` wrote, by grade_id (missing: the released stub)."""
    if kind == "loops":
        return {**RIGHT, "greeting": LOOPS}
    if kind == "correct":
        return dict(RIGHT)
    if kind == "blank":
        return {}
    answers = dict(RIGHT)
    table = WRONG if kind == "partly wrong" else ERRORING
    for grade_id in rng.sample(sorted(table), k=1 + n % 2):
        choices = table[grade_id]
        answers[grade_id] = choices[n % len(choices)] if isinstance(choices, list) else choices
    return answers


def learners(count: int) -> dict[str, str]:
    """student id -> kind; exactly one loops."""
    kinds = {"l000loops": "loops"}
    for n in range(1, count):
        kind = KINDS[n % len(KINDS)]
        kinds[f"l{n:03d}{kind.split()[0]}"] = kind
    return kinds


def submission_notebook(released: nbformat.NotebookNode, answers: dict[str, str]) -> bytes:
    notebook = nbformat.from_dict(json.loads(json.dumps(released)))
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nbformat.writes(notebook).encode()


def run(command: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


class Course:
    """A LearnHub state directory with the course made, the assignment generated and released,
    and every submission in the exchange and in the grading queue."""

    def __init__(self, workdir: Path, args, kinds: dict[str, str], notebooks: dict[str, bytes]):
        self.state = workdir / "state"
        self.state.mkdir(parents=True)
        template = workdir / "template"
        if not template.exists():
            shutil.copytree(REPO / "assignments" / "source" / ASSIGNMENT,
                            template / "source" / ASSIGNMENT)  # fmt: skip
            shutil.copy(REPO / "assignments" / "nbgrader_config.py", template)
        self.config = workdir / "learnhub.yaml"
        self.config.write_text(
            f"courses: {{template: '{template}'}}\n"
            f"grading: {{workers: {args.workers_now}, sandbox: {args.kind}, "
            f"cell_timeout: {args.cell_timeout}, notebook_timeout: {args.notebook_timeout}, "
            f"image: '{args.image}'}}\n"
        )
        self.env = {
            **os.environ,
            "LEARNHUB_CONFIG": str(self.config),
            "LEARNHUB_STATE_DIR": str(self.state),
            # nbgrader's Gradebook runs `alembic` from PATH.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        settings = load_settings(self.config, environ=self.env)
        self.store = Store(settings.database_url, settings.crypt_key)
        self.store.record_launch(
            username="teacher", course_id=COURSE, platform="lti13:bench", context_id="ctx",
            title="Bench", role="instructor", lti_version="1.3", launch={}, name=None,
            email=None,
        )  # fmt: skip
        self.courses = CourseDirectories(root=self.state / "courses", template=template)
        self.courses.ensure(COURSE)
        self.root = self.courses.path(COURSE)
        run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--create"],
            self.root, self.env)  # fmt: skip
        self.released = nbformat.read(
            self.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4
        )
        self.kinds, self.notebooks = kinds, notebooks

    def queue_submissions(self) -> GradingQueue:
        exchange = ExchangeStore(self.state / "exchange")
        released = (self.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()
        exchange.release(COURSE, ASSIGNMENT, tarball({f"{ASSIGNMENT}.ipynb": released}))
        queue = GradingQueue(self.store)
        for student, data in self.notebooks.items():
            kept = exchange.submit(
                COURSE, ASSIGNMENT, student, tarball({f"{ASSIGNMENT}.ipynb": data})
            )
            queue.enqueue(COURSE, ASSIGNMENT, student, kept.id, kept.timestamp)
        return queue


def scores_of(gradebook_url: str) -> dict[str, tuple[float, float]]:
    with Gradebook(gradebook_url, course_id=COURSE) as gradebook:
        return {
            s.student_id: (float(s.score), float(s.max_score))
            for s in gradebook.find_assignment(ASSIGNMENT).submissions
        }


# The two systems


def grade_stock(course: Course, workdir: Path, args) -> tuple[float, dict]:
    """`nbgrader autograde` once for every learner, in a copy of the course."""
    root = workdir / "stock-course"
    shutil.copytree(course.root, root)
    with (root / "nbgrader_config.py").open("a") as config:
        config.write(
            "\n# benchmarks/autograde.py: the same cell timeout as the grading service\n"
            f"c.Execute.timeout = {args.cell_timeout}\n"
            f"c.ExecutePreprocessor.timeout = {args.cell_timeout}\n"
        )
    stamp = datetime.now().isoformat(sep=" ")
    for student, data in course.notebooks.items():
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(data)
        (folder / "timestamp.txt").write_text(stamp)
    started = time.monotonic()
    run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], root, course.env)
    seconds = time.monotonic() - started
    return seconds, scores_of(f"sqlite:///{root / 'gradebook.db'}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grade_learnhub(course: Course, workdir: Path, args) -> tuple[float, float, dict, list[str]]:
    """The grading service, started and listening, then the whole class submitted and queued;
    timed until every submission is graded. Returns (that time, that time plus the service's
    start, scores, sandboxes used)."""
    total = len(course.notebooks)
    port = free_port()
    env = {
        **course.env,
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",  # no caller asks anything here
        "JUPYTERHUB_API_TOKEN": "benchmark-token",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/learnhub-grading/",
    }
    log = workdir / "grading.log"
    launched = time.monotonic()
    service = subprocess.Popen(
        [sys.executable, "-m", "learnhub.grading.service"],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = launched + args.deadline

        def check() -> None:
            if service.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the grading service stopped or took too long; its log:\n"
                         f"{log.read_text()[-4000:]}")  # fmt: skip

        while "Grading service on" not in log.read_text():
            check()
            time.sleep(0.05)
        started = time.monotonic()
        queue = course.queue_submissions()
        while True:
            counts = queue.counts()
            if counts.get(JobState.GRADED, 0) + counts.get(JobState.FAILED, 0) >= total:
                break
            check()
            time.sleep(0.1)
        finished = time.monotonic()
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    failed = [j for j in queue.jobs() if j.state != JobState.GRADED]
    if failed:
        sys.exit(f"{len(failed)} jobs not graded: {[(j.student, j.messages) for j in failed]}")
    sandboxes = sorted({j.sandbox for j in queue.jobs()})
    scores = scores_of(course.courses.gradebook_url(COURSE))
    return finished - started, finished - launched, scores, sandboxes


# Profile of one submission


def profile(args, course: Course, workdir: Path) -> list[tuple[str, float]]:
    """Where one submission's time goes, in the Docker sandbox (median of `rounds`)."""
    from statistics import median

    from learnhub.grading.autograde import autograde_submission

    limits = Limits(cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout)
    image = args.image
    probe = (
        "import sys, time; t0 = time.monotonic(); sys.path.insert(0, '/opt/learnhub'); "
        "sys.modules.setdefault('rfc3987_syntax', None); import nbformat, runner; "
        "ex = runner.make_executor('/tmp'); t1 = time.monotonic(); ex.start_kernel(); "
        "t2 = time.monotonic(); ex.drop_kernel(); print(t1 - t0, t2 - t1)"
    )
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    student = next(s for s, k in course.kinds.items() if k == "correct")
    folder = course.root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ASSIGNMENT}.ipynb").write_bytes(course.notebooks[student])
    (folder / "timestamp.txt").write_text(datetime.now().isoformat(sep=" "))

    async def graded(sandbox) -> tuple[float, float, float]:
        started = time.monotonic()
        result = await autograde_submission(course.root, ASSIGNMENT, student, sandbox)
        total = time.monotonic() - started
        execution = result.notebooks[0].execution
        cells = 0.0
        for cell in execution.notebook["cells"]:
            timing = (cell.get("metadata") or {}).get("execution") or {}
            if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
                begin = datetime.fromisoformat(timing["iopub.execute_input"].rstrip("Z"))
                end = datetime.fromisoformat(timing["shell.execute_reply"].rstrip("Z"))
                cells += (end - begin).total_seconds()
        return total, execution.seconds, cells

    async def measure():
        cold = DockerSandbox(image, limits, spare=False)
        warm = DockerSandbox(image, limits)
        await graded(warm)  # starts its first spare
        for _ in range(args.profile_rounds):
            started = time.monotonic()
            done = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"],
                                  capture_output=True, check=False)  # fmt: skip
            if done.returncode == 0:
                add("container start and stop (docker run --rm image true)",
                    time.monotonic() - started)  # fmt: skip
            done = subprocess.run(
                ["docker", "run", "--rm", "--network", "none", image, "python", "-c", probe],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            with contextlib.suppress(ValueError):
                imports, kernel = map(float, done.stdout.split())
                add("runner imports (in a container)", imports)
                add("kernel start until it answers (in a container)", kernel)
            total, execution, cells = await graded(cold)
            add("one submission, cold container: whole autograde", total)
            add("  of which the sandbox (start, imports, kernel, run, rm)", execution)
            add("  of which nbgrader before/after, in the worker", total - execution)
            await asyncio.sleep(6)  # the spare is ready
            total, execution, cells = await graded(warm)
            add("one submission, spare container: whole autograde", total)
            add("  of which the sandbox (request in, run, result out, rm)", execution)
            add("  of which the cells' execution in the kernel", cells)
            add("  of which nbgrader before/after, in the worker", total - execution)
        await warm.close()

    asyncio.run(measure())
    return [(name, median(values)) for name, values in rows.items()]


# The run


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def wait_for_quiet(args) -> None:
    deadline = time.monotonic() + args.quiet_wait
    while os.getloadavg()[0] > args.quiet_load and time.monotonic() < deadline:
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=40, help="how many (default 40)")
    parser.add_argument("--workers", default="1,2,3,4",
                        help="worker counts of the service (default 1,2,3,4)")  # fmt: skip
    parser.add_argument("--sandbox", choices=["auto", "docker", "process"], default="auto",
                        help="LearnHub's sandbox; auto: docker when an engine answers")  # fmt: skip
    parser.add_argument("--cell-timeout", type=int, default=10,
                        help="seconds per cell, for both systems (default 10)")  # fmt: skip
    parser.add_argument("--notebook-timeout", type=int, default=300)
    parser.add_argument("--image", default=DEFAULT_IMAGE,
                        help="the grader image (tag a build of your own)")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--profile", action="store_true", help="also time one submission's parts")
    parser.add_argument("--profile-rounds", type=int, default=3)
    parser.add_argument("--quiet-load", type=float, default=1.5,
                        help="before each run, wait for a 1-minute load under this")  # fmt: skip
    parser.add_argument("--quiet-wait", type=float, default=60,
                        help="... for at most this many seconds (default 60)")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep the courses and logs in this directory")
    args = parser.parse_args(argv)
    if args.submissions < 5:
        parser.error("--submissions must be at least 5")
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    # nbgrader's Gradebook runs `alembic` from PATH (here and in the service).
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    args.kind = args.sandbox
    if args.kind == "auto":
        args.kind = "docker" if shutil.which("docker") and _engine_answers() else "process"

    kinds = learners(args.submissions)
    rng = random.Random(5)  # noqa: S311 (which wrong answers, the same every run)
    answers = {s: answers_for(n, k, rng) for n, (s, k) in enumerate(kinds.items())}
    base = Path(tempfile.mkdtemp(prefix="learnhub-bench-grading-", dir=args.keep))
    mix = ", ".join(f"{list(kinds.values()).count(k)} {k}" for k in (*KINDS, "loops"))
    print(f"Autograding {args.submissions} submissions of {ASSIGNMENT} ({mix}), "
          f"cell timeout {args.cell_timeout} s, {os.cpu_count()} cores; "
          f"LearnHub's sandbox: {args.kind}"
          + (" (no Docker engine answered)" if args.sandbox == "auto" and args.kind == "process"
             else ""))  # fmt: skip
    rows = []
    try:
        args.workers_now = workers[0]
        first = Course(base / "stock", args, kinds, {})
        notebooks = {s: submission_notebook(first.released, a) for s, a in answers.items()}
        first.notebooks = notebooks

        wait_for_quiet(args)
        before = load()
        stock_s, stock_scores = grade_stock(first, base / "stock", args)
        rows.append(("stock nbgrader autograde", "1 (seq.)", stock_s, stock_s, before, load()))
        print(f"  stock: {stock_s:.1f} s")

        for n in workers:
            args.workers_now = n
            course = Course(base / f"learnhub-{n}", args, kinds, notebooks)
            wait_for_quiet(args)
            before = load()
            seconds, cold, scores, used = grade_learnhub(course, base / f"learnhub-{n}", args)
            rows.append(
                (f"LearnHub service ({'/'.join(used)})", str(n), seconds, cold, before, load())
            )
            print(f"  LearnHub, {n} workers: {seconds:.1f} s ({cold:.1f} s with its start)")
            differ = {
                s: (stock_scores.get(s), scores.get(s))
                for s in kinds
                if stock_scores.get(s) != scores.get(s)
            }
            if differ:
                print(f"\nSCORES DIFFER ({len(differ)} of {len(kinds)}): (stock, LearnHub)")
                for student, pair in sorted(differ.items()):
                    print(f"  {student} ({kinds[student]}): {pair}")
                return 1
        if args.profile:
            if args.kind != "docker":
                print("(--profile needs the Docker sandbox)")
            else:
                args.workers_now = 1
                course = Course(base / "profile", args, kinds, notebooks)
                profiled = profile(args, course, base / "profile")
    finally:
        with contextlib.suppress(Exception):
            # Service workers are killed with the service; their waiting containers go here.
            asyncio.run(DockerSandbox(args.image).sweep())
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    total = sum(v[0] for v in stock_scores.values())
    maximum = sum(v[1] for v in stock_scores.values())
    print(f"\nScores identical for all {len(kinds)} submissions in every run "
          f"(class total {total:g} of {maximum:g}).\n")  # fmt: skip
    header = ("system", "workers", "wall s", "s/submission", "stock/this", "with start s",
              "stock/this", "load 1/5/15 before", "after")  # fmt: skip
    table = [header] + [
        (name, n, f"{s:.1f}", f"{s / len(kinds):.2f}", f"{stock_s / s:.2f}x", f"{c:.1f}",
         f"{stock_s / c:.2f}x", b, a)
        for name, n, s, c, b, a in rows
    ]  # fmt: skip
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if args.profile and args.kind == "docker":
        print(f"\nOne submission (correct answers), median of {args.profile_rounds}, load now "
              f"{load()}:")  # fmt: skip
        width = max(len(name) for name, _ in profiled)
        for name, seconds in profiled:
            print(f"  {name.ljust(width)}  {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
