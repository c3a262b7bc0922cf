"""Chromium from Debian driven by Playwright: one profile that blocks every cookie, one default."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "e2e"
# axe-core from npm, installed by scripts/dev.sh beside configurable-http-proxy.
AXE = REPO / ".venv" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
# Headers of a browser whose user turned on Do Not Track and Global Privacy Control.
DO_NOT_TRACK = {"DNT": "1", "Sec-GPC": "1"}


def require(path: Path, reason: str) -> None:
    """Skip without `path`, except under CI=true, where a missing tool is a failure."""
    if path.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright():
    # Module scope: Playwright's sync API runs an event loop in this thread while it is
    # open, and later tests that start their own loop must not find it running.
    require(CHROMIUM, "Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def open_profile(playwright, profile: Path, *, blocked: bool, **options):
    """A fresh Chromium profile in `profile`; `blocked` refuses every cookie and storage."""
    (profile / "Default").mkdir(parents=True)
    if blocked:
        # Chromium's "Don't allow sites to save data": no cookies and no web storage.
        preferences = {"profile": {"default_content_setting_values": {"cookies": 2}}}
        (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        accept_downloads=True,
        **options,
    )
    context.blocked = blocked
    return context


@pytest.fixture(params=["cookies-blocked", "cookies-allowed"])
def browser(request, playwright, tmp_path):
    """A fresh profile in each cookie setting; `browser.blocked` says which."""
    context = open_profile(
        playwright, tmp_path / "profile", blocked=request.param == "cookies-blocked"
    )
    yield context
    context.close()


@pytest.fixture
def allowed_browser(playwright, tmp_path):
    """A fresh profile with Chromium's default settings (cookies allowed)."""
    context = open_profile(playwright, tmp_path / "profile", blocked=False)
    yield context
    context.close()


class Journey:
    """The steps of one test, each with a screenshot in test-artifacts/e2e/<test>/.

    `with journey.step("open the assignment"):` runs a step; whatever it raises becomes
    a failure whose message names the step and the screenshot of the page at that moment.
    """

    def __init__(self, name: str, page=None):
        self.folder = ARTIFACTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.page = page
        self.count = 0
        self.started = time.monotonic()
        self.timings: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, name: str, page=None) -> Iterator[None]:
        if page is not None:
            self.page = page
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{self.count:02d}-{slug}.png"
        began = time.monotonic()
        try:
            yield
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, pytest.skip.Exception, pytest.xfail.Exception)):
                raise
            shot = self.shoot(path)
            detail = str(e).strip() or type(e).__name__
            pytest.fail(
                f"step {self.count:02d} '{name}' failed after {time.monotonic() - began:.1f}s: "
                f"{detail}\nscreenshot: {shot}",
                pytrace=False,
            )
        self.timings.append((name, time.monotonic() - began))
        self.shoot(path)

    def shoot(self, path: Path) -> Path | str:
        if self.page is None:
            return "(no page)"
        try:
            self.page.screenshot(path=str(path), timeout=15_000)
        except Exception as e:  # a closed or crashed page: say so instead of hiding the failure
            return f"(no screenshot: {type(e).__name__}: {str(e).splitlines()[0]})"
        return path

    def summary(self) -> str:
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.timings)
        return f"{time.monotonic() - self.started:.1f}s ({steps})"


@pytest.fixture
def journey(request):
    """A Journey named after the test (and its cookie profile); its steps are recorded."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    recorded = Journey(name)
    yield recorded
    request.node.user_properties.append(("steps", recorded.summary()))


# Wall time of every browser test: printed at the end of the run and kept beside the
# screenshots, so a slow step is seen before it becomes a timeout.


def pytest_runtest_logreport(report):
    if "tests/e2e/" not in report.nodeid.replace("\\", "/"):
        return
    times = _wall_times.setdefault(report.nodeid, {"outcome": "passed", "seconds": 0.0})
    times["seconds"] += report.duration
    if report.failed:
        times["outcome"] = "failed"
    elif report.skipped:
        times["outcome"] = "skipped"
    if report.when == "teardown":
        steps = dict(report.user_properties).get("steps")
        if steps:
            times["steps"] = steps


_wall_times: dict[str, dict] = {}


def pytest_terminal_summary(terminalreporter):
    if not _wall_times:
        return
    terminalreporter.section("e2e wall times (setup + call + teardown)")
    for nodeid, times in _wall_times.items():
        line = f"{times['seconds']:7.1f}s {times['outcome']:7} {nodeid}"
        terminalreporter.write_line(line)
        if "steps" in times:
            terminalreporter.write_line(f"         steps: {times['steps']}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "wall-times.json").write_text(json.dumps(_wall_times, indent=2) + "\n")


# Accessibility: axe-core runs in the page under test, in the same browser.

SERIOUS = ("serious", "critical")


def axe_violations(page, *, bypassed_csp: bool = True) -> list[dict]:
    """axe-core's violations on `page` (a Page or Frame), all impacts.

    add_script_tag injects an inline script, which pages with a strict CSP refuse: run it
    in a context opened with bypass_csp=True.
    """
    require(AXE, f"axe-core is not installed ({AXE}); run scripts/dev.sh test")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in SERIOUS]


def describe(violations: list[dict]) -> str:
    return "\n".join(
        f"  {v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}" for v in violations
    )
