"""Every cookie the hub and learner servers set is in docs/cookies.md, read from the doc itself."""

from __future__ import annotations

import re
import time

import pytest
import requests

from learnhub.demo.constants import Role
from learnhub.demo.lms import DemoLMS
from tests.integration.test_direct_login import xsrf
from tests.integration.test_retention import start_hub
from tests.support import (
    REPO,
    launch_from,
    lti11_launch,
    lti13_launch,
    open_formgrader,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "cookies.md"
PASSWORD = "correct horse battery staple"
# What each placeholder of the doc's names may stand for.
PLACEHOLDERS = {"hash": "[0-9a-f]{16}", "suffix": "[A-Za-z]{8}"}


def inventory(doc: str = DOC.read_text()) -> list[str]:
    """The Name column of the doc's table."""
    names = re.findall(r"^\| `([^`]+)` \|", doc, re.M)
    assert len(names) >= 5, "the cookie table of docs/cookies.md was not found"
    return names


def pattern(name: str, usernames: list[str]) -> re.Pattern:
    """A doc name as a regex: <name> is one of the usernames the test used, others per kind."""
    parts = re.split(r"<([a-z]+)>", name)
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        elif part == "name":
            regex += "(?:" + "|".join(map(re.escape, usernames)) + ")"
        else:
            regex += PLACEHOLDERS[part]
    return re.compile(regex)


def test_the_inventory_is_parsed_from_the_doc():
    names = inventory()
    assert "jupyterhub-hub-login" in names
    assert "lh_lti13_<hash>" in names
    assert pattern("lh_lti13_<hash>", []).fullmatch("lh_lti13_0123456789abcdef")
    assert not pattern("jupyterhub-user-<name>", ["admin"]).fullmatch(
        "jupyterhub-user-admin-oauth-state"
    )


class CookieKeepingBrowser(requests.Session):
    """A browser that accepts cookies and records the name of every cookie it is given."""

    def __init__(self):
        super().__init__()
        self.set_cookie_names: list[tuple[str, str]] = []
        self.hooks["response"].append(self._record)

    def _record(self, response, **_kwargs):
        for r in [*response.history, response]:
            for header in r.raw.headers.getlist("Set-Cookie"):
                self.set_cookie_names.append((header.split("=", 1)[0].strip(), r.url))


@pytest.fixture(scope="module")
def lms(loop_thread):
    peer = DemoLMS(consumer_key="cookie-consumer", client_id="cookies", deployment_id="d1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def hub(lms, tmp_path_factory):
    instance = start_hub(lms, tmp_path_factory.mktemp("cookie-hub"))
    yield instance
    instance.shutdown_everything()


def test_every_cookie_set_is_in_the_inventory(hub, lms):
    browser = CookieKeepingBrowser()
    url = hub.url

    # Privacy pages, before and after anything else.
    for path in ("/hub/privacy", "/.well-known/dnt-policy.txt"):
        assert browser.get(url + path).status_code == 200

    # Direct login: sign up the administrator, log in, open the hub's pages.
    signup = browser.get(f"{url}/hub/signup")
    browser.post(
        f"{url}/hub/signup",
        data={
            "_xsrf": xsrf(signup.text),
            "username": "admin",
            "signup_password": PASSWORD,
            "signup_password_confirmation": PASSWORD,
        },
    )
    login = browser.get(f"{url}/hub/login")
    home = browser.post(
        f"{url}/hub/login?next=/hub/home",
        data={"_xsrf": xsrf(login.text), "username": "admin", "password": PASSWORD},
    )
    assert home.url.endswith("/hub/home"), home.url
    # The administrator's own server, reached through the OAuth handshake with the hub.
    browser.get(f"{url}/hub/spawn")
    lab = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lab = browser.get(f"{url}/user/admin/lab")
        if lab.status_code == 200 and lab.url.startswith(f"{url}/user/admin/lab"):
            break
        time.sleep(1)
    assert lab is not None and lab.url.startswith(f"{url}/user/admin/lab"), lab.url
    browser.get(f"{url}/hub/privacy")
    browser.get(f"{url}/hub/logout")

    # LMS launches in the same browser: LTI 1.1, LTI 1.3, JupyterLab and the data page.
    learners = []
    for response in (
        lti11_launch(browser, hub, lms, user_id="cookie-11", name="C Eleven"),
        lti13_launch(browser, lms, user_id="cookie-13"),
    ):
        launch = launch_from(url, response)
        wait_until_ready(browser, launch)
        learners.append(launch.username)
        lab_page = browser.get(launch.hub_url + launch.lab_url, params={"token": launch.token})
        assert lab_page.status_code == 200
        data_page = browser.get(launch.server_url + "learnhub/my-data", headers=launch.headers)
        assert data_page.status_code == 200, data_page.text[:500]

    # An instructor's LMS launch, then Course > Formgrader: the grader server's cookie only.
    instructor = launch_from(
        url, lti13_launch(browser, lms, user_id="cookie-teacher", roles=[Role.INSTRUCTOR])
    )
    before = len(browser.set_cookie_names)
    formgrader = open_formgrader(browser, url, instructor.token)
    assert formgrader.status_code == 200 and "/formgrader/" in formgrader.url, formgrader.url
    grader = formgrader.url.split("/user/", 1)[1].split("/", 1)[0]
    handoff = {name for name, _url in browser.set_cookie_names[before:]}
    assert f"jupyterhub-user-{grader}" in handoff
    assert not {"jupyterhub-hub-login", "jupyterhub-session-id"} & handoff

    names = inventory()
    patterns = [pattern(n, ["admin", grader, *learners]) for n in names]
    seen = {name for name, _url in browser.set_cookie_names}
    undocumented = {
        (name, where)
        for name, where in browser.set_cookie_names
        if not any(p.fullmatch(name) for p in patterns)
    }
    assert not undocumented, f"cookies missing from docs/cookies.md: {sorted(undocumented)}"
    # The drive reached what it meant to: a login, a server's OAuth, an LTI 1.3 launch.
    assert {"jupyterhub-hub-login", "jupyterhub-session-id", "_xsrf"} <= seen
    assert "jupyterhub-user-admin" in seen
    assert any(n.startswith("lh_lti13_") for n in seen)
    # LMS launches set no login cookie for the learner, and no server cookie either.
    for learner in learners:
        assert f"jupyterhub-user-{learner}" not in seen
