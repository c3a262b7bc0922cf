"""The nbgrader course workflow through real servers and the real course service.

Instructor launch → formgrader → release → learner launch → fetch → answer → submit →
collect → autograde → feedback → learner fetches it; and what a learner must not be able
to do through the exchange, tried from inside the learner's own kernel.
"""

from __future__ import annotations

import ast
import json
import re
import time
from urllib.parse import quote

import nbformat
import pytest
import requests

from learnhub.demo.constants import Role
from learnhub.demo.lms import DemoLMS
from tests.support import (
    SAME_ORIGIN,
    CookielessClient,
    admin_headers,
    execute,
    follow_staff_session,
    launch_from,
    lti11_launch,
    lti13_launch,
    open_formgrader,
    parse_form,
    registered_hub,
    staff_session,
    until,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

CONTEXT = "py-101"
OTHER_CONTEXT = "py-202"
ASSIGNMENT = "ps1"
# An assignment whose source names a kernel no image has: its submissions cannot run.
NO_KERNEL = "ps-nokernel"
# An assignment an LMS link names (custom parameter assignment=ps-link).
LINKED = "ps-link"


def source_notebook() -> nbformat.NotebookNode:
    """A small nbgrader assignment: one autograded answer, its tests, one manual answer."""

    def cell(kind, source, **grading):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        new = make(source)
        if grading:
            new.metadata["nbgrader"] = {"schema_version": 3, **grading}
        return new

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        cell("markdown", "Write `double(x)`. (3 points, 2 of them autograded)"),
        cell(
            "code",
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            grade=False, solution=True, locked=False, task=False, grade_id="double",
        ),
        cell(
            "code",
            "assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(-3) == -6\n"
            "### END HIDDEN TESTS",
            grade=True, solution=False, locked=True, task=False, grade_id="test_double",
            points=2,
        ),
        cell(
            "markdown",
            "Why does `double` work for negative numbers?",
        ),
        cell(
            "markdown",
            "YOUR ANSWER HERE",
            grade=True, solution=True, locked=False, task=False, grade_id="why", points=1,
        ),
    ]  # fmt: skip
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook


