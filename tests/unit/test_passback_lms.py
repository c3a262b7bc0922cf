"""The demo LMS as a grade receiver: it refuses what Canvas or Moodle would refuse."""

import json
import re

import pytest
from tornado.httpclient import AsyncHTTPClient

from learnhub.demo.constants import (
    LINEITEM_CONTAINER_TYPE,
    LINEITEM_TYPE,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    SCORE_TYPE,
)
from learnhub.demo.lms import DemoLMS
from learnhub.passback import build_replace_result_xml, build_score_payload, sign_outcome_request

SECRET = "lms-secret"


@pytest.fixture
async def lms():
    peer = DemoLMS(consumer_key="k", consumer_secret=SECRET)
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def http():
    client = AsyncHTTPClient(force_instance=True)
    yield client
    client.close()


async def post(http, url, body, headers):
    return await http.fetch(url, method="POST", body=body, headers=headers, raise_error=False)


def replace_result(lms, score, *, secret=SECRET, sourcedid=None):
    sourcedid = sourcedid or lms.result_sourcedid("u1", "ctx", "link")
    body = build_replace_result_xml(sourcedid, score, "msg-7")
    return body, sign_outcome_request(lms.outcome_service_url, "k", secret, body)


async def test_outcome_service_records_a_signed_replace_result(lms, http):
    body, headers = replace_result(lms, 0.75)
    response = await post(http, lms.outcome_service_url, body, headers)
    assert response.code == 200
    text = response.body.decode()
    assert "<imsx_codeMajor>success</imsx_codeMajor>" in text
    assert "<imsx_messageRefIdentifier>msg-7</imsx_messageRefIdentifier>" in text
    assert "<replaceResultResponse></replaceResultResponse>" in text
    (grade,) = lms.outcomes.values()
    assert (grade.cell, grade.score) == (("u1", "ctx", "link"), 0.75)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(lambda b, h: (b, {**h, "Authorization": "OAuth x"}), "malformed", id="junk"),
        pytest.param(
            lambda b, h: (b.replace("0.75", "1.0"), h),
            "oauth_body_hash does not match",
            id="new-score",
        ),
        pytest.param(
            lambda b, h: (b, {"Content-Type": "application/xml"}), "no OAuth", id="unsigned"
        ),
    ],
)
async def test_outcome_service_refuses_forged_requests(lms, http, tamper, reason):
    body, headers = tamper(*replace_result(lms, 0.75))
    response = await post(http, lms.outcome_service_url, body, headers)
    assert response.code == 401
    assert "<imsx_codeMajor>failure</imsx_codeMajor>" in response.body.decode()
    assert (
        reason in re.search(r"<imsx_description>(.*)</imsx_description>", response.body.decode())[1]
    )
    assert lms.outcomes == {}


async def test_outcome_service_refuses_the_wrong_secret_and_replays(lms, http):
    body, headers = replace_result(lms, 0.5, secret="guessed")
    response = await post(http, lms.outcome_service_url, body, headers)
    assert response.code == 401
    assert "does not verify with the consumer secret" in response.body.decode()
    body, headers = replace_result(lms, 0.5)
    assert (await post(http, lms.outcome_service_url, body, headers)).code == 200
    replay = await post(http, lms.outcome_service_url, body, headers)
    assert replay.code == 401
    assert "oauth_nonce was already used" in replay.body.decode()
    assert len(lms.outcome_requests) == 1


async def test_outcome_service_answers_failure_for_unknown_sourcedid(lms, http):
    body, headers = replace_result(lms, 0.5, sourcedid="nobody")
    response = await post(http, lms.outcome_service_url, body, headers)
    assert response.code == 200
    assert "<imsx_codeMajor>failure</imsx_codeMajor>" in response.body.decode()
    assert "unknown sourcedId" in response.body.decode()


async def token_for(lms, *scopes):
    return lms.issue_token(scopes).value


@pytest.mark.parametrize(
    ("scopes", "method", "status", "error"),
    [
        pytest.param(None, "GET", 401, "invalid_token", id="no-token"),
        pytest.param((SCOPE_SCORE,), "GET", 403, "insufficient_scope", id="score-only-reads"),
        pytest.param(
            (SCOPE_LINEITEM_READONLY,), "POST", 403, "insufficient_scope", id="readonly-creates"
        ),
        pytest.param((SCOPE_LINEITEM_READONLY,), "GET", 200, None, id="readonly-reads"),
    ],
)
async def test_lineitems_need_a_token_with_the_scope(lms, http, scopes, method, status, error):
    lms.enroll("u1", "ctx")
    headers = {"Authorization": f"Bearer {await token_for(lms, *scopes)}"} if scopes else {}
    kwargs = {}
    if method == "POST":
        headers["Content-Type"] = LINEITEM_TYPE
        kwargs["body"] = json.dumps({"label": "ps1", "scoreMaximum": 3})
    response = await http.fetch(
        lms.lineitems_url("ctx"), method=method, headers=headers, raise_error=False, **kwargs
    )
    assert response.code == status
    if error:
        assert json.loads(response.body)["error"] == error
    else:
        assert response.headers["Content-Type"] == LINEITEM_CONTAINER_TYPE
        assert json.loads(response.body) == []


