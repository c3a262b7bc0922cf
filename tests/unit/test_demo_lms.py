"""The demo LMS as a real LTI peer: signatures that verify, tokens that check, errors returned."""

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import replace
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jwt
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from oauthlib.oauth1.rfc5849 import (
    CONTENT_TYPE_FORM_URLENCODED,
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_TYPE_BODY,
    Client,
    signature,
)
from tornado.httpclient import AsyncHTTPClient

from learnhub.demo.constants import (
    AGS_ENDPOINT_CLAIM,
    COURSE_OFFERING,
    DL_CLAIM,
    DL_CONTENT_ITEMS_CLAIM,
    DL_DATA_CLAIM,
    DL_SETTINGS_CLAIM,
    LTI_CLAIM,
    MEMBERSHIP_CONTAINER_TYPE,
    NRPS_CLAIM,
    SCOPE_CONTEXT_MEMBERSHIP_READONLY,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    Role,
)
from learnhub.demo.lms import DemoLMS, main, tool_urls
from learnhub.demo.lti11 import lti11_launch_params, sign_lti11_launch
from learnhub.demo.lti13 import Platform, id_token_claims, sign_id_token
from learnhub.demo.pages import autosubmit_form_html
from learnhub.demo.selection import CourseLink, url_origin
from learnhub.demo.services import Member
from learnhub.passback import (
    build_client_assertion,
    build_replace_result_xml,
    sign_outcome_request,
)
from learnhub.passback.ags import token_request_body

# The tool is never contacted: the LMS only renders forms aimed at it.
TOOL = "http://127.0.0.1:9"
OTHER_TOOL_ORIGIN = "http://127.0.0.1:10"
SECRET = "demo-secret-for-tests-only"
LAUNCH_URL = TOOL + "/hub/lti11/launch"


