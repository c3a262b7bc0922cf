"""Tampering checks against nbgrader's own checksums."""

from __future__ import annotations

from types import SimpleNamespace

from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import compute_checksum

from learnhub.grading.autograde import Tampering, expected_checksums, find_tampering

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
