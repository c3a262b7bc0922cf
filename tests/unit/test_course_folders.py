"""A learner's course folders: named after the course's title, found again, never unsafe.

The exchange tests run LearnHub's nbgrader exchange classes against a course service on
loopback (the network boundary), in a temporary home.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError
from traitlets.config import Config

from learnhub_singleuser import exchange
from learnhub_singleuser.course_folders import (
    MARKER,
    find_course_folder,
    folder_name,
    make_course_folder,
)
from tests.support import tarball

COURSE = "cgpyuvdbytws"
OTHER = "cqwertyuiopa"
TITLE = "Introduction to Python"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
FEEDBACK = b"<html>Well done</html>"
TIMESTAMP = "2025-03-01 10:00:00.000000 UTC"
FARSI = "Farsi \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a joiner inside a word

HOSTILE = {
    "slashes": "Physics I/II \\ Lab",
    "parent": "..",
    "parents": "../../etc/passwd",
    "dots": "....",
    "hidden": ".bashrc",
    "option": "-rf --no-preserve-root",
    "long": "Advanced Topics in " + "Very " * 80 + "Long Titles",
    "html": '<script>alert("x")</script> & <b>bold</b>',
    "windows": 'CON: a|b?c*d"e<f>',
    "url": "C# 100% done",
    "controls": "Tab\there\nnewline\x00nul\x7fdel",
    "bidi": "\u202eevil\u202c.exe",
    "unicode": "Programmation en Python \u2014 e\u0301te\u0301 2025 \U0001f40d",
    "cjk": "\u6570\u636e\u79d1\u5b66\u5bfc\u8bba",
    "id-shaped": OTHER,
    "spaces": "   ",
    "none": None,
}


# --- the name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "name"),
    [
        (TITLE, TITLE),
        ("  Intro   to\tPython\n", "Intro to Python"),
        ("Physics I/II", "Physics I\uff0fII"),
        ("CS 101: Intro?", "CS 101\uff1a Intro\uff1f"),
        ("C# 100%", "C\uff03 100\uff05"),
        ("R&D + more", "R&D + more"),
        ("e\u0301te\u0301", "\u00e9t\u00e9"),  # one spelling (NFC) of what looks the same
        ("\u202eevil\u202c.exe", "evil.exe"),
        (FARSI, FARSI),
        ("..", COURSE),
        ("../..", COURSE),
        ("../../etc", "\uff0f..\uff0fetc"),
        ("!!! ---", COURSE),
        (".bashrc", "bashrc"),
        ("-rf", "rf"),
        ("Trailing dots...", "Trailing dots"),
        (OTHER, COURSE),
        ("", COURSE),
        ("   ", COURSE),
        (None, COURSE),
    ],
    ids=[
        "plain", "whitespace", "slash", "colon-question", "hash-percent", "ampersand-plus",
        "nfc", "bidi", "joiner-kept", "parent", "parents", "parents-and-a-word", "no-letters",
        "hidden", "option",
        "trailing-dots", "another-course-id", "empty", "blank", "none",
    ],
)  # fmt: skip
def test_folder_name(title, name):
    assert folder_name(title, COURSE) == name


def test_a_long_title_is_cut_at_a_word():
    name = folder_name("Advanced Topics in " + "Programming " * 10, COURSE)
    assert name == "Advanced Topics in Programming Programming"
    assert len(name) <= 50


@pytest.mark.parametrize("title", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_name_is_one_visible_safe_file_name(title, tmp_path):
    name = folder_name(title, COURSE)
    assert name and name not in (".", "..") and Path(name).name == name
    assert not re.search(r'[/\\<>:"|?*#%\x00-\x1f\x7f]', name), name
    assert not name.startswith((".", "-", " ")) and not name.endswith((".", " "))
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name if ch != "\u200d")
    assert len(name) <= 50 and len(f"{name} ({COURSE})".encode()) <= 255
    assert name == COURSE or not re.fullmatch(r"c[a-z0-9]{11}", name)
    folder = make_course_folder(tmp_path, COURSE, title)
    assert folder.parent == tmp_path and folder.name == name
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# --- finding and making the folder ---------------------------------------------------------


def test_a_new_folder_is_marked_and_found_again_even_renamed(tmp_path):
    assert find_course_folder(tmp_path, COURSE) is None
    folder = make_course_folder(tmp_path, COURSE, TITLE)
    assert folder == tmp_path / TITLE
    assert (folder / MARKER).read_text() == COURSE + "\n"
    assert find_course_folder(tmp_path, COURSE) == folder
    renamed = folder.rename(tmp_path / "Python, spring term")
    assert find_course_folder(tmp_path, COURSE) == renamed
    assert find_course_folder(tmp_path, OTHER) is None


def test_two_courses_of_one_title_get_a_folder_each(tmp_path):
    first = make_course_folder(tmp_path, COURSE, TITLE)
    second = make_course_folder(tmp_path, OTHER, TITLE)
    assert (first.name, second.name) == (TITLE, f"{TITLE} ({OTHER})")
    assert find_course_folder(tmp_path, COURSE) == first
    assert find_course_folder(tmp_path, OTHER) == second


def test_a_folder_of_the_learners_own_is_never_taken(tmp_path):
    own = tmp_path / TITLE
    own.mkdir()
    (own / "notes.txt").write_text("mine")
    folder = make_course_folder(tmp_path, COURSE, TITLE)
    assert folder.name == f"{TITLE} ({COURSE})"
    assert sorted(p.name for p in own.iterdir()) == ["notes.txt"]
    # And when the title with the id is taken too, the course id.
    (tmp_path / f"{TITLE} ({OTHER})").mkdir()
    assert make_course_folder(tmp_path, OTHER, TITLE).name == OTHER


def test_the_folder_named_after_the_course_id_stays_the_courses(tmp_path):
    """Learners who fetched before titles were used keep working where their work is."""
    legacy = tmp_path / COURSE / "ps1"
    legacy.mkdir(parents=True)
    marked = make_course_folder(tmp_path / "elsewhere", COURSE, TITLE)
    marked.rename(tmp_path / TITLE)
    assert find_course_folder(tmp_path, COURSE) == tmp_path / COURSE


def test_only_real_folders_with_the_courses_marker_count(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / MARKER).write_text(COURSE)
    home = tmp_path / "home"
    home.mkdir()
    (home / "link").symlink_to(outside)
    (home / ".hidden").mkdir()
    (home / ".hidden" / MARKER).write_text(COURSE)
    (home / "garbage").mkdir()
    (home / "garbage" / MARKER).write_bytes(b"\xff\xfe" * 100)
    (home / "a-file").write_text(COURSE)
    assert find_course_folder(home, COURSE) is None
    assert find_course_folder(tmp_path / "missing", COURSE) is None


# --- the exchange: fetch, list, submit, feedback --------------------------------------------


class CourseService(BaseHTTPRequestHandler):
    """The course service's API as the learner's exchange uses it; what was asked and
    submitted."""

    courses: list[dict] = []
    asked: list[str] = []
    submitted: list[tuple[str, bytes]] = []
    refuse = False

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        data = json.dumps(body).encode() if content_type == "application/json" else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.asked.append(self.path)
        parts = self.path.split("?")[0].split("/")[4:]  # after /services/learnhub-courses/api
        known = {c["course_id"] for c in self.courses}
        if parts == ["courses"]:
            return self.answer(200, {"courses": self.courses})
        if self.refuse or len(parts) < 3 or parts[1] not in known:
            return self.answer(403, {"message": "You are not allowed to do this in this course."})
        course_id, rest = parts[1], parts[2:]
        if rest == ["assignments"]:
            listed = [{"assignment_id": a, "notebooks": [a]} for a in ("ps1", "ps2")]
            return self.answer(200, {"assignments": listed})
        if len(rest) == 2:
            files = {f"{rest[1]}.ipynb": NOTEBOOK}
            return self.answer(200, tarball(files), "application/gzip")
        if rest[2:] == ["submissions"]:
            items = [
                {
                    "course_id": course_id, "student_id": "lstudent", "assignment_id": "ps1",
                    "timestamp": TIMESTAMP, "submission_id": "s1", "notebooks": ["ps1"],
                    "feedback": {"ps1": "0" * 32},
                }
            ]  # fmt: skip
            return self.answer(200, {"submissions": items})
        if rest[-1] == "feedback":
            return self.answer(200, tarball({"ps1.html": FEEDBACK}), "application/gzip")
        return self.answer(404, {"message": "no such thing"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.submitted.append((self.path, body))
        self.answer(201, {"timestamp": TIMESTAMP, "late": False})


@pytest.fixture
def course_service(monkeypatch):
    CourseService.courses = [
        {"course_id": COURSE, "title": TITLE, "role": "learner"},
        {"course_id": OTHER, "title": TITLE, "role": "learner"},
    ]
    CourseService.asked = []
    CourseService.submitted = []
    CourseService.refuse = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), CourseService)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    yield f"http://127.0.0.1:{server.server_port}/services/learnhub-courses/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


def step(cls, service_url: str, home: Path, course_id=COURSE, assignment="ps1", **traits):
    """One exchange step as nbgrader's assignment list runs it, in this home."""
    config = Config()
    config.Exchange.assignment_dir = str(home)
    config.LearnHubExchange.service_url = service_url
    coursedir = CourseDirectory(
        config=config, root=str(home), course_id=course_id, assignment_id=assignment
    )
    return cls(coursedir=coursedir, config=config, **traits).start()


