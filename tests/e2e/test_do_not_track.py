"""A browser that sends Do Not Track leaves the analytics tables as they were; one that does not
is counted."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DO_NOT_TRACK, open_profile
from tests.support import analytics_totals

pytestmark = pytest.mark.e2e

LAB_TIMEOUT_MS = 180_000
USER = "e2e-dnt-learner"
COUNTED = ("document", "xhr", "fetch", "eventsource", "websocket")


def launch_to_lab(page, hub, lms) -> None:
    page.goto(f"{lms.url}/course")
    page.evaluate(
        "user => document.querySelectorAll('form input[name=user]').forEach(i => i.value = user)",
        USER,
    )
    page.get_by_role("button", name="Launch as learner (LTI 1.3)").click()
    tool = page.frame_locator("iframe[name=tool]")
    tool.locator(".jp-DirListing-content").wait_for(timeout=LAB_TIMEOUT_MS)
    # Open one hub page too (the privacy policy, a counted page view when tracking is on).
    page.goto(f"{hub.url}/hub/privacy")


def test_do_not_track_leaves_analytics_unchanged(playwright, tmp_path, hub, lms, journey):
    """Cookies blocked, DNT and GPC on: the launch, the server start and the page view
    leave no trace; the same launch without DNT is counted."""
    before = analytics_totals(hub)
    dnt = open_profile(playwright, tmp_path / "dnt", blocked=True, extra_http_headers=DO_NOT_TRACK)
    try:
        page = dnt.new_page()
        sent = []
        # Pages and API calls; files served from Chromium's cache carry no request headers.
        page.on(
            "request",
            lambda r: (
                sent.append((r.url, r.all_headers().get("dnt")))
                if r.url.startswith(hub.url) and r.resource_type in COUNTED
                else None
            ),
        )
        with journey.step("launch with Do Not Track", page):
            launch_to_lab(page, hub, lms)
        with journey.step("the analytics tables are unchanged"):
            without = [url for url, dnt in sent if dnt != "1"]
            assert sent and not without, f"requests to the hub without DNT: {without}"
            assert analytics_totals(hub) == before
    finally:
        dnt.close()

    tracked = open_profile(playwright, tmp_path / "tracked", blocked=True)
    try:
        page = tracked.new_page()
        with journey.step("the same launch without Do Not Track", page):
            launch_to_lab(page, hub, lms)
        with journey.step("it is counted"):
            after = analytics_totals(hub)
            grew = {k for k, n in after.items() if n > before.get(k, 0)}
            assert ("launches", "1.3") in grew, grew
            assert any(metric == "page_views" for metric, _ in grew), grew
            assert after[("active_learners", "")] == before.get(("active_learners", ""), 0) + 1
    finally:
        tracked.close()