async def test_scores_are_validated_and_recorded(lms, http):
    lms.enroll("u1", "ctx")
    token = await token_for(lms, SCOPE_LINEITEM, SCOPE_SCORE)
    auth = {"Authorization": f"Bearer {token}"}
    created = await post(
        http, lms.lineitems_url("ctx"), json.dumps({"label": "ps1", "scoreMaximum": 3,
                                                    "resourceId": "ps1"}),
        {**auth, "Content-Type": LINEITEM_TYPE},
    )  # fmt: skip
    assert created.code == 201
    item = json.loads(created.body)
    assert item["id"] == lms.lineitems_url("ctx") + "/1"

    scores = item["id"] + "/scores"
    good = build_score_payload("u1", 2, 3, 1_700_000_000)
    wrong_type = await post(http, scores, json.dumps(good), {**auth, "Content-Type": "text/json"})
    assert wrong_type.code == 415
    stranger = await post(
        http, scores, json.dumps({**good, "userId": "u9"}), {**auth, "Content-Type": SCORE_TYPE}
    )
    assert stranger.code == 400
    assert "not a member" in json.loads(stranger.body)["error_description"]
    ok = await post(http, scores, json.dumps(good), {**auth, "Content-Type": SCORE_TYPE})
    assert ok.code == 200
    older = build_score_payload("u1", 1, 3, 1_600_000_000)
    conflict = await post(http, scores, json.dumps(older), {**auth, "Content-Type": SCORE_TYPE})
    assert conflict.code == 409
    assert lms.scores[(item["id"], "u1")]["scoreGiven"] == 2
    assert len(lms.score_posts) == 1

    page = await http.fetch(lms.url + "/gradebook")
    html = page.body.decode()
    assert re.search(r'data-user="u1"\s+data-column="ps1"', html)
    assert '<td class="score">2</td>' in html
    rows = json.loads((await http.fetch(lms.url + "/gradebook.json")).body)
    assert [(r["user_id"], r["column"], r["score"], r["out_of"], r["via"]) for r in rows] == [
        ("u1", "ps1", 2, 3, "LTI 1.3 AGS")
    ]


async def test_token_endpoint_refuses_a_bad_grant(lms, http):
    response = await post(
        http, lms.token_url, "grant_type=password&username=a",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.code == 400
    assert json.loads(response.body)["error"] == "unsupported_grant_type"
    assert lms.tokens_issued == []


async def test_restart_on_the_same_port_keeps_the_gradebook(lms, http):
    body, headers = replace_result(lms, 0.5)
    assert (await post(http, lms.outcome_service_url, body, headers)).code == 200
    port = lms.port
    await lms.stop()
    with pytest.raises(ConnectionRefusedError):
        await http.fetch(lms.url + "/gradebook.json")
    await lms.start(port)
    assert lms.port == port
    rows = json.loads((await http.fetch(lms.url + "/gradebook.json")).body)
    assert [(r["user_id"], r["score"], r["via"]) for r in rows] == [("u1", 0.5, "LTI 1.1")]
    with pytest.raises(RuntimeError, match="already started"):
        await lms.start(port)


async def test_launches_carry_the_grade_services(lms):
    lms.tool_lti13_login_url = "http://tool/login"
    lms.tool_lti13_launch_url = "http://tool/launch"
    _, params = lms.initiate_lti13(user_id="u2", roles=[], context_id="c2")
    pending = lms._pending[params["lti_message_hint"]]
    assert pending.ags == {
        "scope": [SCOPE_LINEITEM, SCOPE_SCORE],
        "lineitems": lms.url + "/api/lti/courses/c2/lineitems",
    }
    assert "u2" in lms.members["c2"]
    _, params = lms.initiate_lti13(user_id="u3", roles=[], context_id="c2", ags=None)
    assert lms._pending[params["lti_message_hint"]].ags is None
    outcome = lms.lti11_outcome_params("u2", "c2", "link")
    assert outcome["outcome_service_url"] == lms.url + "/outcomes"
    assert lms.lti11_outcome_params("u2", "c2", "link") == outcome  # one cell, one sourcedid
    assert lms.sourcedids[outcome["result_sourcedid"]] == ("u2", "c2", "link")