def released(service_url: str, home: Path, course_id: str = COURSE) -> dict[str, dict]:
    listed = step(exchange.ExchangeList, service_url, home, course_id, "")
    return {item["assignment_id"]: item for item in listed}


def files_in(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_fetch_list_submit_and_feedback_in_the_titled_folder(course_service, home):
    assert released(course_service, home)["ps1"]["status"] == "released"
    step(exchange.ExchangeFetchAssignment, course_service, home)
    folder = home / TITLE
    assert (folder / "ps1" / "ps1.ipynb").read_bytes() == NOTEBOOK
    assert sorted(p.name for p in home.iterdir()) == [TITLE]

    listed = released(course_service, home)
    assert (listed["ps1"]["status"], listed["ps2"]["status"]) == ("fetched", "released")
    assert listed["ps1"]["path"] == str((folder / "ps1").resolve())
    assert listed["ps1"]["course_id"] == COURSE  # the key nbgrader and the service use

    (folder / "ps1" / "ps1.ipynb").write_bytes(NOTEBOOK.replace(b"[]", b'[{"x": 1}]'))
    step(exchange.ExchangeSubmit, course_service, home)
    ((path, body),) = CourseService.submitted
    assert path == f"/services/learnhub-courses/api/courses/{COURSE}/assignments/ps1/submissions"
    assert list(files_in(body)) == ["ps1.ipynb"]  # not the course folder's marker
    assert b'{"x": 1}' in files_in(body)["ps1.ipynb"]

    step(exchange.ExchangeFetchFeedback, course_service, home)
    assert (folder / "ps1" / "feedback" / TIMESTAMP / "ps1.html").read_bytes() == FEEDBACK
    listed = step(exchange.ExchangeList, course_service, home, COURSE, "", cached=True)
    assert listed[0]["submissions"][0]["has_local_feedback"] is True
    assert listed[0]["submissions"][0]["local_feedback_path"] == str(
        folder / "ps1" / "feedback" / TIMESTAMP
    )


def test_courses_of_one_title_fetch_into_their_own_folders(course_service, home):
    step(exchange.ExchangeFetchAssignment, course_service, home, COURSE)
    step(exchange.ExchangeFetchAssignment, course_service, home, OTHER)
    assert (home / TITLE / "ps1" / "ps1.ipynb").is_file()
    assert (home / f"{TITLE} ({OTHER})" / "ps1" / "ps1.ipynb").is_file()
    assert released(course_service, home, OTHER)["ps1"]["path"] == str(
        (home / f"{TITLE} ({OTHER})" / "ps1").resolve()
    )


def test_work_fetched_into_the_course_id_folder_is_kept_and_used(course_service, home):
    legacy = home / COURSE / "ps1"
    legacy.mkdir(parents=True)
    (legacy / "ps1.ipynb").write_bytes(b'{"answer": "my own work"}')
    listed = released(course_service, home)
    assert listed["ps1"]["status"] == "fetched"
    assert listed["ps1"]["path"] == str(legacy.resolve())

    step(exchange.ExchangeSubmit, course_service, home)
    ((_, body),) = CourseService.submitted
    assert files_in(body) == {"ps1.ipynb": b'{"answer": "my own work"}'}
    with pytest.raises(ExchangeError, match="already have a copy"):
        step(exchange.ExchangeFetchAssignment, course_service, home)
    # The course's next assignment goes beside it; no second folder of the course appears.
    step(exchange.ExchangeFetchAssignment, course_service, home, COURSE, "ps2")
    assert (home / COURSE / "ps2" / "ps2.ipynb").is_file()
    assert (legacy / "ps1.ipynb").read_bytes() == b'{"answer": "my own work"}'
    assert sorted(p.name for p in home.iterdir()) == [COURSE]


@pytest.mark.parametrize("title", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_title_stays_a_folder_in_the_home(course_service, home, title):
    CourseService.courses = [{"course_id": COURSE, "title": title, "role": "learner"}]
    step(exchange.ExchangeFetchAssignment, course_service, home)
    (folder,) = home.iterdir()
    assert folder.name == folder_name(title, COURSE)
    assert (folder / "ps1" / "ps1.ipynb").is_file()
    assert sorted(p.name for p in home.parent.iterdir()) == ["home"]


def test_a_refused_fetch_makes_no_folder_and_submit_says_fetch_first(course_service, home):
    CourseService.refuse = True
    with pytest.raises(ExchangeError, match="not allowed"):
        step(exchange.ExchangeFetchAssignment, course_service, home)
    assert list(home.iterdir()) == []
    CourseService.refuse = False
    with pytest.raises(ExchangeError, match=r"Assignment not found: ps1\. Fetch it first\."):
        step(exchange.ExchangeSubmit, course_service, home)
    assert CourseService.submitted == []
