"""nbgrader's autograde with the learner's code executed only inside a sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.autograde import Autograde
from nbgrader.converters.base import NbGraderException
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    ClearHiddenTests,
    ClearMarkScheme,
    Execute,
    NbGraderPreprocessor,
)
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from ..courses.exchange import replace_folder
from .runner import kernel_wanted
from .sandbox import Execution, Limits, SandboxError, execute_settings, instructor_message

log = logging.getLogger(__name__)

# (notebook, the files beside it, the limits of this course's grading) -> the execution.
RunInSandbox = Callable[[dict, Path, Limits | None], Execution]


class AutogradeError(Exception):
    """nbgrader could not grade the submission (no such assignment, a broken notebook...)."""


class NotRunError(AutogradeError):
    """A notebook did not run at all (its kernel would not start, say): grading it would score
    its empty outputs, which pass every test cell, so it is not graded."""


@dataclass(frozen=True)
class Tampering:
    """A read-only or test cell of the instructor's that a submission changed or deleted."""

    notebook: str
    cell: str
    kind: str  # "changed" or "deleted"
    role: str  # "test cell" or "read-only cell"

    def message(self) -> str:
        what = "was changed" if self.kind == "changed" else "was deleted"
        restored = (
            "; it was restored from the source before grading"
            if self.kind == "changed"
            else "; it could not be graded"
        )
        return f"In {self.notebook}, the {self.role} '{self.cell}' {what}{restored}"


@dataclass
class NotebookResult:
    """One notebook of a graded submission, as the gradebook now holds it."""

    name: str
    score: float
    max_score: float
    needs_manual_grade: bool
    tampering: list[Tampering] = field(default_factory=list)
    execution: Execution | None = None
    messages: list[str] = field(default_factory=list)


@dataclass
class AutogradeResult:
    """What autograding one submission gave: scores, tampering, limits hit, in plain English."""

    assignment: str
    student: str
    notebooks: list[NotebookResult]
    sandbox: str
    weaker_sandbox: bool
    seconds: float

    @property
    def score(self) -> float:
        return sum(n.score for n in self.notebooks)

    @property
    def max_score(self) -> float:
        return sum(n.max_score for n in self.notebooks)

    @property
    def tampered(self) -> bool:
        return any(n.tampering for n in self.notebooks)

    @property
    def messages(self) -> list[str]:
        """Everything an instructor should read about this submission, one sentence each."""
        return [f"{n.name}: {m}" for n in self.notebooks for m in n.messages]


# Pure builders


def expected_checksums(source_cell, points: float | None, solution: bool, *clearers) -> set:
    """The checksums an untouched copy of an instructor's cell may have in a submission: the
    gradebook's, and those of the released cell.

    The gradebook keeps a cell as the instructor wrote it, but generate_assignment strips
    what learners never see after saving it: each of `clearers` is one such step (nbgrader's
    ClearHiddenTests and ClearMarkScheme region removers), applied in the release's order.
    """
    nbgrader = {
        "grade": points is not None,
        "solution": solution,
        "locked": source_cell.locked,
        "grade_id": source_cell.name,
    }
    if points is not None:
        nbgrader["points"] = points
    cell = NotebookNode(
        cell_type=source_cell.cell_type,
        source=source_cell.source or "",
        metadata=NotebookNode(nbgrader=NotebookNode(nbgrader)),
    )
    checksums = {source_cell.checksum, utils.compute_checksum(cell)}
    for clear in clearers:
        # A region the release could not strip (unbalanced markers) stays as it was.
        with contextlib.suppress(RuntimeError):
            clear(cell)
        checksums.add(utils.compute_checksum(cell))
    return checksums


