"""Fixtures: a real hub with its proxy, and a real LTI peer (the demo LMS)."""

import pytest

from learnhub.demo.lms import DemoLMS, tool_urls
from tests.support import CookielessClient, Hub, LoopThread, free_port, write_settings


@pytest.fixture(scope="session")
def loop_thread():
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def lms(loop_thread):
    peer = DemoLMS(consumer_key="test-consumer", client_id="learnhub-test", deployment_id="dep-1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="session")
def hub(lms, tmp_path_factory):
    state = tmp_path_factory.mktemp("hub-state")
    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    write_settings(config, url)
    instance = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")

    for name, value in tool_urls(url).items():
        setattr(lms, name, value)
    registration = lms.registration()
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
    added = instance.cli(
        "lti", "add-platform",
        "--issuer", registration["issuer"],
        "--client-id", registration["client_id"],
        "--deployment-id", registration["deployment_id"],
        "--auth-url", registration["auth_url"],
        "--jwks-url", registration["jwks_url"],
        "--token-url", f"{lms.url}/token",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    instance.start()
    yield instance
    instance.shutdown_everything()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "hub" in item.fixturenames:
        instance = item.funcargs.get("hub")
        if isinstance(instance, Hub):
            report.sections.append(("hub log (last lines)", instance.log_tail()))
    return report


# A browser that blocks every cookie, as a learner's with third-party cookies disabled.


@pytest.fixture
def client():
    session = CookielessClient()
    yield session
    assert session.cookie_headers_sent == [], "a Cookie header reached the hub"
    assert len(session.cookies) == 0
