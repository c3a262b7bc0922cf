"""The pure builders of grade passback, checked against the demo LMS's own parsers."""

import base64
import datetime
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs

import jwt
import pytest
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape

from learnhub.demo.lti11 import (
    outcome_request_problem,
    parse_outcome_request,
    parse_outcome_score,
    pox_response_xml,
)
from learnhub.demo.services import GradeRefused, validate_score, verify_client_assertion
from learnhub.lti13.keys import new_private_pem, public_jwk
from learnhub.passback import (
    build_client_assertion,
    build_lineitem,
    build_replace_result_xml,
    build_score_payload,
    find_lineitem,
    parse_pox_response,
    retry_delay,
    sign_outcome_request,
)
from learnhub.passback.ags import (
    ASSERTION_TYPE,
    SCOPE_LINEITEM,
    SCOPE_SCORE,
    granted_ags_scopes,
    next_page,
    scores_url,
    token_request_body,
    with_query,
)
from learnhub.passback.lti11 import POX_NS, format_score

URL = "https://lms.example.edu/outcomes?course=7"
KEY, SECRET = "canvas-1", "s3cret"
TOKEN_URL = "https://lms.example.edu/token"
PEM = new_private_pem()
JWKS = {"keys": [public_jwk("k1", PEM)]}


# ---------------------------------------------------------------- LTI 1.1


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        pytest.param(1, "1.0", id="one"),
        pytest.param(0, "0.0", id="zero"),
        pytest.param(0.85, "0.85", id="two-places"),
        pytest.param(2 / 3, "0.666667", id="six-places"),
        pytest.param(0.1 + 0.2, "0.3", id="float-noise"),
        pytest.param(1e-9, "0.0", id="tiny"),
    ],
)
def test_format_score(fraction, text):
    assert format_score(fraction) == text
    assert parse_outcome_score(text) == pytest.approx(fraction, abs=1e-6)


@pytest.mark.parametrize(
    "fraction",
    [
        pytest.param(-0.01, id="negative"),
        pytest.param(1.01, id="above-one"),
        pytest.param(math.nan, id="nan"),
        pytest.param("0.5", id="string"),
    ],
)
def test_format_score_refuses(fraction):
    with pytest.raises(ValueError, match="score must be"):
        format_score(fraction)


@pytest.mark.parametrize(
    ("sourcedid", "fraction", "text"),
    [
        pytest.param("abc-123", 0.5, "0.5", id="plain"),
        pytest.param('a&b<c>"d', 1.0, "1.0", id="escaped"),
    ],
)
def test_replace_result_xml(sourcedid, fraction, text):
    body = build_replace_result_xml(sourcedid, fraction, "msg-1")
    root = ET.fromstring(body)  # noqa: S314
    ns = {"x": POX_NS}
    assert root.tag == f"{{{POX_NS}}}imsx_POXEnvelopeRequest"
    assert root.findtext(".//x:imsx_version", None, ns) == "V1.0"
    assert root.findtext(".//x:resultScore/x:language", None, ns) == "en"
    # The peer's parser reads back exactly what was meant.
    parsed = parse_outcome_request(body.encode())
    assert (parsed.operation, parsed.message_id, parsed.sourcedid, parsed.score) == (
        "replaceResult",
        "msg-1",
        sourcedid,
        text,
    )


def _nonces():
    seen = set()

    def unused(nonce):
        if nonce in seen:
            return False
        seen.add(nonce)
        return True

    return unused


