"""`learnhub run --demo`, the README's run command: hub, proxy and demo LMS start and stop."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support import free_port, write_settings

pytestmark = pytest.mark.integration


def wait_for(url: str, timeout: float = 90) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return response
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout}s")


def test_run_demo_starts_and_stops_everything(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    lms_port = free_port()
    config = tmp_path / "learnhub.yaml"
    write_settings(config, url, demo={"lms_port": lms_port}, spawner={"backend": "local"})
    env = {**os.environ, "LEARNHUB_CONFIG": str(config), "LEARNHUB_STATE_DIR": str(tmp_path)}
    log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen(
        [str(Path(sys.executable).with_name("learnhub")), "run", "--demo"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        course = wait_for(f"http://127.0.0.1:{lms_port}/course")
        assert "Launch as learner (LTI 1.3)" in course.text
        assert wait_for(f"{url}/hub/login").status_code == 200
        output = (tmp_path / "run.log").read_text()
        assert f"Try a launch: open http://127.0.0.1:{lms_port}/course" in output
        # The demo LMS was registered as a consumer and a platform.
        listed = subprocess.run(
            [str(Path(sys.executable).with_name("learnhub")), "lti", "list-platforms"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert f"issuer=http://127.0.0.1:{lms_port}" in listed
        proxy_pid = int((tmp_path / "proxy.pid").read_text())
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    # Nothing keeps listening: not the hub, not the demo LMS, not the proxy.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/hub/login", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{lms_port}/course", timeout=5)
    with pytest.raises(ProcessLookupError):
        os.kill(proxy_pid, 0)
