"""Oversized bodies on the hub's LearnHub endpoints: 413 before they are read, nothing made."""

import html
import re
import statistics
import threading
import time

import pytest
import requests

from learnhub.demo.lti11 import lti11_launch_params
from tests.support import admin_headers

pytestmark = pytest.mark.integration

LIMIT = 256 * 1024  # hub.max_body_size's default


def refusal(response) -> str:
    match = re.search(r'<p id="error-message">(.*?)</p>', response.text, re.S)
    assert match, response.text[:2000]
    return html.unescape(match.group(1))


def signed_launch(lms, padding: int) -> dict[str, str]:
    params = lti11_launch_params(
        user_id="big-body",
        roles="Learner",
        context_id="course-big",
        context_title="Course big",
        resource_link_id="link-big",
        extra={"custom_padding": "x" * padding},
    )
    return lms.sign_lti11(params)


def test_signed_lti11_launch_past_the_limit_is_refused(client, hub, lms):
    before = hub.counts()
    form = signed_launch(lms, 5 * 1024 * 1024)
    response = client.post(f"{hub.url}/hub/lti11/launch", data=form, timeout=30)
    assert response.status_code == 413, response.text[:500]
    assert refusal(response).startswith("This request is too large (")
    assert f"at most {LIMIT} bytes" in refusal(response)
    assert "hub.max_body_size" in refusal(response)
    assert hub.counts() == before, "a refused launch created a user, token or server"
    nonce = form["oauth_nonce"]
    assert hub.query("select count(*) from learnhub_lti11_nonces where nonce = ?", nonce) == [(0,)]


def test_signed_lti11_launch_within_the_limit_is_accepted(client, hub, lms):
    response = client.post(
        f"{hub.url}/hub/lti11/launch", data=signed_launch(lms, LIMIT - 4096), timeout=60
    )
    assert response.status_code == 200, response.text[:2000]
    assert "learnhub-session" in response.text


@pytest.mark.parametrize(
    "path",
    ["lti11/launch", "lti13/launch", "lti13/login", "learnhub/formgrader"],
    ids=["lti11-launch", "lti13-launch", "lti13-login", "formgrader"],
)
def test_unsigned_20_mb_body_is_refused_without_stalling_the_hub(client, hub, path):
    """The review's 20 MB unsigned body stalled the hub API for a second while parsed."""
    latencies = []
    done = threading.Event()

    def probe():
        while not done.is_set():
            started = time.monotonic()
            requests.get(f"{hub.url}/hub/api", timeout=10).raise_for_status()
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        time.sleep(0.2)
        body = b"id_token=" + b"x" * (20 * 1024 * 1024)
        started = time.monotonic()
        response = client.post(
            f"{hub.url}/hub/{path}",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
        elapsed = time.monotonic() - started
        time.sleep(0.2)
    finally:
        done.set()
        prober.join()
    assert response.status_code == 413, response.text[:500]
    assert "This request is too large (20971529 bytes;" in response.text
    assert elapsed < 5
    assert latencies, "the hub API never answered"
    assert max(latencies) < 0.5, f"the hub API stalled: {statistics.quantiles(latencies)}"


def test_chunked_body_is_refused_once_it_passes_the_limit(client, hub):
    before = hub.counts()

    def chunks():
        yield b"oauth_consumer_key=x&padding="
        for _ in range(64):  # 4 MB in all, with no Content-Length
            yield b"x" * 65536

    response = client.post(
        f"{hub.url}/hub/lti11/launch",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 413, response.text[:500]
    assert refusal(response).startswith("This request is too large (more;")
    assert hub.counts() == before


def test_bulk_erasure_api_refuses_oversized_bodies(hub):
    admin = admin_headers(hub)
    names = [f"user-{i:08d}" for i in range(20000)]  # about 300 KB of JSON
    response = requests.post(
        f"{hub.url}/hub/api/learnhub/users/erase", json={"users": names}, headers=admin, timeout=30
    )
    assert response.status_code == 413
    assert "too large" in response.json()["message"]
    small = requests.post(
        f"{hub.url}/hub/api/learnhub/users/erase",
        json={"users": ["nobody-here"]},
        headers=admin,
        timeout=30,
    )
    assert small.status_code == 200, small.text
    assert small.json()["missing"] == ["nobody-here"]


@pytest.mark.parametrize(
    "path",
    [
        "/services/learnhub-grading/api/courses/course-big/regrade",
        "/services/learnhub-retention/api/people/big-body",
    ],
    ids=["grading", "retention"],
)
def test_hub_services_refuse_a_body_their_api_never_takes(hub, path):
    """The grading and retention services take small JSON: a megabyte is refused before any
    handler reads it (tornado's own default lets 100 MB through)."""
    admin = admin_headers(hub)
    big = requests.post(f"{hub.url}{path}", data=b"x" * (1 << 20), headers=admin, timeout=30)
    # Tornado answers 400 and closes before reading; the proxy may report that as 503.
    assert big.status_code in (400, 503), (big.status_code, big.text[:500])
    # And the service still answers.
    alive = requests.get(f"{hub.url}{path.rpartition('/')[0]}/grading", headers=admin, timeout=30)
    if "retention" in path:
        alive = requests.get(f"{hub.url}/services/learnhub-retention/api/health", timeout=30)
    assert alive.status_code < 500, (alive.status_code, alive.text[:300])
