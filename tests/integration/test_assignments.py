"""The PY4E course in assignments/: releases are clean, solutions earn full marks, blanks zero."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

pytestmark = pytest.mark.integration

COURSE = Path(__file__).resolve().parents[2] / "assignments"
ASSIGNMENTS = sorted(
    folder.name
    for folder in (COURSE / "source").iterdir()
    if (folder / f"{folder.name}.ipynb").is_file()
)
# nbgrader's Gradebook shells out to `alembic`, which lives beside the interpreter.
VENV_BIN = str(Path(sys.executable).parent)
HEADER = re.compile(
    r"\*\*Total: (\d+) points\*\* \((\d+) autograded, (\d+) graded by your instructor\)"
)
QUESTION = re.compile(r"^## Question \d+: .*\((\d+) points?", re.MULTILINE)


def read_notebook(path):
    return nbformat.read(path, as_version=4)


def nbgrader_cells(nb):
    return [cell for cell in nb.cells if "nbgrader" in cell.metadata]


def autograder_tests(nb):
    """grade_id -> points of the locked test cells, the only points nbgrader awards by itself."""
    return {
        cell.metadata.nbgrader["grade_id"]: cell.metadata.nbgrader["points"]
        for cell in nbgrader_cells(nb)
        if cell.metadata.nbgrader["grade"] and not cell.metadata.nbgrader["solution"]
    }


def manual_answers(nb):
    return {
        cell.metadata.nbgrader["grade_id"]: cell.metadata.nbgrader["points"]
        for cell in nbgrader_cells(nb)
        if cell.metadata.nbgrader["grade"] and cell.metadata.nbgrader["solution"]
    }


def errors(nb):
    """grade_id -> error name for every executed cell that raised."""
    return {
        cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}"): output.ename
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    }


def nbgrader(course, *args):
    env = {
        **os.environ,
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        # Only the course's nbgrader_config.py applies, not the machine's.
        "JUPYTER_CONFIG_DIR": str(course / ".jupyter"),
    }
    env.pop("JUPYTER_CONFIG_PATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result.log = result.stdout + result.stderr
    return result


def app_warnings(log):
    """nbgrader's own warnings and errors; the kernel's notes about its transport are not ours."""
    return [line for line in log.splitlines() if re.match(r"\[\w+App \| (WARNING|ERROR)\]", line)]


def fill_in(released, source):
    """The released notebook with the instructor's answers typed in, as a learner would submit."""
    answers = {
        cell.metadata.nbgrader["grade_id"]: cell.source
        for cell in nbgrader_cells(source)
        if cell.metadata.nbgrader["solution"]
    }
    for cell in nbgrader_cells(released):
        if cell.metadata.nbgrader["solution"]:
            cell.source = answers.pop(cell.metadata.nbgrader["grade_id"])
    assert not answers, f"answer cells missing from the release: {sorted(answers)}"
    return released


