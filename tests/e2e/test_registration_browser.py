"""Registration by URL in Chromium: the demo LMS's administrator pastes LearnHub's
registration URL, the LMS frames LearnHub's registration page, the administrator confirms
inside the frame, and LearnHub's close message returns the LMS to its own page."""

from __future__ import annotations

import pytest

from tests.support import registration_url

pytestmark = pytest.mark.e2e


def test_an_lms_administrator_registers_learnhub_by_url(browser, hub, unregistered_lms, journey):
    lms = unregistered_lms
    page = browser.new_page()
    url = registration_url(hub, by="e2e-admin")

    with journey.step("paste the registration URL into the LMS", page):
        page.goto(f"{lms.url}/admin/register-tool")
        page.fill("#url", url)
        page.get_by_role("button", name="Register").click()
        tool = page.frame_locator("#tool")
        tool.get_by_role("heading", name="Register LearnHub with your LMS").wait_for(timeout=30_000)
        text = tool.locator("main").inner_text()
        assert "e2e-admin" in text, text
        assert lms.url in text, text

    with journey.step("confirm inside the LMS's frame"):
        tool.get_by_role("button", name="Register LearnHub").click()
        # registration-close.js posts org.imsglobal.lti.close; the LMS page goes on.
        page.wait_for_url(f"{lms.url}/admin/register-tool?closed=1", timeout=30_000)
        page.locator("#closed").wait_for()

    with journey.step("the LMS and LearnHub both know the registration"):
        (registration,) = lms.tool_registrations
        assert page.locator(f'#registrations li[data-client-id="{registration.client_id}"]').count()
        assert hub.query(
            "SELECT client_id FROM learnhub_lti13_platforms WHERE issuer = ?", lms.url
        ) == [(registration.client_id,)]
        # No page of the flow set a cookie, whatever the browser allows.
        assert browser.cookies() == []
