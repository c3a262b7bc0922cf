"""Bad launches in the LMS frame get a page that says what went wrong and what to do.

The bad LTI 1.1 launches are form posts from the LMS's course page into its frame, as
LMSs send launches: a real cross-site post. (Not pages served by Playwright's request
interception: Chromium then fails the frame's cross-site POST navigation.)
"""

from __future__ import annotations

import time

import pytest

from learnhub.demo.constants import Role
from learnhub.demo.lti11 import lti11_launch_params, sign_lti11_launch
from learnhub.demo.lti13 import PendingLaunch
from tests.e2e.conftest import ARTIFACTS, axe_violations, describe, open_profile, serious

pytestmark = pytest.mark.e2e

HEADING = "This activity could not be opened"
WHAT_TO_DO = "Go back to your course and open the activity again"
# What a stack trace or a server's internals look like on a page.
INTERNALS = ("Traceback", 'File "', "tornado", "Exception", "jupyterhub/", "500: Internal")


def lti11_fields(lms, *, user_id: str, secret: str) -> dict[str, str]:
    """The fields of an LTI 1.1 launch signed with `secret`."""
    params = lti11_launch_params(
        user_id=user_id,
        roles=(Role.LEARNER,),
        context_id=lms.course_id,
        context_title=lms.course_title,
        resource_link_id=f"{lms.course_id}-notebooks",
        extra={"launch_presentation_document_target": "iframe"},
    )
    return sign_lti11_launch(lms.tool_lti11_launch_url, lms.consumer_key, secret, params)


def post_launch(page, lms, fields: dict[str, str], target: str = "tool"):
    """From the LMS course page, post `fields` to the hub's LTI 1.1 launch URL in `target`."""
    if not page.url.startswith(f"{lms.url}/course"):
        page.goto(f"{lms.url}/course")
    page.evaluate(
        """([action, fields, target]) => {
            const form = document.createElement('form');
            form.method = 'POST'; form.action = action; form.target = target;
            for (const [name, value] of Object.entries(fields)) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.append(input);
            }
            document.body.append(form);
            HTMLFormElement.prototype.submit.call(form);
            form.remove();
        }""",
        [lms.tool_lti11_launch_url, fields, target],
    )
    return page.frame_locator("iframe[name=tool]")


def assert_friendly_error(page, tool, *, says: str) -> str:
    """The error page is in the frame, names the problem and the way out, and no internals."""
    tool.get_by_role("heading", name=HEADING).wait_for(timeout=30_000)
    text = tool.locator("body").inner_text()
    assert says in text, text
    assert WHAT_TO_DO in text, text
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} on the error page:\n{text}"
    # Rendered in the frame (not refused by frame-ancestors), on the hub's origin.
    frame = page.frame(name="tool")
    assert "/hub/lti" in frame.url, frame.url
    return text


def test_wrong_signature_shows_the_friendly_error_in_the_frame(browser, hub, lms, journey):
    page = browser.new_page()
    statuses = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if r.url.endswith("/hub/lti11/launch") else None,
    )
    forged = lti11_fields(lms, user_id="e2e-forger", secret="not-the-consumer-secret")
    with journey.step("an LTI 1.1 launch signed with the wrong secret", page):
        tool = post_launch(page, lms, forged)
    with journey.step("the error page explains it in the frame"):
        text = assert_friendly_error(page, tool, says="could not confirm")
        assert "Invalid OAuth signature" in text
        assert statuses == [401], statuses


def test_replayed_launch_is_refused_with_a_friendly_error(browser, hub, lms, journey):
    page = browser.new_page()
    # The same signed form twice: the second use of its nonce is a replay. The user is the
    # demo course's learner, whose server the other browser tests start too.
    launch = lti11_fields(lms, user_id="demo-learner", secret=lms.consumer_secret)
    with journey.step("the launch, a first time", page):
        tool = post_launch(page, lms, launch)
        tool.locator("#status, .jp-DirListing-content").first.wait_for(timeout=60_000)
    with journey.step("the same launch again"):
        tool = post_launch(page, lms, launch)
    with journey.step("the error page says it was replayed"):
        assert_friendly_error(page, tool, says="replayed")


def test_expired_id_token_is_refused_with_a_friendly_error(browser, hub, lms, journey, monkeypatch):
    # The LMS runs in this process: give its id_tokens the times of one issued 15 minutes
    # ago (a platform whose clock is behind). State and nonce stay right.
    fresh = PendingLaunch.claims

    def stale(self, platform, *, nonce):
        claims = fresh(self, platform, nonce=nonce)
        now = int(time.time())
        return {**claims, "iat": now - 900, "exp": now - 600}

    monkeypatch.setattr(PendingLaunch, "claims", stale)
    page = browser.new_page()
    with journey.step("an LTI 1.3 launch whose id_token has expired", page):
        page.goto(f"{lms.url}/course")
        page.get_by_role("button", name="Launch as learner (LTI 1.3)").click()
        tool = page.frame_locator("iframe[name=tool]")
    with journey.step("the error page says it expired"):
        text = assert_friendly_error(page, tool, says="expired")
        assert "id_token has expired" in text


def test_learnhub_pages_pass_axe(playwright, tmp_path, hub, lms, journey):
    """axe-core in the same Chromium: no serious or critical violation on LearnHub's pages.

    JupyterLab's own violations are reported in test-artifacts/e2e/axe-jupyterlab.txt,
    not failed: they are JupyterLab's to fix.
    """
    # add_script_tag injects an inline script, which these pages' CSP refuses.
    context = open_profile(playwright, tmp_path / "axe", blocked=False, bypass_csp=True)
    page = context.new_page()
    found = {}
    try:
        with journey.step("hub login page", page):
            page.goto(f"{hub.url}/hub/login")
            page.get_by_role("heading", name="Sign in").wait_for()
            found["login"] = axe_violations(page)
        with journey.step("privacy policy"):
            page.goto(f"{hub.url}/hub/privacy")
            page.get_by_role("heading", name="Privacy policy", exact=True).wait_for()
            found["privacy"] = axe_violations(page)
        with journey.step("launch error page"):
            post_launch(page, lms, lti11_fields(lms, user_id="e2e-axe", secret="x"), "_self")
            page.get_by_role("heading", name=HEADING).wait_for()
            found["error"] = axe_violations(page)
        with journey.step("JupyterLab (reported, not failed)"):
            page.goto(f"{lms.url}/launch11?user=demo-learner&role=learner")
            page.locator(".jp-DirListing-content").wait_for(timeout=180_000)
            page.locator(".jp-LauncherCard").first.wait_for(timeout=30_000)
            lab = axe_violations(page)
            report = ARTIFACTS / "axe-jupyterlab.txt"
            report.write_text(describe(lab) + "\n" if lab else "no violations\n")
            print(
                f"JupyterLab: {len(serious(lab))} serious/critical axe violations:\n{describe(lab)}"
            )
    finally:
        context.close()
    failures = {name: serious(v) for name, v in found.items() if serious(v)}
    assert not failures, "\n".join(f"{name}:\n{describe(v)}" for name, v in failures.items())