def test_the_course_is_complete():
    assert len(ASSIGNMENTS) >= 7, ASSIGNMENTS
    config = (COURSE / "nbgrader_config.py").read_text()
    assert 'c.CourseDirectory.course_id = "py4e"' in config
    # A template copied into every course directory: no absolute paths.
    assert not re.search(r"""["'](/|[A-Za-z]:\\)""", config)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_points_add_up_to_the_stated_total(assignment):
    nb = read_notebook(COURSE / "source" / assignment / f"{assignment}.ipynb")
    first = next(cell for cell in nb.cells if cell.cell_type == "markdown")
    stated = HEADER.search(first.source)
    assert stated, f"the first Markdown cell must state the total: {first.source[:200]!r}"
    total, auto, manual = (int(points) for points in stated.groups())

    tests, answers = autograder_tests(nb), manual_answers(nb)
    assert sum(tests.values()) == auto
    assert sum(answers.values()) == manual
    assert auto + manual == total
    assert answers, "at least one answer must be graded by a person"
    headings = [int(points) for cell in nb.cells for points in QUESTION.findall(cell.source)]
    assert sum(headings) == total, f"question headings say {headings}"

    meta = [cell.metadata.nbgrader for cell in nbgrader_cells(nb)]
    ids = [cell["grade_id"] for cell in meta]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    assert {cell["schema_version"] for cell in meta} == {3}
    for cell in nbgrader_cells(nb):
        info = cell.metadata.nbgrader
        if info["grade"] and not info["solution"]:
            assert info["locked"], info["grade_id"]
            visible, _, hidden = cell.source.partition("### BEGIN HIDDEN TESTS")
            assert "assert" in visible and "### END HIDDEN TESTS" in hidden, info["grade_id"]
        elif info["solution"] and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source, info["grade_id"]
        elif not info["solution"]:
            assert info["locked"], f"{info['grade_id']}: instructions must be read-only"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks_and_blank_scores_zero(assignment, tmp_path, monkeypatch):
    course = tmp_path / "py4e"
    shutil.copytree(COURSE / "source" / assignment, course / "source" / assignment)
    shutil.copy(COURSE / "nbgrader_config.py", course)
    name = f"{assignment}.ipynb"
    source = read_notebook(course / "source" / assignment / name)

    generated = nbgrader(course, "generate_assignment", assignment, "--create")
    assert generated.returncode == 0, generated.log
    assert not app_warnings(generated.log), generated.log
    release = course / "release" / assignment
    released_text = (release / name).read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in released_text
    files = {path.name for path in (course / "source" / assignment).iterdir()}
    assert {path.name for path in release.iterdir()} == files, "data files ship with the release"

    shutil.copytree(release, course / "submitted" / "blank" / assignment)
    shutil.copytree(release, course / "submitted" / "solution" / assignment)
    nbformat.write(
        fill_in(read_notebook(release / name), source),
        course / "submitted" / "solution" / assignment / name,
    )

    graded = nbgrader(course, "autograde", assignment, "--create")
    assert graded.returncode == 0, graded.log
    # The gradebook keeps test cells with their hidden tests, so every submitted copy of
    # such a cell "has changed" and nbgrader puts the hidden tests back: expected, and
    # the only warning allowed.
    test_ids = "|".join(map(re.escape, autograder_tests(source)))
    restored = re.compile(
        rf"\[AutogradeApp \| WARNING\] Attribute 'checksum' for cell ({test_ids}) has changed!"
    )
    unexpected = [line for line in app_warnings(graded.log) if not restored.match(line)]
    assert not unexpected, graded.log

    solved = read_notebook(course / "autograded" / "solution" / assignment / name)
    assert errors(solved) == {}, graded.log
    blank = read_notebook(course / "autograded" / "blank" / assignment / name)
    # Every test fails loudly on a blank release rather than passing by accident.
    assert set(autograder_tests(source)) <= set(errors(blank))

    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="py4e") as gradebook:
        assert gradebook.find_assignment(assignment).max_score == sum(
            autograder_tests(source).values()
        ) + sum(manual_answers(source).values())

        def scores(student):
            cells = gradebook.find_submission_notebook(assignment, assignment, student).grades
            return {grade.name: grade.score for grade in cells}

        tests = autograder_tests(source)
        solution_scores = scores("solution")
        assert {cell: solution_scores[cell] for cell in tests} == tests
        assert {cell: solution_scores[cell] for cell in manual_answers(source)} == dict.fromkeys(
            manual_answers(source), 0
        ), "written answers wait for a person"
        solution = gradebook.find_submission(assignment, "solution")
        assert solution.score == sum(tests.values())
        assert solution.needs_manual_grade

        blank_submission = gradebook.find_submission(assignment, "blank")
        assert set(scores("blank").values()) == {0}
        assert blank_submission.score == 0
        # Unchanged written answers are zeroed automatically: nothing left for a grader.
        assert not blank_submission.needs_manual_grade