def test_outcome_signature_carries_the_body_hash_and_verifies():
    body = build_replace_result_xml("sid", 0.25, "m")
    headers = sign_outcome_request(URL, KEY, SECRET, body)
    assert headers["Content-Type"] == "application/xml"
    auth = headers["Authorization"]
    assert auth.startswith("OAuth ")
    expected_hash = base64.b64encode(hashlib.sha1(body.encode()).digest()).decode()  # noqa: S324
    params = {unescape(k): unescape(v) for k, v in parse_authorization_header(auth)}
    assert params["oauth_body_hash"] == expected_hash
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_consumer_key"] == KEY
    check = {"consumer_key": KEY, "secret": SECRET, "nonce_unused": _nonces()}
    assert outcome_request_problem(url=URL, authorization=auth, body=body.encode(), **check) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param({"body": b"<x/>"}, "oauth_body_hash does not match", id="body-swapped"),
        pytest.param({"secret": "other"}, "signature does not verify", id="wrong-secret"),
        pytest.param({"url": URL + "&x=1"}, "signature does not verify", id="other-url"),
        pytest.param({"consumer_key": "moodle"}, "unknown consumer key", id="other-key"),
        pytest.param({"authorization": None}, "no OAuth Authorization", id="unsigned"),
        pytest.param({"now": 10**10}, "outside the allowed window", id="stale"),
    ],
)
def test_the_peer_refuses_a_tampered_outcome_request(change, problem):
    body = build_replace_result_xml("sid", 0.25, "m")
    headers = sign_outcome_request(URL, KEY, SECRET, body)
    request = {
        "url": URL,
        "authorization": headers["Authorization"],
        "body": body.encode(),
        "consumer_key": KEY,
        "secret": SECRET,
        "nonce_unused": _nonces(),
    }
    request.update(change)
    assert problem in outcome_request_problem(**request)


def test_the_peer_refuses_a_replayed_outcome_request():
    body = build_replace_result_xml("sid", 0.25, "m")
    auth = sign_outcome_request(URL, KEY, SECRET, body)["Authorization"]
    check = {"url": URL, "authorization": auth, "body": body.encode(), "consumer_key": KEY,
             "secret": SECRET, "nonce_unused": _nonces()}  # fmt: skip
    assert outcome_request_problem(**check) is None
    assert outcome_request_problem(**check) == "oauth_nonce was already used"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            pox_response_xml(
                success=True, description="ok", message_ref="m1", operation="replaceResultRequest"
            ),
            ("success", "ok", "m1"),
            id="success",
        ),
        pytest.param(
            pox_response_xml(
                success=False,
                description="unknown sourcedId",
                message_ref="m2",
                operation="replaceResultRequest",
            ),
            ("failure", "unknown sourcedId", "m2"),
            id="failure",
        ),
        pytest.param(
            "<imsx_POXEnvelopeResponse><imsx_codeMajor>success</imsx_codeMajor>"
            "</imsx_POXEnvelopeResponse>",
            ("success", "", ""),
            id="no-namespace",
        ),
    ],
)
def test_parse_pox_response(body, expected):
    pox = parse_pox_response(body)
    assert (pox.code_major, pox.description, pox.message_ref) == expected
    assert pox.success == (expected[0] == "success")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("<html>Bad gateway", "not XML", id="html"),
        pytest.param("<ok/>", "no imsx_codeMajor", id="other-xml"),
    ],
)
def test_parse_pox_response_refuses(body, message):
    with pytest.raises(ValueError, match=message):
        parse_pox_response(body)


# ---------------------------------------------------------------- LTI 1.3 AGS

WHEN = datetime.datetime(2025, 3, 1, 12, 30, 5, 250000, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {},
            {"activityProgress": "Completed", "gradingProgress": "FullyGraded"},
            id="autograded",
        ),
        pytest.param(
            {"pending_manual": True},
            {"activityProgress": "Submitted", "gradingProgress": "PendingManual"},
            id="pending-manual",
        ),
        pytest.param(
            {"comment": "well done"},
            {
                "activityProgress": "Completed",
                "gradingProgress": "FullyGraded",
                "comment": "well done",
            },
            id="comment",
        ),
    ],
)
def test_score_payload(kwargs, expected):
    payload = build_score_payload("sub-1", 7.5, 10, WHEN, **kwargs)
    assert payload == {
        "userId": "sub-1",
        "scoreGiven": 7.5,
        "scoreMaximum": 10,
        "timestamp": "2025-03-01T12:30:05.250+00:00",
        **expected,
    }
    assert validate_score(payload, members={"sub-1"}) == payload