class Page(HTMLParser):
    """The forms, iframes, scripts, list items and text of an HTML page, as a browser would
    see them; button labels belong to their form, not to the text."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[dict] = []
        self.iframes: list[dict] = []
        self.scripts: dict[str | None, str] = {}
        self.items: list[dict] = []
        self.text = ""
        self._script: str | None = None
        self._in_script = self._in_button = self._in_item = False
        self.feed(html)
        self.text = " ".join(self.text.split())
        for item in self.items:
            item["text"] = " ".join(item["text"].split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({**attrs, "fields": {}, "buttons": []})
        elif tag == "input" and attrs.get("type") == "hidden":
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "button":
            self._in_button = True
            self.forms[-1]["buttons"].append("")
        elif tag == "iframe":
            self.iframes.append(attrs)
        elif tag == "script":
            self._in_script, self._script = True, attrs.get("id")
            self.scripts[self._script] = ""
        elif tag == "li":
            self._in_item = True
            self.items.append({**attrs, "text": ""})

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag == "button":
            self._in_button = False
        elif tag == "li":
            self._in_item = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[self._script] += data
        elif self._in_button:
            self.forms[-1]["buttons"][-1] += data
        else:
            self.text += data
            if self._in_item:
                self.items[-1]["text"] += data


@pytest.fixture
async def lms():
    lms = DemoLMS(consumer_secret=SECRET, **tool_urls(TOOL))
    lms.tool_lti11_launch_url = OTHER_TOOL_ORIGIN + "/hub/lti11/launch"
    await lms.start()
    yield lms
    await lms.stop()


@pytest.fixture
async def http():
    client = AsyncHTTPClient(force_instance=True)
    yield client
    client.close()


async def get(http, url):
    return await http.fetch(url, raise_error=False, follow_redirects=False)


async def served_jwks(http, lms) -> dict:
    response = await get(http, lms.jwks_url)
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.body)


def verify_like_a_tool(token: str, jwks: dict, *, audience: str, issuer: str) -> dict:
    header = jwt.get_unverified_header(token)
    if "kid" not in header:
        raise LookupError("no kid")
    keys = {k["kid"]: k for k in jwks["keys"]}
    if header["kid"] not in keys:
        raise LookupError("unknown kid")
    key = jwt.PyJWK(keys[header["kid"]]).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=issuer)


def hmac_sha1_verifies(uri: str, fields: dict, secret: str) -> bool:
    request = SimpleNamespace(
        uri=uri,
        http_method="POST",
        # The launch URL's own query is signed too, as a tool reading the whole request sees.
        params=signature.collect_parameters(
            uri_query=urlsplit(uri).query, body=list(fields.items()), exclude_oauth_signature=True
        ),
        signature=fields["oauth_signature"],
    )
    return signature.verify_hmac_sha1(request, client_secret=secret)


# ---------------------------------------------------------------- LTI 1.1

BASE_LAUNCH = {
    "user_id": "u1",
    "roles": "Learner",
    "context_id": "c1",
    "context_title": "Course one",
    "resource_link_id": "r1",
}
REQUIRED_FIELDS = {
    "lti_message_type": "basic-lti-launch-request",
    "lti_version": "LTI-1p0",
    **BASE_LAUNCH,
}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, REQUIRED_FIELDS, id="required-only"),
        pytest.param(
            {"name": "Ada L", "email": "ada@example.org"},
            {
                **REQUIRED_FIELDS,
                "lis_person_name_full": "Ada L",
                "lis_person_contact_email_primary": "ada@example.org",
            },
            id="person",
        ),
        pytest.param(
            {"outcome_service_url": "http://127.0.0.1:1/outcomes", "result_sourcedid": "s1"},
            {
                **REQUIRED_FIELDS,
                "lis_outcome_service_url": "http://127.0.0.1:1/outcomes",
                "lis_result_sourcedid": "s1",
            },
            id="outcomes",
        ),
        pytest.param(
            {"roles": [Role.INSTRUCTOR, Role.TEACHING_ASSISTANT]},
            {**REQUIRED_FIELDS, "roles": "Instructor,TeachingAssistant"},
            id="roles-from-Role",
        ),
        pytest.param(
            {"extra": {"lti_version": "LTI-2p0", "custom_week": "3"}},
            {**REQUIRED_FIELDS, "lti_version": "LTI-2p0", "custom_week": "3"},
            id="extra-wins",
        ),
    ],
)
def test_lti11_launch_params(kwargs, expected):
    assert lti11_launch_params(**{**BASE_LAUNCH, **kwargs}) == expected


def _changed(field, value):
    return lambda uri, fields, secret: (uri, {**fields, field: value}, secret)


@pytest.mark.parametrize(
    ("launch_url", "tamper", "verifies"),
    [
        pytest.param(LAUNCH_URL, lambda u, f, s: (u, f, s), True, id="untouched"),
        pytest.param(
            LAUNCH_URL + "?course=a%20b", lambda u, f, s: (u, f, s), True, id="query-in-url"
        ),
        pytest.param(LAUNCH_URL, _changed("user_id", "u2"), False, id="user_id"),
        pytest.param(LAUNCH_URL, _changed("roles", "Instructor"), False, id="roles"),
        pytest.param(LAUNCH_URL, _changed("oauth_timestamp", "1"), False, id="timestamp"),
        pytest.param(LAUNCH_URL, _changed("custom_x", "1"), False, id="added-field"),
        pytest.param(LAUNCH_URL, lambda u, f, s: (u + "x", f, s), False, id="other-launch-url"),
        pytest.param(LAUNCH_URL, lambda u, f, s: (u, f, s + "x"), False, id="other-secret"),
    ],
)
def test_lti11_signature_verifies_until_one_thing_changes(launch_url, tamper, verifies):
    fields = sign_lti11_launch(launch_url, "demo", SECRET, lti11_launch_params(**BASE_LAUNCH))
    assert hmac_sha1_verifies(*tamper(launch_url, fields, SECRET)) is verifies


def test_lti11_timestamp_and_nonce_can_be_chosen():
    params = lti11_launch_params(**BASE_LAUNCH)
    first = sign_lti11_launch(LAUNCH_URL, "demo", SECRET, params, timestamp=1000, nonce="n-1")
    replay = sign_lti11_launch(LAUNCH_URL, "demo", SECRET, params, timestamp=1000, nonce="n-1")
    other = sign_lti11_launch(LAUNCH_URL, "demo", SECRET, params, timestamp=1000, nonce="n-2")
    oauth = {k: v for k, v in first.items() if k.startswith("oauth_") and k != "oauth_signature"}
    assert oauth == {
        "oauth_consumer_key": "demo",
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_version": "1.0",
        "oauth_timestamp": "1000",
        "oauth_nonce": "n-1",
        "oauth_callback": "about:blank",
    }
    assert replay == first
    assert other["oauth_signature"] != first["oauth_signature"]


# ---------------------------------------------------------------- LTI 1.3, pure


def test_jwks_publishes_only_the_public_key():
    platform = Platform("https://lms.test", "client", "dep")
    (key,) = platform.jwks()["keys"]
    assert set(key) == {"kty", "kid", "alg", "use", "n", "e"}
    assert (key["kty"], key["kid"], key["alg"], key["use"], key["e"]) == (
        "RSA",
        platform.kid,
        "RS256",
        "sig",
        "AQAB",
    )


def test_rotate_key_retires_the_old_key():
    platform = Platform("https://lms.test", "client", "dep")
    claims = id_token_claims(platform, nonce="n", **LAUNCH13)
    before, old_kid = sign_id_token(platform, claims), platform.kid
    platform.rotate_key()
    check = {"audience": "client", "issuer": "https://lms.test"}
    assert platform.kid != old_kid
    assert verify_like_a_tool(sign_id_token(platform, claims), platform.jwks(), **check) == claims
    with pytest.raises(LookupError, match="unknown kid"):
        verify_like_a_tool(before, platform.jwks(), **check)


LAUNCH13 = {
    "user_id": "u1",
    "roles": [Role.LEARNER],
    "context_id": "c1",
    "context_title": "Course one",
    "resource_link_id": "r1",
    "target_link_uri": TOOL + "/hub/lti13/launch",
}
AGS = {
    "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
    "lineitem": "http://127.0.0.1:1/lineitems/1",
}
NRPS = {
    "context_memberships_url": "http://127.0.0.1:1/api/lti/courses/c1/memberships",
    "service_versions": ["2.0"],
}


@pytest.mark.parametrize(
    ("kwargs", "optional"),
    [
        pytest.param({}, {}, id="required-only"),
        pytest.param(
            {"name": "Ada L", "email": "ada@example.org"},
            {"name": "Ada L", "email": "ada@example.org"},
            id="person",
        ),
        pytest.param({"ags": AGS}, {AGS_ENDPOINT_CLAIM: AGS}, id="ags"),
        pytest.param({"nrps": NRPS}, {NRPS_CLAIM: NRPS}, id="nrps"),
    ],
)
def test_id_token_claims(kwargs, optional):
    platform = Platform("https://lms.test", "client-1", "dep-1")
    claims = id_token_claims(platform, nonce="n-1", now=1000, **LAUNCH13, **kwargs)
    assert claims == {
        "iss": "https://lms.test",
        "aud": "client-1",
        "azp": "client-1",
        "sub": "u1",
        "exp": 1300,
        "iat": 1000,
        "nonce": "n-1",
        LTI_CLAIM + "message_type": "LtiResourceLinkRequest",
        LTI_CLAIM + "version": "1.3.0",
        LTI_CLAIM + "deployment_id": "dep-1",
        LTI_CLAIM + "target_link_uri": TOOL + "/hub/lti13/launch",
        LTI_CLAIM + "resource_link": {"id": "r1"},
        LTI_CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        LTI_CLAIM + "context": {"id": "c1", "title": "Course one", "type": [COURSE_OFFERING]},
        **optional,
    }


def test_deep_linking_request_claims():
    platform = Platform("https://lms.test", "client-1", "dep-1")
    settings = {"deep_link_return_url": "https://lms.test/deep_link_return", "data": "d-1"}
    launch = {k: v for k, v in LAUNCH13.items() if k != "resource_link_id"}
    claims = id_token_claims(
        platform,
        nonce="n-1",
        now=1000,
        message_type="LtiDeepLinkingRequest",
        deep_linking=settings,
        **launch,
    )
    resource_link = id_token_claims(platform, nonce="n-1", now=1000, **LAUNCH13)
    del resource_link[LTI_CLAIM + "resource_link"]
    assert claims == {
        **resource_link,
        LTI_CLAIM + "message_type": "LtiDeepLinkingRequest",
        DL_SETTINGS_CLAIM: settings,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"message_type": "LtiDeepLinkingRequest"},
            "an LtiDeepLinkingRequest needs deep_linking settings",
            id="deep-linking-without-settings",
        ),
        pytest.param({}, "an LtiResourceLinkRequest needs a resource_link_id", id="no-link"),
    ],
)
def test_id_token_claims_refuse_a_message_without_its_claim(kwargs, message):
    launch = {k: v for k, v in LAUNCH13.items() if k != "resource_link_id"}
    platform = Platform("https://lms.test", "client-1", "dep-1")
    with pytest.raises(ValueError, match=message):
        id_token_claims(platform, nonce="n-1", **launch, **kwargs)


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        pytest.param("http://127.0.0.1:9/a?x=1&y=2", {"id_token": "a.b.c"}, id="query"),
        pytest.param("/x", {"state": '"><script>alert(1)</script>'}, id="markup-in-value"),
        pytest.param("/x", {"submit": "1", "name": "é & ü"}, id="field-named-submit"),
    ],
)
def test_autosubmit_form_carries_fields_exactly(action, fields):
    (form,) = Page(autosubmit_form_html(action, fields, title="t")).forms
    assert (form["action"], form["method"], form["fields"]) == (action, "post", fields)
    assert form["buttons"] == ["Continue"]


def test_url_origin():
    assert [
        url_origin(u)
        for u in ("HTTP://Example.org:80/a", "https://h:8443/x?y", "http://127.0.0.1:9")
    ] == ["http://example.org", "https://h:8443", "http://127.0.0.1:9"]


# ---------------------------------------------------------------- the running LMS


async def test_listens_on_loopback_and_is_its_own_issuer(lms):
    assert lms.url.startswith("http://127.0.0.1:")
    assert lms._server is not None
    assert lms.platform.issuer == lms.url
    assert lms.registration()["auth_url"] == lms.url + "/auth"


async def test_id_token_verifies_with_the_served_jwks(lms, http):
    claims = id_token_claims(lms.platform, nonce="n", **LAUNCH13)
    token = sign_id_token(lms.platform, claims)
    jwks = await served_jwks(http, lms)
    check = {"audience": "learnhub-demo", "issuer": lms.url}
    assert verify_like_a_tool(token, jwks, **check) == claims


@pytest.mark.parametrize(
    ("kwargs", "defect", "refusal"),
    [
        pytest.param({"kid": None}, lambda h, t, p: "kid" not in h, LookupError, id="no-kid"),
        pytest.param(
            {"kid": "retired"}, lambda h, t, p: h["kid"] == "retired", LookupError, id="wrong-kid"
        ),
        pytest.param(
            {"alg": "none"},
            lambda h, t, p: h["alg"] == "none" and t.endswith("."),
            jwt.InvalidAlgorithmError,
            id="alg-none",
        ),
        pytest.param(
            {"alg": "HS256"},
            # Really signed: it verifies as HMAC with the public modulus as the secret.
            lambda h, t, p: (
                jwt.decode(t, p.public_jwk()["n"], algorithms=["HS256"], audience="learnhub-demo")[
                    "sub"
                ]
                == "u1"
            ),
            jwt.InvalidAlgorithmError,
            id="hs256-key-confusion",
        ),
    ],
)
async def test_bad_tokens_have_the_asked_defect(lms, http, kwargs, defect, refusal):
    token = sign_id_token(
        lms.platform, id_token_claims(lms.platform, nonce="n", **LAUNCH13), **kwargs
    )
    assert defect(jwt.get_unverified_header(token), token, lms.platform)
    jwks = await served_jwks(http, lms)
    with pytest.raises(refusal):
        verify_like_a_tool(token, jwks, audience="learnhub-demo", issuer=lms.url)


async def test_launch11_route_signs_for_the_tool(lms, http):
    response = await get(http, lms.url + "/launch11?user=alice&role=ta&course=c9")
    (form,) = Page(response.body.decode()).forms
    fields = form["fields"]
    assert form["action"] == lms.tool_lti11_launch_url
    assert hmac_sha1_verifies(form["action"], fields, SECRET)
    assert not hmac_sha1_verifies(form["action"], fields, SECRET + "x")
    assert {k: fields[k] for k in ("user_id", "roles", "context_id", "oauth_consumer_key")} == {
        "user_id": "alice",
        "roles": "Instructor,TeachingAssistant",
        "context_id": "c9",
        "oauth_consumer_key": "demo",
    }
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("route", ["/launch11", "/launch13", "/deeplink13", "/contentitem11"])
async def test_launch_routes_refuse_unknown_roles(lms, http, route):
    response = await get(http, lms.url + route + "?role=dean")
    assert response.code == 400
    assert b"role must be one of: learner, instructor" in response.body


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, {}, id="plain"),
        pytest.param(
            {"storage_target": "_parent"}, {"lti_storage_target": "_parent"}, id="storage"
        ),
        pytest.param(
            {"target_link_uri": TOOL + "/hub/deep"},
            {"target_link_uri": TOOL + "/hub/deep"},
            id="own-target",
        ),
    ],
)
async def test_initiate_lti13_login_request(lms, kwargs, expected):
    url, params = lms.initiate_lti13(user_id="u1", roles=[Role.LEARNER], context_id="c1", **kwargs)
    assert url == TOOL + "/hub/lti13/login"
    assert params == {
        "iss": lms.url,
        "login_hint": "u1",
        "target_link_uri": TOOL + "/hub/lti13/launch",
        "lti_message_hint": params["lti_message_hint"],
        "client_id": "learnhub-demo",
        "lti_deployment_id": "1",
        **expected,
    }
    assert len(params["lti_message_hint"]) >= 16


def auth_request(lms, params, **changes) -> dict:
    request = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": params["client_id"],
        "redirect_uri": lms.tool_lti13_launch_url,
        "login_hint": params["login_hint"],
        "lti_message_hint": params["lti_message_hint"],
        "state": "state-1",
        "nonce": "nonce-1",
    }
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


async def send_auth(http, lms, request, method="GET", extra_pairs=()):
    query = urlencode([*request.items(), *extra_pairs])
    if method == "GET":
        return await get(http, f"{lms.auth_url}?{query}")
    return await http.fetch(lms.auth_url, method="POST", body=query, raise_error=False)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_auth_answers_a_good_request_with_a_signed_form(lms, http, method):
    _, params = lms.initiate_lti13(user_id="u1", roles=[Role.INSTRUCTOR], context_id="c1")
    response = await send_auth(http, lms, auth_request(lms, params), method)
    assert response.code == 200
    (form,) = Page(response.body.decode()).forms
    assert (form["action"], form["method"]) == (lms.tool_lti13_launch_url, "post")
    assert set(form["fields"]) == {"id_token", "state"}
    assert form["fields"]["state"] == "state-1"
    jwks = await served_jwks(http, lms)
    claims = verify_like_a_tool(
        form["fields"]["id_token"], jwks, audience="learnhub-demo", issuer=lms.url
    )
    assert (claims["nonce"], claims["sub"], claims[LTI_CLAIM + "roles"]) == (
        "nonce-1",
        "u1",
        [Role.INSTRUCTOR.value],
    )


@pytest.mark.parametrize(
    ("changes", "extra_pairs", "error", "description"),
    [
        pytest.param(
            {"client_id": "other"}, (), "unauthorized_client", "unknown client_id 'other'",
            id="unknown-client",
        ),
        pytest.param(
            {"redirect_uri": TOOL + "/elsewhere"}, (), "invalid_request",
            f"redirect_uri '{TOOL}/elsewhere' is not the registered tool launch URL",
            id="other-redirect-uri",
        ),
        pytest.param(
            {"response_type": "code"}, (), "unsupported_response_type",
            "response_type must be id_token", id="code-flow",
        ),
        pytest.param(
            {"scope": "profile"}, (), "invalid_scope", "scope must include openid",
            id="no-openid-scope",
        ),
        pytest.param(
            {"response_mode": "query"}, (), "invalid_request", "response_mode must be form_post",
            id="query-mode",
        ),
        pytest.param(
            {"prompt": "login"}, (), "invalid_request", "prompt must be none", id="prompt"
        ),
        pytest.param({"nonce": None}, (), "invalid_request", "nonce is required", id="no-nonce"),
        pytest.param({"state": ""}, (), "invalid_request", "state is required", id="empty-state"),
        pytest.param(
            {"login_hint": None}, (), "invalid_request", "login_hint is required",
            id="no-login-hint",
        ),
        pytest.param(
            {"lti_message_hint": None}, (), "invalid_request", "lti_message_hint is required",
            id="no-message-hint",
        ),
        pytest.param(
            {"lti_message_hint": "made-up"}, (), "invalid_request",
            "lti_message_hint is unknown", id="unknown-message-hint",
        ),
        pytest.param(
            {"login_hint": "mallory"}, (), "invalid_request",
            "login_hint does not match the user of lti_message_hint", id="other-user",
        ),
        pytest.param(
            {}, [("nonce", "nonce-2")], "invalid_request", "parameter nonce is repeated",
            id="repeated-nonce",
        ),
    ],
)  # fmt: skip
async def test_auth_refuses_bad_requests(lms, http, changes, extra_pairs, error, description):
    _, params = lms.initiate_lti13(user_id="u1", roles=[Role.LEARNER], context_id="c1")
    response = await send_auth(http, lms, auth_request(lms, params, **changes), "GET", extra_pairs)
    assert response.code == 400
    assert json.loads(response.body) == {"error": error, "error_description": description}


@pytest.mark.parametrize(
    ("hint_ttl", "first_changes", "first_code", "second_error"),
    [
        pytest.param(300, {}, 200, "lti_message_hint was already used", id="after-success"),
        pytest.param(
            300, {"login_hint": "mallory"}, 400, "lti_message_hint was already used",
            id="after-refusal",
        ),
        pytest.param(0, {}, 400, "lti_message_hint was already used", id="after-expiry"),
    ],
)  # fmt: skip
async def test_message_hint_works_once(
    lms, http, hint_ttl, first_changes, first_code, second_error
):
    lms.hint_ttl = hint_ttl
    _, params = lms.initiate_lti13(user_id="u1", roles=[Role.LEARNER], context_id="c1")
    first = await send_auth(http, lms, auth_request(lms, params, **first_changes))
    second = await send_auth(http, lms, auth_request(lms, params, nonce="nonce-2"))
    assert first.code == first_code
    if hint_ttl == 0:
        assert json.loads(first.body)["error_description"] == "lti_message_hint has expired"
    assert (second.code, json.loads(second.body)["error_description"]) == (400, second_error)


@pytest.mark.parametrize(
    ("query", "storage_target"),
    [
        pytest.param("", "_parent", id="with-platform-storage"),
        pytest.param("&storage=off", None, id="without-platform-storage"),
    ],
)
async def test_launch13_route_starts_a_login_the_lms_then_answers(lms, http, query, storage_target):
    response = await get(http, f"{lms.url}/launch13?user=bob&role=instructor&course=c2{query}")
    (login,) = Page(response.body.decode()).forms
    assert login["action"] == lms.tool_lti13_login_url
    assert login["fields"].get("lti_storage_target") == storage_target
    assert (login["fields"]["login_hint"], login["fields"]["iss"]) == ("bob", lms.url)

    answer = await send_auth(http, lms, auth_request(lms, login["fields"]), "POST")
    (launch,) = Page(answer.body.decode()).forms
    jwks = await served_jwks(http, lms)
    claims = verify_like_a_tool(
        launch["fields"]["id_token"], jwks, audience="learnhub-demo", issuer=lms.url
    )
    assert (claims["sub"], claims[LTI_CLAIM + "context"]["id"]) == ("bob", "c2")


async def test_course_page_frames_the_tool_and_launches_into_the_frame(lms, http):
    page = Page((await get(http, lms.url + "/course")).body.decode())
    assert [f["name"] for f in page.iframes] == ["tool"]
    launches = {(f["action"], f["target"], f["fields"]["role"]) for f in page.forms}
    assert launches == {
        (route, "tool", role)
        for route in ("/launch11", "/launch13")
        for role in ("learner", "instructor")
    } | {("/deeplink13", "tool", "instructor"), ("/contentitem11", "tool", "instructor")}
    buttons = [b for f in page.forms for b in f["buttons"]]
    assert "Launch as learner (LTI 1.3)" in buttons
    assert "Launch as instructor (LTI 1.1)" in buttons
    assert page.items == []
    assert "None yet: an instructor adds them by deep linking." in page.text


STORAGE_HARNESS = """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const listeners = [];
globalThis.window = {addEventListener: (type, f) => type === "message" && listeners.push(f)};
console.warn = () => {};
new Function(input.script)();
const replies = input.events.map((event) => {
  const sent = [];
  const source = {postMessage: (message, targetOrigin) => sent.push({message, targetOrigin})};
  listeners.forEach((listener) => listener({...event, source}));
  return sent;
});
console.log(JSON.stringify(replies));
"""


def _reply(origin, **message):
    return [{"message": message, "targetOrigin": origin}]


async def test_course_page_platform_storage(lms, http):
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is needed to run the course page's storage script")
        pytest.skip("node is not installed: the course page's storage script is not run")
    page = Page((await get(http, lms.url + "/course")).body.decode())
    tool, other_tool, stranger = TOOL, OTHER_TOOL_ORIGIN, "http://127.0.0.1:11"
    steps = [
        (tool, {"subject": "lti.capabilities", "message_id": "1"}),
        (tool, {"subject": "lti.put_data", "message_id": "2", "key": "state_x", "value": "x"}),
        (tool, {"subject": "lti.get_data", "message_id": "3", "key": "state_x"}),
        (other_tool, {"subject": "lti.get_data", "message_id": "4", "key": "state_x"}),
        (stranger, {"subject": "lti.get_data", "message_id": "5", "key": "state_x"}),
        (tool, {"subject": "lti.put_data", "message_id": "6", "value": "x"}),
        (tool, {"subject": "lti.frameResize", "message_id": "7"}),
    ]
    events = [{"origin": origin, "data": data} for origin, data in steps]
    script = page.scripts["lti-platform-storage"]
    run = subprocess.run(
        [node, "-e", STORAGE_HARNESS],
        input=json.dumps({"script": script, "events": events}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(run.stdout) == [
        _reply(
            tool,
            subject="lti.capabilities.response",
            message_id="1",
            supported_messages=[
                {"subject": "lti.capabilities"},
                {"subject": "lti.put_data", "frame": "_parent"},
                {"subject": "lti.get_data", "frame": "_parent"},
            ],
        ),
        _reply(tool, subject="lti.put_data.response", message_id="2", key="state_x", value="x"),
        _reply(tool, subject="lti.get_data.response", message_id="3", key="state_x", value="x"),
        _reply(
            other_tool, subject="lti.get_data.response", message_id="4", key="state_x", value=None
        ),
        [],
        _reply(
            tool,
            subject="lti.put_data.response",
            message_id="6",
            error={"code": "bad_request", "message": "lti.put_data needs a key"},
        ),
        _reply(
            tool,
            subject="lti.frameResize.response",
            message_id="7",
            error={"code": "unsupported_subject", "message": "unsupported subject lti.frameResize"},
        ),
    ]


# ---------------------------------------------------------------- LTI 1.3 deep linking

# The tool's own key pair: the LMS knows only its public half, from the tool's JWKS URL.
TOOL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
TOOL_KID = "learnhub-tool-1"
DROP = object()

PS01 = {
    "type": "ltiResourceLink",
    "title": "Problem set 1",
    "text": "Loops and lists",
    "url": TOOL + "/hub/lti13/launch?assignment=ps01",
    "custom": {"assignment": "ps01"},
    "lineItem": {"scoreMaximum": 10, "label": "PS 1", "resourceId": "ps01", "tag": "grade"},
}
READING = {"type": "ltiResourceLink", "title": "<b>Reading</b> & notes"}


class ToolJWKS(tornado.web.RequestHandler):
    """The tool's published keys, as LearnHub serves them at /hub/lti13/jwks."""

    def get(self):
        jwk = RSAAlgorithm.to_jwk(TOOL_KEY.public_key(), as_dict=True)
        self.finish({"keys": [{**jwk, "kid": TOOL_KID, "alg": "RS256", "use": "sig"}]})


