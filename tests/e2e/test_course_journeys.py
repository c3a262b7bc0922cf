"""A learner and an instructor of a PY4E course, in Chromium, inside the LMS's frame.

One hub for the module, whose course template is the repository's course with one
assignment. The tests run in order and build on each other, as a course does: the
instructor releases, each learner (cookies blocked, then allowed) works and submits, the
instructor grades and releases feedback, each learner fetches it.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from html import unescape
from urllib.parse import unquote

import pytest
import requests

from learnhub.demo.lms import DemoLMS
from tests.e2e.conftest import open_profile
from tests.support import REPO, registered_hub

pytestmark = pytest.mark.e2e

CONTEXT = "py4e-e2e"
COURSE_TITLE = "Python for Everybody (browser tests)"
# Where a learner's fetched assignments of the course are: a folder named after its title.
FOLDER = COURSE_TITLE
ASSIGNMENT = "ps01-expressions"
MANUAL_CELL = "divide-explained"  # 2 points, graded by the instructor
POINTS = 10.0
# The learner answers question 1 (3 autograded points) and leaves the rest blank.
ANSWER = "def celsius_to_fahrenheit(celsius):\n    return celsius * 9 / 5 + 32\n\n" + (
    "celsius_to_fahrenheit(100)"
)
AUTOGRADED_SCORE = 3.0
MANUAL_SCORE = 2.0
LAB_TIMEOUT_MS = 180_000
STEP_TIMEOUT_MS = 60_000
# Submission → sandboxed autograde → outbox → LMS: the grading service's promise.
GRADE_TIMEOUT = 240
PROFILES = {"cookies-blocked": "e2e-learner-blocked", "cookies-allowed": "e2e-learner-allowed"}
INSTRUCTOR = "e2e-teacher"
FORMGRADER_ITEM = '.lm-Menu-item[data-command="learnhub:open-formgrader"]'


@pytest.fixture(scope="module")
def course_lms(loop_thread):
    peer = DemoLMS(
        consumer_key="e2e-consumer",
        client_id="e2e-tool",
        deployment_id="e2e-1",
        course_id=CONTEXT,
        course_title=COURSE_TITLE,
    )
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def course_hub(course_lms, tmp_path_factory):
    """A hub whose courses are made from the repository's course, cut to one assignment."""
    template = tmp_path_factory.mktemp("course-template")
    shutil.copy(REPO / "assignments" / "nbgrader_config.py", template)
    shutil.copytree(REPO / "assignments" / "source" / ASSIGNMENT, template / "source" / ASSIGNMENT)
    state = tmp_path_factory.mktemp("e2e-course-hub")
    instance = registered_hub(state, course_lms, courses={"template": str(template)})
    instance.start()
    yield instance
    instance.shutdown_everything()


@pytest.fixture(scope="module")
def course():
    """What the tests of this module learn about the course as they go."""
    return {}


# ---------------------------------------------------------------- in the LMS page


def launch(page, lms, *, user: str, role: str, version: str = "LTI 1.3", assignment: str = ""):
    """Open the LMS course page and press its launch button as `user` (from the link of
    `assignment`, if given); return the frame."""
    page.goto(f"{lms.url}/course")
    page.evaluate(
        """([user, assignment]) => {
            document.querySelectorAll('form input[name=user]').forEach(i => i.value = user);
            document.querySelectorAll('form input[name=assignment]')
                .forEach(i => i.value = assignment);
        }""",
        [user, assignment],
    )
    page.get_by_role("button", name=f"Launch as {role} ({version})").click()
    return page.frame_locator("iframe[name=tool]")


def tool_frame(page):
    return page.frame(name="tool")


def wait_for_lab(page, tool) -> None:
    tool.locator(".jp-DirListing-content").wait_for(timeout=LAB_TIMEOUT_MS)
    url = tool_frame(page).url
    assert "/lab" in url, url
    assert "token" not in url, "the token stayed in the frame's address"


def lab_token(page) -> str:
    """The session token JupyterLab holds in its page config (never in a cookie)."""
    return tool_frame(page).evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).token"
    )


def api(page, method: str, path: str) -> dict:
    """Call the learner's server from inside the frame, with the token JupyterLab holds."""
    return tool_frame(page).evaluate(
        """async ([method, path]) => {
            const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
            const r = await fetch(config.baseUrl + path, {
                method, headers: {Authorization: 'token ' + config.token}, credentials: 'omit',
            });
            return {status: r.status, body: await r.text()};
        }""",
        [method, path],
    )


