"""The demo LMS as a real LTI peer: signatures that verify, tokens that check, errors returned."""

import copy
import json
import os
import secrets
import shutil
import subprocess
import time
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import quote, urlencode, urlsplit

import jwt
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from oauthlib.oauth1.rfc5849 import signature
from tornado.httpclient import AsyncHTTPClient

from learnhub.demo.lms import (
    AGS_ENDPOINT_CLAIM,
    COURSE_OFFERING,
    DL_CLAIM,
    DL_CONTENT_ITEMS_CLAIM,
    DL_DATA_CLAIM,
    DL_SETTINGS_CLAIM,
    LTI_CLAIM,
    SCOPE_LINEITEM_READONLY,
    CourseLink,
    DemoLMS,
    Platform,
    Role,
    autosubmit_form_html,
    id_token_claims,
    lti11_launch_params,
    main,
    sign_id_token,
    sign_lti11_launch,
    tool_urls,
    url_origin,
)

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


@pytest.mark.parametrize("route", ["/launch11", "/launch13", "/deeplink13"])
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
    } | {("/deeplink13", "tool", "instructor")}
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


async def launch_claims(http, lms, query) -> tuple[dict, dict]:
    """The login request and the verified id_token of a /launch13 launch."""
    response = await get(http, f"{lms.url}/launch13?{query}")
    (login,) = Page(response.body.decode()).forms
    answer = await send_auth(http, lms, auth_request(lms, login["fields"]), "POST")
    (launch,) = Page(answer.body.decode()).forms
    jwks = await served_jwks(http, lms)
    claims = verify_like_a_tool(
        launch["fields"]["id_token"], jwks, audience="learnhub-demo", issuer=lms.url
    )
    return login["fields"], claims


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
    pytest.param({}, with_items(ps01(title=["Problem set 1"])),
                 "content item 1: title must be a string", id="title-not-a-string"),
    pytest.param({}, with_items(ps01(text=3)), "content item 1: text must be a string",
                 id="text-not-a-string"),
    pytest.param({}, with_items(ps01(url="http://127.0.0.1:11/hub/lti13/launch")),
                 "content item 1: url 'http://127.0.0.1:11/hub/lti13/launch' is not on the "
                 "tool's origin", id="url-elsewhere"),
    pytest.param({}, with_items(ps01(url="javascript:alert(1)")),
                 "content item 1: url 'javascript:alert(1)' is not on the tool's origin",
                 id="url-javascript"),
    pytest.param({}, with_items(ps01(custom=["assignment=ps01"])),
                 "content item 1: custom must map names to strings", id="custom-a-list"),
    pytest.param({}, with_items(ps01(custom={"week": 3})),
                 "content item 1: custom must map names to strings", id="custom-number"),
    pytest.param({}, with_items(ps01(custom={"week": None})),
                 "content item 1: custom must map names to strings", id="custom-null"),
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


async def test_course_page_shows_deep_linking_and_the_course_links(lms, http, tool_keys):
    await deep_link(http, lms, [PS01, READING])
    await deep_link(http, lms, [{**READING, "title": "Elsewhere"}], context_id="c2")
    ps01, reading, _ = lms.links.values()
    page = Page((await get(http, lms.url + "/course")).body.decode())
    (add,) = [f for f in page.forms if f["action"] == "/deeplink13"]
    assert (add["method"], add["target"], add["fields"], add["buttons"]) == (
        "get",
        "tool",
        {"user": "demo-instructor", "role": "instructor", "course": "demo-course"},
        ["Add assignment links (LTI 1.3 deep linking)"],
    )
    assert [(item["data-link"], item["text"]) for item in page.items] == [
        (ps01.id, "Problem set 1 (PS 1)"),
        (reading.id, "<b>Reading</b> & notes (no column)"),
    ]
    launches = [f for f in page.forms if "link" in f["fields"]]
    assert [(f["action"], f["target"], f["fields"], f["buttons"]) for f in launches] == [
        ("/launch13", "tool",
         {"link": link.id, "role": role, "user": f"demo-{role}", "course": "demo-course"},
         [f"Launch as {role}"])
        for link in (ps01, reading)
        for role in ("learner", "instructor")
    ]  # fmt: skip


def test_main_requires_a_consumer_secret(monkeypatch, capsys):
    monkeypatch.delenv("LEARNHUB_DEMO_LMS_SECRET", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--tool-url", TOOL])
    assert exited.value.code == 2
    assert "--consumer-secret (or $LEARNHUB_DEMO_LMS_SECRET) is required" in capsys.readouterr().err