def find_tampering(
    notebook_name: str, submitted: NotebookNode, protected: Iterable[tuple[str, str, set]]
) -> list[Tampering]:
    """The protected cells (name, role, accepted checksums) that `submitted` changed or lacks."""
    cells = {}
    for cell in submitted.cells:
        grade_id = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        if grade_id:
            cells.setdefault(grade_id, cell)
    found = []
    for name, role, checksums in protected:
        cell = cells.get(name)
        if cell is None:
            found.append(Tampering(notebook_name, name, "deleted", role))
            continue
        try:
            checksum = utils.compute_checksum(cell)
        except (KeyError, ValueError, TypeError):
            checksum = None
        if checksum not in checksums:
            found.append(Tampering(notebook_name, name, "changed", role))
    return found


def course_limits(config: Config, limits: Limits) -> Limits:
    """The operator's limits, with the course's own nbgrader execution settings where they are
    stricter: `c.Execute.timeout` (nbgrader's default 30 s when unset) caps a cell's time as
    `nbgrader autograde` in the course would; it never raises the operator's cap, and a course
    timeout of None (no limit) leaves the operator's. The course's other Execute settings go
    to the runner as they are (sandbox.execute_settings)."""
    limits = replace(limits, execute=execute_settings(config))
    timeout = Execute(config=config).timeout
    if timeout is None or timeout <= 0:
        return limits
    return replace(limits, cell_timeout_s=max(1, min(limits.cell_timeout_s, int(timeout))))


def not_run_reason(
    execution: Execution, notebook: NotebookNode, limits: Limits | None
) -> str | None:
    """Why the sandbox ran none of `notebook` (as it would have been graded), or None when it
    ran. A kernel that does not start, or a sandbox that gave no readable answer, leaves
    outputs nbgrader would score as passing tests."""
    failed = [e for e in execution.events if e.reason == "error"]
    if not failed:
        return None
    why = instructor_message(failed[0], limits or Limits(), execution.notebook)
    if "NoSuchKernel" in failed[0].detail:
        why += f" (the notebook asks for the kernel '{kernel_wanted(notebook)}', which the "
        why += "grading sandbox does not have)"
    return why


def load_course_config(course_root: Path, gradebook_url: str | None = None) -> Config:
    """The course's nbgrader_config.py, as `nbgrader autograde` run in the course reads it."""
    config = Config()
    if (course_root / "nbgrader_config.py").exists():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    config.CourseDirectory.root = str(course_root.resolve())
    if gradebook_url:
        config.CourseDirectory.db_url = gradebook_url
    return config


# The converter


class SandboxExecute(NbGraderPreprocessor):
    """Takes the place of nbgrader's Execute: the notebook runs in a sandbox, not here."""

    def __init__(self, run: RunInSandbox, limits: Limits | None = None, **kwargs):
        super().__init__(**kwargs)
        self.run = run
        self.limits = limits
        self.executions: dict[str, Execution] = {}
        self.failure: SandboxError | None = None
        self.not_run: NotRunError | None = None

    def preprocess(self, nb, resources):
        # Only the files beside the notebook go in (the assignment's, restored from the source
        # by nbgrader, and the submission's own): no notebook, nothing of anyone else.
        directory = Path(resources["metadata"]["path"])
        with tempfile.TemporaryDirectory(prefix="learnhub-files-") as tmp:
            files = Path(tmp) / "files"
            shutil.copytree(
                directory, files, ignore=shutil.ignore_patterns("*.ipynb"), symlinks=True
            )
            try:
                execution = self.run(nb, files, self.limits)
            except SandboxError as e:
                self.failure = e
                raise
        name = resources["nbgrader"]["notebook"]
        self.executions[name] = execution
        why = not_run_reason(execution, nb, self.limits)
        if why is not None:
            # Raised into nbgrader, which gives up on this submission as `nbgrader autograde`
            # does when its kernel cannot start.
            self.not_run = NotRunError(
                f"{name} was not graded: it did not run. {why}. No score was given or sent to "
                "the LMS; fix the cause and grade it again."
            )
            raise self.not_run
        return nbformat.from_dict(execution.notebook), resources


