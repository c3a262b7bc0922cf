"""Values from the LMS and from learners on formgrader's pages: shown as text, never run."""

from __future__ import annotations

import nbformat
import pytest

from learnhub.demo.constants import Role
from learnhub.demo.lms import DemoLMS
from tests.e2e.conftest import Journey
from tests.integration.test_course_workflow import (
    ASSIGNMENT,
    Formgrader,
    graded_row,
    learner_api,
    source_notebook,
    until,
)
from tests.support import (
    CookielessClient,
    launch_from,
    lti13_launch,
    registered_hub,
    wait_until_ready,
)

pytestmark = pytest.mark.e2e

CONTEXT = "py-xss"
# What the review sent as names: a script and an image whose error handler runs code.
SCRIPT_NAME = 'Alice <script>document.title="name-script"</script>'
IMAGE_NAME = "<img src=x onerror=\"document.title='name-img'\"> Mallory"
# What a learner can write into their own notebook: markdown and an HTML output.
MARKDOWN_ANSWER = (
    "**Bold** answer <script>document.title='markdown-script'</script>"
    "<img src=x onerror=\"document.title='markdown-img'\">"
)
CODE_ANSWER = (
    "from IPython.display import HTML, display\n"
    "display(HTML(\"<b>shown</b><script>document.title='output-script'</script>"
    '<img src=x onerror=\\"document.title=\'output-img\'\\">"))\n'
    "def double(x):\n    return x + x"
)


@pytest.fixture(scope="module")
def staff_lms(loop_thread):
    peer = DemoLMS(consumer_key="xss-consumer", client_id="xss-tool", deployment_id="d-xss")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def staff_hub(staff_lms, tmp_path_factory):
    template = tmp_path_factory.mktemp("xss-template")
    (template / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), template / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    instance = registered_hub(tmp_path_factory.mktemp("xss-hub"), staff_lms,
                              courses={"template": str(template)})  # fmt: skip
    instance.start()
    yield instance
    instance.shutdown_everything()


def submit(hub, launch, course_id: str) -> None:
    """The learner fetches the assignment, writes markup into it and submits it."""
    which = {"course_id": course_id, "assignment_id": ASSIGNMENT}
    fetched = learner_api(launch, "POST", "assignments/fetch", data=which).json()
    assert fetched["success"], fetched
    # In the learner's folder of the course (named after its title), as the list says.
    (mine,) = [a for a in fetched["value"] if a["status"] == "fetched"]
    path = f"api/contents/{mine['path']}/{ASSIGNMENT}.ipynb"
    notebook = learner_api(launch, "GET", path).json()["content"]
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id == "double":
            cell["source"] = CODE_ANSWER
        elif grade_id == "why":
            cell["source"] = MARKDOWN_ANSWER
    saved = learner_api(launch, "PUT", path, json={"type": "notebook", "content": notebook})
    assert saved.status_code == 200, saved.text
    submitted = learner_api(launch, "POST", "assignments/submit", data=which).json()
    assert submitted["success"], submitted


TITLES = ("name-script", "name-img", "markdown-script", "markdown-img", "output-script",
          "output-img")  # fmt: skip


