"""One learner in several tabs, each launched from an LMS frame of its own, in both cookie
profiles.

When a tab opens the workspace that another tab holds, JupyterLab's window resolver sends it
to a workspace of its own by a full page load of `lab/workspaces/auto-N?reset`; with web
storage shared between the tabs (Chromium's default) that load lost the launch token and
ended on the hub's sign-in page. Reset Application State reloads the page the same way.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

LAB_TIMEOUT_MS = 180_000
STEP_TIMEOUT_MS = 60_000
USERS = {"cookies-blocked": "e2e-tabs-blocked", "cookies-allowed": "e2e-tabs-allowed"}
TABS = 3
NEW_LAUNCHER = '.jp-FileBrowser-toolbar [data-command="launcher:create"]'
CONSOLE_CARD = '.jp-LauncherCard[data-category="Console"]'
RESET = "Reset Application State"
SIGN_IN = "/hub/login"


class Tab:
    """A browser tab on the LMS course page whose tool frame was launched as `user`."""

    def __init__(self, browser, lms, user: str):
        self.page = browser.new_page()
        # Every address the tool frame loads, without its query (where the token would be).
        self.visited: list[str] = []
        self.page.on(
            "framenavigated",
            lambda f: self.visited.append(f.url.split("?")[0]) if f.name == "tool" else None,
        )
        self.page.goto(f"{lms.url}/course")
        self.page.evaluate(
            "u => document.querySelectorAll('form input[name=user]').forEach(i => i.value = u)",
            user,
        )
        self.page.get_by_role("button", name="Launch as learner (LTI 1.3)").click()
        self.tool = self.page.frame_locator("iframe[name=tool]")

    @property
    def frame(self):
        return self.page.frame(name="tool")

    def settle(self) -> None:
        """Wait for JupyterLab or the hub's sign-in page in the frame; fail on the latter."""
        lab = self.tool.locator(".jp-DirListing-content")
        sign_in = self.tool.get_by_role("heading", name="Sign in")
        lab.or_(sign_in).first.wait_for(timeout=LAB_TIMEOUT_MS)
        signed_out = [url for url in self.visited if SIGN_IN in url]
        assert not signed_out, f"the frame went to the hub's sign-in page: {self.visited}"
        assert lab.is_visible(), f"no JupyterLab in the frame: {self.visited}"
        assert "token" not in self.frame.url, "the token stayed in the frame's address"
        # JupyterLab removes its splash once the layout is restored.
        self.tool.locator("#jupyterlab-splash").wait_for(state="detached", timeout=STEP_TIMEOUT_MS)

    def workspace(self) -> str:
        """The workspace JupyterLab was served for (its page config)."""
        return self.frame.evaluate(
            "() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
            "['workspace']"
        )

    def run_in_console(self, code: str, expected: str) -> None:
        """Open a Python console from a new launcher, run `code`, wait for `expected`."""
        # A tab in the background gets few animation frames, which menus and panels wait for.
        self.page.bring_to_front()
        consoles = self.tool.locator(".jp-CodeConsole")
        # Consoles of the restored layout are there already (settle waits for the restore);
        # the dock panel appends a new one after them.
        before = consoles.count()
        self.tool.locator(NEW_LAUNCHER).first.click()
        self.tool.locator(CONSOLE_CARD).filter(visible=True).first.click()
        console = consoles.nth(before)
        # The kernel's banner: the kernel answered over this tab's websocket, and the
        # console has set up the prompt it keeps.
        banner = console.locator(".jp-CodeConsole-banner").filter(has_text="Python 3")
        banner.wait_for(timeout=STEP_TIMEOUT_MS)
        prompt = console.locator(".jp-CodeConsole-promptCell .cm-content")
        prompt.click()
        prompt.fill(code)
        expect(prompt).to_have_text(code)
        prompt.press("Shift+Enter")
        output = console.locator(".jp-OutputArea-output").filter(has_text=expected)
        output.wait_for(timeout=STEP_TIMEOUT_MS)

    def reset_application_state(self) -> None:
        """Run Reset Application State from the command palette: JupyterLab reloads."""
        self.page.bring_to_front()
        self.tool.locator(".lm-MenuBar-item", has_text="View").click()
        self.tool.locator(".lm-Menu-item", has_text="Command Palette").first.click()
        self.tool.locator(".lm-CommandPalette-input").fill(RESET)
        item = self.tool.locator(".lm-CommandPalette-item", has_text=RESET).first
        with self.page.expect_event("framenavigated", predicate=lambda f: f.name == "tool"):
            item.click()


def test_each_tab_of_a_learner_keeps_jupyterlab(browser, hub, lms, journey):
    """Three tabs of one learner, a launch each: every tab runs code, none is signed out,
    and JupyterLab's own reload keeps the session too."""
    user = USERS["cookies-blocked" if browser.blocked else "cookies-allowed"]
    tabs: list[Tab] = []
    for number in range(1, TABS + 1):
        with journey.step(f"tab {number}: launch from the LMS frame"):
            tab = Tab(browser, lms, user)
            journey.page = tab.page
            tabs.append(tab)
        with journey.step(f"tab {number}: JupyterLab, not the sign-in page"):
            tab.settle()
        with journey.step(f"tab {number}: a console runs code"):
            tab.run_in_console(f"print('tab', {number} * 1001)", f"tab {number * 1001}")

    first, last = tabs[0], tabs[-1]
    with journey.step("the first tab still runs code after the others opened", first.page):
        first.run_in_console("print('again', 6 * 7)", "again 42")
    with journey.step(f"the last tab: {RESET} reloads JupyterLab", last.page):
        last.reset_application_state()
        last.settle()
        last.run_in_console("print('reset', 6 * 7)", "reset 42")

    assert [url for tab in tabs for url in tab.visited if SIGN_IN in url] == []
    if not browser.blocked:
        # Storage shared by the tabs: the window resolver gave each a workspace of its own,
        # so this profile did go through the page loads to lab/workspaces/auto-N.
        workspaces = [tab.workspace() for tab in tabs]
        assert len(set(workspaces)) == TABS, workspaces
        assert all(w.startswith("auto-") for w in workspaces[1:]), workspaces