def run_command(tool, menu: str, item: str) -> None:
    tool.locator(".lm-MenuBar-item", has_text=menu).click()
    tool.locator(".lm-Menu-item", has_text=item).first.click()


def open_assignment_list(tool) -> None:
    """nbgrader's own Assignments panel, from its menu in JupyterLab's menu bar."""
    run_command(tool, "Nbgrader", "Assignment List")
    tool.locator("#released_assignments_list").wait_for(timeout=STEP_TIMEOUT_MS)


def assignment_row(tool, listing: str):
    return tool.locator(f"#{listing} .list_item", has_text=ASSIGNMENT).first


def answer_cell(tool):
    return tool.locator(".jp-Notebook .jp-CodeCell", has_text="def celsius_to_fahrenheit").first


def open_notebook(tool) -> None:
    """From the fetched list: expand the assignment, open its notebook."""
    row = assignment_row(tool, "fetched_assignments_list")
    row.wait_for(timeout=STEP_TIMEOUT_MS)
    notebook_link = tool.locator(f"#fetched_assignments_list a:text-is('{ASSIGNMENT}')").last
    if not notebook_link.is_visible():
        row.locator(".assignment-notebooks-link").click()
    notebook_link.click()
    answer_cell(tool).wait_for(timeout=STEP_TIMEOUT_MS)
    # A cell run before the kernel is up is dropped: wait for "Python 3 (ipykernel) | Idle".
    tool.locator(".jp-StatusBar-TextItem", has_text="ipykernel) | Idle").first.wait_for(
        timeout=STEP_TIMEOUT_MS
    )


def gradebook_rows(lms, user_id: str) -> list[dict]:
    rows = requests.get(f"{lms.url}/gradebook.json", timeout=10).json()
    return [r for r in rows if r.get("user_id") == user_id and r.get("course") == CONTEXT]


def wait_for_grade(lms, user_id: str, fraction: float, timeout: float = GRADE_TIMEOUT) -> dict:
    """The LMS gradebook row of `user_id` once it reads `fraction` of the points."""
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        rows = gradebook_rows(lms, user_id)
        for row in rows:
            given, out_of = row.get("score"), row.get("out_of")
            if given is not None and out_of and abs(given / out_of - fraction) < 1e-6:
                return row
        time.sleep(2)
    raise AssertionError(
        f"no grade of {fraction:.0%} for {user_id} reached the LMS gradebook within "
        f"{timeout}s (rows for them: {rows}); the learnhub-grading service autogrades "
        "submissions and sends scores through the grade outbox: is it running?"
    )


def show_gradebook(context, lms):
    page = context.new_page()
    page.goto(f"{lms.url}/gradebook")
    return page


# ---------------------------------------------------------------- the instructor


def course_id_of(hub) -> str:
    rows = hub.query("select id from learnhub_courses where context_id = ?", CONTEXT)
    assert len(rows) == 1, f"the course of context {CONTEXT}: {rows}"
    return rows[0][0]


def open_formgrader(context, page, tool, hub):
    """Formgrader in a new first-party tab, as JupyterLab opens it: the Course menu's item
    when the learner image has it, else a form POST of the launch token (never in a URL)
    to the hub, which is what that menu item does."""
    course_id = course_id_of(hub)
    with context.expect_page(timeout=STEP_TIMEOUT_MS) as opened:
        if menu_has(tool, "Course", FORMGRADER_ITEM):
            tool.locator(FORMGRADER_ITEM).click()
        else:
            tool_frame(page).evaluate(
                """([action, token]) => {
                    const form = document.createElement('form');
                    form.method = 'POST'; form.action = action; form.target = '_blank';
                    const field = document.createElement('input');
                    field.type = 'hidden'; field.name = 'token'; field.value = token;
                    form.append(field); document.body.append(form); form.submit(); form.remove();
                }""",
                [f"{hub.url}/hub/learnhub/courses/{course_id}/formgrader", lab_token(page)],
            )
    formgrader = opened.value
    formgrader.wait_for_url(f"**/user/grader-{course_id}/formgrader/**", timeout=180_000)
    return formgrader