class SandboxedAutograde(Autograde):
    """nbgrader's Autograde with its Execute preprocessor replaced by SandboxExecute.

    Everything else is nbgrader's own code: the sanitising preprocessors (which restore
    read-only and test cells from the gradebook), the grading ones, the files it writes. So
    the scores are those `nbgrader autograde` gives, and student code never runs here.
    """

    def __init__(self, sandbox_execute: SandboxExecute, **kwargs):
        super().__init__(**kwargs)
        self.sandbox_execute = sandbox_execute
        self.tampering: dict[str, list[Tampering]] = {}
        replaced = [
            sandbox_execute if isinstance(pp, type) and issubclass(pp, Execute) else pp
            for pp in self.autograde_preprocessors
        ]
        if sandbox_execute not in replaced:
            raise AutogradeError("Autograde.autograde_preprocessors has no Execute to replace")
        self.autograde_preprocessors = replaced

    def start(self) -> None:
        # BaseConverter.start changes the process's working directory to the course; paths
        # here are absolute, and graders run in threads of one process: leave it alone.
        self.init_notebooks()
        self.writer = self._make_writer()
        self.exporter = self.exporter_class(parent=self, config=self.config)
        for pp in self.preprocessors:
            self.exporter.register_preprocessor(pp)
        self.convert_notebooks()

    def _make_writer(self):
        from nbconvert.writers import FilesWriter

        return FilesWriter(parent=self, config=self.config)

    def convert_single_notebook(self, notebook_filename: str) -> None:
        # Before nbgrader restores them: which protected cells did the learner touch?
        resources = self.init_single_notebook_resources(notebook_filename)
        name = resources["nbgrader"]["notebook"]
        submitted = nbformat.read(notebook_filename, as_version=nbformat.NO_CONVERT)
        protected = self._protected_cells(name, resources["nbgrader"]["assignment"])
        self.tampering[name] = find_tampering(name, submitted, protected)
        super().convert_single_notebook(notebook_filename)

    def _protected_cells(self, notebook: str, assignment: str) -> list[tuple[str, str, set]]:
        # What generate_assignment strips from a cell after the gradebook saved it, with the
        # course's own delimiters.
        clearers = (
            ClearHiddenTests(parent=self, config=self.config)._remove_hidden_test_region,
            ClearMarkScheme(parent=self, config=self.config)._remove_mark_scheme_region,
        )
        protected = []
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                source = gb.find_notebook(notebook, assignment)
            except MissingEntry:
                return []
            points = {c.name: float(c.max_score) for c in source.grade_cells}
            solutions = {c.name for c in source.solution_cells}
            for cell in source.source_cells:
                if not cell.locked:
                    continue
                role = "test cell" if cell.name in points else "read-only cell"
                checksums = expected_checksums(
                    cell, points.get(cell.name), cell.name in solutions, *clearers
                )
                protected.append((cell.name, role, checksums))
        return protected


def _results(
    converter: SandboxedAutograde, assignment: str, student: str, limits: Limits | None
) -> list[NotebookResult]:
    results = []
    with Gradebook(converter.coursedir.db_url, converter.coursedir.course_id) as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            submitted = gb.find_submission_notebook(notebook.name, assignment, student)
            execution = converter.sandbox_execute.executions.get(notebook.name)
            tampering = converter.tampering.get(notebook.name, [])
            messages = [t.message() for t in tampering]
            if execution is not None and limits is not None:
                messages += execution.messages(limits)
            if execution is not None:
                messages += [f"Sandbox warning: {w}" for w in execution.warnings]
            results.append(
                NotebookResult(
                    name=notebook.name,
                    score=float(submitted.score),
                    max_score=float(submitted.max_score),
                    needs_manual_grade=bool(submitted.needs_manual_grade),
                    tampering=tampering,
                    execution=execution,
                    messages=messages,
                )
            )
    return results


