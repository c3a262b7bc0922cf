"""LTI Dynamic Registration against the running hub: a demo LMS the hub has never heard of
registers LearnHub by URL, and launches into it without the hub restarting."""

import re

import pytest

from learnhub.demo.constants import Role
from learnhub.demo.registration import registration_launch_url
from tests.support import (
    launch_from,
    lti13_launch,
    parse_form,
    registration_url,
    wait_until_ready,
)

pytestmark = pytest.mark.integration


def opened_by(lms, url: str, token: str | None = None) -> str:
    """The URL as the LMS opens it: its configuration and a registration token added."""
    return registration_launch_url(
        url,
        openid_configuration_url=lms.openid_configuration_url,
        token=token or lms.new_registration_token(),
    )


def platforms_of(hub, lms) -> list[tuple]:
    return hub.query(
        "SELECT p.client_id, d.deployment_id FROM learnhub_lti13_platforms p "
        "LEFT JOIN learnhub_lti13_deployments d ON d.platform_id = p.id WHERE p.issuer = ?",
        lms.url,
    )


def frame_ancestors(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return next(d.strip() for d in policy.split(";") if d.strip().startswith("frame-ancestors"))


def test_registration_by_url_to_a_working_launch(client, hub, unregistered_lms):
    url = registration_url(hub)
    # Before: LearnHub's pages may not be framed by the new LMS.
    assert unregistered_lms.url not in frame_ancestors(client.get(f"{hub.url}/hub/lti13/config"))

    page = client.get(opened_by(unregistered_lms, url))
    assert page.status_code == 200, page.text[:2000]
    # The administrator sees who made the URL and what is being registered.
    assert "test-admin" in page.text
    assert "learnhub-demo-lms 1.0" in page.text
    assert f"issuer {unregistered_lms.url}" in page.text
    # The LMS frames the page it opened; the key was checked before the hub fetched anything.
    assert unregistered_lms.url in frame_ancestors(page)
    assert len(unregistered_lms.configuration_requests) == 1
    assert platforms_of(hub, unregistered_lms) == []

    action, fields = parse_form(page.text)
    done = client.post(action, data=fields)
    assert done.status_code == 200, done.text[:2000]
    assert 'data-close="org.imsglobal.lti.close"' in done.text
    assert "registration-close.js" in done.text
    assert unregistered_lms.url in frame_ancestors(done)

    # What the LMS received, and what LearnHub stored: the client and deployment it was given.
    (registration,) = unregistered_lms.tool_registrations
    assert registration.login_url == f"{hub.url}/hub/lti13/login"
    assert registration.jwks_url == f"{hub.url}/hub/lti13/jwks"
    assert platforms_of(hub, unregistered_lms) == [
        (registration.client_id, registration.deployment_id)
    ]
    assert registration.client_id in done.text

    # The URL was spent.
    token = unregistered_lms.new_registration_token()
    again = client.get(opened_by(unregistered_lms, url, token=token))
    assert again.status_code == 403
    assert "unknown, expired or already used" in again.text
    # No log line holds the key or the LMS's registration token, refused requests' included.
    log = hub.log_path.read_text()
    assert url.split("registration_key=")[1] not in log and token not in log

    # A launch works at once, framed by the new LMS, and so does the learner's server,
    # all without a hub restart.
    waiting = lti13_launch(
        client,
        unregistered_lms,
        user_id="registered-learner",
        roles=[Role.LEARNER],
        context="dr-course",
    )
    launch = launch_from(hub.url, waiting)
    assert unregistered_lms.url in frame_ancestors(waiting)
    assert unregistered_lms.url in frame_ancestors(client.get(f"{hub.url}/hub/lti13/config"))
    wait_until_ready(client, launch)
    lab = client.get(f"{hub.url}{launch.lab_url}?token={launch.token}", allow_redirects=False)
    assert lab.status_code == 200
    assert unregistered_lms.url in frame_ancestors(lab)


def test_the_lms_page_that_opened_the_registration_may_frame_learnhub(
    client, hub, unregistered_lms
):
    """Canvas opens the registration in a school's domain, not its issuer's: the page that
    framed the registration (its Referer) is the origin the platform may frame from."""
    school = unregistered_lms.url.replace("127.0.0.1", "localhost")
    page = client.get(
        opened_by(unregistered_lms, registration_url(hub)),
        headers={"Referer": f"{school}/accounts/1/developer_keys"},
    )
    assert page.status_code == 200, page.text[:2000]
    assert school in frame_ancestors(page)
    assert re.search(rf"{re.escape(school)}\s+\(the LMS page", page.text)
    action, fields = parse_form(page.text)
    assert fields["lms_origin"] == school
    done = client.post(action, data=fields)
    assert done.status_code == 200 and school in frame_ancestors(done)
    assert hub.query(
        "SELECT frame_origin FROM learnhub_lti13_platforms WHERE issuer = ?", unregistered_lms.url
    ) == [(school,)]


def test_a_refused_registration_token_stores_nothing_and_keeps_the_url(
    client, hub, unregistered_lms
):
    url = registration_url(hub)
    page = client.get(opened_by(unregistered_lms, url, token="forged-token"))
    action, fields = parse_form(page.text)
    refused = client.post(action, data=fields)
    assert refused.status_code == 502
    assert "The LMS did not register LearnHub" in refused.text
    assert "answered 401" in refused.text
    assert "registration token is unknown" in refused.text
    assert platforms_of(hub, unregistered_lms) == []
    assert unregistered_lms.tool_registrations == []
    # Refused errors are shown inside the LMS's frame too.
    assert unregistered_lms.url in frame_ancestors(refused)

    # The same URL works once the LMS gives a real token.
    page = client.get(opened_by(unregistered_lms, url))
    action, fields = parse_form(page.text)
    assert client.post(action, data=fields).status_code == 200
    assert len(platforms_of(hub, unregistered_lms)) == 1


def test_an_issuer_elsewhere_is_refused(client, hub, unregistered_lms):
    url = registration_url(hub)
    # The configuration at 127.0.0.1 claims to speak for another site.
    unregistered_lms.platform.issuer = unregistered_lms.url.replace("127.0.0.1", "localhost")
    for response in (
        client.get(opened_by(unregistered_lms, url)),
        client.post(
            f"{hub.url}/hub/lti13/register",
            data={
                "registration_key": url.split("registration_key=")[1],
                "openid_configuration": unregistered_lms.openid_configuration_url,
                "registration_token": unregistered_lms.new_registration_token(),
            },
        ),
    ):
        assert response.status_code == 400
        assert "is not at the address its configuration came from" in response.text
    assert hub.query(
        "SELECT count(*) FROM learnhub_lti13_platforms WHERE issuer LIKE ?", "%localhost%"
    ) == [(0,)]
    assert unregistered_lms.tool_registrations == []


@pytest.mark.parametrize("key", ["", "not-a-key"])
def test_no_registration_without_a_key(client, hub, unregistered_lms, key):
    response = client.get(
        opened_by(unregistered_lms, f"{hub.url}/hub/lti13/register?registration_key={key}")
    )
    assert response.status_code == 403
    assert "learnhub lti registration-url" in response.text
    # Nothing was fetched on behalf of someone without a key, and the page is not framed.
    assert unregistered_lms.configuration_requests == []
    assert unregistered_lms.url not in frame_ancestors(response)
    assert platforms_of(hub, unregistered_lms) == []


def test_a_url_opened_without_the_lms(client, hub):
    response = client.get(registration_url(hub))
    assert response.status_code == 400
    assert "did not send openid_configuration" in response.text
