"""nbgrader's Assignments panel shows course titles; everything behind it keeps course ids.

nbgrader's own manager and handlers run here, with LearnHub's exchange and a course service
on loopback (tests.unit.test_course_folders.CourseService).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

from learnhub_singleuser.assignment_list import (
    TitledAssignmentList,
    course_id_of,
    course_label,
    course_labels,
    show_course_titles,
)
from learnhub_singleuser.course_service import CONFIG_DIR
from tests.unit.test_course_folders import (
    COURSE,
    FEEDBACK,
    HOSTILE,
    OTHER,
    TIMESTAMP,
    TITLE,
    CourseService,
    course_service,  # noqa: F401 (a fixture)
)

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SECOND_TITLE = "Data & Society / 2025: 100% C++ #1"
SECOND_LABEL = "Data \uff06 Society \uff0f 2025: 100\uff05 C\uff0b\uff0b \uff031"


@pytest.mark.parametrize(
    ("courses", "labels"),
    [
        ([(COURSE, TITLE), (OTHER, "Statistics")], [TITLE, "Statistics"]),
        ([(COURSE, TITLE), (OTHER, TITLE)], [f"{TITLE} ({COURSE})", f"{TITLE} ({OTHER})"]),
        ([(COURSE, ""), (OTHER, None)], [COURSE, OTHER]),
        ([(COURSE, OTHER), (OTHER, "Statistics")], [f"{OTHER} ({COURSE})", "Statistics"]),
        ([(COURSE, COURSE)], [COURSE]),
        ([(COURSE, "  Intro \n Python\u202e "), (OTHER, "Intro Python")],
         [f"Intro Python ({COURSE})", f"Intro Python ({OTHER})"]),
        ([(COURSE, TITLE), (OTHER, TITLE), ("cthirdcourse", f"{TITLE} ({OTHER})")],
         [f"{TITLE} ({COURSE})", OTHER, "cthirdcourse"]),
        ([(COURSE, SECOND_TITLE)], [SECOND_LABEL]),
    ],
    ids=[
        "titles", "shared-title", "no-title", "title-is-another-id", "title-is-own-id",
        "same-once-readable", "title-spelled-like-a-label", "query-characters",
    ],
)  # fmt: skip
def test_course_labels(courses, labels):
    found = course_labels({"course_id": i, "title": t, "role": "learner"} for i, t in courses)
    assert list(found.values()) == labels
    assert len(set(found.values())) == len(found)
    for course_id, label in found.items():
        assert course_id_of(label, found) == course_id
        assert course_id_of(course_id, found) == course_id


def test_a_long_title_is_clipped_in_the_panel():
    label = course_label("Advanced Topics in " + "Programming " * 20, COURSE)
    assert len(label) <= 80 and label.endswith("Programming\u2026")


def test_what_is_no_label_goes_on_unchanged():
    assert course_id_of("Someone else's course", {COURSE: TITLE}) == "Someone else's course"


def as_the_panel_asks(label: str, base: str = "/user/lstudent/") -> dict[str, list[str]]:
    """What the server receives for `assignments?course_id=<label>` as nbgrader's panel
    builds it: concatenated unescaped, joined to the base URL by a POSIX path join
    (JupyterLab's URLExt.join normalises it), percent-encoded by the browser only where a
    URL cannot carry a character (space, quotes, angle brackets, non-ASCII)."""
    path = posixpath.normpath(posixpath.join(base, "assignments?course_id=" + label))
    url = quote(path, safe="/?&=#+%!$'()*,;:@[]~")
    parts = urlsplit(url)
    if not parts.path.endswith("/assignments"):
        return {}
    return parse_qs(parts.query, keep_blank_values=True)


@pytest.mark.parametrize("title", [*HOSTILE.values(), SECOND_TITLE], ids=[*HOSTILE, "mixed"])
def test_every_label_reaches_the_server_as_it_is(title):
    label = course_labels([{"course_id": COURSE, "title": title}])[COURSE]
    assert as_the_panel_asks(label) == {"course_id": [label]}


def test_the_unescaped_query_would_break_a_raw_title():
    """Why labels are not the titles themselves."""
    assert as_the_panel_asks(SECOND_TITLE) != {"course_id": [SECOND_TITLE]}


# --- nbgrader's manager and handlers ---------------------------------------------------------


@pytest.fixture
def learner_server(course_service, monkeypatch, tmp_path):  # noqa: F811 (the fixture)
    """A learner's server the hub started: LearnHub's nbgrader config, the course service."""
    CourseService.courses = [
        {"course_id": COURSE, "title": TITLE, "role": "learner"},
        {"course_id": OTHER, "title": SECOND_TITLE, "role": "learner"},
    ]
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(CONFIG_DIR))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / ".jupyter"))
    monkeypatch.setenv("LEARNHUB_EXCHANGE_URL", course_service)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    return home


def titled(home: Path) -> TitledAssignmentList:
    manager = TitledAssignmentList()
    manager.root_dir = str(home)
    return manager


def test_the_panel_sees_titles_and_the_exchange_course_ids(learner_server):
    home, manager = learner_server, titled(learner_server)
    assert manager.list_courses() == {"success": True, "value": sorted([TITLE, SECOND_LABEL])}
    listed = manager.list_assignments(course_id=SECOND_LABEL)
    assert [(a["course_id"], a["assignment_id"], a["status"]) for a in listed["value"]] == [
        (SECOND_LABEL, "ps1", "released"),
        (SECOND_LABEL, "ps2", "released"),
        (SECOND_LABEL, "ps1", "submitted"),
    ]

    assert manager.fetch_assignment(SECOND_LABEL, "ps1") == {"success": True}
    folder = "Data & Society \uff0f 2025\uff1a 100\uff05 C++ \uff031"
    assert (home / folder / "ps1" / "ps1.ipynb").is_file()
    fetched = manager.list_assignments(course_id=SECOND_LABEL)["value"][0]
    assert (fetched["status"], fetched["path"]) == ("fetched", f"{folder}/ps1")
    assert fetched["notebooks"][0]["path"] == f"{folder}/ps1/ps1.ipynb"

    assert manager.submit_assignment(SECOND_LABEL, "ps1") == {"success": True}
    assert [path for path, _ in CourseService.submitted] == [
        f"/services/learnhub-courses/api/courses/{OTHER}/assignments/ps1/submissions"
    ]
    assert manager.fetch_feedback(SECOND_LABEL, "ps1") == {"success": True}
    assert (home / folder / "ps1" / "feedback" / TIMESTAMP / "ps1.html").read_bytes() == FEEDBACK
    (submitted,) = [a for a in manager.list_assignments(course_id=SECOND_LABEL)["value"]
                    if a["status"] == "submitted"]  # fmt: skip
    assert submitted["course_id"] == SECOND_LABEL
    assert submitted["submissions"][0]["course_id"] == SECOND_LABEL
    assert submitted["submissions"][0]["has_local_feedback"] is True


def test_course_ids_still_work_where_learnhub_sends_them(learner_server):
    """LearnHub's assignment links ask with the course id, and read ids back."""
    manager = titled(learner_server)
    assert manager.fetch_assignment(COURSE, "ps2") == {"success": True}
    assert (learner_server / TITLE / "ps2" / "ps2.ipynb").is_file()
    listed = manager.list_released_assignments(course_id=COURSE)["value"]
    assert {(a["course_id"], a["status"]) for a in listed} == {
        (COURSE, "released"), (COURSE, "fetched"),
    }  # fmt: skip


def test_without_titles_the_panel_shows_course_ids(learner_server, monkeypatch):
    monkeypatch.setenv("LEARNHUB_EXCHANGE_URL", "http://127.0.0.1:1/services/learnhub-courses/")
    assert titled(learner_server).labels() == {}


def test_the_manager_is_replaced_once_and_only_nbgraders(tmp_path):
    stock = AssignmentList()
    stock.root_dir = str(tmp_path)
    settings = {"assignment_list_manager": stock}
    assert show_course_titles(settings) is True
    manager = settings["assignment_list_manager"]
    assert isinstance(manager, TitledAssignmentList) and manager.root_dir == str(tmp_path)
    assert show_course_titles(settings) is False
    assert settings["assignment_list_manager"] is manager
    assert show_course_titles({}) is False


# --- in a real server: nbgrader's assignment list and LearnHub's extension -------------------


@pytest.fixture
def jp_server_config(learner_server, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "learnhub_singleuser": True,
                "nbgrader.server_extensions.assignment_list": True,
            }
        }
    }