def autograde_blocking(
    course_root: Path,
    assignment: str,
    student: str,
    run: RunInSandbox,
    *,
    gradebook_url: str | None = None,
    limits: Limits | None = None,
) -> tuple[list[NotebookResult], str]:
    """Grade one submission with nbgrader, executing through `run`; (results, nbgrader's log).

    nbgrader writes autograded/<student>/<assignment>/ into a folder of its own beside the
    learner's (autograded/<student>/.grading/), which takes the place of the last one only
    once grading is done: during a regrade formgrader keeps showing the earlier result.
    """
    config = load_course_config(Path(course_root), gradebook_url)
    if limits is not None:
        limits = course_limits(config, limits)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    published = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    staging = os.path.join(coursedir.autograded_directory, student, ".grading")
    coursedir.autograded_directory = staging
    staged = Path(coursedir.format_path(staging, student, assignment))
    shutil.rmtree(staged, ignore_errors=True)
    lines: list[str] = []
    logger = logging.getLogger(f"{__name__}.nbgrader.{assignment}.{student}")
    handler = _ListHandler(lines)
    logger.addHandler(handler)
    try:
        sandbox_execute = SandboxExecute(run, limits)
        converter = SandboxedAutograde(sandbox_execute, coursedir=coursedir, config=config)
        converter.log = logger
        converter.force = True
        converter.create_student = True
        try:
            converter.start()
        except NbGraderException as e:
            if sandbox_execute.failure is not None:
                raise sandbox_execute.failure from e
            if sandbox_execute.not_run is not None:
                raise sandbox_execute.not_run from e
            raise AutogradeError(f"nbgrader could not grade {student}/{assignment}: " + (
                " | ".join(line for line in lines if line.startswith("ERROR"))[-2000:] or str(e)
            )) from e  # fmt: skip
        replace_folder(staged, published)
        return _results(converter, assignment, student, limits), "\n".join(lines)
    finally:
        logger.removeHandler(handler)
        shutil.rmtree(staged, ignore_errors=True)
        for empty in (staged.parent, staged.parent.parent):
            with contextlib.suppress(OSError):
                empty.rmdir()


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def emit(self, record):
        self.lines.append(f"{record.levelname} {record.getMessage()}")


async def autograde_submission(
    course_root: Path,
    assignment: str,
    student: str,
    sandbox,
    *,
    gradebook_url: str | None = None,
) -> AutogradeResult:
    """Autograde `student`'s submission of `assignment` as `nbgrader autograde` would, writing
    autograded/<student>/<assignment>/ and the gradebook, with the code run only in `sandbox`.

    Only this process touches the gradebook (SQLite in the course, or `gradebook_url`); the
    sandbox sees one sanitised notebook and the files beside it. Raises SandboxError when the
    sandbox could not run at all (grade it again later) and AutogradeError when nbgrader
    could not grade the submission.
    """
    started = time.monotonic()
    loop = asyncio.get_running_loop()

    def run(notebook: NotebookNode, files: Path, limits: Limits | None) -> Execution:
        # The course's limits only when they differ: a sandbox's own are its default.
        same = limits is None or limits == getattr(sandbox, "limits", None)
        kwargs = {} if same else {"limits": limits}
        execution = sandbox.execute(notebook, files, **kwargs)
        return asyncio.run_coroutine_threadsafe(execution, loop).result()

    notebooks, _log = await asyncio.to_thread(
        autograde_blocking,
        Path(course_root),
        assignment,
        student,
        run,
        gradebook_url=gradebook_url,
        limits=getattr(sandbox, "limits", None),
    )
    return AutogradeResult(
        assignment=assignment,
        student=student,
        notebooks=notebooks,
        sandbox=getattr(sandbox, "name", type(sandbox).__name__),
        weaker_sandbox=bool(getattr(sandbox, "weaker", False)),
        seconds=time.monotonic() - started,
    )


__all__ = [
    "AutogradeError",
    "AutogradeResult",
    "NotRunError",
    "NotebookResult",
    "SandboxExecute",
    "SandboxedAutograde",
    "Tampering",
    "autograde_submission",
    "find_tampering",
]
