"""Idle learner servers are stopped by jupyterhub-idle-culler; active ones keep running."""

import json
import re
import time
import uuid

import pytest
import websocket

from learnhub.demo.lms import DemoLMS, tool_urls
from tests.support import (
    NOTEBOOK,
    Hub,
    free_port,
    launch_from,
    lti11_launch,
    wait_until_ready,
    write_settings,
)

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = 30
CHECK_EVERY = 5
# An idle server is stopped between IDLE_TIMEOUT and IDLE_TIMEOUT + CHECK_EVERY after its
# last activity; the rest is room for a slow machine.
CULL_WITHIN = IDLE_TIMEOUT + 2 * CHECK_EVERY + 30
ACTIVE_EVERY = 4


@pytest.fixture(scope="module")
def lms(loop_thread):
    """This module's own LTI peer, so the session's LMS keeps pointing at the session's hub."""
    peer = DemoLMS(consumer_key="culling-consumer")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def hub(lms, tmp_path_factory):
    """A hub whose culler stops servers after IDLE_TIMEOUT seconds (named hub: its log is
    printed when a test fails)."""
    state = tmp_path_factory.mktemp("culling-hub-state")
    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    write_settings(config, url, culler={"idle_timeout": IDLE_TIMEOUT, "check_every": CHECK_EVERY})
    instance = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    for name, value in tool_urls(url).items():
        setattr(lms, name, value)
    added = instance.cli(
        "lti",
        "add-consumer",
        lms.consumer_key,
        # One argument: a generated secret may begin with "-".
        f"--secret={lms.consumer_secret}",
        "--frame-origin",
        lms.url,
    )
    assert added.returncode == 0, added.stderr
    instance.start()
    yield instance
    # The hub leaves learner servers running when it stops (containers too): let the
    # culler stop them all first, whatever the backend.
    deadline = time.monotonic() + CULL_WITHIN
    while running_servers(instance) and time.monotonic() < deadline:
        time.sleep(1)
    instance.shutdown_everything()


def running_servers(hub: Hub) -> int:
    return hub.query("select count(*) from spawners where server_id is not null")[0][0]


def server_running(hub: Hub, username: str) -> bool:
    """Whether the hub has a server for the learner: its database, whatever the backend."""
    rows = hub.query(
        "select s.server_id from spawners s join users u on u.id = s.user_id "
        "where u.name = ? and s.name = ''",
        username,
    )
    return bool(rows) and rows[0][0] is not None


def wait_until_stopped(hub: Hub, username: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server_running(hub, username):
            return
        time.sleep(1)
    pytest.fail(f"server of {username} still running after {timeout}s")


def launch_ready(client, hub, lms, user_id):
    launch = launch_from(hub.url, lti11_launch(client, hub, lms, user_id=user_id))
    wait_until_ready(client, launch)
    assert server_running(hub, launch.username)
    return launch


def save(client, launch, path, model):
    saved = client.put(
        launch.server_url + f"api/contents/{path}", headers=launch.headers, json=model, timeout=30
    )
    assert saved.status_code in (200, 201), saved.text


class Kernel:
    """One kernel of a learner's server, driven over its websocket as JupyterLab does."""

    def __init__(self, client, launch):
        started = client.post(
            launch.server_url + "api/kernels", headers=launch.headers, json={}, timeout=60
        )
        assert started.status_code == 201, started.text
        self.id = started.json()["id"]
        ws_url = launch.server_url.replace("http://", "ws://") + f"api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(f"{ws_url}?token={launch.token}", timeout=60)
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute code; return its text/plain result."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "",
            "session": self.session,
            "version": "5.3",
            "date": "",
        }
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
        }
        self.ws.send(
            json.dumps(
                {
                    "header": header,
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": content,
                }
            )
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "execute_result":
                return message["content"]["data"]["text/plain"]
            if message["msg_type"] == "error":
                pytest.fail(f"kernel error: {message['content']}")
        pytest.fail(f"no result for {code!r}")

    def close(self):
        self.ws.close()


def culled_in_log(hub: Hub, username: str) -> list[str]:
    """The culler's "Culling server" lines and the hub's log of its stop requests."""
    log = hub.log_path.read_text(errors="replace")
    return [
        line
        for line in log.splitlines()
        if re.search(rf"Culling server {username} \(inactive for \d\d:\d\d:\d\d\)", line)
        or re.search(rf"\b20[24] DELETE /hub/api/users/{username}/server \(idle-culler@", line)
    ]


def test_idle_server_is_stopped_and_the_next_launch_finds_the_work(client, hub, lms):
    launch = launch_ready(client, hub, lms, "idle-learner")
    save(client, launch, "work.ipynb", NOTEBOOK)
    saved_at = time.monotonic()

    wait_until_stopped(hub, launch.username, CULL_WITHIN)
    idle_for = time.monotonic() - saved_at
    assert idle_for >= IDLE_TIMEOUT - 1, f"stopped after only {idle_for:.0f}s without activity"
    lines = culled_in_log(hub, launch.username)
    assert any("Culling server" in line for line in lines), hub.log_tail()
    assert any("DELETE" in line for line in lines), hub.log_tail()
    # Stopped, not deleted: the learner and their files stay.
    assert hub.query("select count(*) from users where name = ?", launch.username) == [(1,)]
    # The proxy no longer routes to the server: the hub answers that it is not running.
    gone = client.get(launch.server_url + "api/contents", headers=launch.headers, timeout=30)
    assert gone.status_code == 424, gone.status_code

    again = launch_ready(client, hub, lms, "idle-learner")
    assert again.username == launch.username
    found = client.get(
        again.server_url + "api/contents/work.ipynb", headers=again.headers, timeout=30
    )
    assert found.status_code == 200, found.text
    assert found.json()["content"]["cells"][0]["source"] == "answer = 6 * 7"


def test_active_servers_are_not_culled(client, hub, lms):
    saver = launch_ready(client, hub, lms, "saving-learner")
    runner = launch_ready(client, hub, lms, "running-learner")
    # Started with them and left alone: shows the culler is at work meanwhile.
    idler = launch_ready(client, hub, lms, "idle-neighbour")
    kernel = Kernel(client, runner)
    try:
        assert kernel.run("n = 0\nn") == "0"
        runs = 0
        active_since = time.monotonic()
        while time.monotonic() - active_since < 2 * IDLE_TIMEOUT + CHECK_EVERY:
            save(
                client,
                saver,
                "draft.txt",
                {"type": "file", "format": "text", "content": f"draft {runs}"},
            )
            runs += 1
            assert kernel.run("n += 1\nn") == str(runs)
            assert server_running(hub, saver.username), "a learner saving every few seconds"
            assert server_running(hub, runner.username), "a learner running code"
            time.sleep(ACTIVE_EVERY)
        assert not server_running(hub, idler.username), "the idle neighbour was not culled"
        assert culled_in_log(hub, idler.username)
        # The same kernel throughout, with its state.
        assert kernel.run("n") == str(runs)
    finally:
        kernel.close()
    assert culled_in_log(hub, saver.username) == []
    assert culled_in_log(hub, runner.username) == []

    # Once they stop working, they are idle like anyone else.
    for launch in (saver, runner):
        wait_until_stopped(hub, launch.username, CULL_WITHIN)
        assert culled_in_log(hub, launch.username)
