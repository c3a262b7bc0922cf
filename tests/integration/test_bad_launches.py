"""Forged, replayed and malformed launches: an exact status and message, and nothing created."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from learnhub.demo.constants import LTI_CLAIM, Role
from learnhub.demo.lti11 import lti11_launch_params, sign_lti11_launch
from learnhub.demo.lti13 import Platform, id_token_claims, sign_id_token
from tests.support import launch_from, lti11_launch, wait_until_ready

pytestmark = pytest.mark.integration


def error_message(response) -> str:
    import re

    match = re.search(r'<p id="error-message">(.*?)</p>', response.text, re.S)
    assert match, response.text[:2000]
    import html

    return html.unescape(match.group(1))


def assert_refused(hub, response, status, message, before):
    assert response.status_code == status, response.text[:2000]
    assert error_message(response) == message
    assert "Traceback" not in response.text
    assert hub.counts() == before, "a refused launch created a user, token or server"


# LTI 1.1


def signed_params(lms, **overrides):
    params = lti11_launch_params(
        user_id="mallory",
        roles="Learner",
        context_id="course-x",
        context_title="Course X",
        resource_link_id="link-x",
    )
    params.update(overrides)
    return params


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (
            lambda lms, form: {**form, "roles": "Instructor"},
            401,
            "Invalid OAuth signature",
        ),
        (
            lambda lms, form: {**form, "oauth_consumer_key": "nobody"},
            401,
            "Unknown LTI consumer key",
        ),
        (
            lambda lms, form: sign_lti11_launch(
                lms.tool_lti11_launch_url, lms.consumer_key, "not-the-secret", signed_params(lms)
            ),
            401,
            "Invalid OAuth signature",
        ),
        (
            lambda lms, form: lms.sign_lti11(signed_params(lms), timestamp=int(time.time()) - 3600),
            401,
            "OAuth timestamp outside the allowed window: check the LMS server's clock",
        ),
        (
            lambda lms, form: lms.sign_lti11(signed_params(lms), timestamp=int(time.time()) + 3600),
            401,
            "OAuth timestamp outside the allowed window: check the LMS server's clock",
        ),
        (
            lambda lms, form: lms.sign_lti11(signed_params(lms, user_id="")),
            400,
            "LTI launch has no user_id: anonymous launches are not supported",
        ),
        (
            lambda lms, form: lms.sign_lti11(
                signed_params(lms, lti_message_type="ToolProxyRegistrationRequest")
            ),
            400,
            "Unsupported lti_message_type 'ToolProxyRegistrationRequest'",
        ),
        (
            # A Content-Item request, signed, that says nowhere to send the answer.
            lambda lms, form: lms.sign_lti11(
                signed_params(lms, lti_message_type="ContentItemSelectionRequest")
            ),
            400,
            "Content-Item request has no content_item_return_url",
        ),
        (
            lambda lms, form: {k: v for k, v in form.items() if k != "oauth_signature"},
            400,
            "LTI launch is missing oauth_signature",
        ),
        (
            lambda lms, form: {**form, "oauth_signature_method": "PLAINTEXT"},
            400,
            "Unsupported oauth_signature_method 'PLAINTEXT': use HMAC-SHA1",
        ),
    ],
    ids=[
        "tampered-field",
        "unknown-consumer",
        "wrong-secret",
        "stale-timestamp",
        "future-timestamp",
        "no-user-id",
        "wrong-message-type",
        "content-item-without-return-url",
        "no-signature",
        "plaintext-signature",
    ],
)
def test_bad_lti11_launch(client, hub, lms, mutate, status, message):
    before = hub.counts()
    form = mutate(lms, lms.sign_lti11(signed_params(lms)))
    response = client.post(f"{hub.url}/hub/lti11/launch", data=form)
    assert_refused(hub, response, status, message, before)


def test_replayed_lti11_nonce(client, hub, lms):
    form = lms.sign_lti11(signed_params(lms, user_id="replayer"))
    first = client.post(f"{hub.url}/hub/lti11/launch", data=form)
    assert first.status_code == 200
    before = hub.counts()
    again = client.post(f"{hub.url}/hub/lti11/launch", data=form)
    assert_refused(hub, again, 401, "OAuth nonce already used: this launch was replayed", before)


def test_nonce_is_not_stored_for_unsigned_traffic(client, hub, lms):
    nonces = hub.query("select count(*) from learnhub_lti11_nonces")[0][0]
    form = {**lms.sign_lti11(signed_params(lms)), "oauth_signature": "forged"}
    assert client.post(f"{hub.url}/hub/lti11/launch", data=form).status_code == 401
    assert hub.query("select count(*) from learnhub_lti11_nonces")[0][0] == nonces


# LTI 1.3


def begin_login(client, hub, lms, **params):
    """Login initiation as the LMS does it; returns the state and nonce the hub asked for."""
    login_url, login_params = lms.initiate_lti13(
        user_id="mallory-13", roles=[Role.LEARNER], context_id="course-y"
    )
    login_params.update(params)
    response = client.get(login_url, params=login_params, allow_redirects=False)
    assert response.status_code == 302, response.text[:2000]
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["state"][0], query["nonce"][0]


def good_claims(lms, nonce):
    return id_token_claims(
        lms.platform,
        nonce=nonce,
        user_id="mallory-13",
        roles=[Role.LEARNER],
        context_id="course-y",
        context_title="Course Y",
        resource_link_id="link-y",
        target_link_uri=lms.tool_lti13_launch_url,
    )


def without(claims, name):
    return {k: v for k, v in claims.items() if k != name}


OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

BAD_TOKENS = [
    ("no-kid", lambda p, c: sign_id_token(p, c, kid=None), 401, "id_token header has no kid"),
    (
        "wrong-kid",
        lambda p, c: sign_id_token(p, c, kid="not-a-kid"),
        401,
        "id_token kid 'not-a-kid' is not in the platform's JWKS",
    ),
    (
        "alg-none",
        lambda p, c: sign_id_token(p, c, alg="none"),
        401,
        "id_token must be signed with RS256, not 'none'",
    ),
    (
        "alg-hs256",
        lambda p, c: sign_id_token(p, c, alg="HS256"),
        401,
        "id_token must be signed with RS256, not 'HS256'",
    ),
    (
        "other-key",
        lambda p, c: sign_id_token(
            Platform(p.issuer, p.client_id, p.deployment_id, kid=p.kid, private_key=OTHER_KEY), c
        ),
        401,
        "id_token signature does not verify",
    ),
    (
        "wrong-version",
        lambda p, c: sign_id_token(p, {**c, LTI_CLAIM + "version": "1.2.0"}),
        400,
        "Unsupported LTI version '1.2.0': expected 1.3.0",
    ),
    (
        "no-version",
        lambda p, c: sign_id_token(p, without(c, LTI_CLAIM + "version")),
        400,
        "id_token has no LTI version claim",
    ),
    (
        "bad-message-type",
        lambda p, c: sign_id_token(p, {**c, LTI_CLAIM + "message_type": "LtiFooRequest"}),
        400,
        "Unsupported LTI message type 'LtiFooRequest'",
    ),
    (
        "no-roles",
        lambda p, c: sign_id_token(p, without(c, LTI_CLAIM + "roles")),
        400,
        "id_token has no roles claim",
    ),
    (
        "no-deployment-id",
        lambda p, c: sign_id_token(p, without(c, LTI_CLAIM + "deployment_id")),
        400,
        "id_token has no deployment_id claim",
    ),
    (
        "unregistered-deployment",
        lambda p, c: sign_id_token(p, {**c, LTI_CLAIM + "deployment_id": "dep-99"}),
        403,
        "Deployment 'dep-99' is not registered for this platform",
    ),
    (
        "no-resource-link",
        lambda p, c: sign_id_token(p, without(c, LTI_CLAIM + "resource_link")),
        400,
        "id_token has no resource_link id",
    ),
    ("no-sub", lambda p, c: sign_id_token(p, without(c, "sub")), 400, "id_token has no sub claim"),
    (
        "expired",
        lambda p, c: sign_id_token(p, {**c, "iat": c["iat"] - 900, "exp": c["iat"] - 600}),
        401,
        "id_token has expired",
    ),
    (
        "future-iat",
        lambda p, c: sign_id_token(p, {**c, "iat": c["iat"] + 900, "exp": c["iat"] + 1200}),
        401,
        "id_token is issued in the future (iat or nbf)",
    ),
    (
        "wrong-nonce",
        lambda p, c: sign_id_token(p, {**c, "nonce": "someone-elses"}),
        401,
        "id_token nonce does not match the login request",
    ),
    (
        "wrong-audience",
        lambda p, c: sign_id_token(p, {**c, "aud": "another-tool", "azp": "another-tool"}),
        401,
        "id_token aud does not include this tool's client id",
    ),
    (
        "wrong-azp",
        lambda p, c: sign_id_token(p, {**c, "aud": [c["aud"], "x"], "azp": "x"}),
        401,
        "id_token azp is not this tool's client id",
    ),
    (
        "wrong-issuer",
        lambda p, c: sign_id_token(p, {**c, "iss": "https://evil.example"}),
        401,
        "id_token iss is not the platform's issuer",
    ),
    (
        "other-target",
        lambda p, c: sign_id_token(p, {**c, LTI_CLAIM + "target_link_uri": "http://x/y"}),
        400,
        "id_token target_link_uri differs from the login request's",
    ),
    ("not-a-jwt", lambda p, c: "garbage", 400, "id_token is not a JSON Web Token"),
]


@pytest.mark.parametrize(
    ("make_token", "status", "message"),
    [case[1:] for case in BAD_TOKENS],
    ids=[case[0] for case in BAD_TOKENS],
)
def test_bad_lti13_id_token(client, hub, lms, make_token, status, message):
    state, nonce = begin_login(client, hub, lms)
    before = hub.counts()
    token = make_token(lms.platform, good_claims(lms, nonce))
    response = client.post(f"{hub.url}/hub/lti13/launch", data={"id_token": token, "state": state})
    assert_refused(hub, response, status, message, before)


def test_the_certifications_launch_without_context_or_personal_data_works(client, hub, lms):
    """Next to the bad ones, a valid launch as bare as the certification makes them: no
    context, no name or email, a role of the institution only. It opens a workspace, with
    no course, no course role and nothing kept about the person but the pseudonym."""
    state, nonce = begin_login(client, hub, lms)
    claims = without(good_claims(lms, nonce), LTI_CLAIM + "context")
    claims["sub"] = "cert-bare-13"
    claims[LTI_CLAIM + "roles"] = [
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"
    ]
    courses = hub.query("select count(*) from learnhub_courses")[0][0]
    response = client.post(
        f"{hub.url}/hub/lti13/launch",
        data={"id_token": sign_id_token(lms.platform, claims), "state": state},
    )
    launch = launch_from(hub.url, response)
    wait_until_ready(client, launch)
    assert hub.query("select count(*) from learnhub_courses")[0][0] == courses
    assert hub.query(
        "select count(*) from learnhub_enrollments where username = ?", launch.username
    ) == [(0,)]
    groups = hub.query(
        "select count(*) from user_group_map m join users u on u.id = m.user_id where u.name = ?",
        launch.username,
    )
    assert groups == [(0,)]
    assert "cert-bare-13" not in launch.username


def test_state_is_one_time(client, hub, lms):
    state, nonce = begin_login(client, hub, lms)
    token = sign_id_token(lms.platform, good_claims(lms, nonce))
    first = client.post(f"{hub.url}/hub/lti13/launch", data={"id_token": token, "state": state})
    assert first.status_code == 200
    before = hub.counts()
    again = client.post(f"{hub.url}/hub/lti13/launch", data={"id_token": token, "state": state})
    assert_refused(
        hub,
        again,
        401,
        "Unknown or expired login state: open the activity again from your LMS",
        before,
    )


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"iss": "https://unknown.example"}, 401, "Unknown LTI 1.3 platform issuer"),
        (
            {"lti_deployment_id": "dep-99"},
            403,
            "Deployment 'dep-99' is not registered for this platform",
        ),
        (
            {"target_link_uri": "https://evil.example/launch"},
            400,
            "target_link_uri does not point at this LearnHub",
        ),
        ({"login_hint": ""}, 400, "LTI 1.3 login request is missing login_hint"),
    ],
    ids=["unknown-issuer", "unregistered-deployment", "foreign-target", "no-login-hint"],
)
def test_bad_login_initiation(client, hub, lms, params, status, message):
    login_url, login_params = lms.initiate_lti13(
        user_id="mallory-13", roles=[Role.LEARNER], context_id="course-y"
    )
    login_params.update(params)
    before = hub.counts()
    states = hub.query("select count(*) from learnhub_lti13_login_states")[0][0]
    response = client.get(login_url, params=login_params, allow_redirects=False)
    assert_refused(hub, response, status, message, before)
    assert hub.query("select count(*) from learnhub_lti13_login_states")[0][0] == states


def test_launch_with_unknown_state(client, hub, lms):
    before = hub.counts()
    token = sign_id_token(lms.platform, good_claims(lms, "n"))
    response = client.post(
        f"{hub.url}/hub/lti13/launch", data={"id_token": token, "state": "made-up"}
    )
    assert_refused(
        hub, response, 401,
        "Unknown or expired login state: open the activity again from your LMS", before,
    )  # fmt: skip


def test_lti11_launch_helper_still_works(client, hub, lms):
    # Guards the fixtures above: a well-formed launch from the same peer succeeds.
    assert lti11_launch(client, hub, lms, user_id="control").status_code == 200