@pytest.fixture
async def tool_keys(lms):
    """A loopback stand-in for the tool's JWKS URL, which the LMS fetches keys from."""
    sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/hub/lti13/jwks", ToolJWKS)])
    )
    server.add_sockets(sockets)
    lms.tool_jwks_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/lti13/jwks"
    yield
    server.stop()


def sign_like_a_tool(claims, *, key=TOOL_KEY, kid=TOOL_KID, alg="RS256") -> str:
    """A deep-linking response JWT, signed as the tool signs one unless told otherwise."""
    return jwt.encode(claims, key, algorithm=alg, headers={} if kid is None else {"kid": kid})


def response_claims(lms, data, items) -> dict:
    """An LtiDeepLinkingResponse as the Security Framework has a tool send it."""
    now = int(time.time())
    return {
        "iss": lms.platform.client_id,
        "aud": lms.platform.issuer,
        "iat": now,
        "exp": now + 300,
        "nonce": secrets.token_urlsafe(12),
        LTI_CLAIM + "message_type": "LtiDeepLinkingResponse",
        LTI_CLAIM + "version": "1.3.0",
        LTI_CLAIM + "deployment_id": lms.platform.deployment_id,
        DL_DATA_CLAIM: data,
        DL_CONTENT_ITEMS_CLAIM: list(items),
    }


def start_deep_linking(lms, context_id=None, **kwargs) -> str:
    """An instructor's deep-linking request, as /deeplink13 starts one; returns its data."""
    data = secrets.token_urlsafe(16)
    lms.initiate_deep_linking(
        user_id="demo-instructor",
        roles=[Role.INSTRUCTOR],
        context_id=context_id or lms.course_id,
        data=data,
        **kwargs,
    )
    return data


async def post_return(http, lms, fields):
    return await http.fetch(
        lms.url + "/deep_link_return", method="POST", body=urlencode(fields), raise_error=False
    )


async def deep_link(http, lms, items, context_id=None) -> tuple:
    """A whole deep-linking exchange answered with `items`: the LMS's answer and the claims."""
    claims = response_claims(lms, start_deep_linking(lms, context_id), items)
    return await post_return(http, lms, {"JWT": sign_like_a_tool(claims)}), claims


async def signed_claims(http, lms, login_params) -> dict:
    """The verified id_token the LMS answers the authentication request of a login with."""
    answer = await send_auth(http, lms, auth_request(lms, login_params), "POST")
    (launch,) = Page(answer.body.decode()).forms
    jwks = await served_jwks(http, lms)
    return verify_like_a_tool(
        launch["fields"]["id_token"], jwks, audience="learnhub-demo", issuer=lms.url
    )


async def launch_claims(http, lms, query, route="/launch13") -> tuple[dict, dict]:
    """The login request and the verified id_token of a /launch13 (or `route`) launch."""
    response = await get(http, f"{lms.url}{route}?{query}")
    (login,) = Page(response.body.decode()).forms
    return login["fields"], await signed_claims(http, lms, login["fields"])


@pytest.mark.parametrize(
    ("query", "storage_target"),
    [
        pytest.param("", "_parent", id="with-platform-storage"),
        pytest.param("&storage=off", None, id="without-platform-storage"),
    ],
)
async def test_deeplink13_sends_a_deep_linking_request(lms, http, query, storage_target):
    url = f"{lms.url}/deeplink13?user=demo-instructor&role=instructor&course=c1{query}"
    (login,) = Page((await get(http, url)).body.decode()).forms
    assert login["action"] == lms.tool_lti13_login_url
    assert login["fields"].get("lti_storage_target") == storage_target
    answer = await send_auth(http, lms, auth_request(lms, login["fields"]), "POST")
    (launch,) = Page(answer.body.decode()).forms
    jwks = await served_jwks(http, lms)
    claims = verify_like_a_tool(
        launch["fields"]["id_token"], jwks, audience="learnhub-demo", issuer=lms.url
    )
    settings = claims[DL_SETTINGS_CLAIM]
    assert settings == {
        "deep_link_return_url": lms.url + "/deep_link_return",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": True,
        "accept_lineitem": True,
        "auto_create": True,
        "title": "LearnHub",
        "data": settings["data"],
    }
    assert len(settings["data"]) >= 16
    assert LTI_CLAIM + "resource_link" not in claims
    assert AGS_ENDPOINT_CLAIM not in claims
    assert (
        claims[LTI_CLAIM + "message_type"],
        claims["sub"],
        claims[LTI_CLAIM + "roles"],
        claims[LTI_CLAIM + "context"]["id"],
        claims[LTI_CLAIM + "target_link_uri"],
    ) == ("LtiDeepLinkingRequest", "demo-instructor", [Role.INSTRUCTOR.value], "c1",
          lms.tool_lti13_launch_url)  # fmt: skip


