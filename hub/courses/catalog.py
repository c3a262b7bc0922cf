"""A course's assignments as an instructor picks them for an LMS link: name, title, points.

The sources are the course's `source/<assignment>/` folders, the releases its exchange's
outbound folders; an assignment in either is offered. Points are what nbgrader will
grade: the sum of the grade cells' points in the assignment's notebooks (its source, or
the released notebooks when the source is gone), which is the `max_score` nbgrader's
gradebook gets when the assignment is generated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from .exchange import ASSIGNMENT_ID


@dataclass(frozen=True)
class CatalogEntry:
    """One assignment of the course, as the deep-linking picker shows it."""

    name: str
    title: str
    points: float
    notebooks: int
    released: bool
    # Why the points or title could not be read (a malformed notebook), else None.
    problem: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


def _heading(notebook) -> str | None:
    """The first Markdown heading of a notebook, without its '#' marks."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or None
    return None


def _grade_points(notebook) -> float:
    points = 0.0
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points += float(meta.get("points") or 0)
    return points


def describe(name: str, folder: Path, *, released: bool) -> CatalogEntry:
    """The entry of assignment `name` whose notebooks are in `folder`."""
    notebooks = sorted(folder.glob("*.ipynb"))
    title, points, problem = None, 0.0, None
    for path in notebooks:
        try:
            notebook = nbformat.read(path, as_version=4)
            points += _grade_points(notebook)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            # nbformat raises NotJSONError (a ValueError) and friends on a broken file.
            problem = f"{path.name} cannot be read ({type(e).__name__}): its points are missing"
            continue
        title = title or _heading(notebook)
    return CatalogEntry(
        name=name,
        title=title or name,
        points=points,
        notebooks=len(notebooks),
        released=released,
        problem=problem,
    )


def _assignment_folders(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {
        folder.name: folder
        for folder in root.iterdir()
        if folder.is_dir() and ASSIGNMENT_ID.match(folder.name)
    }


def course_catalog(course_dir: Path, outbound: Path) -> list[CatalogEntry]:
    """Every assignment of the course (sources and releases), sorted by name."""
    sources = _assignment_folders(course_dir / "source")
    releases = _assignment_folders(outbound)
    return [
        describe(name, sources.get(name) or releases[name], released=name in releases)
        for name in sorted(sources.keys() | releases.keys())
    ]
