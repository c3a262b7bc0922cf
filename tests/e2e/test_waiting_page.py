"""The waiting page when a learner's server cannot start: progress first, then a clear error."""

from __future__ import annotations

import re
import subprocess

import pytest

from learnhub.demo.lms import DemoLMS
from tests.e2e.conftest import axe_violations, describe, open_profile, serious
from tests.support import registered_hub

pytestmark = pytest.mark.e2e

# The learner image whose server never answers: the container runs (sh sleeps, given
# jupyterhub-singleuser's command line as its arguments), so the hub's launch returns the
# waiting page, and gives up after start_timeout (the schema's minimum, 10 s). A container
# that died at once would race JupyterHub's 1 s slow-spawn window: the launch would then
# end on the error page, never on the waiting page this test is about.
SILENT_IMAGE = "learnhub-test/never-answers:latest"
SILENT_DOCKERFILE = (
    "FROM learnhub/learner:latest\n"
    'ENTRYPOINT ["/bin/sh", "-c", "exec sleep 600", "--"]\n'
    # An ENTRYPOINT resets CMD; DockerSpawner runs the image's CMD with its arguments.
    'CMD ["jupyterhub-singleuser"]\n'
)
FAILING_SPAWNER = {"images": [SILENT_IMAGE], "start_timeout": 10}


@pytest.fixture(scope="module")
def silent_image():
    built = subprocess.run(
        ["docker", "build", "--quiet", "--tag", SILENT_IMAGE, "-"],
        input=SILENT_DOCKERFILE, text=True, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    yield SILENT_IMAGE
    subprocess.run(["docker", "image", "rm", "--force", SILENT_IMAGE], capture_output=True,
                   timeout=120, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def failing_lms(loop_thread):
    peer = DemoLMS(consumer_key="fail-consumer", client_id="fail-tool", deployment_id="f-1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def failing_hub(failing_lms, silent_image, tmp_path_factory):
    state = tmp_path_factory.mktemp("failing-hub")
    instance = registered_hub(state, failing_lms, spawner=FAILING_SPAWNER)
    instance.start()
    yield instance
    instance.shutdown_everything()


def test_waiting_page_shows_progress_then_a_clear_error(
    playwright, tmp_path, failing_hub, failing_lms, journey
):
    # bypass_csp only so that axe-core can be injected; the page's own script runs as in
    # any browser (the learner journeys use it without the bypass).
    context = open_profile(playwright, tmp_path / "profile", blocked=False, bypass_csp=True)
    page = context.new_page()
    try:
        with journey.step("launch as learner (LTI 1.3)", page):
            page.goto(f"{failing_lms.url}/course")
            page.get_by_role("button", name="Launch as learner (LTI 1.3)").click()
            tool = page.frame_locator("iframe[name=tool]")
        with journey.step("the waiting page shows progress"):
            tool.get_by_role("heading", name=re.compile("Opening your workspace")).wait_for(
                timeout=30_000
            )
            status = tool.get_by_role("status")
            assert status.inner_text().strip(), "the status line is empty"
            assert tool.get_by_role("progressbar").count() == 1
            waiting = page.frame(name="tool")
            progress_axe = axe_violations(waiting)
        with journey.step("the waiting page says the server could not start"):
            alert = tool.get_by_role("alert")
            alert.wait_for(timeout=90_000)
            text = alert.inner_text()
            assert "could not start" in tool.locator("main").inner_text()
            assert "Go back to your course and open the activity again" in text
            assert "tell your instructor" in text
            for internal in ("Traceback", 'File "', "http://", "127.0.0.1"):
                assert internal not in text, f"{internal!r} in the error:\n{text}"
            assert tool.get_by_role("progressbar").count() == 0 or not (
                tool.get_by_role("progressbar").is_visible()
            )
            failed_axe = axe_violations(waiting)
    finally:
        context.close()
    found = {"waiting": progress_axe, "waiting, failed": failed_axe}
    failures = {name: serious(v) for name, v in found.items() if serious(v)}
    assert not failures, "\n".join(f"{name}:\n{describe(v)}" for name, v in failures.items())
