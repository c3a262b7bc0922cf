"""Cookieless LMS launches against the real hub: LTI 1.1 and 1.3, to a kernel answering 1+1."""

import asyncio
import time

import pytest
import requests
from jupyterhub.crypto import CryptKeeper, decrypt

from learnhub.auth import auth_state_key
from tests.support import (
    NOTEBOOK,
    execute,
    launch_from,
    lti11_launch,
    lti13_launch,
    page_config,
    wait_until_ready,
)

pytestmark = pytest.mark.integration


def use_jupyterlab(client, launch, hub, lms):
    """Everything a learner's JupyterLab does, with only what the launch handed over."""
    wait_until_ready(client, launch)

    lab = client.get(
        f"{launch.hub_url}{launch.lab_url}?token={launch.token}", allow_redirects=False
    )
    assert lab.status_code == 200, lab.text[:2000]
    assert lab.headers["Referrer-Policy"] == "no-referrer"
    assert f"frame-ancestors 'self' {lms.url}" in lab.headers["Content-Security-Policy"]
    config = page_config(lab.text)
    assert config["token"] == launch.token
    assert config["appendToken"] == "true"

    listing = client.get(launch.server_url + "api/contents", headers=launch.headers)
    assert listing.status_code == 200
    assert listing.json()["type"] == "directory"

    saved = client.put(
        launch.server_url + "api/contents/work.ipynb", headers=launch.headers, json=NOTEBOOK
    )
    assert saved.status_code in (200, 201), saved.text
    again = client.get(launch.server_url + "api/contents/work.ipynb", headers=launch.headers)
    assert again.json()["content"]["cells"][0]["source"] == "answer = 6 * 7"

    assert execute(launch, "1+1") == "2"
    # The hub's log also holds the learner server's: neither may show the token.
    assert launch.token not in hub.log_path.read_text()


def test_lti11_launch_without_cookies(client, hub, lms):
    before = hub.counts()
    waiting = lti11_launch(client, hub, lms, user_id="ada")
    # Exactly the registered platforms may frame the hub's pages, which load only its files.
    assert waiting.headers["Content-Security-Policy"] == (
        f"default-src 'self'; frame-ancestors 'self' {lms.url}"
    )
    assert waiting.headers["Cache-Control"] == "no-store"
    launch = launch_from(hub.url, waiting)
    assert hub.counts()["users"] == before["users"] + 1
    use_jupyterlab(client, launch, hub, lms)
    assert client.set_cookie_headers_received == []


def test_lti13_launch_without_cookies(client, hub, lms):
    launch = launch_from(hub.url, lti13_launch(client, lms, user_id="grace"))
    use_jupyterlab(client, launch, hub, lms)
    # The only cookie offered is the optional login-state cookie, SameSite=None; Secure.
    assert all(
        h.startswith("lh_lti13_") and "SameSite=None" in h and "Secure" in h
        for h in client.set_cookie_headers_received
    )


def test_same_person_same_username_across_launches(client, hub, lms):
    first = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="alan"))
    second = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="alan", context="c2"))
    assert first.username == second.username
    assert first.token != second.token
    assert "alan" not in first.username


def test_roles_become_course_groups(client, hub, lms):
    launch = launch_from(
        hub.url, lti11_launch(client, hub, lms, user_id="prof", roles="Instructor", context="A")
    )
    launch_from(
        hub.url, lti11_launch(client, hub, lms, user_id="prof", roles="Learner", context="B")
    )
    groups = {
        name
        for (name,) in hub.query(
            "select g.name from groups g join user_group_map m on m.group_id = g.id "
            "join users u on u.id = m.user_id where u.name = ?",
            launch.username,
        )
    }
    assert len(groups) == 2
    assert any(g.endswith("-instructor") for g in groups)
    assert any(g.endswith("-learner") for g in groups)
    titles = {t for (t,) in hub.query("select properties from groups")}
    assert any("Course A" in (t or "") for t in titles)


def test_token_of_learner_a_cannot_reach_b_or_the_admin_api(client, hub, lms):
    a = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="learner-a"))
    b = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="learner-b"))
    wait_until_ready(client, a)
    wait_until_ready(client, b)

    # A's token on B's server: refused by B's server.
    response = requests.get(b.server_url + "api/contents", headers=a.headers, timeout=30)
    assert response.status_code == 403
    response = requests.get(f"{b.server_url}lab?token={a.token}", allow_redirects=False, timeout=30)
    # Refused, or sent to the hub's OAuth login, which in turn needs B's credentials.
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/hub/api/oauth2/authorize" in response.headers["Location"]
    assert "jupyter-config-data" not in response.text

    # A's token on the hub API: no admin rights, no view of other users.
    for path in ("users", f"users/{b.username}", "groups", "proxy"):
        response = requests.get(f"{hub.url}/hub/api/{path}", headers=a.headers, timeout=30)
        assert response.status_code in (403, 404), (path, response.status_code)
    response = requests.post(
        f"{hub.url}/hub/api/users/{b.username}/server", headers=a.headers, timeout=30
    )
    assert response.status_code in (403, 404)


def test_platform_key_rotation_is_picked_up(client, hub, lms):
    from learnhub.lti13.jwks import MIN_REFRESH_INTERVAL

    launch_from(hub.url, lti13_launch(client, lms, user_id="before-rotation"))
    lms.platform.rotate_key()
    time.sleep(MIN_REFRESH_INTERVAL)
    # The cached JWKS lacks the new kid, so the hub fetches it again.
    launch = launch_from(hub.url, lti13_launch(client, lms, user_id="after-rotation"))
    assert launch.token


def test_tool_registration_and_jwks(client, hub):
    config = client.get(f"{hub.url}/hub/lti13/config").json()
    assert config["oidc_initiation_url"] == f"{hub.url}/hub/lti13/login"
    assert config["target_link_uri"] == f"{hub.url}/hub/lti13/launch"
    assert config["redirect_uris"] == [f"{hub.url}/hub/lti13/launch"]
    assert config["public_jwk_url"] == f"{hub.url}/hub/lti13/jwks"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in config["scopes"]
    assert config["placements"]
    keys = client.get(config["public_jwk_url"]).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and "d" not in k for k in keys)


async def _decrypt(blob: bytes) -> dict:
    return await decrypt(blob)


def test_name_and_email_only_in_encrypted_auth_state(client, hub, lms):
    with_pii = launch_from(
        hub.url,
        lti11_launch(
            client,
            hub,
            lms,
            user_id="pii-1",
            name="Ada Lovelace",
            email="ada@example.edu",
        ),
    )
    without = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="pii-2"))
    database = hub.db_path.read_bytes()
    assert b"ada@example.edu" not in database
    assert b"Lovelace" not in database
    stored = dict(hub.query("select name, encrypted_auth_state from users"))
    keeper = CryptKeeper.instance()
    keeper.keys = [auth_state_key(bytes.fromhex((hub.state_dir / "crypt_key.hex").read_text()))]
    state = asyncio.run(_decrypt(stored[with_pii.username]))
    assert state["name"] == "Ada Lovelace"
    assert state["email"] == "ada@example.edu"
    assert state["lms_user_id"] == "pii-1"
    bare = asyncio.run(_decrypt(stored[without.username]))
    assert "name" not in bare and "email" not in bare