def test_score_payload_from_epoch_seconds_is_utc():
    payload = build_score_payload("u", 1, 1, WHEN.timestamp())
    assert payload["timestamp"] == "2025-03-01T12:30:05.250+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("", 1, 1, WHEN), "LTI user id", id="no-user"),
        pytest.param(("u", -1, 1, WHEN), "scoreGiven must not be negative", id="negative"),
        pytest.param(("u", 1, 0, WHEN), "scoreMaximum must be positive", id="zero-max"),
        pytest.param(("u", math.nan, 1, WHEN), "finite", id="nan"),
        pytest.param(("u", 1, 1, WHEN.replace(tzinfo=None)), "timezone", id="naive-time"),
    ],
)
def test_score_payload_refuses(args, message):
    with pytest.raises(ValueError, match=message):
        build_score_payload(*args)


@pytest.mark.parametrize(
    ("change", "members", "message"),
    [
        pytest.param({}, {"someone-else"}, "not a member", id="stranger"),
        pytest.param({"activityProgress": "Done"}, {"u"}, "activityProgress", id="progress"),
        pytest.param({"gradingProgress": None}, {"u"}, "gradingProgress", id="grading"),
        pytest.param({"timestamp": "2025-03-01T12:00:00"}, {"u"}, "no timezone", id="naive"),
        pytest.param({"scoreMaximum": None}, {"u"}, "scoreMaximum", id="no-max"),
    ],
)
def test_the_peer_refuses_bad_scores(change, members, message):
    payload = {**build_score_payload("u", 1, 2, WHEN), **change}
    with pytest.raises(GradeRefused, match=message):
        validate_score(payload, members)


def test_client_assertion_claims_and_signature():
    assertion = build_client_assertion("tool-1", TOKEN_URL, "k1", PEM, now=1_000_000)
    assert jwt.get_unverified_header(assertion)["kid"] == "k1"
    claims = jwt.decode(
        assertion,
        jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(JWKS["keys"][0])),
        algorithms=["RS256"],
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "tool-1"
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) >= 20
    again = build_client_assertion("tool-1", TOKEN_URL, "k1", PEM, now=1_000_000)
    assert jwt.decode(again, options={"verify_signature": False})["jti"] != claims["jti"]


def test_client_assertion_lifetime_is_capped():
    with pytest.raises(ValueError, match="lifetime"):
        build_client_assertion("tool-1", TOKEN_URL, "k1", PEM, lifetime=301)


def _jtis():
    seen = set()

    def unused(jti, _exp):
        if jti in seen:
            return False
        seen.add(jti)
        return True

    return unused


@pytest.mark.parametrize(
    ("build", "check", "message"),
    [
        pytest.param({}, {}, None, id="valid"),
        pytest.param({"client_id": "other"}, {}, "iss is not", id="other-client"),
        pytest.param({"token_url": TOKEN_URL + "x"}, {}, "aud is not", id="other-audience"),
        pytest.param({"now": 1_000_000}, {}, "expired", id="expired"),
        pytest.param({"kid": "unknown"}, {}, "has no key 'unknown'", id="unknown-kid"),
        pytest.param({"private_key": new_private_pem()}, {}, "does not verify", id="other-key"),
        pytest.param({}, {"jwks": {"keys": []}}, "has no key", id="empty-jwks"),
    ],
)
def test_the_peer_verifies_client_assertions(build, check, message):
    args = {"client_id": "tool-1", "token_url": TOKEN_URL, "kid": "k1", "private_key": PEM}
    args.update(build)
    assertion = build_client_assertion(**args)
    verify = {"jwks": JWKS, "client_id": "tool-1", "token_url": TOKEN_URL, "jti_unused": _jtis()}
    verify.update(check)
    if message is None:
        assert verify_client_assertion(assertion, **verify)["sub"] == "tool-1"
    else:
        with pytest.raises(GradeRefused, match=message) as refused:
            verify_client_assertion(assertion, **verify)
        assert (refused.value.status, refused.value.error) == (401, "invalid_client")