@pytest.mark.parametrize("route", ["/launch13", "/deeplink13"])
async def test_lti13_routes_need_the_tool_urls(lms, http, route):
    lms.tool_lti13_login_url = None
    response = await get(http, lms.url + route)
    assert (response.code, response.body) == (
        503,
        b"DemoLMS.tool_lti13_login_url/launch_url are not set\n",
    )


async def test_a_good_response_makes_links_and_their_columns(lms, http, tool_keys):
    response, claims = await deep_link(http, lms, [PS01, READING])
    assert response.code == 200
    page = Page(response.body.decode())
    assert "Added 2 links to Introduction to Python (demo)" in page.text
    assert [item["text"] for item in page.items] == ["Problem set 1", "<b>Reading</b> & notes"]
    assert b"&lt;b&gt;Reading&lt;/b&gt; &amp; notes" in response.body
    assert '<a href="/course" target="_top">Back to the course</a>' in response.body.decode()
    ps01, reading = lms.links.values()
    assert ps01 == CourseLink(
        id=ps01.id,
        context_id="demo-course",
        title="Problem set 1",
        text="Loops and lists",
        url=PS01["url"],
        custom={"assignment": "ps01"},
        lineitem=ps01.lineitem,
    )
    assert reading == CourseLink(
        reading.id, "demo-course", "<b>Reading</b> & notes", "", None, {}, None
    )
    assert ps01.id != reading.id
    assert lms.lineitems["demo-course"] == {
        ps01.lineitem: {
            "id": ps01.lineitem, "label": "PS 1", "scoreMaximum": 10, "resourceId": "ps01",
            "tag": "grade", "resourceLinkId": ps01.id,
        }
    }  # fmt: skip
    assert lms.deep_link_responses == [claims]
    # Deep Linking: the tool finds the column by its link in the line item service.
    token = lms.issue_token([SCOPE_LINEITEM_READONLY]).value
    listed = await http.fetch(
        f"{lms.lineitems_url('demo-course')}?resource_link_id={quote(ps01.id)}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert json.loads(listed.body) == [lms.lineitems["demo-course"][ps01.lineitem]]


@pytest.mark.parametrize(
    ("item", "title", "label"),
    [
        pytest.param({"lineItem": {"scoreMaximum": 5}}, "LearnHub", "LearnHub", id="untitled"),
        pytest.param({"title": "  ", "lineItem": {"scoreMaximum": 5}}, "LearnHub", "LearnHub",
                     id="blank-title"),
        pytest.param({"title": "Quiz", "lineItem": {"scoreMaximum": 2.5}}, "Quiz", "Quiz",
                     id="label-from-title"),
    ],
)  # fmt: skip
async def test_an_item_takes_the_default_title_and_its_column_the_title(
    lms, http, tool_keys, item, title, label
):
    response, _ = await deep_link(http, lms, [{"type": "ltiResourceLink", **item}])
    assert response.code == 200
    (link,) = lms.links.values()
    assert link.title == title
    assert lms.lineitems["demo-course"][link.lineitem]["label"] == label


@pytest.mark.parametrize(
    "absent", [pytest.param(False, id="empty"), pytest.param(True, id="absent")]
)
async def test_an_empty_response_makes_nothing(lms, http, tool_keys, absent):
    lms.link_lineitem(lms.course_id, "demo-course-ps00", "ps00")
    columns = copy.deepcopy(lms.lineitems)
    claims = response_claims(lms, start_deep_linking(lms), [])
    if absent:
        del claims[DL_CONTENT_ITEMS_CLAIM]
    claims[DL_CLAIM + "msg"] = "Nothing <i>was</i> chosen"
    response = await post_return(http, lms, {"JWT": sign_like_a_tool(claims)})
    assert response.code == 200
    page = Page(response.body.decode())
    assert "No links added to Introduction to Python (demo)" in page.text
    assert "The tool says: Nothing <i>was</i> chosen" in page.text
    assert page.items == []
    assert (lms.links, lms.lineitems, lms.deep_link_responses) == ({}, columns, [claims])


async def test_a_deep_linked_link_launches_as_the_tool_made_it(lms, http, tool_keys):
    await deep_link(http, lms, [PS01, READING])
    ps01, reading = lms.links.values()
    login, claims = await launch_claims(
        http, lms, f"link={ps01.id}&role=learner&user=demo-learner&course=demo-course"
    )
    assert login["target_link_uri"] == PS01["url"]
    assert claims[LTI_CLAIM + "target_link_uri"] == PS01["url"]
    assert claims[LTI_CLAIM + "resource_link"] == {"id": ps01.id}
    assert claims[LTI_CLAIM + "custom"] == {"assignment": "ps01"}
    assert claims[AGS_ENDPOINT_CLAIM]["lineitem"] == ps01.lineitem
    assert claims[AGS_ENDPOINT_CLAIM]["lineitems"] == lms.lineitems_url("demo-course")

    login, claims = await launch_claims(
        http, lms, f"link={reading.id}&role=instructor&user=demo-instructor&course=demo-course"
    )
    assert login["target_link_uri"] == lms.tool_lti13_launch_url
    assert claims[LTI_CLAIM + "resource_link"] == {"id": reading.id}
    assert LTI_CLAIM + "custom" not in claims
    assert "lineitem" not in claims[AGS_ENDPOINT_CLAIM]


@pytest.mark.parametrize("course", [pytest.param("demo-course", id="unknown-link"),
                                    pytest.param("c2", id="other-course")])  # fmt: skip
async def test_launch13_refuses_a_link_not_in_the_course(lms, http, tool_keys, course):
    await deep_link(http, lms, [READING], context_id=course)
    (link,) = lms.links.values()
    link_id = "demo-course-link-99" if course == "demo-course" else link.id
    response = await get(http, f"{lms.url}/launch13?link={link_id}&course=demo-course")
    assert (response.code, response.body) == (404, b"no such link in this course\n")


def with_claims(changes=None, **sign):
    """Post the good response with `changes`: a callable value is computed from the good
    claims, DROP removes the claim. `sign` is passed on to sign_like_a_tool."""

    def forge(lms, claims):
        changed = {k: v(claims) if callable(v) else v for k, v in (changes or {}).items()}
        claims = {k: v for k, v in {**claims, **changed}.items() if v is not DROP}
        return {"JWT": sign_like_a_tool(claims, **sign)}

    return forge


def with_items(*items):
    return with_claims({DL_CONTENT_ITEMS_CLAIM: list(items)})


def ps01(**changes):
    return {k: v for k, v in {**PS01, **changes}.items() if v is not DROP}


def after(change):
    """Post the good response after `change(lms)`."""

    def forge(lms, claims):
        change(lms)
        return {"JWT": sign_like_a_tool(claims)}

    return forge


def _expire_requests(lms):
    lms.deep_linking_ttl = 0


MESSAGE_TYPE, VERSION = LTI_CLAIM + "message_type", LTI_CLAIM + "version"
# What a link item of either message (deep linking, Content-Item) is checked for alike.
LINK_FIELD_PROBLEMS = [
    ({"title": ["Problem set 1"]}, "title must be a string", "title-not-a-string"),
    ({"text": 3}, "text must be a string", "text-not-a-string"),
    ({"url": "http://127.0.0.1:11/hub/launch"},
     "url 'http://127.0.0.1:11/hub/launch' is not on the tool's origin", "url-elsewhere"),
    ({"url": "javascript:alert(1)"}, "url 'javascript:alert(1)' is not on the tool's origin",
     "url-javascript"),
    ({"custom": ["assignment=ps01"]}, "custom must map names to strings", "custom-a-list"),
    ({"custom": {"week": 3}}, "custom must map names to strings", "custom-number"),
    ({"custom": {"week": None}}, "custom must map names to strings", "custom-null"),
]  # fmt: skip
DEPLOYMENT = LTI_CLAIM + "deployment_id"

DEEP_LINK_REFUSALS = [
    pytest.param({}, lambda lms, c: {}, "the form field JWT is required", id="no-field"),
    pytest.param({}, lambda lms, c: {"JWT": "not.a.jwt"}, "JWT is not a JWT (", id="not-a-jwt"),
    pytest.param({}, after(lambda lms: setattr(lms, "tool_jwks_url", None)),
                 "DemoLMS.tool_jwks_url is not set", id="no-jwks-url"),
    pytest.param({}, after(lambda lms: setattr(lms, "tool_jwks_url", lms.url + "/nowhere")),
                 "the tool's JWKS answered 404", id="jwks-not-found"),
    pytest.param({}, after(lambda lms: setattr(lms, "tool_jwks_url", lms.url + "/course")),
                 "the tool's JWKS is not JSON", id="jwks-not-json"),
    pytest.param({}, after(lambda lms: setattr(lms, "tool_jwks_url", lms.url + "/gradebook.json")),
                 "the tool's JWKS is not a JSON object", id="jwks-a-list"),
    pytest.param({}, with_claims(alg="none", key=None), "JWT must be signed with RS256",
                 id="alg-none"),
    pytest.param({}, with_claims(alg="HS256", key=b"k" * 32), "JWT must be signed with RS256",
                 id="hs256"),
    pytest.param({}, with_claims(kid=None), "JWT header has no kid", id="no-kid"),
    pytest.param({}, with_claims(kid="retired"), "the tool's JWKS has no key 'retired'",
                 id="unknown-kid"),
    pytest.param({}, with_claims(key=OTHER_KEY),
                 "JWT signature does not verify with the tool's key", id="other-key"),
    pytest.param({}, with_claims({"iss": "someone-else"}), "JWT iss is not the tool's client id",
                 id="other-iss"),
    pytest.param({}, with_claims({"iss": DROP}), "JWT has no iss claim", id="no-iss"),
    pytest.param({}, with_claims({"aud": "http://127.0.0.1:1"}),
                 "JWT aud does not include this platform's issuer", id="other-aud"),
    pytest.param({}, with_claims({"aud": ["learnhub-demo", "http://127.0.0.1:1"]}),
                 "JWT aud does not include this platform's issuer", id="aud-list-without-us"),
    pytest.param({}, with_claims({"exp": DROP}), "JWT has no exp claim", id="no-exp"),
    pytest.param({}, with_claims({"exp": lambda c: c["iat"] - 60}), "JWT has expired",
                 id="expired"),
    pytest.param({}, with_claims({"iat": DROP}), "JWT has no iat claim", id="no-iat"),
    pytest.param({}, with_claims({"iat": lambda c: c["iat"] - 600}),
                 "JWT was issued more than five minutes ago", id="issued-long-ago"),
    pytest.param({}, with_claims({"iat": lambda c: c["iat"] + 600}),
                 "JWT is not valid yet (iat or nbf in the future)", id="issued-in-the-future"),
    pytest.param({}, with_claims({"nonce": DROP}), "JWT has no nonce claim", id="no-nonce"),
    pytest.param({}, with_claims({"nonce": ""}), "JWT has no nonce claim", id="empty-nonce"),
    pytest.param({}, with_claims({MESSAGE_TYPE: "LtiResourceLinkRequest"}),
                 "JWT message_type must be LtiDeepLinkingResponse", id="message-type"),
    pytest.param({}, with_claims({VERSION: "1.1.0"}), "JWT version must be 1.3.0", id="version"),
    pytest.param({}, with_claims({DEPLOYMENT: "2"}),
                 "JWT deployment_id is not this platform's deployment", id="deployment"),
    pytest.param({}, with_claims({DL_DATA_CLAIM: DROP}), "JWT has no data claim", id="no-data"),
    pytest.param({}, with_claims({DL_DATA_CLAIM: "made-up"}),
                 "JWT data names no deep linking request of this LMS", id="unknown-data"),
    pytest.param({}, after(_expire_requests), "the deep linking request has expired",
                 id="request-expired"),
    pytest.param({}, with_claims({DL_CONTENT_ITEMS_CLAIM: PS01}),
                 "content_items must be a list", id="items-not-a-list"),
    pytest.param({"accept_multiple": False}, with_items(PS01, READING),
                 "the request accepts one content item, not 2", id="one-accepted"),
    pytest.param({}, with_items("ps01"), "content item 1: must be a JSON object",
                 id="item-not-an-object"),
    pytest.param({}, with_items(ps01(type="link")),
                 "content item 1: type 'link' is not accepted, only ltiResourceLink",
                 id="link-item"),
    pytest.param({}, with_items(PS01, ps01(type="html")),
                 "content item 2: type 'html' is not accepted, only ltiResourceLink",
                 id="second-item-bad"),
    *[pytest.param({}, with_items(ps01(**change)), f"content item 1: {problem}", id=name)
      for change, problem, name in LINK_FIELD_PROBLEMS],
    pytest.param({}, with_items(ps01(lineItem=10)),
                 "content item 1: lineItem must be a JSON object", id="lineitem-a-number"),
    pytest.param({}, with_items(ps01(lineItem={"scoreMaximum": 0})),
                 "content item 1: lineItem scoreMaximum must be positive", id="score-max-zero"),
    pytest.param({}, with_items(ps01(lineItem={"scoreMaximum": -5})),
                 "content item 1: lineItem scoreMaximum must be positive",
                 id="score-max-negative"),
    pytest.param({}, with_items(ps01(lineItem={"scoreMaximum": "10"})),
                 "content item 1: lineItem scoreMaximum must be a number", id="score-max-text"),
    pytest.param({}, with_items(ps01(lineItem={"label": "PS 1"})),
                 "content item 1: lineItem scoreMaximum must be a number", id="no-score-max"),
    pytest.param({}, with_items(ps01(lineItem={"scoreMaximum": 10, "label": ""})),
                 "content item 1: lineItem label is required", id="empty-label"),
    pytest.param({}, with_items(ps01(lineItem={"scoreMaximum": 10, "resourceId": 7})),
                 "content item 1: lineItem resourceId must be a string", id="resource-id"),
]  # fmt: skip


@pytest.mark.parametrize(("request_kwargs", "forge", "message"), DEEP_LINK_REFUSALS)
async def test_deep_link_return_refuses(lms, http, tool_keys, request_kwargs, forge, message):
    lms.link_lineitem(lms.course_id, "demo-course-ps00", "ps00")
    columns = copy.deepcopy(lms.lineitems)
    data = start_deep_linking(lms, **request_kwargs)
    response = await post_return(http, lms, forge(lms, response_claims(lms, data, [PS01])))
    text = response.body.decode()
    assert response.code == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert text.startswith(message)
    assert lms.refusals == [("deep_link_return", 400, text.removesuffix("\n"))]
    assert (lms.links, lms.lineitems, lms.deep_link_responses) == ({}, columns, [])


@pytest.mark.parametrize(
    ("reused", "message"),
    [
        pytest.param("data", "the deep linking request was already answered", id="data"),
        pytest.param("nonce", "JWT nonce was already used", id="nonce"),
    ],
)
async def test_data_and_nonce_work_once(lms, http, tool_keys, reused, message):
    first = response_claims(lms, start_deep_linking(lms), [PS01])
    assert (await post_return(http, lms, {"JWT": sign_like_a_tool(first)})).code == 200
    # Otherwise valid: a fresh nonce for the same data, or fresh data with the same nonce.
    data = first[DL_DATA_CLAIM] if reused == "data" else start_deep_linking(lms)
    second = response_claims(lms, data, [READING])
    if reused == "nonce":
        second["nonce"] = first["nonce"]
    response = await post_return(http, lms, {"JWT": sign_like_a_tool(second)})
    assert (response.code, response.body.decode()) == (400, message + "\n")
    assert [link.title for link in lms.links.values()] == ["Problem set 1"]
    assert lms.deep_link_responses == [first]


async def test_course_page_shows_both_ways_to_add_links_and_the_course_links(lms, http, tool_keys):
    await deep_link(http, lms, [PS01, READING])
    await deep_link(http, lms, [{**READING, "title": "Elsewhere"}], context_id="c2")
    await content_item(http, lms, [PS01_ITEM, READING_ITEM])
    ps01, reading, _, ps01_11, reading_11 = lms.links.values()
    page = Page((await get(http, lms.url + "/course")).body.decode())
    adds = [f for f in page.forms if f["action"] in ("/deeplink13", "/contentitem11")]
    assert [(f["action"], f["method"], f["target"], f["fields"], f["buttons"]) for f in adds] == [
        (route, "get", "tool",
         {"user": "demo-instructor", "role": "instructor", "course": "demo-course"},
         [f"Add assignment links ({label})"])
        for route, label in (("/deeplink13", "LTI 1.3 deep linking"),
                             ("/contentitem11", "LTI 1.1 Content-Item"))
    ]  # fmt: skip
    assert [(item["data-link"], item["text"]) for item in page.items] == [
        (ps01.id, "Problem set 1 (PS 1)"),
        (reading.id, "<b>Reading</b> & notes (no column)"),
        (ps01_11.id, "Problem set 1 (PS 1)"),
        (reading_11.id, "<b>Reading</b> & notes (no column)"),
    ]
    launches = [f for f in page.forms if "link" in f["fields"]]
    assert [(f["action"], f["target"], f["fields"], f["buttons"]) for f in launches] == [
        (route, "tool",
         {"link": link.id, "role": role, "user": f"demo-{role}", "course": "demo-course"},
         [f"Launch as {role}"])
        for route, link in (("/launch13", ps01), ("/launch13", reading), ("/launch11", ps01_11),
                            ("/launch11", reading_11))
        for role in ("learner", "instructor")
    ]  # fmt: skip


# ---------------------------------------------------------------- LTI 1.1 Content-Item

LTI_LINK = "application/vnd.ims.lti.v1.ltilink"
PS01_ITEM = {
    "@type": "LtiLinkItem",
    "mediaType": LTI_LINK,
    "title": "Problem set 1",
    "text": "Loops and lists",
    "url": TOOL + "/hub/lti11/launch?assignment=ps01",
    "custom": {"assignment": "ps01"},
    "lineItem": {
        "@type": "LineItem",
        "label": "PS 1",
        "reportingMethod": "res:totalScore",
        "assignedActivity": {"@id": TOOL + "/hub/lti11/launch#ps01", "activityId": "ps01"},
        "scoreConstraints": {"@type": "NumericLimits", "normalMaximum": 10, "totalMaximum": 12},
    },
}
READING_ITEM = {
    "@type": "LtiLinkItem",
    "mediaType": LTI_LINK,
    "title": "<b>Reading</b> & notes",
    "custom": {"Reading-List": "week 1"},
}
RETURN = "/content_item_return"


def sign_like_a_tool11(url, fields, *, key="demo", secret=SECRET, method=SIGNATURE_HMAC_SHA1,
                       timestamp=None, nonce=None) -> list[tuple[str, str]]:  # fmt: skip
    """A ContentItemSelection's form as the tool posts it to `url`: OAuth 1.0a body-signed
    with the consumer's key and secret, unless told otherwise."""
    client = Client(
        key,
        client_secret=secret,
        signature_method=method,
        signature_type=SIGNATURE_TYPE_BODY,
        callback_uri="about:blank",
        timestamp=timestamp,
        nonce=nonce,
    )
    _, _, body = client.sign(
        url,
        http_method="POST",
        body=urlencode(fields),
        headers={"Content-Type": CONTENT_TYPE_FORM_URLENCODED},
    )
    return parse_qsl(body, keep_blank_values=True)


def selection_fields(data, items=None, **extra) -> dict:
    """The unsigned ContentItemSelection answering `data`; `items` None sends no content_items."""
    fields = {"lti_message_type": "ContentItemSelection", "lti_version": "LTI-1p0", "data": data}
    if items is not None:
        graph = {"@context": "http://purl.imsglobal.org/ctx/lti/v1/ContentItem", "@graph": items}
        fields["content_items"] = json.dumps(graph)
    return {**fields, **extra}


def start_content_item(lms, context_id=None, **kwargs) -> str:
    """An instructor's Content-Item request, as /contentitem11 sends one; returns its data."""
    fields = lms.content_item_request(
        user_id="demo-instructor",
        roles=[Role.INSTRUCTOR],
        context_id=context_id or lms.course_id,
        **kwargs,
    )
    return fields["data"]


async def post_selection(http, lms, pairs):
    return await http.fetch(
        lms.url + RETURN, method="POST", body=urlencode(pairs), raise_error=False
    )


async def content_item(http, lms, items, context_id=None, **extra) -> tuple:
    """A whole Content-Item exchange answered with `items`: the LMS's answer and the fields."""
    fields = selection_fields(start_content_item(lms, context_id), items, **extra)
    pairs = sign_like_a_tool11(lms.url + RETURN, fields)
    return await post_selection(http, lms, pairs), dict(pairs)


async def launch11_form(http, lms, query) -> dict:
    response = await get(http, f"{lms.url}/launch11?{query}")
    (form,) = Page(response.body.decode()).forms
    return form


async def test_content_item_request_is_signed_for_the_tool_and_names_no_link(lms):
    fields = lms.content_item_request(
        user_id="demo-instructor",
        roles=[Role.INSTRUCTOR, Role.TEACHING_ASSISTANT],
        context_id="c1",
        context_title="Course one",
        accept_multiple=False,
        data="d-1",
    )
    oauth = {k: v for k, v in fields.items() if k.startswith("oauth_")}
    assert {k: v for k, v in fields.items() if k not in oauth} == {
        "lti_message_type": "ContentItemSelectionRequest",
        "lti_version": "LTI-1p0",
        "user_id": "demo-instructor",
        "roles": "Instructor,TeachingAssistant",
        "context_id": "c1",
        "context_title": "Course one",
        "accept_media_types": "application/vnd.ims.lti.v1.ltilink",
        "accept_presentation_document_targets": "iframe,window",
        "accept_multiple": "false",
        "accept_unsigned": "false",
        "auto_create": "true",
        "content_item_return_url": lms.url + "/content_item_return",
        "data": "d-1",
        "launch_presentation_document_target": "iframe",
    }
    assert (oauth["oauth_consumer_key"], oauth["oauth_signature_method"]) == ("demo", "HMAC-SHA1")
    assert hmac_sha1_verifies(lms.tool_lti11_launch_url, fields, SECRET)
    assert not hmac_sha1_verifies(lms.tool_lti11_launch_url, fields, SECRET + "x")
    assert not hmac_sha1_verifies(TOOL + "/hub/lti11/launch", fields, SECRET)
    assert "demo-instructor" in lms.members["c1"]


async def test_contentitem11_route_posts_a_request_the_lms_then_takes_the_answer_to(lms, http):
    url = f"{lms.url}/contentitem11?user=demo-instructor&role=instructor&course=demo-course"
    (form,) = Page((await get(http, url)).body.decode()).forms
    fields = form["fields"]
    assert (form["action"], form["method"]) == (lms.tool_lti11_launch_url, "post")
    assert hmac_sha1_verifies(form["action"], fields, SECRET)
    assert (
        fields["lti_message_type"], fields["user_id"], fields["roles"], fields["context_id"],
        fields["context_title"], fields["accept_multiple"], fields["content_item_return_url"],
    ) == ("ContentItemSelectionRequest", "demo-instructor", "Instructor", "demo-course",
          "Introduction to Python (demo)", "true", lms.url + RETURN)  # fmt: skip
    assert "resource_link_id" not in fields
    assert len(fields["data"]) >= 16
    answer = sign_like_a_tool11(fields["content_item_return_url"],
                                selection_fields(fields["data"], [READING_ITEM]))  # fmt: skip
    assert (await post_selection(http, lms, answer)).code == 200
    assert [link.title for link in lms.links.values()] == ["<b>Reading</b> & notes"]


@pytest.mark.parametrize("route", ["/launch11", "/contentitem11"])
async def test_lti11_routes_need_the_tool_url(lms, http, route):
    lms.tool_lti11_launch_url = None
    response = await get(http, lms.url + route)
    assert (response.code, response.body) == (
        503,
        b"DemoLMS.tool_lti11_launch_url is not set (see --tool-url)\n",
    )


async def test_a_good_selection_makes_lti11_links_that_are_their_own_columns(lms, http):
    response, fields = await content_item(
        http, lms, [PS01_ITEM, READING_ITEM], lti_msg="Added <i>2</i>", lti_errormsg="Slow"
    )
    assert response.code == 200
    page = Page(response.body.decode())
    assert "Added 2 links to Introduction to Python (demo)" in page.text
    assert [item["text"] for item in page.items] == ["Problem set 1", "<b>Reading</b> & notes"]
    assert "The tool says: Added <i>2</i>" in page.text
    assert "The tool reports: Slow" in page.text
    assert b"&lt;b&gt;Reading&lt;/b&gt; &amp; notes" in response.body
    assert b"Added &lt;i&gt;2&lt;/i&gt;" in response.body
    ps01, reading = lms.links.values()
    assert ps01 == CourseLink(
        id=ps01.id,
        context_id="demo-course",
        title="Problem set 1",
        text="Loops and lists",
        url=PS01_ITEM["url"],
        custom={"assignment": "ps01"},
        lineitem=None,
        lti_version="1.1",
        column_label="PS 1",
        score_maximum=10,
    )
    assert reading == CourseLink(reading.id, "demo-course", "<b>Reading</b> & notes", "", None,
                                 {"Reading-List": "week 1"}, None, "1.1")  # fmt: skip
    # No line item service in LTI 1.1: the LMS makes no AGS column for these links.
    assert lms.lineitems == {}
    assert lms.content_item_responses == [fields]


@pytest.mark.parametrize(
    ("changes", "title", "label"),
    [
        pytest.param({"title": DROP, "lineItem": {"label": DROP}}, "LearnHub", "LearnHub",
                     id="untitled"),
        pytest.param({"title": "  ", "lineItem": {"label": DROP}}, "LearnHub", "LearnHub",
                     id="blank-title"),
        pytest.param({"lineItem": {"label": DROP}}, "Problem set 1", "Problem set 1",
                     id="label-from-title"),
    ],
)  # fmt: skip
async def test_a_content_item_takes_the_default_title_and_its_column_the_title(
    lms, http, changes, title, label
):
    item = ps01_item(**changes)
    assert (await content_item(http, lms, [item]))[0].code == 200
    (link,) = lms.links.values()
    assert (link.title, link.column_label, link.score_maximum) == (title, label, 10)


async def test_a_content_item_link_launches_over_lti11_as_the_tool_made_it(lms, http):
    await content_item(http, lms, [PS01_ITEM, READING_ITEM])
    ps01, reading = lms.links.values()
    form = await launch11_form(
        http, lms, f"link={ps01.id}&role=learner&user=demo-learner&course=demo-course"
    )
    fields = form["fields"]
    assert form["action"] == PS01_ITEM["url"]
    assert hmac_sha1_verifies(form["action"], fields, SECRET)
    assert {k: fields[k] for k in (
        "lti_message_type", "user_id", "roles", "context_id", "resource_link_id",
        "resource_link_title", "custom_assignment", "lis_outcome_service_url",
    )} == {
        "lti_message_type": "basic-lti-launch-request", "user_id": "demo-learner",
        "roles": "Learner", "context_id": "demo-course", "resource_link_id": ps01.id,
        "resource_link_title": "Problem set 1", "custom_assignment": "ps01",
        "lis_outcome_service_url": lms.url + "/outcomes",
    }  # fmt: skip
    cell = ("demo-learner", "demo-course", ps01.id)
    assert lms.sourcedids[fields["lis_result_sourcedid"]] == cell

    # Without a url the tool's launch URL; custom names in LTI 1.1's form.
    form = await launch11_form(
        http, lms, f"link={reading.id}&role=instructor&user=demo-instructor&course=demo-course"
    )
    assert form["action"] == lms.tool_lti11_launch_url
    assert hmac_sha1_verifies(form["action"], form["fields"], SECRET)
    custom = {k: v for k, v in form["fields"].items() if k.startswith("custom_")}
    assert custom == {"custom_reading_list": "week 1"}
    assert form["fields"]["resource_link_id"] == reading.id


async def test_an_outcome_for_a_content_item_link_lands_in_its_column(lms, http):
    await content_item(http, lms, [PS01_ITEM, READING_ITEM])
    queries = [f"link={link.id}" for link in lms.links.values()] + ["assignment=ps02"]
    for score, query in zip((0.5, 0.25, 1.0), queries, strict=True):
        form = await launch11_form(http, lms, f"{query}&role=learner&course=demo-course")
        body = build_replace_result_xml(form["fields"]["lis_result_sourcedid"], score, "m")
        headers = sign_outcome_request(lms.outcome_service_url, "demo", SECRET, body)
        response = await http.fetch(
            lms.outcome_service_url, method="POST", body=body, headers=headers
        )
        assert b"<imsx_codeMajor>success</imsx_codeMajor>" in response.body
    rows = json.loads((await get(http, lms.url + "/gradebook.json")).body)
    assert sorted((r["column"], r["score"], r["via"]) for r in rows) == [
        ("<b>Reading</b> & notes", 0.25, "LTI 1.1"),
        ("PS 1", 0.5, "LTI 1.1"),
        ("demo-course-ps02", 1.0, "LTI 1.1"),
    ]


@pytest.mark.parametrize(
    "content_items",
    [
        pytest.param(DROP, id="absent"),
        pytest.param("", id="empty"),
        pytest.param(json.dumps({"@graph": []}), id="empty-graph"),
    ],
)
async def test_an_empty_selection_makes_nothing(lms, http, content_items):
    fields = selection_fields(start_content_item(lms), lti_msg="Nothing <i>was</i> chosen")
    if content_items is not DROP:
        fields["content_items"] = content_items
    pairs = sign_like_a_tool11(lms.url + RETURN, fields)
    response = await post_selection(http, lms, pairs)
    assert response.code == 200
    page = Page(response.body.decode())
    assert "No links added to Introduction to Python (demo)" in page.text
    assert "The tool says: Nothing <i>was</i> chosen" in page.text
    assert page.items == []
    assert (lms.links, lms.lineitems, lms.content_item_responses) == ({}, {}, [dict(pairs)])


def ps01_item(**changes):
    """PS01_ITEM with `changes`; a dict value changes that part of the lineItem alike, and
    DROP removes a key."""
    item = copy.deepcopy(PS01_ITEM)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(item.get(key), dict):
            value = {**item[key], **value}
        item[key] = value
    return _without_drops(item)


def _without_drops(value):
    if isinstance(value, dict):
        return {k: _without_drops(v) for k, v in value.items() if v is not DROP}
    return value


def limits(**changes):
    return ps01_item(lineItem={"scoreConstraints": {**PS01_ITEM["lineItem"]["scoreConstraints"],
                                                    **changes}})  # fmt: skip


def answer(items=(PS01_ITEM,), changes=None, path=RETURN, **sign):
    """Post the good selection with `changes` to its fields (DROP removes one), signed for
    `path` by sign_like_a_tool11(**sign)."""

    def forge(lms, data):
        fields = {**selection_fields(data, list(items)), **(changes or {})}
        fields = {k: v for k, v in fields.items() if v is not DROP}
        return sign_like_a_tool11(lms.url + path, fields, **sign)

    return forge


def with_items11(*items):
    return answer(items=items)


def altered(change):
    """Post the good selection, signed, after `change(pairs)`: a forger's edit in transit."""

    def forge(lms, data):
        return change(sign_like_a_tool11(lms.url + RETURN, selection_fields(data, [PS01_ITEM])))

    return forge


def without(name):
    return altered(lambda pairs: [(k, v) for k, v in pairs if k != name])


def answering_deep_linking(lms, data):
    """Post a selection naming an LTI 1.3 deep-linking request's data: not a Content-Item's."""
    return answer()(lms, start_deep_linking(lms))


def expired(lms, data):
    lms.deep_linking_ttl = 0
    return answer()(lms, data)


NOT_SIGNED = "the OAuth signature does not verify with the consumer secret"
READING_GRAPH = json.dumps({"@graph": [READING_ITEM]})

CONTENT_ITEM_REFUSALS = [
    pytest.param({}, altered(lambda p: [*p, ("lti_version", "LTI-1p0")]),
                 "parameter lti_version is repeated", id="repeated-field"),
    pytest.param({}, altered(lambda p: [*p, ("oauth_nonce", "n-2")]),
                 "parameter oauth_nonce is repeated", id="repeated-nonce"),
    pytest.param({}, answer(key="moodle"), "unknown consumer key 'moodle'", id="other-key"),
    pytest.param({}, answer(method=SIGNATURE_PLAINTEXT), "oauth_signature_method must be HMAC-SHA1",
                 id="plaintext"),
    pytest.param({}, answer(secret="other"), NOT_SIGNED, id="other-secret"),
    pytest.param({}, answer(path="/deep_link_return"), NOT_SIGNED, id="signed-for-another-url"),
    pytest.param({}, altered(lambda p: [(k, READING_GRAPH if k == "content_items" else v)
                                        for k, v in p]),
                 NOT_SIGNED, id="items-swapped"),
    pytest.param({}, altered(lambda p: [*p, ("lti_msg", "hi")]), NOT_SIGNED, id="field-added"),
    pytest.param({}, without("oauth_signature"), "oauth_signature is missing", id="no-signature"),
    pytest.param({}, without("oauth_timestamp"), "oauth_timestamp is missing", id="no-timestamp"),
    pytest.param({}, answer(timestamp="soon"), "oauth_timestamp is not a number",
                 id="timestamp-not-a-number"),
    pytest.param({}, answer(timestamp="1000"), "oauth_timestamp is outside the allowed window",
                 id="timestamp-old"),
    pytest.param({}, answer(timestamp=str(10**10)),
                 "oauth_timestamp is outside the allowed window", id="timestamp-future"),
    pytest.param({}, without("oauth_nonce"), "oauth_nonce is missing", id="no-nonce"),
    pytest.param({}, answer(changes={"lti_message_type": "ContentItemSelectionRequest"}),
                 "lti_message_type must be ContentItemSelection", id="message-type"),
    pytest.param({}, answer(changes={"lti_message_type": DROP}),
                 "lti_message_type must be ContentItemSelection", id="no-message-type"),
    pytest.param({}, answer(changes={"lti_version": "LTI-2p0"}), "lti_version must be LTI-1p0",
                 id="version"),
    pytest.param({}, answer(changes={"data": "made-up"}),
                 "data names no content-item request of this LMS", id="unknown-data"),
    pytest.param({}, answer(changes={"data": DROP}),
                 "data names no content-item request of this LMS", id="no-data"),
    pytest.param({}, answering_deep_linking, "data names no content-item request of this LMS",
                 id="deep-linking-data"),
    pytest.param({}, expired, "the content-item request has expired", id="request-expired"),
    pytest.param({}, answer(changes={"content_items": "{"}), "content_items is not JSON",
                 id="items-not-json"),
    pytest.param({}, answer(changes={"content_items": json.dumps([PS01_ITEM])}),
                 "content_items must be a JSON object whose @graph is a list", id="items-a-list"),
    pytest.param({}, answer(changes={"content_items": json.dumps({"@graph": PS01_ITEM})}),
                 "content_items must be a JSON object whose @graph is a list",
                 id="graph-an-object"),
    pytest.param({"accept_multiple": False}, with_items11(PS01_ITEM, READING_ITEM),
                 "the request accepts one content item, not 2", id="one-accepted"),
    pytest.param({}, with_items11("ps01"), "content item 1: must be a JSON object",
                 id="item-not-an-object"),
    pytest.param({}, with_items11(ps01_item(**{"@type": "FileItem"})),
                 "content item 1: @type 'FileItem' is not accepted, only LtiLinkItem",
                 id="file-item"),
    pytest.param({}, with_items11(PS01), "content item 1: @type None is not accepted, only "
                 "LtiLinkItem", id="deep-linking-item"),
    pytest.param({}, with_items11(ps01_item(mediaType="text/html")),
                 "content item 1: mediaType 'text/html' is not accepted, only "
                 "application/vnd.ims.lti.v1.ltilink", id="media-type"),
    pytest.param({}, with_items11(ps01_item(mediaType=DROP)),
                 "content item 1: mediaType None is not accepted, only "
                 "application/vnd.ims.lti.v1.ltilink", id="no-media-type"),
    pytest.param({}, with_items11(PS01_ITEM, ps01_item(mediaType="image/png")),
                 "content item 2: mediaType 'image/png' is not accepted, only "
                 "application/vnd.ims.lti.v1.ltilink", id="second-item-bad"),
    *[pytest.param({}, with_items11(ps01_item(**change)), f"content item 1: {problem}", id=name)
      for change, problem, name in LINK_FIELD_PROBLEMS],
    pytest.param({}, with_items11(ps01_item(lineItem=10)),
                 "content item 1: lineItem must be a JSON object of @type LineItem",
                 id="lineitem-a-number"),
    pytest.param({}, with_items11(ps01_item(lineItem={"@type": DROP})),
                 "content item 1: lineItem must be a JSON object of @type LineItem",
                 id="lineitem-untyped"),
    pytest.param({}, with_items11(ps01_item(lineItem={"label": ""})),
                 "content item 1: lineItem label is required", id="empty-label"),
    pytest.param({}, with_items11(ps01_item(lineItem={"label": 5})),
                 "content item 1: lineItem label is required", id="label-a-number"),
    pytest.param({}, with_items11(ps01_item(lineItem={"reportingMethod": 1})),
                 "content item 1: lineItem reportingMethod must be a string",
                 id="reporting-method"),
    pytest.param({}, with_items11(ps01_item(lineItem={"assignedActivity": "ps01"})),
                 "content item 1: lineItem assignedActivity must hold a string activityId",
                 id="activity-a-string"),
    pytest.param({}, with_items11(ps01_item(lineItem={"assignedActivity": {"activityId": 7}})),
                 "content item 1: lineItem assignedActivity must hold a string activityId",
                 id="activity-id-a-number"),
    pytest.param({}, with_items11(ps01_item(lineItem={"scoreConstraints": DROP})),
                 "content item 1: lineItem scoreConstraints must be of @type NumericLimits",
                 id="no-score-constraints"),
    pytest.param({}, with_items11(limits(**{"@type": "Limits"})),
                 "content item 1: lineItem scoreConstraints must be of @type NumericLimits",
                 id="score-constraints-type"),
    pytest.param({}, with_items11(limits(normalMaximum=0)),
                 "content item 1: lineItem scoreConstraints normalMaximum must be positive",
                 id="normal-max-zero"),
    pytest.param({}, with_items11(limits(normalMaximum=-5)),
                 "content item 1: lineItem scoreConstraints normalMaximum must be positive",
                 id="normal-max-negative"),
    pytest.param({}, with_items11(limits(normalMaximum="10")),
                 "content item 1: lineItem scoreConstraints normalMaximum must be a number",
                 id="normal-max-text"),
    pytest.param({}, with_items11(limits(normalMaximum=DROP)),
                 "content item 1: lineItem scoreConstraints normalMaximum must be a number",
                 id="no-normal-max"),
    pytest.param({}, with_items11(limits(totalMaximum="12")),
                 "content item 1: lineItem scoreConstraints totalMaximum must be a number",
                 id="total-max-text"),
]  # fmt: skip


@pytest.mark.parametrize(("request_kwargs", "forge", "message"), CONTENT_ITEM_REFUSALS)
async def test_content_item_return_refuses(lms, http, request_kwargs, forge, message):
    await content_item(http, lms, [READING_ITEM])
    links, responses = dict(lms.links), list(lms.content_item_responses)
    data = start_content_item(lms, **request_kwargs)
    response = await post_selection(http, lms, forge(lms, data))
    assert response.code == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body.decode() == message + "\n"
    assert lms.refusals == [("content_item_return", 400, message)]
    assert (lms.links, lms.lineitems, lms.content_item_responses) == (links, {}, responses)


@pytest.mark.parametrize(
    ("reused", "message"),
    [
        pytest.param("data", "the content-item request was already answered", id="data"),
        pytest.param("nonce", "oauth_nonce was already used", id="nonce"),
    ],
)
async def test_content_item_data_and_nonce_work_once(lms, http, reused, message):
    first_data = start_content_item(lms)
    first = sign_like_a_tool11(lms.url + RETURN, selection_fields(first_data, [PS01_ITEM]))
    assert (await post_selection(http, lms, first)).code == 200
    # Otherwise valid: a fresh nonce for the same data, or fresh data with the same nonce.
    data = first_data if reused == "data" else start_content_item(lms)
    nonce = dict(first)["oauth_nonce"] if reused == "nonce" else None
    second = sign_like_a_tool11(lms.url + RETURN, selection_fields(data, [READING_ITEM]),
                                nonce=nonce)  # fmt: skip
    response = await post_selection(http, lms, second)
    assert (response.code, response.body.decode()) == (400, message + "\n")
    assert [link.title for link in lms.links.values()] == ["Problem set 1"]
    assert lms.content_item_responses == [dict(first)]


@pytest.mark.parametrize(
    ("first", "second_code"),
    [
        pytest.param(answer(secret="other"), 200, id="unsigned-spends-nothing"),
        pytest.param(answer(changes={"lti_version": "LTI-2p0"}), 200,
                     id="bad-claim-spends-nothing"),
        pytest.param(with_items11(limits(normalMaximum=0)), 400, id="bad-item-spends-the-data"),
    ],
)  # fmt: skip
async def test_content_item_data_is_spent_once_signature_and_claims_verify(
    lms, http, first, second_code
):
    data = start_content_item(lms)
    assert (await post_selection(http, lms, first(lms, data))).code == 400
    response = await post_selection(http, lms, answer()(lms, data))
    assert response.code == second_code
    assert len(lms.links) == (1 if second_code == 200 else 0)
    if second_code == 400:
        assert response.body == b"the content-item request was already answered\n"


@pytest.mark.parametrize(
    ("route", "made_by", "course"),
    [
        pytest.param("/launch13", "content-item", "demo-course", id="launch13-an-lti11-link"),
        pytest.param("/launch11", "deep-linking", "demo-course", id="launch11-an-lti13-link"),
        pytest.param("/launch11", "content-item", "c2", id="launch11-other-course"),
        pytest.param("/launch11", None, "demo-course", id="launch11-unknown-link"),
    ],
)
async def test_a_link_launches_only_by_its_own_lti_version(
    lms, http, tool_keys, route, made_by, course
):
    if made_by == "deep-linking":
        await deep_link(http, lms, [READING])
    elif made_by == "content-item":
        await content_item(http, lms, [READING_ITEM], context_id=course)
    link_id = next(iter(lms.links), "demo-course-link-99")
    response = await get(http, f"{lms.url}{route}?link={link_id}&course=demo-course")
    assert (response.code, response.body) == (404, b"no such link in this course\n")


def test_main_requires_a_consumer_secret(monkeypatch, capsys):
    monkeypatch.delenv("LEARNHUB_DEMO_LMS_SECRET", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--tool-url", TOOL])
    assert exited.value.code == 2
    assert "--consumer-secret (or $LEARNHUB_DEMO_LMS_SECRET) is required" in capsys.readouterr().err


# ---------------------------------------------------------------- names and roles (NRPS)

LEARNER, INSTRUCTOR = Role.LEARNER.value, Role.INSTRUCTOR.value


def test_roster_changes_are_logged_and_differences_read_from_the_log():
    lms = DemoLMS()
    ada = lms.add_member("c1", "ada", [Role.LEARNER], name="Ada L", email="ada@example.org")
    bob = lms.add_member("c1", "bob", [Role.INSTRUCTOR])
    assert lms.roster == {"c1": {"ada": ada, "bob": Member("bob", (INSTRUCTOR,))}}
    assert lms.members["c1"] == {"ada", "bob"}
    assert lms.roster_sequence("c1") == 2

    inactive = lms.set_member_status("c1", "ada", "Inactive")
    lms.drop_member("c1", "bob")
    assert lms.roster == {"c1": {"ada": replace(ada, status="Inactive")}}
    assert lms.members["c1"] == {"ada"}  # scores for bob are refused now
    deleted = Member("bob", (INSTRUCTOR,), status="Deleted")
    assert lms.roster_log["c1"] == [ada, bob, inactive, deleted]
    assert lms.memberships("c1") == [inactive]
    assert lms.memberships("c1", since=1) == [inactive, deleted]
    assert lms.memberships("c1", since=3) == [deleted]
    assert lms.memberships("c1", since=4) == []
    assert (lms.roster_sequence("c2"), lms.memberships("c2", since=0)) == (0, [])

    with pytest.raises(ValueError, match="status must be one of Active, Inactive, not 'Gone'"):
        lms.set_member_status("c1", "ada", "Gone")
    with pytest.raises(KeyError):
        lms.drop_member("c1", "bob")
    assert lms.roster_sequence("c1") == 4


@pytest.mark.parametrize(
    ("member", "entry"),
    [
        pytest.param(
            Member("u1", (LEARNER,)),
            {"user_id": "u1", "roles": [LEARNER], "status": "Active"},
            id="no-names",
        ),
        pytest.param(
            Member("u2", (INSTRUCTOR,), "Bo Ng", "Bo", "Ng", "bo@example.org", "Inactive"),
            {"user_id": "u2", "roles": [INSTRUCTOR], "status": "Inactive", "name": "Bo Ng",
             "given_name": "Bo", "family_name": "Ng", "email": "bo@example.org"},
            id="all-names",
        ),
    ],
)  # fmt: skip
def test_membership_entry_carries_only_known_names(member, entry):
    assert member.membership() == entry


@pytest.mark.parametrize(
    ("route", "joined"),
    [
        pytest.param(
            "/launch13",
            Member("ada", (INSTRUCTOR, Role.TEACHING_ASSISTANT.value), name="Ada L",
                   email="ada@example.org"),
            id="launch",
        ),
        pytest.param(
            "/deeplink13", Member("ada", (INSTRUCTOR, Role.TEACHING_ASSISTANT.value)),
            id="deep-linking",
        ),
    ],
)  # fmt: skip
async def test_lti13_launches_offer_the_roster_and_put_the_launcher_on_it(lms, http, route, joined):
    query = "user=ada&role=ta&course=c%201%2Fx&name=Ada+L&email=ada%40example.org"
    _, claims = await launch_claims(http, lms, query, route)
    assert claims[NRPS_CLAIM] == {
        "context_memberships_url": f"{lms.url}/api/lti/courses/c%201%2Fx/memberships",
        "service_versions": ["2.0"],
    }
    assert lms.roster == {"c 1/x": {"ada": joined}}
    assert "ada" in lms.members["c 1/x"]
    # A member launching again stays as the roster has them.
    lms.set_member_status("c 1/x", "ada", "Inactive")
    await launch_claims(http, lms, "user=ada&role=learner&course=c%201%2Fx", route)
    assert lms.roster["c 1/x"]["ada"] == replace(joined, status="Inactive")
    assert lms.roster_sequence("c 1/x") == 2


@pytest.mark.parametrize("nrps", [True, False])
async def test_initiate_lti13_sends_the_roster_service_unless_told_not_to(lms, http, nrps):
    _, params = lms.initiate_lti13(user_id="u1", roles=[Role.LEARNER], context_id="c1", nrps=nrps)
    claims = await signed_claims(http, lms, params)
    assert claims.get(NRPS_CLAIM) == (lms.nrps_claim("c1") if nrps else None)
    assert lms.nrps_claim("c1")["context_memberships_url"] == (
        f"{lms.url}/api/lti/courses/c1/memberships"
    )


async def service_token(http, lms, *scopes) -> str:
    """A bearer token from the LMS's /token, asked for as LearnHub's grade outbox asks: a
    client assertion signed with the tool's key (the tool_keys fixture serves its JWKS)."""
    assertion = build_client_assertion(lms.platform.client_id, lms.token_url, TOOL_KID, TOOL_KEY)
    response = await http.fetch(
        lms.token_url, method="POST", body=token_request_body(assertion, scopes), raise_error=False
    )
    assert response.code == 200, response.body
    answer = json.loads(response.body)
    assert answer["scope"] == " ".join(sorted(scopes))
    return answer["access_token"]


async def fetch_memberships(http, url, token=None, accept=MEMBERSHIP_CONTAINER_TYPE):
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await http.fetch(url, headers=headers, raise_error=False)


async def memberships_page(http, url, token) -> tuple[dict, str, str]:
    """One page of a membership container: its body, and the rel and URL of its Link."""
    response = await fetch_memberships(http, url, token)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"] == MEMBERSHIP_CONTAINER_TYPE
    target, rel = re.fullmatch(r'<([^>]*)>; rel="(\w+)"', response.headers["Link"]).groups()
    return json.loads(response.body), rel, target


@pytest.mark.parametrize(
    ("scopes", "course", "query", "accept", "status", "error", "description"),
    [
        pytest.param(None, "c1", "", MEMBERSHIP_CONTAINER_TYPE, 401, "invalid_token",
                     "a valid bearer token is required", id="no-token"),
        pytest.param((SCOPE_SCORE,), "c1", "", MEMBERSHIP_CONTAINER_TYPE, 403,
                     "insufficient_scope", f"the token lacks the scope "
                     f"{SCOPE_CONTEXT_MEMBERSHIP_READONLY}", id="grade-scope-only"),
        pytest.param((SCOPE_CONTEXT_MEMBERSHIP_READONLY,), "nowhere", "",
                     MEMBERSHIP_CONTAINER_TYPE, 404, "not_found", "no course 'nowhere'",
                     id="unknown-course"),
        pytest.param((SCOPE_CONTEXT_MEMBERSHIP_READONLY,), "c1", "", "application/json", 406,
                     "not_acceptable", f"Accept must allow {MEMBERSHIP_CONTAINER_TYPE}",
                     id="json-only"),
        pytest.param((SCOPE_CONTEXT_MEMBERSHIP_READONLY,), "c1", "?limit=0",
                     MEMBERSHIP_CONTAINER_TYPE, 400, "invalid_request",
                     "limit must be a whole number of at least 1", id="limit-zero"),
        pytest.param((SCOPE_CONTEXT_MEMBERSHIP_READONLY,), "c1", "?since=-1",
                     MEMBERSHIP_CONTAINER_TYPE, 400, "invalid_request",
                     "since must be a whole number of at least 0", id="since-negative"),
    ],
)  # fmt: skip
async def test_memberships_refuse(
    lms, http, tool_keys, scopes, course, query, accept, status, error, description
):
    lms.add_member("c1", "u1", [Role.LEARNER])
    token = await service_token(http, lms, *scopes) if scopes else None
    url = lms.memberships_url(course) + query
    response = await fetch_memberships(http, url, token, accept)
    assert response.code == status
    assert json.loads(response.body) == {"error": error, "error_description": description}
    assert lms.refusals[-1] == (urlsplit(url).path, status, description)
    assert lms.membership_requests == []


async def test_memberships_page_by_limit_then_differences_tell_only_what_changed(
    lms, http, tool_keys
):
    course = lms.course_id
    for user in ("u5", "u3", "u1", "u4", "u2"):
        lms.add_member(course, user, [Role.LEARNER])
    lms.add_member(course, "u2", [Role.INSTRUCTOR], name="Bo Ng", given_name="Bo",
                   family_name="Ng", email="bo@example.org")  # fmt: skip
    token = await service_token(http, lms, SCOPE_CONTEXT_MEMBERSHIP_READONLY)
    base = lms.memberships_url(course)

    pages, rel, url = [], "next", base + "?limit=2"
    while rel == "next":
        page, rel, url = await memberships_page(http, url, token)
        pages.append(page)
    assert [[m["user_id"] for m in p["members"]] for p in pages] == [
        ["u1", "u2"], ["u3", "u4"], ["u5"]
    ]  # fmt: skip
    assert lms.membership_requests == [base + "?limit=2", base + "?limit=2&offset=2",
                                       base + "?limit=2&offset=4"]  # fmt: skip
    assert [p["id"] for p in pages] == lms.membership_requests
    assert pages[0]["context"] == {"id": course, "title": "Introduction to Python (demo)"}
    assert pages[0]["members"] == [
        {"user_id": "u1", "roles": [LEARNER], "status": "Active"},
        {"user_id": "u2", "roles": [INSTRUCTOR], "status": "Active", "name": "Bo Ng",
         "given_name": "Bo", "family_name": "Ng", "email": "bo@example.org"},
    ]  # fmt: skip
    assert (rel, url) == ("differences", base + "?since=6")

    lms.set_member_status(course, "u4", "Inactive")
    lms.drop_member(course, "u1")
    first, rel, url = await memberships_page(http, base + "?since=6&limit=1", token)
    assert first["members"] == [{"user_id": "u1", "roles": [LEARNER], "status": "Deleted"}]
    assert (rel, url) == ("next", base + "?since=6&limit=1&offset=1")
    second, rel, url = await memberships_page(http, url, token)
    assert second["members"] == [{"user_id": "u4", "roles": [LEARNER], "status": "Inactive"}]
    assert (rel, url) == ("differences", base + "?since=8")

    unchanged, rel, url = await memberships_page(http, url, token)
    assert unchanged["members"] == []
    assert (rel, url) == ("differences", base + "?since=8")