def menu_has(tool, menu: str, item: str) -> bool:
    """Open `menu` of JupyterLab's menu bar if there is one; whether it holds `item`."""
    entry = tool.locator(".lm-MenuBar-item", has_text=menu)
    if not entry.count():
        return False
    entry.first.click()
    if tool.locator(item).count():
        return True
    tool.locator("body").press("Escape")
    return False


def formgrader_row(formgrader):
    return formgrader.locator("#main-table tr", has=formgrader.locator(
        "td.name", has_text=ASSIGNMENT
    ))  # fmt: skip


def formgrader_action(formgrader, column: str, success: str) -> None:
    """Press a manage-assignments button and wait for formgrader's success dialog."""
    formgrader_row(formgrader).locator(f"td.{column} a").click()
    dialog = formgrader.locator("#success-modal")
    try:
        dialog.wait_for(state="visible", timeout=180_000)
    except Exception:
        error = formgrader.locator("#error-modal")
        if error.is_visible():
            raise AssertionError(f"formgrader: {error.inner_text()}") from None
        raise
    assert success in dialog.inner_text(), dialog.inner_text()
    dialog.get_by_role("button", name="OK").click()
    dialog.wait_for(state="detached", timeout=STEP_TIMEOUT_MS)


def test_instructor_releases_the_assignment(
    allowed_browser, course_hub, course_lms, journey, course
):
    """Cookies allowed: formgrader is a first-party tab of its own, as LMSs open tools."""
    page = allowed_browser.new_page()
    with journey.step("launch as instructor", page):
        tool = launch(page, course_lms, user=INSTRUCTOR, role="instructor")
    with journey.step("JupyterLab loads"):
        wait_for_lab(page, tool)
    with journey.step("formgrader opens in a new tab"):
        formgrader = open_formgrader(allowed_browser, page, tool, course_hub)
        journey.page = formgrader
    with journey.step("formgrader is not blank"):
        formgrader.get_by_role("heading", name="Manage Assignments").wait_for(
            timeout=STEP_TIMEOUT_MS
        )
        formgrader_row(formgrader).wait_for(timeout=STEP_TIMEOUT_MS)
        assert formgrader_row(formgrader).locator("td.status").inner_text().strip() == "draft"
    with journey.step("generate the student version"):
        formgrader_action(formgrader, "assign", "Successfully created the student version")
    with journey.step("release the assignment"):
        formgrader_row(formgrader).locator("td.release a").wait_for(timeout=STEP_TIMEOUT_MS)
        formgrader_action(formgrader, "release", "Successfully released")
        status = formgrader_row(formgrader).locator("td.status")
        status.filter(has_text="released").wait_for(timeout=STEP_TIMEOUT_MS)
    course["course_id"] = course_id_of(course_hub)
    course["released"] = True


# ---------------------------------------------------------------- the learner


@pytest.fixture
def learner_id(browser):
    return PROFILES["cookies-blocked" if browser.blocked else "cookies-allowed"]


def watch_cookies(page, hub) -> list[str]:
    sent: list[str] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.url)
            if r.url.startswith(hub.url) and "cookie" in r.all_headers()
            else None
        ),
    )
    return sent


