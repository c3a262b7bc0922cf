"""Chromium from Debian driven by Playwright: one profile that blocks every cookie, one default."""

import json
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


@pytest.fixture(scope="module")
def playwright():
    # Module scope: Playwright's sync API runs an event loop in this thread while it is
    # open, and later tests that start their own loop must not find it running.
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(params=["cookies-blocked", "cookies-allowed"])
def browser(request, playwright, tmp_path):
    """A fresh Chromium profile; `blocked` says whether it refuses every cookie."""
    blocked = request.param == "cookies-blocked"
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    if blocked:
        # Chromium's "Don't allow sites to save data": no cookies and no web storage.
        preferences = {"profile": {"default_content_setting_values": {"cookies": 2}}}
        (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    context.blocked = blocked
    yield context
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
