"""The privacy policy from JupyterLab's Help menu, in an LMS frame, with and without cookies."""

import pytest

pytestmark = pytest.mark.e2e

LAB_TIMEOUT_MS = 150_000
PRIVACY_ITEM = '.lm-Menu-item[data-command="learnhub:open-privacy-policy"]'


def test_help_menu_opens_the_privacy_policy_in_a_new_tab(browser, hub, lms, journey):
    page = browser.new_page()
    with journey.step("launch as learner (LTI 1.1)", page):
        page.goto(f"{lms.url}/course")
        page.get_by_role("button", name="Launch as learner (LTI 1.1)").click()
        tool = page.frame_locator("iframe[name=tool]")
        tool.locator(".jp-DirListing-content").wait_for(timeout=LAB_TIMEOUT_MS)
    with journey.step("Privacy Policy in the Help menu"):
        tool.locator(".lm-MenuBar-item", has_text="Help").click()
        tool.locator(PRIVACY_ITEM).wait_for(timeout=30_000)
        assert tool.locator(PRIVACY_ITEM).inner_text().strip() == "Privacy Policy"

    elsewhere = []
    browser.on(
        "request",
        lambda r: None if r.url.startswith((hub.url, lms.url)) else elsewhere.append(r.url),
    )
    with journey.step("the policy opens in a new tab"):
        with browser.expect_page() as opened:
            tool.locator(PRIVACY_ITEM).click()
        policy = opened.value
        journey.page = policy
        policy.wait_for_load_state()
        assert policy.url == f"{hub.url}/hub/privacy"
        assert policy.get_by_role("heading", name="Privacy policy", exact=True).is_visible()
        assert policy.get_by_text(
            "We honor Do Not Track (DNT) and Global Privacy Control"
        ).is_visible()
    # The learner's JupyterLab stays where it was, in its frame.
    assert "/lab" in page.frame(name="tool").url
    assert elsewhere == [], "a page reached another origin"