@pytest.fixture(scope="module")
def course_lms(loop_thread):
    peer = DemoLMS(consumer_key="course-consumer", client_id="course-tool", deployment_id="d-1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def course_hub(course_lms, tmp_path_factory):
    template = tmp_path_factory.mktemp("course-template")
    (template / "nbgrader_config.py").write_text(
        "c = get_config()\nc.ClearSolutions.code_stub = "
        "{'python': '# YOUR CODE HERE\\nraise NotImplementedError()'}\n"
    )
    (template / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), template / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    unrunnable = source_notebook()
    unrunnable.metadata["kernelspec"] = {
        "name": "blah",
        "display_name": "Blah",
        "language": "python",
    }
    (template / "source" / LINKED).mkdir()
    nbformat.write(source_notebook(), template / "source" / LINKED / f"{LINKED}.ipynb")
    (template / "source" / NO_KERNEL).mkdir()
    nbformat.write(unrunnable, template / "source" / NO_KERNEL / f"{NO_KERNEL}.ipynb")
    state = tmp_path_factory.mktemp("course-hub")
    instance = registered_hub(
        state, course_lms, courses={"template": str(template), "submission_limit_mb": 1}
    )
    instance.start()
    yield instance
    instance.shutdown_everything()


def launched(client, hub, lms, user_id, role, context=CONTEXT):
    page = lti13_launch(client, lms, user_id=user_id, roles=[role], context=context)
    launch = launch_from(hub.url, page)
    wait_until_ready(client, launch)
    return launch


def course_id_of(hub, context: str) -> str:
    rows = hub.query("select id from learnhub_courses where context_id = ?", context)
    assert len(rows) == 1, rows
    return rows[0][0]


class Formgrader:
    """The instructor in their own browser tab: the grader server's cookie, never the hub's."""

    def __init__(self, hub, course_id: str, launch_token: str):
        self.session = requests.Session()
        opened = open_formgrader(self.session, hub.url, launch_token, course_id)
        assert opened.status_code == 200, opened.text[:2000]
        assert re.search(rf"/user/grader-{course_id}/formgrader/", opened.url), opened.url
        self.page = opened.text
        self.base = f"{hub.url}/user/grader-{course_id}/formgrader/api"

    def call(self, method: str, path: str, **kwargs) -> dict:
        # The hub and the grader server each set an _xsrf cookie, on their own paths.
        xsrf = next(
            (c.value for c in self.session.cookies if c.name == "_xsrf" and "/user/" in c.path),
            "",
        )
        response = self.session.request(
            method, f"{self.base}/{path}", headers={"X-XSRFToken": xsrf}, timeout=180, **kwargs
        )
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def action(self, path: str) -> dict:
        result = self.call("POST", path)
        assert result.get("success"), f"{path}: {result.get('error') or result}"
        return result


def learner_api(launch, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method, launch.server_url + path, headers=launch.headers, timeout=180, **kwargs
    )


def graded_row(formgrader, student: str, score: float) -> dict | None:
    """The student's submission once the gradebook holds its autograded score."""
    submissions = formgrader.call("GET", f"submissions/{ASSIGNMENT}")
    row = next((s for s in submissions if s["student"] == student), None)
    return row if row and row["autograded"] and row["score"] == score else None


def staff_token(hub, launch_token: str) -> str:
    """A token of the launch's user for the grading service's queue, as staff make one on
    the hub's token page (the launch's own token is for their server only)."""
    me = requests.get(
        f"{hub.url}/hub/api/user", headers={"Authorization": f"token {launch_token}"}, timeout=30
    )
    assert me.status_code == 200, me.text[:500]
    made = requests.post(
        f"{hub.url}/hub/api/users/{me.json()['name']}/tokens",
        headers=admin_headers(hub),
        json={"scopes": ["access:services!service=learnhub-grading"], "expires_in": 600},
        timeout=30,
    )
    assert made.status_code == 201, made.text[:500]
    return made.json()["token"]


def regraded(hub, course_id: str, token: str, student: str) -> bool:
    """Whether the grading service's queue shows the student's last job graded."""
    queue = requests.get(
        f"{hub.url}/services/learnhub-grading/api/courses/{course_id}/grading",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert queue.status_code == 200, queue.text[:500]
    jobs = [j for j in queue.json()["jobs"] if j["student_id"] == student]
    return bool(jobs) and all(j["state"] == "graded" for j in jobs)


def lms_score(lms, user_id: str, context: str, score: float) -> dict | None:
    return next(
        (
            r
            for r in lms.gradebook()
            if (r["user_id"], r["course"], r["score"]) == (user_id, context, score)
        ),
        None,
    )


def answer(notebook: dict) -> dict:
    """The learner's work: a correct double() and a sentence for the manual question."""
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id == "double":
            cell["source"] = "def double(x):\n    return x + x"
        elif grade_id == "why":
            cell["source"] = "Adding a negative number to itself stays negative."
    return notebook


def fetched_folder(learner, course_id: str, assignment: str) -> str:
    """The learner's fetched copy of the assignment, relative to their home, as nbgrader's
    assignment list says (in their folder of the course, named after its title)."""
    listed = learner_api(learner, "GET", "assignments", params={"course_id": course_id}).json()
    (entry,) = [
        a for a in listed["value"] if a["assignment_id"] == assignment and a["status"] == "fetched"
    ]
    return entry["path"]


def answer_and_submit(learner, course_id: str, assignment: str) -> dict:
    """The learner answers their fetched notebook (answer()) and submits it; the answer."""
    path = f"api/contents/{fetched_folder(learner, course_id, assignment)}/{assignment}.ipynb"
    notebook = learner_api(learner, "GET", path).json()["content"]
    saved = learner_api(
        learner, "PUT", path, json={"type": "notebook", "content": answer(notebook)}
    )
    assert saved.status_code == 200, saved.text
    submitted = learner_api(
        learner, "POST", "assignments/submit",
        data={"course_id": course_id, "assignment_id": assignment},
    ).json()  # fmt: skip
    assert submitted["success"], submitted
    return submitted


def test_whole_course_workflow(course_hub, course_lms):
    instructor_client = CookielessClient()
    instructor = launch_from(
        course_hub.url,
        lti13_launch(
            instructor_client, course_lms, user_id="teacher-1", roles=[Role.INSTRUCTOR],
            context=CONTEXT,
        ),
    )  # fmt: skip
    course_id = course_id_of(course_hub, CONTEXT)

    # The course exists (made by the course service, from the template) once the hub
    # has told the service about the launch.
    formgrader = Formgrader(course_hub, course_id, instructor.token)
    assert "formgrader" in formgrader.page.lower()
    course_dir = course_hub.state_dir / "courses" / course_id
    assert (course_dir / "gradebook.db").is_file()
    assert (course_dir / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

    formgrader.action(f"assignment/{ASSIGNMENT}/assign")
    formgrader.action(f"assignment/{ASSIGNMENT}/release")

    # The learner, cookieless, inside the LMS frame.
    client = CookielessClient()
    learner = launched(client, course_hub, course_lms, "student-1", Role.LEARNER)
    listed = learner_api(learner, "GET", "assignments", params={"course_id": course_id}).json()
    assert listed["success"], listed
    released = [a for a in listed["value"] if a["assignment_id"] == ASSIGNMENT]
    assert [a["status"] for a in released] == ["released"], listed

    fetched = learner_api(
        learner, "POST", "assignments/fetch",
        data={"course_id": course_id, "assignment_id": ASSIGNMENT},
    ).json()  # fmt: skip
    assert fetched["success"], fetched
    submitted = answer_and_submit(learner, course_id, ASSIGNMENT)
    mine = [a for a in submitted["value"] if a.get("status") == "submitted"]
    assert len(mine) == 1 and len(mine[0]["submissions"]) == 1, submitted
    timestamp = mine[0]["submissions"][0]["timestamp"]

    # Nobody can read the exchange's files but the service (0700, the hub's user).
    exchange = course_hub.state_dir / "exchange"
    assert exchange.stat().st_mode & 0o077 == 0

    # The instructor collects, autogrades, grades the manual answer, releases feedback.
    formgrader.action(f"assignment/{ASSIGNMENT}/collect")
    student = learner.username
    assert (course_dir / "submitted" / student / ASSIGNMENT / "timestamp.txt").read_text() == (
        timestamp
    )
    # The grading service graded the submission in its sandbox as soon as it came in;
    # formgrader's autograde button asks it to grade again, and nothing runs here.
    row = until(lambda: graded_row(formgrader, student, 2.0))
    assert row["max_score"] == 3.0 and row["needs_manual_grade"], row
    queued = formgrader.action(f"submission/{ASSIGNMENT}/{student}/autograde")
    assert "sandbox" in queued["log"], queued
    # An instructor grades by hand once the queue shows the regrade done: grading again
    # marks an answer graded by hand for review (nbgrader's rule), so a regrade that ended
    # after the manual grade would leave the assignment "pending manual" in the LMS.
    queue_token = staff_token(course_hub, instructor.token)
    until(lambda: regraded(course_hub, course_id, queue_token, student))
    # The score reached the LMS gradebook (LTI 1.3 AGS), pending the manual part.
    lms_row = until(lambda: lms_score(course_lms, "student-1", CONTEXT, 2.0))
    assert lms_row["out_of"] == 3.0 and lms_row["progress"] == "Submitted/PendingManual"
    # The learner's Course > My Submissions says the same.
    mine = my_submissions(learner)
    assert "Graded automatically" in mine and "2 / 3" in mine, mine
    assert "your instructor still grades part of it" in mine

    notebooks = formgrader.call("GET", f"submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    submission_id = next(n["id"] for n in notebooks if n["student"] == student)
    grades = formgrader.call("GET", "grades", params={"submission_id": submission_id})
    manual = next(g for g in grades if g["name"] == "why")
    formgrader.call("PUT", f"grade/{manual['id']}", data=json.dumps({"manual_score": 1}))
    submissions = formgrader.call("GET", f"submissions/{ASSIGNMENT}")
    assert next(s for s in submissions if s["student"] == student)["score"] == 3.0
    # The manual grade changes the total: the new score goes to the LMS too.
    lms_row = until(lambda: lms_score(course_lms, "student-1", CONTEXT, 3.0))
    assert lms_row["progress"] == "Completed/FullyGraded", lms_row

    formgrader.action(f"assignment/{ASSIGNMENT}/generate_feedback")
    formgrader.action(f"assignment/{ASSIGNMENT}/release_feedback")

    # The learner sees feedback waiting, fetches it, and finds it in their files.
    listed = learner_api(learner, "GET", "assignments", params={"course_id": course_id}).json()
    entry = next(a for a in listed["value"] if a.get("status") == "submitted")
    assert entry["submissions"][-1]["has_exchange_feedback"], entry
    fetched = learner_api(
        learner, "POST", "assignments/fetch_feedback",
        data={"course_id": course_id, "assignment_id": ASSIGNMENT},
    ).json()  # fmt: skip
    assert fetched["success"], fetched
    feedback = learner_api(
        learner, "GET", f"api/contents/{fetched_folder(learner, course_id, ASSIGNMENT)}/"
        f"feedback/{timestamp}/{ASSIGNMENT}.html",
    )  # fmt: skip
    assert feedback.status_code == 200, feedback.text[:500]
    assert "Adding a negative number" in feedback.json()["content"]

    assert client.cookie_headers_sent == []


# What a learner's own code can do with their server's token, from inside their server.
PROBE = r"""
import io, json, os, tarfile, requests
base = os.environ["LEARNHUB_EXCHANGE_URL"] + "api/courses"
auth = {{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}}
def tarball(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name); info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
def call(method, path, **kw):
    r = requests.request(method, base + path, headers=auth, timeout=60, **kw)
    try:
        body = r.json()
    except ValueError:
        body = r.text[:200]
    return [r.status_code, body]
nb = json.dumps({{"cells": [], "metadata": {{}}, "nbformat": 4, "nbformat_minor": 5}}).encode()
A = "/{course}/assignments/{assignment}"
S = A + "/submissions"
V = S + "/{victim}/{victim_sid}"
results = {{
    "own_list": call("GET", S),
    "other_submission": call("GET", V),
    "missing_submission": call("GET", S + "/{victim}/20000101T000000.000000Z"),
    "other_feedback": call("GET", V + "/feedback"),
    "other_course": call("GET", "/{other_course}/assignments"),
    "no_such_course": call("GET", "/czzzzzzzzzzz/assignments"),
    "release": call("PUT", A, data=tarball({{"x.ipynb": nb}})),
    "feedback_write": call("PUT", V + "/feedback", data=tarball({{"x.html": b"x"}})),
    "oversized": call("POST", S, data=tarball({{"{assignment}.ipynb": os.urandom(2_000_000)}})),
    "not_notebook": call("POST", S, data=tarball({{"{assignment}.ipynb": b"print(1)"}})),
    "no_notebook": call("POST", S, data=tarball({{"answers.txt": b"42"}})),
    "escape": call("POST", S, data=tarball({{"../../x.ipynb": nb}})),
    "not_tar": call("POST", S, data=b"plain bytes"),
}}
json.dumps(results)
"""


def test_learner_cannot_reach_into_the_exchange(course_hub, course_lms):
    """Tried with learner B's own server token, from B's kernel: 403 and nothing learned."""
    # Course two exists, without B in it.
    other_client = CookielessClient()
    lti13_launch(
        other_client, course_lms, user_id="teacher-2", roles=[Role.INSTRUCTOR],
        context=OTHER_CONTEXT,
    )  # fmt: skip
    course_id = course_id_of(course_hub, CONTEXT)
    other_course = course_id_of(course_hub, OTHER_CONTEXT)

    # Learner A has a submission (from the workflow test, or make one now).
    client = CookielessClient()
    victim = launched(client, course_hub, course_lms, "student-1", Role.LEARNER)
    rows = sorted((course_hub.state_dir / "exchange" / course_id / "inbound").glob(
        f"{victim.username}/{ASSIGNMENT}/2*"
    ))  # fmt: skip
    assert rows, "the workflow test leaves learner A's submission"
    victim_sid = rows[-1].name

    intruder = launched(CookielessClient(), course_hub, course_lms, "student-2", Role.LEARNER)
    code = PROBE.format(
        course=course_id, other_course=other_course, assignment=ASSIGNMENT,
        victim=victim.username, victim_sid=victim_sid,
    )  # fmt: skip
    # The kernel answers with the repr of the JSON string.
    results = json.loads(ast.literal_eval(execute(intruder, code, timeout=120)))

    refused = {"status": 403, "message": "You are not allowed to do this in this course."}
    for probe in (
        "other_submission", "missing_submission", "other_feedback", "other_course",
        "no_such_course", "release", "feedback_write",
    ):  # fmt: skip
        assert results[probe] == [403, refused], (probe, results[probe])

    status, body = results["own_list"]
    assert status == 200 and body["submissions"] == [], body

    assert results["oversized"][0] == 400
    assert "the limit is 1 MB" in results["oversized"][1]["message"]
    assert results["not_notebook"][0] == 400
    assert "ps1.ipynb is not a valid Jupyter notebook" in results["not_notebook"][1]["message"]
    assert results["no_notebook"][0] == 400
    assert "holds no notebook" in results["no_notebook"][1]["message"]
    assert results["escape"][0] == 400
    assert "outside its folder" in results["escape"][1]["message"]
    assert results["not_tar"][0] == 400
    assert "not a gzipped tar" in results["not_tar"][1]["message"]
    # Nothing refused was kept: B has no submission at all.
    kept = course_hub.state_dir / "exchange" / course_id / "inbound" / intruder.username
    assert [p for p in kept.rglob("*") if p.is_file()] == []


def test_lti11_learner_reaches_the_same_course_service(course_hub, course_lms):
    """An LTI 1.1 launch enrols too: the learner lists the course's released assignments."""
    client = CookielessClient()
    page = lti11_launch(client, course_hub, course_lms, user_id="s-11", context="py-303")
    launch = launch_from(course_hub.url, page)
    wait_until_ready(client, launch)
    course_id = course_id_of(course_hub, "py-303")
    listed = learner_api(launch, "GET", "assignments", params={"course_id": course_id}).json()
    assert listed == {"success": True, "value": []}, listed


def test_course_menu_opens_the_only_course_or_offers_a_choice(course_hub, course_lms):
    """JupyterLab's Course > Formgrader posts the launch token to /hub/learnhub/formgrader."""
    client = CookielessClient()
    first = launch_from(
        course_hub.url,
        lti13_launch(client, course_lms, user_id="teacher-9", roles=[Role.INSTRUCTOR],
                     context="py-909"),
    )  # fmt: skip
    course = course_id_of(course_hub, "py-909")
    opened = open_formgrader(requests.Session(), course_hub.url, first.token)
    assert opened.status_code == 200 and f"/user/grader-{course}/formgrader/" in opened.url

    second = launch_from(
        course_hub.url,
        lti13_launch(client, course_lms, user_id="teacher-9", roles=[Role.INSTRUCTOR],
                     context="py-910"),
    )  # fmt: skip
    choice = open_formgrader(requests.Session(), course_hub.url, second.token)
    assert choice.status_code == 200 and choice.url.endswith("/hub/learnhub/formgrader")
    for context in ("py-909", "py-910"):
        (title,) = course_hub.query(
            "select title from learnhub_courses where context_id = ?", context
        )[0]
        assert title in choice.text
        assert f"/hub/learnhub/courses/{course_id_of(course_hub, context)}/formgrader" in (
            choice.text
        )
    # Each choice posts the launch token again, in the page, never in a link.
    assert choice.text.count(f'name="token" value="{second.token}"') == 2
    assert f"token={second.token}" not in choice.text

    # A learner of the course, or a made-up token, gets no formgrader.
    learner = launch_from(
        course_hub.url,
        lti13_launch(CookielessClient(), course_lms, user_id="s-909", context="py-909"),
    )
    refused = open_formgrader(requests.Session(), course_hub.url, learner.token, course)
    assert refused.status_code == 403
    assert "instructors and TAs can open formgrader" in refused.text
    forged = open_formgrader(requests.Session(), course_hub.url, "0" * 32)
    assert forged.status_code == 403 and "session has expired" in forged.text
    assert "Traceback" not in forged.text and "0" * 32 not in forged.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "null"},
        {"Origin": "https://evil.example"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
    ],
    ids=["curl", "origin-null", "other-origin", "hidden-origin", "same-site", "typed-url"],
)
def test_formgrader_post_needs_proof_that_this_site_sent_it(course_hub, course_lms, headers):
    """Another site's form must not hand a browser a session of the attacker's choosing
    (login CSRF); a request that says nothing of where it comes from proves nothing."""
    teacher = launch_from(
        course_hub.url,
        lti13_launch(CookielessClient(), course_lms, user_id="teacher-csrf",
                     roles=[Role.INSTRUCTOR], context="py-csrf"),
    )  # fmt: skip
    before = course_hub.counts()
    refused = requests.post(
        f"{course_hub.url}/hub/learnhub/formgrader",
        data={"token": teacher.token},
        headers=headers,
        timeout=60,
    )
    assert refused.status_code == 403
    assert "Open formgrader from JupyterLab on this site." in refused.text
    assert "Set-Cookie" not in refused.headers
    assert course_hub.counts() == before, "a refused handoff minted a token"


def test_formgrader_works_with_every_cookie_blocked(course_hub, course_lms):
    """Issue 13 item 8: an instructor whose browser refuses every cookie grades all the
    same; the staff session lives in the pages, posted on with each navigation, and is
    worth only what the grader server's token is."""
    client = CookielessClient()
    teacher = launch_from(
        course_hub.url,
        lti13_launch(client, course_lms, user_id="t-nocookie", roles=[Role.INSTRUCTOR],
                     context="py-nocookie"),
    )  # fmt: skip
    course = course_id_of(course_hub, "py-nocookie")
    grader = f"{course_hub.url}/user/grader-{course}/"

    opened = open_formgrader(client, course_hub.url, teacher.token, course)
    assert opened.status_code == 200, opened.text[:2000]
    # formgrader/ redirected to its first page, followed by a POST with the token.
    assert opened.url == grader + "formgrader/manage_assignments"
    assert "Manage Assignments" in opened.text
    session = staff_session(opened.text)
    assert session["field"] == "learnhub_session"
    staff_token = session["token"]
    assert staff_token != teacher.token

    # formgrader's API calls, as the page's script sends them.
    listed = client.get(
        grader + "formgrader/api/assignments",
        headers={"Authorization": f"token {staff_token}"},
        timeout=120,
    )
    assert listed.status_code == 200, listed.text[:500]
    assert ASSIGNMENT in {a["name"] for a in listed.json()}

    # A link followed: a POST navigation of the token alone, answered as its GET.
    page = client.post(
        grader + "formgrader/gradebook",
        data={"learnhub_session": staff_token},
        headers=SAME_ORIGIN,
        timeout=120,
    )
    assert page.status_code == 200 and page.url == grader + "formgrader/gradebook"
    assert staff_session(page.text)["token"] == staff_token

    # Nobody else's session: a learner's launch token, another site's form, a GET.
    learner = launch_from(
        course_hub.url,
        lti13_launch(CookielessClient(), course_lms, user_id="s-nocookie", context="py-nocookie"),
    )
    refused = client.post(
        grader + "formgrader/gradebook",
        data={"learnhub_session": learner.token},
        headers=SAME_ORIGIN,
        timeout=120,
    )
    # jupyter-server's own refusal of a user this server does not allow; no session.
    assert refused.status_code == 403, refused.text[:500]
    assert learner.token not in refused.text and staff_session(refused.text) is None
    cross_site = client.post(
        grader + "formgrader/gradebook",
        data={"learnhub_session": staff_token},
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=120,
        allow_redirects=False,
    )
    assert cross_site.status_code in (403, 405) and staff_token not in cross_site.text
    anonymous = client.get(grader + "formgrader/gradebook", allow_redirects=False, timeout=120)
    assert anonymous.status_code in (302, 403)

    # Not a cookie, and never the token in a URL.
    assert client.cookie_headers_sent == [] and len(client.cookies) == 0
    for response in (opened, page, refused):
        for hop in [*response.history, response]:
            assert staff_token not in hop.url and teacher.token not in hop.url


def test_launch_token_never_becomes_more_than_it_is(course_hub, course_lms):
    """The review's hole: a launch token posted to formgrader became a 30-day hub login,
    from which the learner listed their tokens and minted year-long full-scope ones."""
    hub_url = course_hub.url
    # A learner's token, sent as curl sends it and as a browser would: nothing set, ever.
    learner = launch_from(
        hub_url, lti13_launch(CookielessClient(), course_lms, user_id="s-hole", context="py-hole")
    )
    for headers in ({}, SAME_ORIGIN):
        answer = requests.post(
            f"{hub_url}/hub/learnhub/formgrader",
            data={"token": learner.token},
            headers=headers,
            timeout=60,
        )
        assert answer.status_code == 403, answer.text[:500]
        assert "Set-Cookie" not in answer.headers

    teacher = launch_from(
        hub_url,
        lti13_launch(CookielessClient(), course_lms, user_id="t-hole", roles=[Role.INSTRUCTOR],
                     context="py-hole"),
    )  # fmt: skip
    course = course_id_of(course_hub, "py-hole")
    grader = f"grader-{course}"
    # The launch token expires in a minute: whatever the handoff makes must not outlive it.
    assert (
        course_hub.execute(
            "update api_tokens set expires_at = datetime('now', '+60 seconds') "
            "where note = 'LearnHub LMS launch session' and user_id = "
            "(select id from users where name = ?)",
            teacher.username,
        )
        == 1
    )
    browser = requests.Session()
    handoff = browser.post(
        f"{hub_url}/hub/learnhub/formgrader",
        data={"token": teacher.token},
        headers=SAME_ORIGIN,
        timeout=180,
    )
    assert handoff.status_code == 200, handoff.text[:2000]
    assert "Set-Cookie" not in handoff.headers, "the hub set a cookie for a launch token"
    assert teacher.token not in handoff.text
    action, fields = parse_form(handoff.text)
    assert action == f"/user/{grader}/learnhub/session"
    assert 0 < int(fields["lifetime"]) <= 60

    # The token handed over: the grader server only, expiring with the launch token.
    (scopes, expires, launch_expires) = course_hub.query(
        "select t.scopes, t.expires_at, (select expires_at from api_tokens "
        "where note = 'LearnHub LMS launch session' and user_id = t.user_id) "
        "from api_tokens t where t.note = 'LearnHub formgrader session' and t.user_id = "
        "(select id from users where name = ?)",
        teacher.username,
    )[0]
    assert json.loads(scopes) == [f"access:servers!server={grader}/"]
    assert expires <= launch_expires
    handed = {"Authorization": f"token {fields['token']}"}
    for token_headers in (handed, teacher.headers):
        minted = requests.post(
            f"{hub_url}/hub/api/users/{teacher.username}/tokens",
            json={"expires_in": 365 * 86400},
            headers=token_headers,
            timeout=30,
        )
        assert minted.status_code == 403, minted.text
        listed = requests.get(
            f"{hub_url}/hub/api/users/{teacher.username}/tokens", headers=token_headers, timeout=30
        )
        assert listed.status_code == 403, listed.text

    opened = follow_staff_session(browser, browser.post(
        requests.compat.urljoin(handoff.url, action), data=fields, headers=SAME_ORIGIN, timeout=180
    ))  # fmt: skip
    assert opened.status_code == 200 and f"/user/{grader}/formgrader/" in opened.url
    # Only the grader server's own cookies, on its own path, living no longer than the token.
    assert {c.path for c in browser.cookies} == {f"/user/{grader}/"}, list(browser.cookies)
    session_cookie = next(c for c in browser.cookies if c.name == f"jupyterhub-user-{grader}")
    assert session_cookie.expires is not None and session_cookie.expires <= time.time() + 61
    assert not any(c.name.startswith("jupyterhub-hub-login") for c in browser.cookies)
    assert not any(c.name == "jupyterhub-session-id" for c in browser.cookies)
    # With that browser, the hub's token page is a login page, not a way to mint tokens.
    token_page = browser.get(f"{hub_url}/hub/token", timeout=30)
    assert "/hub/login" in token_page.url
    # Another learner's server is out of reach of the handed-over token: asked of the
    # server itself (once it runs; before, the hub answers 404 for it).
    wait_until_ready(CookielessClient(), learner)
    other = requests.get(f"{learner.server_url}api/status", headers=handed, timeout=30)
    assert other.status_code in (302, 403), other.status_code

    # When the launch token expires, so does the formgrader session made from it.
    assert (
        course_hub.execute(
            "update api_tokens set expires_at = datetime('now', '+4 seconds') "
            "where note = 'LearnHub LMS launch session' and user_id = "
            "(select id from users where name = ?)",
            teacher.username,
        )
        == 1
    )
    late = requests.Session()
    handoff = late.post(
        f"{hub_url}/hub/learnhub/formgrader",
        data={"token": teacher.token},
        headers=SAME_ORIGIN,
        timeout=180,
    )
    action, fields = parse_form(handoff.text)
    assert 0 < int(fields["lifetime"]) <= 4
    reopened = follow_staff_session(late, late.post(
        requests.compat.urljoin(handoff.url, action), data=fields, headers=SAME_ORIGIN, timeout=180
    ))  # fmt: skip
    assert reopened.status_code == 200 and f"/user/{grader}/formgrader/" in reopened.url
    cookie = next(c for c in late.cookies if c.name == f"jupyterhub-user-{grader}")
    # Past the token's expiry and the grader server's 10 s trust in the hub's last answer.
    time.sleep(12)
    expired = late.get(f"{hub_url}/user/{grader}/formgrader/", timeout=60)
    assert "/hub/login" in expired.url, expired.url
    assert "Manage Assignments" not in expired.text
    # A copy of the cookie, replayed by hand after the browser dropped it, is refused too.
    stolen = requests.Session()
    stolen.cookies.set(cookie.name, cookie.value, path=cookie.path)
    replayed = stolen.get(f"{hub_url}/user/{grader}/formgrader/", timeout=60)
    assert "/hub/login" in replayed.url, replayed.url
    late_token = {"Authorization": f"token {fields['token']}"}
    assert (
        requests.get(f"{hub_url}/hub/api/user", headers=late_token, timeout=30).status_code == 403
    )


def my_submissions(launch) -> str:
    page = learner_api(launch, "GET", "learnhub/my-submissions")
    assert page.status_code == 200, page.text[:2000]
    return page.text


def test_a_submission_that_cannot_run_fails_visibly_for_its_learner(course_hub, course_lms):
    """Issue 11 item 8, the learner's side: a notebook whose kernel cannot start is not
    graded, nothing goes to the LMS, and the learner's Course > My Submissions says why;
    no other learner sees it."""
    teacher = launch_from(
        course_hub.url,
        lti13_launch(CookielessClient(), course_lms, user_id="teacher-1",
                     roles=[Role.INSTRUCTOR], context=CONTEXT),
    )  # fmt: skip
    course_id = course_id_of(course_hub, CONTEXT)
    formgrader = Formgrader(course_hub, course_id, teacher.token)
    formgrader.action(f"assignment/{NO_KERNEL}/assign")
    formgrader.action(f"assignment/{NO_KERNEL}/release")

    client = CookielessClient()
    learner = launched(client, course_hub, course_lms, "student-nokernel", Role.LEARNER)
    assert "You have not submitted anything yet" in my_submissions(learner)
    for step in ("fetch", "submit"):
        done = learner_api(
            learner, "POST", f"assignments/{step}",
            data={"course_id": course_id, "assignment_id": NO_KERNEL},
        ).json()  # fmt: skip
        assert done["success"], done

    page = until(lambda: (p := my_submissions(learner)) and "Could not be graded" in p and p)
    assert NO_KERNEL in page
    assert "it did not run" in page and "kernel &#39;blah&#39;" in page, page
    assert "Graded automatically" not in page
    # JupyterLab's Course > My Submissions posts the session's token to a new tab.
    url = learner.server_url + "learnhub/my-submissions"
    posted = client.post(url, data={"token": learner.token}, headers=SAME_ORIGIN, timeout=60)
    assert posted.status_code == 200 and "Could not be graded" in posted.text
    assert f'name="token" value="{learner.token}"' in posted.text  # Refresh posts it again
    refused = client.post(url, data={"token": learner.token}, timeout=60)
    assert refused.status_code == 403
    assert "Open My Submissions from JupyterLab" in refused.text
    assert "Set-Cookie" not in posted.headers and "Set-Cookie" not in refused.headers
    assert client.cookie_headers_sent == []

    # The instructor's queue says the same, and no score reached the LMS.
    queue = requests.get(
        f"{course_hub.url}/services/learnhub-grading/api/courses/{course_id}/grading",
        headers={"Authorization": f"token {staff_token(course_hub, teacher.token)}"},
        timeout=30,
    ).json()
    [job] = [j for j in queue["jobs"] if j["student_id"] == learner.username]
    assert job["state"] == "failed" and job["score"] is None, job
    assert not [r for r in course_lms.gradebook() if r["user_id"] == "student-nokernel"]
    # In their formgrader tab, the Grading Queue tab shows the same page.
    queue_url = f"{course_hub.url}/user/grader-{course_id}/learnhub/grading"
    assert 'learnhub/grading">Grading Queue</a>' in formgrader.page
    shown = formgrader.session.get(queue_url, timeout=60)
    assert shown.status_code == 200 and shown.url == queue_url, shown.text[:1000]
    row = next(r for r in shown.text.split("<tr") if learner.username in r and NO_KERNEL in r)
    assert "failed" in row and "it did not run" in row and "kernel &#39;blah&#39;" in row, row
    assert shown.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for outsider in (learner.headers, {}):
        kept_out = requests.get(queue_url, headers=outsider, timeout=60, allow_redirects=False)
        assert kept_out.status_code in (302, 403) and NO_KERNEL not in kept_out.text

    # Another learner of the course sees none of it; the launch token alone cannot ask the
    # grading service (it is for the learner's server only).
    other = launched(CookielessClient(), course_hub, course_lms, "student-other", Role.LEARNER)
    assert NO_KERNEL not in my_submissions(other)
    mine = requests.get(
        f"{course_hub.url}/services/learnhub-grading/api/me/grading",
        headers=learner.headers,
        timeout=30,
    )
    assert mine.status_code == 401 and "not valid for the grading service" in mine.text, mine.text
    forged = requests.get(
        f"{course_hub.url}/services/learnhub-grading/api/me/grading",
        headers={"Authorization": "token " + "0" * 32},
        timeout=30,
    )
    assert forged.status_code == 401 and "not valid" in forged.text, forged.text


def linked(client, hub, lms, user_id, role, assignment):
    """A launch from an LMS link whose custom parameter names `assignment`, server ready;
    the link has its column, as an instructor makes one with an assignment's link."""
    link = f"{CONTEXT}-{assignment}"
    column = lms.link_lineitem(CONTEXT, link, f"Problem set: {assignment}", score_maximum=3)
    page = lti13_launch(
        client, lms, user_id=user_id, roles=[role], context=CONTEXT,
        custom={"assignment": assignment}, resource_link_id=link,
        ags=lms.ags_claim(CONTEXT, lineitem=column),
    )  # fmt: skip
    launch = launch_from(hub.url, page)
    wait_until_ready(client, launch)
    return launch


def landing(launch) -> requests.Response:
    """What the waiting page opens once the server is ready: its labUrl with the token."""
    return requests.get(
        f"{launch.hub_url}{launch.lab_url}",
        params={"token": launch.token},
        allow_redirects=False,
        timeout=120,
    )


def test_an_assignment_link_opens_its_notebook_or_formgrader(course_hub, course_lms):
    """Issue 13 items 2 and 3: an LMS link with the custom parameter assignment=<name>
    lands a learner in that assignment's notebook, fetched for them, and its staff in
    formgrader on its submissions; an assignment not released says so; a bad name is
    refused at the launch."""
    client = CookielessClient()
    teacher = linked(client, course_hub, course_lms, "teacher-1", Role.INSTRUCTOR, LINKED)
    course_id = course_id_of(course_hub, CONTEXT)
    assert teacher.lab_url.endswith(f"/learnhub/assignment/{course_id}/{LINKED}")
    staff_page = landing(teacher)
    assert staff_page.status_code == 200, staff_page.text[:2000]
    action, fields = parse_form(staff_page.text)
    assert action == f"/hub/learnhub/courses/{course_id}/formgrader"
    assert fields == {"token": teacher.token, "assignment": LINKED}
    browser = requests.Session()
    handoff = browser.post(course_hub.url + action, data=fields, headers=SAME_ORIGIN, timeout=180)
    handoff_action, handoff_fields = parse_form(handoff.text)
    assert handoff_fields["next"] == f"formgrader/manage_submissions/{LINKED}"
    opened = follow_staff_session(browser, browser.post(
        requests.compat.urljoin(handoff.url, handoff_action), data=handoff_fields,
        headers=SAME_ORIGIN, timeout=180,
    ))  # fmt: skip
    assert opened.status_code == 200
    assert opened.url.endswith(f"/user/grader-{course_id}/formgrader/manage_submissions/{LINKED}")
    # The handoff goes nowhere but formgrader, whatever `next` says.
    forged = requests.Session()
    handoff = forged.post(
        f"{course_hub.url}/hub/learnhub/courses/{course_id}/formgrader",
        data={"token": teacher.token}, headers=SAME_ORIGIN, timeout=180,
    )  # fmt: skip
    handoff_action, handoff_fields = parse_form(handoff.text)
    handoff_fields["next"] = "../../hub/token"
    elsewhere = follow_staff_session(forged, forged.post(
        requests.compat.urljoin(handoff.url, handoff_action), data=handoff_fields,
        headers=SAME_ORIGIN, timeout=180,
    ))  # fmt: skip
    # (formgrader's front page sends the browser on to its list of assignments)
    assert f"/user/grader-{course_id}/formgrader/manage_assignments" in elsewhere.url, elsewhere.url

    # Not released yet: the learner is told so, and lands nowhere else.
    learner = linked(client, course_hub, course_lms, "student-link", Role.LEARNER, LINKED)
    waiting = landing(learner)
    assert waiting.status_code == 404 and f"{LINKED} is not open yet" in waiting.text
    assert "Python" in waiting.text or CONTEXT in waiting.text  # the course's title

    # Released: the learner's launch fetches it and opens its notebook.
    formgrader = Formgrader(course_hub, course_id, teacher.token)
    formgrader.action(f"assignment/{LINKED}/assign")
    formgrader.action(f"assignment/{LINKED}/release")
    opened = landing(learner)
    assert opened.status_code == 302, opened.text[:2000]
    notebook = f"{fetched_folder(learner, course_id, LINKED)}/{LINKED}.ipynb"
    assert opened.headers["Location"] == (
        f"/user/{learner.username}/lab/tree/{quote(notebook)}?token={learner.token}"
    )
    fetched = learner_api(learner, "GET", f"api/contents/{notebook}")
    assert fetched.status_code == 200 and fetched.json()["type"] == "notebook"
    # Again: already fetched, the learner's own copy opens (nothing fetched over it).
    assert landing(learner).headers["Location"] == opened.headers["Location"]

    # Issue 13 item 4: the grade goes to the column of the link, though the learner's last
    # launch is from the course's link, which names no assignment.
    answer_and_submit(learner, course_id, LINKED)
    launched(CookielessClient(), course_hub, course_lms, "student-link", Role.LEARNER)
    column = course_lms.link_lineitem(CONTEXT, f"{CONTEXT}-{LINKED}", "unused")
    row = until(lambda: lms_score(course_lms, "student-link", CONTEXT, 2.0))
    assert (row["lineitem"], row["column"]) == (column, f"Problem set: {LINKED}"), row
    assert not [p for p in course_lms.lineitem_posts if p.get("resourceId") == LINKED]
    sent = until(
        lambda: course_hub.query(
            "select destination from learnhub_grade_outbox where assignment = ? and state = 'sent'",
            LINKED,
        )
    )
    assert [tuple(r) for r in sent] == [(f"line item {column}",)]

    # Another course's assignment, or a name no link could carry, opens nothing.
    other = course_id_of(course_hub, CONTEXT).replace(
        course_id[1], "z" if course_id[1] != "z" else "y", 1
    )
    foreign = requests.get(
        f"{learner.server_url}learnhub/assignment/{other}/{LINKED}",
        headers=learner.headers, timeout=60,
    )  # fmt: skip
    assert foreign.status_code == 403 and "not in this course" in foreign.text
    refused = lti13_launch(
        CookielessClient(), course_lms, user_id="student-link", context=CONTEXT,
        custom={"assignment": "../../etc"},
    )  # fmt: skip
    assert refused.status_code == 400
    assert "custom parameter assignment=&#39;../../etc&#39; is not the name of" in refused.text
    assert client.cookie_headers_sent == []


# A course whose assignments an instructor links with LTI 1.3 Deep Linking (issue 13 item 1).
DL_CONTEXT = "py-dl"


def through_the_lms(client, lms, route: str, **query) -> requests.Response:
    """What a browser does with a launch of the demo LMS's course page (without platform
    storage, whose page needs JavaScript): its form to the tool's login, the login's
    redirect to the LMS, the LMS's form of the id_token to the tool. The tool's answer."""
    query.setdefault("course", DL_CONTEXT)
    started = client.get(f"{lms.url}/{route}", params={**query, "storage": "off"}, timeout=30)
    assert started.status_code == 200, started.text[:2000]
    login, fields = parse_form(started.text)
    redirect = client.post(login, data=fields, allow_redirects=False, timeout=30)
    assert redirect.status_code == 302, redirect.text[:2000]
    auth_page = client.get(redirect.headers["Location"], allow_redirects=False, timeout=30)
    assert auth_page.status_code == 200, auth_page.text[:2000]
    action, fields = parse_form(auth_page.text)
    return client.post(action, data=fields, allow_redirects=False, timeout=180)


def offered(picker: requests.Response) -> list[str]:
    return re.findall(r'name="assignment" value="([^"]+)"', picker.text)


def test_deep_linking_adds_assignment_links_whose_grades_go_to_their_columns(
    course_hub, course_lms
):
    """Issue 13 item 1: an instructor's deep-linking request opens a picker of the course's
    assignments; the picked ones come back to the LMS in a signed answer that it verifies
    with the tool's JWKS, and become links with their columns; a learner's launch of one
    opens its notebook, and the grade goes to that link's column and no other."""
    client = CookielessClient()
    hub, lms = course_hub, course_lms
    course_row = "select id from learnhub_courses where context_id = ?"

    # A learner may not add links, and an answer goes only to the LMS that asked: both
    # refused before anything is stored.
    as_learner = through_the_lms(client, lms, "deeplink13", user="dl-student", role="learner")
    assert as_learner.status_code == 403, as_learner.text[:2000]
    assert "Only the course&#39;s instructors and TAs can add" in as_learner.text
    login_url, params = lms.initiate_deep_linking(
        user_id="dl-teacher", roles=[Role.INSTRUCTOR], context_id=DL_CONTEXT,
        return_url="https://attacker.test/collect",
    )  # fmt: skip
    redirect = client.get(login_url, params=params, allow_redirects=False, timeout=30)
    action, fields = parse_form(client.get(redirect.headers["Location"], timeout=30).text)
    forged = client.post(action, data=fields, allow_redirects=False, timeout=60)
    assert forged.status_code == 400, forged.text[:2000]
    assert "https://attacker.test, which is not this LMS" in forged.text
    assert hub.query(course_row, DL_CONTEXT) == []

    started = time.monotonic()
    picker = through_the_lms(client, lms, "deeplink13", user="dl-teacher", role="instructor")
    picker_seconds = time.monotonic() - started
    assert picker.status_code == 200, picker.text[:2000]
    assert offered(picker) == sorted([ASSIGNMENT, LINKED, NO_KERNEL])
    assert "3 points, not released yet" in picker.text
    action, fields = parse_form(picker.text)
    assert action == "/hub/learnhub/assignment-picker" and set(fields) == {"state", "assignment"}
    pick = f"{hub.url}{action}"
    # What the picker did not offer, or an altered picker, is refused and sends nothing.
    wrong = client.post(pick, data={"state": fields["state"], "assignment": ["ps99"]}, timeout=60)
    assert wrong.status_code == 400 and "&#39;ps99&#39; is not an assignment" in wrong.text
    assert offered(wrong) == offered(picker)  # the picker again, to choose anew
    altered = fields["state"][:-8] + ("A" * 8 if not fields["state"].endswith("A" * 8) else "B" * 8)
    tampered = client.post(pick, data={"state": altered, "assignment": [ASSIGNMENT]}, timeout=60)
    assert tampered.status_code == 400 and "expired or was altered" in tampered.text

    answer = client.post(
        pick, data={"state": fields["state"], "assignment": [LINKED, ASSIGNMENT]}, timeout=60
    )
    assert answer.status_code == 200, answer.text[:2000]
    back, answer_fields = parse_form(answer.text)
    assert back == f"{lms.url}/deep_link_return" and set(answer_fields) == {"JWT"}
    # One answer per picker: posting it again (the back button) signs no second answer.
    again = client.post(pick, data={"state": fields["state"], "assignment": [LINKED]}, timeout=60)
    assert again.status_code == 409 and "already sent to your LMS" in again.text
    assert 'name="JWT"' not in again.text
    made = client.post(back, data=answer_fields, timeout=60)
    assert made.status_code == 200, f"{made.status_code} {made.text[:2000]}"
    links = {link.custom["assignment"]: link for link in lms.links.values()
             if link.context_id == DL_CONTEXT}  # fmt: skip
    assert sorted(links) == sorted([ASSIGNMENT, LINKED])
    columns = lms.lineitems[DL_CONTEXT]
    for name, link in links.items():
        assert link.url == f"{hub.url}/hub/lti13/launch" and link.title == name
        column = columns[link.lineitem]
        assert (column["label"], column["scoreMaximum"], column["resourceId"]) == (name, 3, name)
        assert column["tag"] == "learnhub" and column["resourceLinkId"] == link.id
    # The LMS takes one answer to one request: the same answer again creates nothing.
    count = len(lms.links)
    again = client.post(back, data=answer_fields, timeout=60)
    assert again.status_code == 400 and len(lms.links) == count

    # The instructor releases the assignment; the learner's launch of its link opens it.
    teacher = launched(client, hub, lms, "dl-teacher", Role.INSTRUCTOR, context=DL_CONTEXT)
    course_id = course_id_of(hub, DL_CONTEXT)
    formgrader = Formgrader(hub, course_id, teacher.token)
    formgrader.action(f"assignment/{ASSIGNMENT}/assign")
    formgrader.action(f"assignment/{ASSIGNMENT}/release")
    started = time.monotonic()
    page = through_the_lms(
        client, lms, "launch13", user="dl-student", role="learner", link=links[ASSIGNMENT].id
    )
    learner = launch_from(hub.url, page)
    wait_until_ready(client, learner)
    opened = landing(learner)
    launch_seconds = time.monotonic() - started
    assert opened.status_code == 302, opened.text[:2000]
    notebook = quote(f"{fetched_folder(learner, course_id, ASSIGNMENT)}/{ASSIGNMENT}.ipynb")
    assert f"/lab/tree/{notebook}" in opened.headers["Location"]
    print(f"\ndeep linking: picker {picker_seconds:.1f}s, learner link to notebook "
          f"{launch_seconds:.1f}s")  # fmt: skip

    answer_and_submit(learner, course_id, ASSIGNMENT)
    row = until(lambda: lms_score(lms, "dl-student", DL_CONTEXT, 2.0))
    assert row["lineitem"] == links[ASSIGNMENT].lineitem, row
    posts = [p for p in lms.score_posts if p["userId"] == "dl-student"]
    assert {p["lineitem"] for p in posts} == {links[ASSIGNMENT].lineitem}, posts
    assert client.cookie_headers_sent == []


# A course whose assignments an instructor links with LTI 1.1 Content-Item (issue 13 item 2).
CI_CONTEXT = "py-ci"


def lti11_outcomes(lms, user_id: str) -> list:
    return [g for g in lms.outcomes.values() if g.cell[0] == user_id]


def test_content_item_selection_adds_lti11_links_whose_grades_go_to_their_cells(
    course_hub, course_lms
):
    """Issue 13 item 2: an LTI 1.1 instructor's ContentItemSelectionRequest opens the same
    picker; the answer, signed with the consumer's secret, becomes links in the LMS; a
    learner's launch of one opens its notebook and the grade goes to that link's cell."""
    client = CookielessClient()
    hub, lms = course_hub, course_lms
    launch_url = f"{hub.url}/hub/lti11/launch"

    def request(user_id, role, **kwargs):
        fields = lms.content_item_request(
            user_id=user_id, roles=[role], context_id=CI_CONTEXT, **kwargs
        )
        return client.post(launch_url, data=fields, allow_redirects=False, timeout=60)

    as_learner = request("ci-student", Role.LEARNER)
    assert as_learner.status_code == 403 and "Only the course&#39;s instructors" in as_learner.text
    forged = request("ci-teacher", Role.INSTRUCTOR, return_url="https://attacker.test/ci")
    assert forged.status_code == 400 and "https://attacker.test, which is not this LMS" in (
        forged.text
    )
    assert hub.query("select id from learnhub_courses where context_id = ?", CI_CONTEXT) == []

    # Through the LMS's own button, as its page posts the signed request.
    started = client.get(
        f"{lms.url}/contentitem11",
        params={"user": "ci-teacher", "role": "instructor", "course": CI_CONTEXT},
        timeout=30,
    )
    action, fields = parse_form(started.text)
    assert action == launch_url and "resource_link_id" not in fields
    picker = client.post(action, data=fields, allow_redirects=False, timeout=60)
    assert picker.status_code == 200, picker.text[:2000]
    assert offered(picker) == sorted([ASSIGNMENT, LINKED, NO_KERNEL])
    action, fields = parse_form(picker.text)
    answer = client.post(
        f"{hub.url}{action}", data={"state": fields["state"], "assignment": [ASSIGNMENT]},
        timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text[:2000]
    back, answer_fields = parse_form(answer.text)
    assert back == f"{lms.url}/content_item_return"
    assert answer_fields["lti_message_type"] == "ContentItemSelection"
    made = client.post(back, data=answer_fields, timeout=60)
    assert made.status_code == 200, f"{made.status_code} {made.text[:2000]}"
    (link,) = [link for link in lms.links.values() if link.context_id == CI_CONTEXT]
    assert (link.lti_version, link.custom, link.url) == ("1.1", {"assignment": ASSIGNMENT},
                                                          launch_url)  # fmt: skip
    assert (link.column_label, link.score_maximum) == (ASSIGNMENT, 3)
    # The consumer takes one answer to one request.
    count = len(lms.links)
    again = client.post(back, data=answer_fields, timeout=60)
    assert again.status_code == 400 and len(lms.links) == count

    teacher_page = lti11_launch(
        client, hub, lms, user_id="ci-teacher", roles="Instructor", context=CI_CONTEXT
    )
    teacher = launch_from(hub.url, teacher_page)
    wait_until_ready(client, teacher)
    course_id = course_id_of(hub, CI_CONTEXT)
    formgrader = Formgrader(hub, course_id, teacher.token)
    formgrader.action(f"assignment/{ASSIGNMENT}/assign")
    formgrader.action(f"assignment/{ASSIGNMENT}/release")

    started = client.get(
        f"{lms.url}/launch11",
        params={"link": link.id, "role": "learner", "user": "ci-student", "course": CI_CONTEXT},
        timeout=30,
    )
    action, fields = parse_form(started.text)
    assert fields["custom_assignment"] == ASSIGNMENT and fields["resource_link_id"] == link.id
    learner = launch_from(hub.url, client.post(action, data=fields, timeout=180))
    wait_until_ready(client, learner)
    opened = landing(learner)
    assert opened.status_code == 302, opened.text[:2000]
    notebook = quote(f"{fetched_folder(learner, course_id, ASSIGNMENT)}/{ASSIGNMENT}.ipynb")
    assert f"/lab/tree/{notebook}" in opened.headers["Location"]

    answer_and_submit(learner, course_id, ASSIGNMENT)
    (grade,) = until(lambda: lti11_outcomes(lms, "ci-student"))
    assert grade.cell == ("ci-student", CI_CONTEXT, link.id)
    assert round(grade.score, 4) == round(2 / 3, 4)
    assert client.cookie_headers_sent == []
