"""Sandboxed autograding gives exactly the scores of stock `nbgrader autograde`.

One tiny course, generated with real nbgrader; five submissions (correct, partly wrong,
erroring, an infinite loop, one that edits the hidden tests) graded by stock nbgrader in one
copy of the course and by autograde_submission in another, with the Docker and the process
sandbox.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from learnhub.grading import DockerSandbox, Limits, ProcessSandbox, autograde_submission
from learnhub.images import grader_tags

pytestmark = [
    pytest.mark.integration,
    # nbgrader's own gradebook code warns so (stock `nbgrader autograde` too); not ours to fix.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
]

BIN = Path(sys.executable).parent
ASSIGNMENT, NOTEBOOK = "ps1", "ps1"
CELL_TIMEOUT = 5
LIMITS = Limits(cell_timeout_s=CELL_TIMEOUT, notebook_timeout_s=60)
GRADE_IDS = ["test_squares", "test_empty", "test_file", "explain"]
CORRECT_SQUARES = "def squares(n):\n    return [i * i for i in range(1, n + 1)]"
CORRECT_FILE = "def from_file():\n    return int(open('data.txt').read())"
TIMINGS: dict[str, float] = {}


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the sandbox tests may not skip")
    pytest.skip(reason)


def docker_ready(image: str) -> str | None:
    """Why Docker sandboxes cannot run here, or None when they can."""
    if shutil.which("docker") is None:
        return "no docker command: run scripts/provision-docker.sh (as root)"
    engine = subprocess.run(["docker", "version"], capture_output=True, timeout=30, check=False)
    if engine.returncode != 0:
        return "no Docker engine answers: run scripts/provision-docker.sh (as root)"
    found = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
    )
    if found.returncode != 0:
        return f"{image} is not built: run `learnhub images build --no-pull`"
    return None


def cell(kind: str, source: str, grade_id: str, *, grade=False, solution=False, locked=False,
         points=None):  # fmt: skip
    nbgrader = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
                "schema_version": 3}  # fmt: skip
    if points is not None:
        nbgrader["points"] = points
    make = new_code_cell if kind == "code" else new_markdown_cell
    return make(source, metadata={"nbgrader": nbgrader})


def source_notebook():
    nb = new_notebook(
        cells=[
            cell("markdown", "# Squares\nRead-only instructions.", "intro", locked=True),
            cell(
                "code",
                "def squares(n):\n    ### BEGIN SOLUTION\n"
                "    return [i * i for i in range(1, n + 1)]\n    ### END SOLUTION",
                "squares",
                solution=True,
            ),
            cell(
                "code",
                "assert squares(1) == [1]\nassert squares(3) == [1, 4, 9]\n"
                "### BEGIN HIDDEN TESTS\nassert squares(5) == [1, 4, 9, 16, 25]\n"
                "### END HIDDEN TESTS",
                "test_squares",
                grade=True,
                locked=True,
                points=3,
            ),
            cell(
                "code", "assert squares(0) == []", "test_empty", grade=True, locked=True, points=1
            ),
            cell(
                "code",
                "def from_file():\n    ### BEGIN SOLUTION\n"
                "    return int(open('data.txt').read())\n    ### END SOLUTION",
                "from_file",
                solution=True,
            ),
            cell("code", "assert from_file() == 7", "test_file", grade=True, locked=True, points=1),
            cell(
                "markdown",
                "Explain your method.\n\nYOUR ANSWER HERE",
                "explain",
                grade=True,
                solution=True,
                points=2,
            ),
        ]
    )
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=course, capture_output=True, text=True, timeout=600,
        check=False, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def by_id(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def submit(course: Path, student: str, edit) -> None:
    released = nbformat.read(course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    edit(released)
    target = course / "submitted" / student / ASSIGNMENT
    target.mkdir(parents=True)
    nbformat.write(released, target / f"{NOTEBOOK}.ipynb")
    (target / "timestamp.txt").write_text("2026-01-10 12:00:00.000000 UTC")


def answer(squares=CORRECT_SQUARES, from_file=CORRECT_FILE, tests=None):
    def edit(nb):
        by_id(nb, "squares").source = squares
        by_id(nb, "from_file").source = from_file
        if tests is not None:
            by_id(nb, "test_squares").source = tests

    return edit


SUBMISSIONS = {
    "alice": answer(),
    "bob": answer(squares="def squares(n):\n    return [i * i for i in range(n)]"),
    "carol": answer(
        squares="def squares(n):\n    return undefined_name", from_file="raise ValueError('broken')"
    ),
    "dave": answer(squares="while True:\n    pass"),
    # Makes the visible test pass whatever squares does, and drops the hidden one.
    "eve": answer(squares="def squares(n):\n    return None", tests="pass"),
}


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    """(stock copy, LearnHub copy) of one generated course with every submission in."""
    stock = tmp_path_factory.mktemp("course-stock")
    (stock / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'sandbox101'\n"
        f"c.Execute.timeout = {CELL_TIMEOUT}\n"
    )
    source = stock / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    nbformat.write(source_notebook(), source / f"{NOTEBOOK}.ipynb")
    (source / "data.txt").write_text("7\n")
    nbgrader(stock, "generate_assignment", ASSIGNMENT)
    for student, edit in SUBMISSIONS.items():
        submit(stock, student, edit)
    ours = tmp_path_factory.mktemp("course-learnhub") / "course"
    shutil.copytree(stock, ours)
    started = time.monotonic()
    nbgrader(stock, "autograde", ASSIGNMENT)
    TIMINGS["stock"] = time.monotonic() - started
    return stock, ours


def scores(course: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        grades = {
            g: (gb.find_grade(g, NOTEBOOK, ASSIGNMENT, student).auto_score) for g in GRADE_IDS
        }
        return {"score": notebook.score, "max": notebook.max_score, **grades}


@pytest.fixture(params=["docker", "process"])
async def graded(request, courses, tmp_path):
    stock, template = courses
    course = tmp_path / "course"
    shutil.copytree(template, course)
    if request.param == "docker":
        image = grader_tags()[0]
        why = docker_ready(image)
        if why:
            unavailable(why)
        sandbox = DockerSandbox(image, LIMITS)
    else:
        sandbox = ProcessSandbox(LIMITS)
    yield request.param, sandbox, stock, course
    if isinstance(sandbox, DockerSandbox):
        await sandbox.close()  # its spare container, started for a next submission


async def test_scores_match_stock_nbgrader_and_tampering_is_flagged(graded):
    kind, sandbox, stock, course = graded
    results = {}
    for student in SUBMISSIONS:
        results[student] = await autograde_submission(course, ASSIGNMENT, student, sandbox)
    per_submission = sum(r.seconds for r in results.values()) / len(results)
    stock_per_submission = TIMINGS["stock"] / len(SUBMISSIONS)
    print(f"\n{kind} sandbox: {per_submission:.2f} s per submission; stock nbgrader autograde "
          f"(no sandbox): {stock_per_submission:.2f} s")  # fmt: skip

    for student in SUBMISSIONS:
        assert scores(course, student) == scores(stock, student), student
        result = results[student]
        assert result.score == scores(stock, student)["score"]
        assert result.max_score == 7.0
        assert result.sandbox == kind and result.weaker_sandbox == (kind == "process")
        assert (course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb").exists()
        assert (course / "autograded" / student / ASSIGNMENT / "timestamp.txt").exists()
    # The scores themselves, so that "equal" is not "equally broken".
    assert scores(course, "alice")["score"] == 5.0  # all but the manual answer
    assert scores(course, "bob")["test_squares"] == 0 and scores(course, "bob")["test_file"] == 1
    assert scores(course, "carol")["score"] == 0
    assert scores(course, "dave")["test_squares"] == 0
    assert scores(course, "eve")["test_squares"] == 0  # the tests were restored, and failed

    assert [s for s, r in results.items() if r.tampered] == ["eve"]
    [tampering] = results["eve"].notebooks[0].tampering
    assert (tampering.cell, tampering.kind, tampering.role) == (
        "test_squares",
        "changed",
        "test cell",
    )
    assert any("the test cell 'test_squares' was changed" in m for m in results["eve"].messages)
    restored = nbformat.read(
        course / "autograded" / "eve" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4
    )
    assert "squares(5)" in by_id(restored, "test_squares").source

    dave = results["dave"].notebooks[0]
    assert dave.execution.reason == "timeout_cell"
    assert f"ran longer than {CELL_TIMEOUT} s and was stopped" in " ".join(dave.messages)
    assert results["alice"].messages == []
    assert results["alice"].notebooks[0].execution.reason is None
    # An untouched "YOUR ANSWER HERE" gets zero without a human, as nbgrader does.
    assert not results["alice"].notebooks[0].needs_manual_grade

    # Grading again (formgrader's autograde button) replaces the result in one step: while
    # dave's loop runs to its timeout, his earlier autograded notebook stays where formgrader
    # looks, and nothing of the grading is left beside it afterwards.
    autograded = course / "autograded" / "dave" / ASSIGNMENT
    before = (autograded / f"{NOTEBOOK}.ipynb").stat().st_mtime_ns
    regrade = asyncio.create_task(autograde_submission(course, ASSIGNMENT, "dave", sandbox))
    seen = 0
    while not regrade.done():
        assert (autograded / f"{NOTEBOOK}.ipynb").exists()
        seen += 1
        await asyncio.sleep(0.05)
    assert (await regrade).score == results["dave"].score
    assert seen > 10
    assert (autograded / f"{NOTEBOOK}.ipynb").stat().st_mtime_ns > before
    assert sorted(p.name for p in autograded.parent.iterdir()) == [ASSIGNMENT]
