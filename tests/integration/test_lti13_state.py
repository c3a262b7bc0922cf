"""Where the LTI 1.3 login state lives when cookies are blocked: platform storage or the server."""

import json
import re

import pytest

from learnhub.demo.constants import Role
from tests.support import launch_from, parse_form

pytestmark = pytest.mark.integration


def storage_config(html: str) -> dict:
    match = re.search(
        r'<script id="learnhub-storage" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, html[:2000]
    return json.loads(match.group(1))


def login_with_storage(client, lms, user_id):
    """Login initiation with lti_storage_target; returns the launch form the LMS posts."""
    login_url, params = lms.initiate_lti13(
        user_id=user_id, roles=[Role.LEARNER], context_id="storage-course", storage_target="_parent"
    )
    page = client.get(login_url, params=params, allow_redirects=False)
    assert page.status_code == 200
    put = storage_config(page.text)
    assert put["mode"] == "put"
    assert put["target"] == "_parent"
    assert put["origin"] == lms.url
    state = next(v for k, v in put["items"].items() if k.startswith("state_"))
    assert put["items"][f"state_{state}"] == state
    assert put["next"].startswith(lms.auth_url + "?")
    auth_page = client.get(put["next"])
    action, fields = parse_form(auth_page.text)
    assert fields["state"] == state
    return action, fields


def test_storage_state_binds_the_launch(client, hub, lms):
    action, fields = login_with_storage(client, lms, "stored-1")
    check = client.post(action, data=fields)
    # No cookie came back, so the hub asks the LMS frame for the state it stored.
    get = storage_config(check.text)
    assert get["mode"] == "get"
    assert get["key"] == f"state_{fields['state']}"
    assert get["fields"] == fields
    relaunch = client.post(get["action"], data={**fields, "lti_storage_state": fields["state"]})
    assert launch_from(hub.url, relaunch).token


def test_storage_state_mismatch_is_refused(client, hub, lms):
    action, fields = login_with_storage(client, lms, "stored-2")
    before = hub.counts()
    response = client.post(action, data={**fields, "lti_storage_state": "another-state"})
    assert response.status_code == 401
    assert "does not match this launch" in response.text
    assert hub.counts() == before


def test_platform_without_storage_falls_back_to_server_state(client, hub, lms):
    action, fields = login_with_storage(client, lms, "stored-3")
    # The page posts an empty value when the platform frame does not answer.
    response = client.post(action, data={**fields, "lti_storage_state": ""})
    assert launch_from(hub.url, response).token


def test_state_cookie_when_the_browser_keeps_it(hub, lms):
    import requests

    from learnhub.lti13.handlers import state_cookie_name

    browser = requests.Session()  # a browser that accepts third-party cookies
    login_url, params = lms.initiate_lti13(
        user_id="cookie-user", roles=[Role.LEARNER], context_id="cookie-course"
    )
    redirect = browser.get(login_url, params=params, allow_redirects=False)
    cookie = redirect.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    auth_page = browser.get(redirect.headers["Location"])
    action, fields = parse_form(auth_page.text)
    # requests drops Secure cookies on http, so send it as a browser on localhost would.
    name = state_cookie_name(fields["state"])
    wrong = browser.post(action, data=fields, headers={"Cookie": f"{name}=someone-else"})
    assert wrong.status_code == 401
    assert "cookie does not match" in wrong.text
    right = browser.post(action, data=fields, headers={"Cookie": f"{name}={fields['state']}"})
    assert launch_from(hub.url, right).token