@pytest.fixture
def jp_root_dir(learner_server):
    return learner_server


def test_the_panels_routes_answer_with_titles(
    jp_serverapp, http_server_client, jp_base_url, jp_auth_header, jp_asyncio_loop, learner_server
):
    run = jp_asyncio_loop.run_until_complete
    run(jp_serverapp.extension_manager.start_all_extensions())
    manager = jp_serverapp.web_app.settings["assignment_list_manager"]
    assert isinstance(manager, TitledAssignmentList)

    def get(path: str, **kwargs) -> dict:
        # As the browser sends the panel's requests: escaped only where a URL must be.
        url = jp_base_url + quote(path, safe="/?&=#+%:")
        response = http_server_client.fetch(url, headers=jp_auth_header, **kwargs)
        return json.loads(run(response).body)

    assert get("courses") == {"success": True, "value": sorted([TITLE, SECOND_LABEL])}
    listed = get("assignments?course_id=" + SECOND_LABEL)
    assert listed["success"], listed
    assert {a["course_id"] for a in listed["value"]} == {SECOND_LABEL}
    assert f"/services/learnhub-courses/api/courses/{OTHER}/assignments" in CourseService.asked

    # Fetch, as the panel posts it: the label in a JSON body; the answer is the new list.
    body = json.dumps({"course_id": SECOND_LABEL, "assignment_id": "ps1"})
    fetched = get("assignments/fetch", method="POST", body=body)
    row = next(a for a in fetched["value"] if a["assignment_id"] == "ps1")
    assert (row["course_id"], row["status"]) == (SECOND_LABEL, "fetched"), fetched
    assert (learner_server / row["path"] / "ps1.ipynb").is_file()
    assert row["path"].startswith("Data & Society")
