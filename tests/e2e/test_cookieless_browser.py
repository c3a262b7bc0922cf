"""An LTI 1.3 launch in an LMS frame, in a real Chromium, with and without cookies."""

import pytest

pytestmark = pytest.mark.e2e

LAB_TIMEOUT_MS = 150_000


def test_learner_gets_jupyterlab_inside_the_lms_frame(browser, hub, lms, journey):
    page = browser.new_page()
    cookies_sent, elsewhere = [], []
    page.on(
        "request",
        lambda r: (
            cookies_sent.append(r.url)
            if r.url.startswith(hub.url) and "cookie" in r.all_headers()
            else None
        ),
    )
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((hub.url, lms.url, "data:", "blob:", "about:"))
            else elsewhere.append(r.url)
        ),
    )
    with journey.step("open the LMS course page", page):
        page.goto(f"{lms.url}/course")
        if browser.blocked:
            assert page.evaluate("document.cookie = 'probe=1'; document.cookie") == ""
    log_before = len(hub.log_path.read_text())

    with journey.step("launch as learner (LTI 1.3)"):
        page.get_by_role("button", name="Launch as learner (LTI 1.3)").click()
        tool = page.frame_locator("iframe[name=tool]")
    with journey.step("JupyterLab loads in the frame, kernel logos too"):
        tool.locator(".jp-DirListing-content").wait_for(timeout=LAB_TIMEOUT_MS)
        tool.locator(".jp-LauncherCard img").first.wait_for(timeout=30_000)
        # The frame is another origin: run the check inside it, not from the LMS page.
        frame = page.locator("iframe[name=tool]").element_handle().content_frame()
        frame.wait_for_function(
            "() => [...document.querySelectorAll('.jp-LauncherCard img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )

    assert "/lab" in frame.evaluate("() => window.location.pathname")
    assert "token" not in frame.evaluate("() => window.location.href")
    assert tool.get_by_text("Would you like to get notified").count() == 0
    assert elsewhere == [], "a page reached another origin"
    if browser.blocked:
        assert cookies_sent == [], "a Cookie header reached the hub"
    binding = "platform storage" if browser.blocked else "cookie"
    assert f"LTI 1.3 login state checked by {binding}" in hub.log_path.read_text()[log_before:]