def test_the_peer_refuses_a_reused_assertion():
    assertion = build_client_assertion("tool-1", TOKEN_URL, "k1", PEM)
    verify = {"jwks": JWKS, "client_id": "tool-1", "token_url": TOKEN_URL, "jti_unused": _jtis()}
    verify_client_assertion(assertion, **verify)
    with pytest.raises(GradeRefused, match="jti was already used"):
        verify_client_assertion(assertion, **verify)


def test_token_request_body():
    body = parse_qs(token_request_body("a.b.c", [SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_SCORE]))
    assert body == {
        "grant_type": ["client_credentials"],
        "client_assertion_type": [ASSERTION_TYPE],
        "client_assertion": ["a.b.c"],
        "scope": [f"{SCOPE_LINEITEM} {SCOPE_SCORE}"],
    }


@pytest.mark.parametrize(
    ("claim", "scopes"),
    [
        pytest.param({"scope": [SCOPE_SCORE, "openid"]}, [SCOPE_SCORE], id="foreign-dropped"),
        pytest.param(
            {"scope": f"{SCOPE_SCORE} {SCOPE_LINEITEM}"},
            [SCOPE_LINEITEM, SCOPE_SCORE],
            id="space-separated",
        ),
        pytest.param({}, [], id="none"),
    ],
)
def test_granted_ags_scopes(claim, scopes):
    assert granted_ags_scopes(claim) == scopes


ITEMS = [
    {"id": "L/1", "label": "ps1", "resourceId": "ps1", "scoreMaximum": 10},
    {"id": "L/2", "label": "Quiz", "tag": "quiz", "scoreMaximum": 5},
    {"label": "no id", "resourceId": "ps2"},
    {"id": "L/3", "label": "ps2 by hand", "tag": "ps2", "scoreMaximum": 3},
    {"id": "L/4", "label": "ps2", "resourceId": "ps2", "scoreMaximum": 3},
]


@pytest.mark.parametrize(
    ("assignment", "found"),
    [
        pytest.param("ps1", "L/1", id="resource-id"),
        pytest.param("quiz", "L/2", id="tag"),
        pytest.param("ps2", "L/4", id="resource-id-before-tag"),
        pytest.param("ps9", None, id="absent"),
    ],
)
def test_find_lineitem(assignment, found):
    item = find_lineitem(ITEMS, assignment)
    assert (item["id"] if item else None) == found


def test_build_lineitem():
    assert build_lineitem("ps1", 10, "ps1", "link-1") == {
        "label": "ps1",
        "scoreMaximum": 10,
        "resourceId": "ps1",
        "resourceLinkId": "link-1",
    }
    with pytest.raises(ValueError, match="scoreMaximum must be positive"):
        build_lineitem("ps1", 0, "ps1")


@pytest.mark.parametrize(
    ("lineitem", "scores"),
    [
        pytest.param("https://l/items/1", "https://l/items/1/scores", id="plain"),
        pytest.param("https://l/items/1/", "https://l/items/1/scores", id="slash"),
        pytest.param("https://l/items/1?type=a", "https://l/items/1/scores?type=a", id="query"),
    ],
)
def test_scores_url(lineitem, scores):
    assert scores_url(lineitem) == scores


def test_with_query_and_next_page():
    assert with_query("https://l/items?x=1", resource_id="a b") == (
        "https://l/items?x=1&resource_id=a+b"
    )
    link = '<https://l/items?page=1>; rel="first", <https://l/items?page=2>; rel="next"'
    assert next_page(link) == "https://l/items?page=2"
    assert next_page('<https://l/items?page=1>; rel="first"') is None
    assert next_page(None) is None


@pytest.mark.parametrize(
    ("attempt", "rand", "delay"),
    [
        pytest.param(1, 0.0, 15, id="first-low"),
        pytest.param(1, 0.999, 29.985, id="first-high"),
        pytest.param(3, 0.5, 90, id="third"),
        pytest.param(8, 0.0, 1800, id="capped-low"),
        pytest.param(30, 0.5, 2700, id="capped-mid"),
    ],
)
def test_retry_delay(attempt, rand, delay):
    assert retry_delay(attempt, base=30, cap=3600, rand=rand) == pytest.approx(delay)
