"""Fixtures: a real hub with its proxy, and a real LTI peer (the demo LMS)."""

import pytest

from learnhub.demo.lms import DemoLMS
from tests.support import CookielessClient, Hub, LoopThread, registered_hub


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
    instance = registered_hub(tmp_path_factory.mktemp("hub-state"), lms)
    instance.start()
    yield instance
    instance.shutdown_everything()


@pytest.fixture
def unregistered_lms(loop_thread, hub):
    """An LMS unknown to the hub: no consumer, no platform, no tool URLs."""
    peer = DemoLMS(consumer_key="unregistered", client_id="not-yet", deployment_id="none")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())
    for platform_id, issuer in hub.query("SELECT id, issuer FROM learnhub_lti13_platforms"):
        if issuer == peer.url:
            # Other tests check the hub's exact frame-ancestors.
            assert hub.cli("lti", "remove-platform", str(platform_id)).returncode == 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        # Every hub the test used (hub, course_hub, ...): CI keeps only what the run printed.
        for name, instance in getattr(item, "funcargs", {}).items():
            if isinstance(instance, Hub):
                report.sections.append((f"{name} log (last lines)", instance.log_tail()))
    return report


# A browser that blocks every cookie, as a learner's with third-party cookies disabled.


@pytest.fixture
def client():
    session = CookielessClient()
    yield session
    assert session.cookie_headers_sent == [], "a Cookie header reached the hub"
    assert len(session.cookies) == 0
