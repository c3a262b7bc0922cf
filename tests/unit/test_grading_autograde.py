"""Tampering checks against nbgrader's own checksums; the course's execution limits."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme
from nbgrader.utils import compute_checksum
from traitlets.config import Config

from learnhub.grading import Limits
from learnhub.grading.autograde import (
    Tampering,
    course_limits,
    expected_checksums,
    find_tampering,
)

INSTRUCTOR_TESTS = (
    "assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS"
)
RELEASED_TESTS = "assert f(1) == 1"


def grade_cell(source: str, points=2.0):
    return new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "test_f", "points": points,
    }})  # fmt: skip


def protected():
    instructor = grade_cell(INSTRUCTOR_TESTS)
    source = SimpleNamespace(
        name="test_f", cell_type="code", locked=True, source=INSTRUCTOR_TESTS,
        checksum=compute_checksum(instructor),
    )  # fmt: skip
    clear = ClearHiddenTests()._remove_hidden_test_region
    return [("test_f", "test cell", expected_checksums(source, 2.0, False, clear))]


def test_an_untouched_released_test_cell_is_not_flagged():
    submitted = new_notebook(cells=[grade_cell(RELEASED_TESTS)])
    assert find_tampering("ps1", submitted, protected()) == []


def test_edited_deleted_and_repointed_test_cells_are_flagged():
    edited = new_notebook(cells=[grade_cell("pass")])
    repointed = new_notebook(cells=[grade_cell(RELEASED_TESTS, points=0)])
    deleted = new_notebook(cells=[])
    assert find_tampering("ps1", edited, protected()) == [
        Tampering("ps1", "test_f", "changed", "test cell")
    ]
    assert find_tampering("ps1", repointed, protected())[0].kind == "changed"
    assert find_tampering("ps1", deleted, protected()) == [
        Tampering("ps1", "test_f", "deleted", "test cell")
    ]
    assert Tampering("ps1", "test_f", "changed", "test cell").message() == (
        "In ps1, the test cell 'test_f' was changed; it was restored from the source before grading"
    )


TASK_SOURCE = (
    "Describe your method.\n=== BEGIN MARK SCHEME ===\n1 mark for clarity\n=== END MARK SCHEME ==="
)


def task_cell(source: str):
    return new_markdown_cell(source, metadata={"nbgrader": {
        "grade": False, "solution": False, "locked": True, "task": True, "points": 2,
        "grade_id": "task1",
    }})  # fmt: skip


def test_an_untouched_released_task_cell_is_not_flagged():
    """The gradebook keeps the mark scheme; the release strips it (ClearMarkScheme)."""
    source = SimpleNamespace(
        name="task1", cell_type="markdown", locked=True, source=TASK_SOURCE,
        checksum=compute_checksum(task_cell(TASK_SOURCE)),
    )  # fmt: skip
    released = task_cell(TASK_SOURCE)
    ClearMarkScheme().preprocess_cell(released, {}, 0)
    assert "MARK SCHEME" not in released.source
    clearers = (
        ClearHiddenTests()._remove_hidden_test_region,
        ClearMarkScheme()._remove_mark_scheme_region,
    )
    protected = [("task1", "read-only cell", expected_checksums(source, None, False, *clearers))]
    assert find_tampering("ps1", new_notebook(cells=[released]), protected) == []
    edited = task_cell("Describe nothing.")
    assert find_tampering("ps1", new_notebook(cells=[edited]), protected) == [
        Tampering("ps1", "task1", "changed", "read-only cell")
    ]


@pytest.mark.parametrize(
    ("course", "operator", "expected"),
    [
        (None, 10, 10),  # unset: nbgrader's default, 30 s, under the operator's 10 s
        (None, 60, 30),  # unset: nbgrader's default, 30 s, as stock
        (2, 30, 2),  # the course's stricter timeout
        (120, 30, 30),  # never above the operator's cap
        ("none", 30, 30),  # the course says no limit: the operator's
        (-1, 30, 30),  # nbclient's "no limit" too
    ],
    ids=["default-capped", "default", "stricter", "capped", "no-limit", "minus-one"],
)
def test_the_courses_execute_timeout_capped_by_the_operators(course, operator, expected):
    config = Config()
    if course == "none":
        config.Execute.timeout = None
    elif course is not None:
        config.Execute.timeout = course
    limits = Limits(cell_timeout_s=operator, notebook_timeout_s=300)
    assert course_limits(config, limits) == replace(limits, cell_timeout_s=expected)


def test_the_courses_execute_settings_go_to_the_runner():
    """Issue 12 item 10: the runner applies the course's own nbgrader Execute settings (read
    with nbgrader's Execute), not a copy of nbgrader's defaults."""
    stock = Limits().for_runner()["execute"]
    assert stock["interrupt_on_timeout"] is True and stock["iopub_timeout"] == 4
    assert stock["error_on_timeout"]["ename"] == "CellTimeoutError"
    config = Config()
    config.Execute.iopub_timeout = 9
    config.Execute.interrupt_on_timeout = False
    config.Execute.extra_arguments = ["--no-such-flag"]  # the kernel starts ahead: not sent
    sent = course_limits(config, Limits()).for_runner()["execute"]
    assert sent == {**stock, "iopub_timeout": 9, "interrupt_on_timeout": False}
