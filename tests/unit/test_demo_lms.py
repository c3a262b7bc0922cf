"""The demo LMS as a real LTI peer: signatures that verify, tokens that check, errors returned."""

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
from oauthlib.oauth1.rfc5849 import signature
from tornado.httpclient import AsyncHTTPClient

from learnhub.demo.lms import (
    AGS_ENDPOINT_CLAIM,
    COURSE_OFFERING,
    LTI_CLAIM,
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
    """The forms, iframes and scripts of an HTML page, as a browser would see them."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[dict] = []
        self.iframes: list[dict] = []
        self.scripts: dict[str | None, str] = {}
        self._script: str | None = None
        self._in_script = self._in_button = False
        self.feed(html)

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

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[self._script] += data
        elif self._in_button:
            self.forms[-1]["buttons"][-1] += data


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


@pytest.mark.parametrize("route", ["/launch11", "/launch13"])
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
    }
    buttons = [b for f in page.forms for b in f["buttons"]]
    assert "Launch as learner (LTI 1.3)" in buttons
    assert "Launch as instructor (LTI 1.1)" in buttons


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


def test_main_requires_a_consumer_secret(monkeypatch, capsys):
    monkeypatch.delenv("LEARNHUB_DEMO_LMS_SECRET", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--tool-url", TOOL])
    assert exited.value.code == 2
    assert "--consumer-secret (or $LEARNHUB_DEMO_LMS_SECRET) is required" in capsys.readouterr().err
