"""Where a learner's fetched assignments live: a folder per course, named after its title."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

# Inside a course's folder: the course id, so the folder is found whatever its name.
MARKER = ".learnhub-course"
# learnhub.courses.coursedir.COURSE_ID: a folder of this shape belongs to that course.
COURSE_ID = re.compile(r"c[a-z0-9]{11}")
MAX_NAME_CHARS = 50
# Joiners shape letters in Persian, Indic scripts and emoji: kept, unlike other format
# characters (bidirectional overrides among them, which disguise a name).
JOINERS = "\u200c\u200d"
# At the start a dot hides the folder and a dash reads as a command-line option; at the
# end, dots and spaces are dropped by Windows.
UNSAFE_ENDS = re.compile(rf"^[\s.\-~{JOINERS}]+|[\s.{JOINERS}]+$")


def full_width(characters: str) -> dict[int, str]:
    """A str.translate table: each of these ASCII characters as its full-width twin (U+FF01
    to U+FF5E, 0xFEE0 above it), which reads the same and means nothing to a path or URL."""
    return str.maketrans({ch: chr(ord(ch) + 0xFEE0) for ch in characters})


# Path separators, what Windows refuses in a file name (a learner's download of their files
# is unpacked there), and what breaks a name in a URL typed by hand (`#`, `%`).
UNSAFE_IN_NAMES = full_width('/\\<>:"|?*#%')


def readable(title: str | None) -> str:
    """The title as one line of visible text: NFC, no control or format characters, each run
    of whitespace one space."""
    text = unicodedata.normalize("NFC", title or "")
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif not _invisible(ch):
            kept.append(ch)
    return " ".join("".join(kept).split())


def _invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Cs", "Co", "Cn") or (category == "Cf" and ch not in JOINERS)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a space when one is in the second half."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def folder_name(title: str | None, course_id: str) -> str:
    """The name of a course's folder: its title as a safe file name, else the course id.

    Never a path (no separators, never `.` or `..`), never hidden, at most 50 characters
    (200 bytes of UTF-8, within every file system's limit with a suffix), with a letter or
    digit in it, and never shaped like another course's id.
    """
    name = readable(title).translate(UNSAFE_IN_NAMES)
    name = UNSAFE_ENDS.sub("", clip(name, MAX_NAME_CHARS))
    if not any(ch.isalnum() for ch in name) or COURSE_ID.fullmatch(name):
        return course_id
    return name


def _marked(folder: Path) -> str:
    marker = folder / MARKER
    try:
        if not marker.is_file():
            return ""
        with marker.open("rb") as f:
            return f.read(64).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def find_course_folder(base: Path, course_id: str) -> Path | None:
    """The learner's folder of the course in `base`, if they have one.

    The one named after the course id comes first: assignments were fetched there before
    titles were used, and it stays the course's folder (nothing is moved under a learner's
    open notebooks or terminals). Else the one whose marker names the course, whatever the
    learner renamed it to.
    """
    legacy = base / course_id
    if legacy.is_dir():
        return legacy
    try:
        children = sorted(base.iterdir())
    except OSError:
        return None
    for child in children:
        if child.name.startswith(".") or child.is_symlink() or not child.is_dir():
            continue
        if _marked(child) == course_id:
            return child
    return None


def make_course_folder(base: Path, course_id: str, title: str | None) -> Path:
    """A new folder for the course in `base`, marked as the course's: named after the title;
    where that name is taken (another course of the same title, a folder of the learner's
    own), the title and the course id; else the course id."""
    name = folder_name(title, course_id)
    candidates = [course_id] if name == course_id else [name, f"{name} ({course_id})", course_id]
    for candidate in candidates:
        folder = base / candidate
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            if not folder.is_symlink() and folder.is_dir() and _marked(folder) == course_id:
                return folder  # made a moment ago by another fetch of this course
            continue
        (folder / MARKER).write_text(course_id + "\n")
        return folder
    raise FileExistsError(f"No folder can be made for the course in {base}: {name} is taken")