def test_formgrader_shows_lms_names_and_learner_markup_as_text(
    staff_hub, staff_lms, allowed_browser
):
    hub = staff_hub
    journey = Journey("test_formgrader_shows_lms_names_and_learner_markup_as_text")
    with journey.step("instructor releases the assignment"):
        instructor = launch_from(
            hub.url,
            lti13_launch(CookielessClient(), staff_lms, user_id="t-xss",
                         roles=[Role.INSTRUCTOR], context=CONTEXT),
        )  # fmt: skip
        (course_id,) = hub.query("select id from learnhub_courses where context_id = ?", CONTEXT)[0]
        formgrader = Formgrader(hub, course_id, instructor.token)
        formgrader.action(f"assignment/{ASSIGNMENT}/assign")
        formgrader.action(f"assignment/{ASSIGNMENT}/release")

    learners = {}
    with journey.step("learners with markup for names submit markup"):
        client = CookielessClient()
        # Both from the instructor's platform (an LTI 1.1 launch of the same LMS is
        # another platform, so another course); lis_person_name_full reaches the same
        # Identity.name as the LTI 1.3 name claim.
        alice = launch_from(
            hub.url, lti13_launch(client, staff_lms, user_id="s-alice", context=CONTEXT,
                                  name=SCRIPT_NAME),
        )  # fmt: skip
        mallory = launch_from(
            hub.url, lti13_launch(client, staff_lms, user_id="s-mallory", context=CONTEXT,
                                  name=IMAGE_NAME),
        )  # fmt: skip
        for who, launch in (("alice", alice), ("mallory", mallory)):
            wait_until_ready(client, launch)
            submit(hub, launch, course_id)
            learners[who] = launch.username
        for username in learners.values():
            until(lambda username=username: graded_row(formgrader, username, 2.0))
        # The gradebook holds the names as the LMS sent them: nothing was lost on the way.
        students = {s["id"]: s for s in formgrader.call("GET", "students")}
        for who, name in (("alice", SCRIPT_NAME), ("mallory", IMAGE_NAME)):
            student = students[learners[who]]
            stored = " ".join(p for p in (student["first_name"], student["last_name"]) if p)
            assert stored == name

    page = allowed_browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with journey.step("instructor opens formgrader in a tab of its own", page):
        page.goto(f"{hub.url}/hub/privacy")
        with page.expect_navigation(url=f"**/user/grader-{course_id}/formgrader/**"):
            page.evaluate(
                """([action, token]) => {
                    const form = document.createElement('form');
                    form.method = 'POST'; form.action = action;
                    const field = document.createElement('input');
                    field.type = 'hidden'; field.name = 'token'; field.value = token;
                    form.append(field); document.body.append(form); form.submit();
                }""",
                [f"/hub/learnhub/courses/{course_id}/formgrader", instructor.token],
            )

    notebooks = formgrader.call("GET", f"submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    for who, username in learners.items():
        submission = next(n["id"] for n in notebooks if n["student"] == username)
        with journey.step(f"instructor opens {who}'s submission", page):
            response = page.goto(
                f"{hub.url}/user/grader-{course_id}/formgrader/submissions/{submission}/"
            )
            assert response.status == 200
            # formgrader's own scripts ran (they fill in the autograded score) ...
            page.wait_for_function(
                "() => document.querySelector('input.score#test_double')?.placeholder === '2'",
                timeout=60_000,
            )
            # ... and nothing the LMS or the learner wrote did.
            assert page.title() == ASSIGNMENT, page.title()
            assert dialogs == []
            policy = response.headers["content-security-policy"]
            assert (
                "script-src 'self' 'nonce-" in policy
                and "unsafe-inline" not in policy.split("style-src")[0]
            )
            # nbgrader shows "last, first": both exactly as the LMS sent them, as text.
            shown = page.locator("a.name-shown").first.text_content()
            first, _, last = (SCRIPT_NAME if who == "alice" else IMAGE_NAME).rpartition(" ")
            assert f"{last}, {first}" in " ".join(shown.split()), shown
            assert page.locator("script", has_text="name-script").count() == 0
            body = page.locator("#notebook-container, body").first.inner_text()
            assert "Bold" in body and "shown" in body
            assert page.locator("img[onerror]").count() == 0
    with journey.step("the gradebook's list of submissions", page):
        page.goto(
            f"{hub.url}/user/grader-{course_id}/formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"
        )
        page.wait_for_selector("td a.name-shown", state="attached", timeout=60_000)
        names = page.locator("td a.name-shown").all_text_contents()
        assert any('<script>document.title="name-script"</script>, Alice' in n for n in names)
        assert page.title() not in TITLES and dialogs == []