def test_learner_works_and_submits(browser, course_hub, course_lms, journey, course, learner_id):
    if not course.get("released"):
        pytest.fail("the instructor's release failed (see the test before): nothing to fetch")
    page = browser.new_page()
    cookies_sent = watch_cookies(page, course_hub)

    with journey.step("launch as learner (LTI 1.3)", page):
        if browser.blocked:
            page.goto(f"{course_lms.url}/course")
            assert page.evaluate("document.cookie = 'probe=1'; document.cookie") == ""
        tool = launch(page, course_lms, user=learner_id, role="learner")
    with journey.step("the waiting page shows progress"):
        tool.get_by_role("heading", name="Opening your workspace").wait_for(timeout=30_000)
        assert tool.locator("progress#progress").count() == 1
    with journey.step("JupyterLab loads"):
        wait_for_lab(page, tool)
    with journey.step("open the Assignments panel"):
        open_assignment_list(tool)
        released = assignment_row(tool, "released_assignments_list")
        released.wait_for(timeout=STEP_TIMEOUT_MS)
        # The course by its title, in the course dropdown and in the assignment's row.
        assert tool.locator("#course_list_default").inner_text() == COURSE_TITLE
        assert released.locator(".item_course").first.inner_text() == COURSE_TITLE
    with journey.step("fetch the assignment"):
        row = assignment_row(tool, "released_assignments_list")
        row.get_by_role("button", name="Fetch").click()
        assignment_row(tool, "fetched_assignments_list").wait_for(timeout=STEP_TIMEOUT_MS)
    with journey.step("open the notebook"):
        open_notebook(tool)
    with journey.step("type an answer"):
        editor = answer_cell(tool).locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(ANSWER)
        assert "celsius * 9 / 5 + 32" in editor.inner_text()
    with journey.step("run the cell and see the output"):
        page.keyboard.press("Shift+Enter")
        output = answer_cell(tool).locator(".jp-OutputArea-output")
        output.filter(has_text="212.0").wait_for(timeout=120_000)
    with journey.step("save"):
        page.keyboard.press("Control+S")
        tool.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=30_000)
        saved = api(page, "GET", f"api/contents/{FOLDER}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
        assert saved["status"] == 200, saved
        assert "celsius * 9 / 5 + 32" in saved["body"]

    with journey.step("reload the frame: it sends the learner back to the course"):
        # The frame's address has no token any more (it is never kept in the address bar
        # or a cookie), so a reload reaches the hub's sign-in page, which says how to
        # come back: from the LMS.
        frame = tool_frame(page)
        frame.goto(frame.url)
        tool.get_by_text("Learners: open LearnHub from your course").wait_for(timeout=30_000)
    with journey.step("launch again from the LMS"):
        tool = launch(page, course_lms, user=learner_id, role="learner")
        wait_for_lab(page, tool)
    with journey.step("the work is still there"):
        open_assignment_list(tool)
        open_notebook(tool)
        answer_cell(tool).filter(has_text="celsius * 9 / 5 + 32").wait_for(timeout=30_000)

    with journey.step("download the notebook from the file browser"):
        path = f"{FOLDER}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
        expected = api(page, "GET", f"files/{path}")
        tool.locator(".jp-SideBar [data-id='filebrowser']").click()
        run_command(tool, "File", "Open from Path")
        dialog = tool.locator(".jp-Dialog")
        dialog.locator("input").fill(path.rsplit("/", 1)[0] + "/")
        dialog.get_by_role("button", name="Open").click()
        item = tool.locator(".jp-DirListing-item", has_text=f"{ASSIGNMENT}.ipynb").first
        item.click(button="right")
        with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
            tool.locator(".lm-Menu-item", has_text="Download").first.click()
        got = download.value.path().read_bytes()
        assert expected["status"] == 200, expected
        assert got == expected["body"].encode(), (
            f"downloaded {len(got)} bytes, the file has {len(expected['body'].encode())}"
        )
        cells = json.loads(got)["cells"]
        assert any("celsius * 9 / 5 + 32" in "".join(c["source"]) for c in cells)

    with journey.step("submit from the Assignments panel"):
        open_assignment_list(tool)
        row = assignment_row(tool, "fetched_assignments_list")
        row.get_by_role("button", name="Submit").click()
        assignment_row(tool, "submitted_assignments_list").wait_for(timeout=STEP_TIMEOUT_MS)
    course.setdefault("submitted", []).append(learner_id)

    with journey.step("the grade appears in the LMS gradebook"):
        wait_for_grade(course_lms, learner_id, AUTOGRADED_SCORE / POINTS)
        gradebook = show_gradebook(browser, course_lms)
        journey.page = gradebook
        assert gradebook.locator(f"tr[data-user='{learner_id}']").count() >= 1
    with journey.step("Course > My Submissions shows the same grade, in a new tab"):
        with browser.expect_page(timeout=STEP_TIMEOUT_MS) as opened:
            run_command(tool, "Course", "My Submissions")
        mine = opened.value
        journey.page = mine
        mine.get_by_role("heading", name="My submissions").wait_for(timeout=STEP_TIMEOUT_MS)
        row = mine.locator("tr", has_text=ASSIGNMENT).first
        assert "Graded automatically" in row.inner_text(), row.inner_text()
        assert f"{AUTOGRADED_SCORE:g} / {POINTS:g}" in row.inner_text(), row.inner_text()
        assert mine.url.endswith("/learnhub/my-submissions") and "token" not in mine.url
        # Refresh posts the session's token again, from this page.
        mine.get_by_role("button", name="Refresh").click()
        mine.locator("tr", has_text=ASSIGNMENT).first.wait_for(timeout=STEP_TIMEOUT_MS)

    if browser.blocked:
        assert cookies_sent == [], "a Cookie header reached the hub"


def test_instructor_with_every_cookie_blocked_uses_formgrader(
    playwright, tmp_path, course_hub, course_lms, journey, course
):
    """Issue 13 item 8: formgrader in a browser that refuses every cookie. Its pages hold
    the grader server's token and post it on with each navigation (links, and the scripts'
    own `window.location`); its API calls carry it in a header."""
    submitted = course.get("submitted", [])
    if not submitted:
        pytest.fail("no learner submitted (see the tests before): nothing to open")
    context = open_profile(playwright, tmp_path / "blocked-staff", blocked=True)
    try:
        page = context.new_page()
        with journey.step("launch as instructor, every cookie blocked", page):
            tool = launch(page, course_lms, user=INSTRUCTOR, role="instructor")
            wait_for_lab(page, tool)
        with journey.step("formgrader opens in a new tab, its assignments listed"):
            formgrader = open_formgrader(context, page, tool, course_hub)
            journey.page = formgrader
            cookies_sent = watch_cookies(formgrader, course_hub)
            formgrader_row(formgrader).wait_for(timeout=3 * STEP_TIMEOUT_MS)
        links = formgrader.locator("#main-table a", has_text="Submission #")
        with journey.step("the gradebook, by its links, down to the submissions"):
            deadline = time.monotonic() + GRADE_TIMEOUT
            while True:
                # The side bar's link ("Manual Grading" or "Gradebook", by page).
                formgrader.locator('a[href$="/formgrader/gradebook"]').first.click()
                formgrader.wait_for_url("**/formgrader/gradebook", timeout=STEP_TIMEOUT_MS)
                formgrader.locator("#main-table a", has_text=ASSIGNMENT).first.click()
                formgrader.wait_for_url(f"**/gradebook/{ASSIGNMENT}", timeout=STEP_TIMEOUT_MS)
                formgrader.locator("#main-table a", has_text=ASSIGNMENT).first.click()
                formgrader.wait_for_url(
                    f"**/gradebook/{ASSIGNMENT}/{ASSIGNMENT}", timeout=STEP_TIMEOUT_MS
                )
                formgrader.wait_for_load_state("networkidle")
                if links.count() >= len(submitted) or time.monotonic() > deadline:
                    break
                time.sleep(5)
            assert links.count() >= len(submitted), "the submissions were not autograded"
        with journey.step("a submission opens, with its grades loaded"):
            links.first.click()
            score = formgrader.locator(f"input#{MANUAL_CELL}")
            score.wait_for(timeout=STEP_TIMEOUT_MS)
            # The grades come from formgrader's API, asked with the token in a header.
            formgrader.wait_for_function(
                "id => document.getElementById(id).hasAttribute('placeholder')", arg=MANUAL_CELL
            )
        with journey.step("formgrader's script moves on by window.location"):
            submission = formgrader.url
            nxt = formgrader.locator("li.next a").get_attribute("href")
            formgrader.evaluate("href => { window.location = href; }", nxt)
            # The next submission, or the list after the last one: a redirect, followed
            # with the token as well.
            formgrader.wait_for_url(
                lambda url: url != submission and "/formgrader/" in url,
                timeout=STEP_TIMEOUT_MS,
            )
            formgrader.wait_for_load_state("networkidle")
            assert formgrader.locator("#learnhub-session").count() == 1, formgrader.url
        with journey.step("a link opened in a new tab (Ctrl+click) has the session there"):
            with context.expect_page(timeout=STEP_TIMEOUT_MS) as opened:
                formgrader.locator('a[href$="/formgrader/gradebook"]').first.click(
                    modifiers=["Control"]
                )
            journey.page = tab = opened.value
            tab.wait_for_url("**/formgrader/gradebook", timeout=STEP_TIMEOUT_MS)
            tab.locator("#main-table a", has_text=ASSIGNMENT).first.wait_for(
                timeout=STEP_TIMEOUT_MS
            )
            assert tab.locator("#learnhub-session").count() == 1, tab.url
        assert "/hub/login" not in formgrader.url
        assert cookies_sent == [], "a Cookie header reached the hub or a server"
        assert context.cookies() == []
    finally:
        context.close()


def test_instructor_grades_and_releases_feedback(
    allowed_browser, course_hub, course_lms, journey, course
):
    submitted = course.get("submitted", [])
    if not submitted:
        pytest.fail("no learner submitted (see the tests before): nothing to grade")
    page = allowed_browser.new_page()
    with journey.step("launch as instructor", page):
        tool = launch(page, course_lms, user=INSTRUCTOR, role="instructor")
        wait_for_lab(page, tool)
    with journey.step("open formgrader"):
        formgrader = open_formgrader(allowed_browser, page, tool, course_hub)
        journey.page = formgrader
        # Its assignment list asks the course service; a loaded CI machine takes its time.
        formgrader_row(formgrader).wait_for(timeout=3 * STEP_TIMEOUT_MS)
    base = formgrader.url.split("/formgrader/", 1)[0] + "/formgrader"
    with journey.step("the submissions are autograded"):
        # Autograding is the grading service's work; formgrader lists a notebook's
        # submissions once they are in the gradebook.
        deadline = time.monotonic() + GRADE_TIMEOUT
        links = formgrader.locator("#main-table a", has_text="Submission #")
        while time.monotonic() < deadline:
            formgrader.goto(f"{base}/gradebook/{ASSIGNMENT}/{ASSIGNMENT}")
            formgrader.locator("#main-table").wait_for(timeout=STEP_TIMEOUT_MS)
            formgrader.wait_for_load_state("networkidle")
            if links.count() >= len(submitted):
                break
            time.sleep(5)
        assert links.count() >= len(submitted), (
            f"formgrader lists {links.count()} autograded submissions of {len(submitted)} "
            f"within {GRADE_TIMEOUT}s: the learnhub-grading service autogrades them"
        )
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    for number, href in enumerate(hrefs, 1):
        with journey.step(f"grade the manual answer of submission {number}"):
            formgrader.goto(href if href.startswith("http") else f"{course_hub.url}{href}")
            score = formgrader.locator(f"input#{MANUAL_CELL}")
            score.wait_for(timeout=STEP_TIMEOUT_MS)
            # Formgrader's view fills the input from the gradebook once the grades have
            # loaded, and only then listens for changes: type after that.
            formgrader.wait_for_load_state("networkidle")
            formgrader.wait_for_function(
                "id => document.getElementById(id).hasAttribute('placeholder')", arg=MANUAL_CELL
            )
            with formgrader.expect_response(
                lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT",
                timeout=STEP_TIMEOUT_MS,
            ) as saved:
                score.fill(str(int(MANUAL_SCORE)))
                score.press("Tab")
            assert saved.value.ok, saved.value.status
            assert json.loads(saved.value.text())["manual_score"] == MANUAL_SCORE
    with journey.step("generate feedback"):
        formgrader.goto(f"{base}/")
        formgrader_row(formgrader).wait_for(timeout=STEP_TIMEOUT_MS)
        formgrader_action(formgrader, "generate-feedback", "Successfully generated feedback")
    with journey.step("release feedback"):
        formgrader_action(formgrader, "release-feedback", "Successfully released feedback")
    course["feedback"] = True
    with journey.step("the updated grades reach the LMS gradebook"):
        for learner in submitted:
            wait_for_grade(course_lms, learner, (AUTOGRADED_SCORE + MANUAL_SCORE) / POINTS)
        journey.page = show_gradebook(allowed_browser, course_lms)


def test_learner_fetches_feedback(browser, course_hub, course_lms, journey, course, learner_id):
    if learner_id not in course.get("submitted", []):
        pytest.fail(f"{learner_id} did not submit (see the tests before)")
    if not course.get("feedback"):
        pytest.fail("the instructor released no feedback (see the test before)")
    page = browser.new_page()
    with journey.step("launch as learner", page):
        tool = launch(page, course_lms, user=learner_id, role="learner")
        wait_for_lab(page, tool)
    with journey.step("fetch feedback from the Assignments panel"):
        open_assignment_list(tool)
        row = assignment_row(tool, "submitted_assignments_list")
        row.get_by_role("button", name="Fetch Feedback").click()
        row.get_by_text("view feedback").first.wait_for(timeout=STEP_TIMEOUT_MS)
    with journey.step("the feedback is in the learner's files"):
        folder = f"api/contents/{FOLDER}/{ASSIGNMENT}/feedback"
        listing = api(page, "GET", folder)
        assert listing["status"] == 200, listing
        (timestamp,) = [e["name"] for e in json.loads(listing["body"])["content"]]
        html = api(
            page,
            "GET",
            f"files/{FOLDER}/{ASSIGNMENT}/feedback/{timestamp}/{ASSIGNMENT}.html",
        )
        assert html["status"] == 200, html
        # The answer is syntax-highlighted into spans: compare the page's text.
        text = unescape(re.sub(r"<[^>]+>", "", html["body"]))
        assert "celsius * 9 / 5 + 32" in text
        total = AUTOGRADED_SCORE + MANUAL_SCORE
        assert f"{ASSIGNMENT} (Score: {total} / {POINTS})" in text, text[:2000]


def test_an_assignment_link_opens_its_notebook(browser, course_hub, course_lms, journey, course):
    """Issue 13 item 3: a learner who opens the assignment's own LMS link lands in its
    notebook, fetched for them, inside the LMS frame, with cookies blocked or allowed."""
    if not course.get("released"):
        pytest.fail("the instructor's release failed (see the tests before)")
    page = browser.new_page()
    learner = f"e2e-linked-{'blocked' if browser.blocked else 'allowed'}"
    with journey.step("launch from the assignment's link", page):
        tool = launch(page, course_lms, user=learner, role="learner", assignment=ASSIGNMENT)
    with journey.step("the notebook opens, fetched"):
        answer_cell(tool).wait_for(timeout=LAB_TIMEOUT_MS)
        url = tool_frame(page).url
        assert f"/lab/tree/{FOLDER}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb" in unquote(url), url
        assert "token" not in url, "the token stayed in the frame's address"


def test_instructor_adds_an_assignment_link_by_deep_linking(
    browser, course_hub, course_lms, journey, course
):
    """Issue 13 item 1 inside the LMS frame, cookies blocked or allowed: the instructor
    picks the assignment in LearnHub's picker, the LMS makes its link and its column from
    the signed answer, and a learner's launch of that link opens the notebook."""
    if not course.get("released"):
        pytest.fail("the instructor's release failed (see the tests before)")
    page = browser.new_page()
    profile = "blocked" if browser.blocked else "allowed"
    before = set(course_lms.links)
    with journey.step("the LMS opens LearnHub's picker", page):
        page.goto(f"{course_lms.url}/course")
        page.get_by_role("button", name="Add assignment links (LTI 1.3 deep linking)").click()
        tool = page.frame_locator("iframe[name=tool]")
        tool.get_by_role("heading", name="Add LearnHub assignments").wait_for(
            timeout=STEP_TIMEOUT_MS
        )
    with journey.step("pick the assignment"):
        choice = tool.locator(f'input[name=assignment][value="{ASSIGNMENT}"]')
        assert "10 points" in tool.locator("label", has=choice).inner_text()
        choice.check()
        tool.get_by_role("button", name="Add to course").click()
    with journey.step("the LMS makes the link and its column"):
        tool.get_by_text("Added 1 link").wait_for(timeout=STEP_TIMEOUT_MS)
        (made,) = set(course_lms.links) - before
        link = course_lms.links[made]
        column = course_lms.lineitems[CONTEXT][link.lineitem]
        assert (link.custom, column["scoreMaximum"]) == ({"assignment": ASSIGNMENT}, POINTS)
        page.goto(f"{course_lms.url}/course")
        listed = page.locator(f'#links li[data-link="{made}"]')
        assert column["label"] in listed.inner_text()
    with journey.step("a learner's launch of the link opens the notebook"):
        page.evaluate(
            "user => document.querySelectorAll('form input[name=user]')"
            ".forEach(i => i.value = user)",
            f"e2e-deeplinked-{profile}",
        )
        listed.get_by_role("button", name="Launch as learner").click()
        answer_cell(tool).wait_for(timeout=LAB_TIMEOUT_MS)
        url = tool_frame(page).url
        assert f"/lab/tree/{FOLDER}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb" in unquote(url), url
