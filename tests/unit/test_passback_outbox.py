"""GradeOutbox state transitions on a real SQLite file, delivering to the demo LMS on loopback."""

import asyncio
import json
import logging
import random
import sqlite3
import time

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from learnhub.demo.lms import DemoLMS
from learnhub.lti13.keys import ToolKeys
from learnhub.passback import NO_GRADE_SERVICE, GradeOutbox, GradeState, release_held, run_outbox
from learnhub.passback.ags import SCOPE_LINEITEM, SCOPE_SCORE
from learnhub.store import Enrollment, Store

SECRET = "consumer-secret-for-tests"
CLIENT_ID = "learnhub-tool"


class ToolJWKS(tornado.web.RequestHandler):
    def initialize(self, store):
        self.store = store

    def get(self):
        self.finish(ToolKeys(self.store).jwks())


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'hub.sqlite'}", b"k" * 32)


@pytest.fixture
async def lms(store):
    """The demo LMS, trusting the tool keys that a loopback stand-in for the hub publishes."""
    app = tornado.web.Application([(r"/hub/lti13/jwks", ToolJWKS, {"store": store})])
    sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
    tool = tornado.httpserver.HTTPServer(app)
    tool.add_sockets(sockets)
    jwks_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/lti13/jwks"
    peer = DemoLMS(
        consumer_key="lms-key",
        consumer_secret=SECRET,
        client_id=CLIENT_ID,
        deployment_id="dep-1",
        tool_jwks_url=jwks_url,
    )
    await peer.start()
    store.add_consumer("lms-key", SECRET)
    store.add_platform(
        issuer=peer.url,
        client_id=CLIENT_ID,
        deployment_ids=["dep-1"],
        auth_url=peer.auth_url,
        jwks_url=peer.jwks_url,
        token_url=peer.token_url,
    )
    yield peer
    await peer.stop()
    tool.stop()


@pytest.fixture
def outbox(store):
    return GradeOutbox(store, rng=random.Random(7), request_timeout=5, connect_timeout=2)


def enroll11(store, lms, username, course="course-a", *, outcome=True, key="lms-key"):
    launch = {"consumer_key": key, "resource_link_id": "link-1"}
    if outcome:
        params = lms.lti11_outcome_params(f"lms-{username}", "ctx-a", "link-1")
        launch["lis_outcome_service_url"] = params["outcome_service_url"]
        launch["lis_result_sourcedid"] = params["result_sourcedid"]
    store.record_launch(
        username=username, course_id=course, platform=f"lti11:{key}", context_id="ctx-a",
        title="Course A", role="learner", lti_version="1.1", launch=launch, name=None,
        email=None,
    )  # fmt: skip
    return launch


def enroll13(store, lms, username, course="course-b", *, ags=..., client_id=CLIENT_ID):
    sub = f"sub-{username}"
    lms.enroll(sub, "ctx-b")
    launch = {
        "issuer": lms.url,
        "client_id": client_id,
        "sub": sub,
        "deployment_id": "dep-1",
        "resource_link": {"id": "link-b"},
    }
    if ags is ...:
        ags = lms.ags_claim("ctx-b")
    if ags is not None:
        launch["ags"] = ags
    store.record_launch(
        username=username, course_id=course, platform=f"lti13:{lms.url}", context_id="ctx-b",
        title="Course B", role="learner", lti_version="1.3", launch=launch, name=None,
        email=None,
    )  # fmt: skip
    return launch


def states(outbox):
    return {e.id: e.state for e in outbox.entries()}


# ---------------------------------------------------------------- queueing


def test_a_newer_grade_supersedes_older_unsent_ones(outbox, tmp_path):
    first = outbox.enqueue("ann", "c1", "ps1", 3, 10)
    second = outbox.enqueue("ann", "c1", "ps1", 5, 10)
    other_work = outbox.enqueue("ann", "c1", "ps2", 1, 10)
    other_learner = outbox.enqueue("bob", "c1", "ps1", 2, 10)
    newest = outbox.enqueue("ann", "c1", "ps1", 8, 10, pending_manual=True)
    assert states(outbox) == {
        first: GradeState.SUPERSEDED,
        second: GradeState.SUPERSEDED,
        other_work: GradeState.PENDING,
        other_learner: GradeState.PENDING,
        newest: GradeState.PENDING,
    }
    assert outbox.get(first).superseded_by == second
    assert outbox.get(second).superseded_by == newest
    # It is all in the hub's database file, not in memory.
    with sqlite3.connect(tmp_path / "hub.sqlite") as db:
        rows = db.execute(
            "select score, state from learnhub_grade_outbox where username='ann' "
            "and assignment='ps1' order by id"
        ).fetchall()
    assert rows == [(3.0, "superseded"), (5.0, "superseded"), (8.0, "pending")]


@pytest.mark.parametrize(
    ("score", "max_score", "message"),
    [
        pytest.param(1, 0, "max_score must be positive", id="zero-max"),
        pytest.param(-1, 10, "must not be negative", id="negative"),
        pytest.param(float("nan"), 10, "finite", id="nan"),
        pytest.param("9", 10, "must be a number", id="string"),
    ],
)
def test_enqueue_refuses_nonsense(outbox, score, max_score, message):
    with pytest.raises(ValueError, match=message):
        outbox.enqueue("ann", "c1", "ps1", score, max_score)
    assert outbox.entries() == []


# ---------------------------------------------------------------- delivery


async def test_lti11_grade_arrives_as_a_fraction(outbox, store, lms):
    launch = enroll11(store, lms, "ann")
    grade = outbox.enqueue("ann", "course-a", "ps1", 7, 8)
    report = await outbox.deliver_due()
    assert report.sent == [grade]
    entry = outbox.get(grade)
    assert (entry.state, entry.lms_status, entry.attempts, entry.lti_version) == (
        GradeState.SENT, 200, 1, "1.1",
    )  # fmt: skip
    assert entry.sent_at is not None and entry.last_error is None
    held = lms.outcomes[launch["lis_result_sourcedid"]]
    assert held.score == pytest.approx(0.875)
    assert held.cell == ("lms-ann", "ctx-a", "link-1")
    assert len(lms.outcome_requests) == 1
    # Nothing is left to send.
    assert (await outbox.deliver_due()).attempted == 0


async def test_only_the_newest_grade_is_sent(outbox, store, lms):
    launch = enroll11(store, lms, "ann")
    for score in (2, 4, 6):
        outbox.enqueue("ann", "course-a", "ps1", score, 10)
    report = await outbox.deliver_due()
    assert len(report.sent) == 1
    assert [g.score for g in lms.outcome_requests] == [pytest.approx(0.6)]
    assert lms.outcomes[launch["lis_result_sourcedid"]].score == pytest.approx(0.6)


async def test_ags_score_creates_the_line_item_once(outbox, store, lms, caplog):
    caplog.set_level(logging.DEBUG)
    launch = enroll13(store, lms, "cy")
    enroll13(store, lms, "di")
    first = outbox.enqueue("cy", "course-b", "ps1", 6, 10, graded_at=1_700_000_000.5)
    assert (await outbox.deliver_due()).sent == [first]
    second = outbox.enqueue("di", "course-b", "ps1", 9, 10, pending_manual=True)
    third = outbox.enqueue("cy", "course-b", "ps2", 1, 4)
    assert (await outbox.deliver_due()).sent == [second, third]

    made = [(i["label"], i["resourceId"], i["resourceLinkId"], i["scoreMaximum"])
            for i in lms.lineitem_posts]  # fmt: skip
    assert made == [("ps1", "ps1", "link-b", 10), ("ps2", "ps2", "link-b", 4)]
    ps1 = lms.lineitem_posts[0]["id"]
    assert lms.scores[(ps1, launch["sub"])] == {
        "userId": "sub-cy",
        "scoreGiven": 6,
        "scoreMaximum": 10,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2023-11-14T22:13:20.500+00:00",
        "received": lms.scores[(ps1, "sub-cy")]["received"],
    }
    manual = lms.scores[(ps1, "sub-di")]
    assert (manual["scoreGiven"], manual["activityProgress"], manual["gradingProgress"]) == (
        9, "Submitted", "PendingManual",
    )  # fmt: skip
    assert len(lms.score_posts) == 3
    # One token for all three, with the scopes the launch granted.
    assert lms.tokens_issued == [frozenset({SCOPE_LINEITEM, SCOPE_SCORE})]
    # No token, secret or assertion in any log line.
    token = next(iter(lms._tokens))
    assert token not in caplog.text
    assert "eyJ" not in caplog.text
    assert SECRET not in caplog.text


async def test_a_line_item_made_by_hand_is_found_by_tag(outbox, store, lms):
    enroll13(store, lms, "cy")
    by_hand = {"id": lms.lineitems_url("ctx-b") + "/99", "label": "PS 1", "tag": "ps1",
               "scoreMaximum": 20}  # fmt: skip
    lms.lineitems["ctx-b"] = {by_hand["id"]: by_hand}
    outbox.enqueue("cy", "course-b", "ps1", 15, 20)
    assert len((await outbox.deliver_due()).sent) == 1
    assert lms.lineitem_posts == []
    assert lms.scores[(by_hand["id"], "sub-cy")]["scoreGiven"] == 15


async def test_a_deleted_line_item_is_made_again(outbox, store, lms):
    enroll13(store, lms, "cy")
    outbox.enqueue("cy", "course-b", "ps1", 1, 10)
    await outbox.deliver_due()
    (gone,) = lms.lineitem_posts
    del lms.lineitems["ctx-b"][gone["id"]]  # the instructor removed the column
    grade = outbox.enqueue("cy", "course-b", "ps1", 2, 10)
    assert (await outbox.deliver_due()).sent == [grade]
    assert len(lms.lineitem_posts) == 2
    assert lms.scores[(lms.lineitem_posts[1]["id"], "sub-cy")]["scoreGiven"] == 2


async def test_lms_down_the_grade_waits_then_arrives_once(outbox, store, lms):
    launch = enroll11(store, lms, "ann")
    port = lms.port
    await lms.stop()
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    before = time.time()
    report = await outbox.deliver_due()
    assert report.failed == [grade]
    entry = outbox.get(grade)
    assert entry.state is GradeState.FAILED
    assert entry.attempts == 1
    assert "could not reach the LMS at http://127.0.0.1:" in entry.last_error
    assert "connection refused" in entry.last_error
    # First retry after 15-30 s (base 30 s, half of it jitter).
    assert before + 15 <= entry.next_attempt <= time.time() + 30
    # Not due yet: nothing is attempted.
    assert (await outbox.deliver_due()).attempted == 0

    await lms.start(port)
    assert (await outbox.deliver_due(now=entry.next_attempt + 1)).sent == [grade]
    assert outbox.get(grade).attempts == 2
    assert len(lms.outcome_requests) == 1
    assert lms.outcomes[launch["lis_result_sourcedid"]].score == 0.5
    assert (await outbox.deliver_due(now=time.time() + 86400)).attempted == 0


async def test_backoff_grows_and_is_capped(store, lms):
    outbox = GradeOutbox(store, rng=random.Random(1), backoff_base=10, backoff_cap=100)
    enroll11(store, lms, "ann")
    await lms.stop()
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    now, delays = time.time(), []
    for _ in range(6):
        await outbox.deliver_due(now=now)
        entry = outbox.get(grade)
        delays.append(entry.next_attempt - now)
        now = entry.next_attempt
    assert entry.state is GradeState.FAILED and entry.attempts == 6
    lows = [5, 10, 20, 40, 50, 50]
    assert all(low <= d <= 2 * low for low, d in zip(lows, delays, strict=True)), delays


async def test_a_refusing_lms_needs_attention_after_three_tries(outbox, store, lms):
    store.add_consumer("stale-key", "not-what-the-lms-has")
    enroll11(store, lms, "ann", key="stale-key")
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    now = time.time()
    for attempt in (1, 2):
        await outbox.deliver_due(now=now)
        entry = outbox.get(grade)
        assert (entry.state, entry.attempts, entry.lms_status) == (GradeState.FAILED, attempt, 401)
        now = entry.next_attempt
    assert (await outbox.deliver_due(now=now)).needs_attention == [grade]
    entry = outbox.get(grade)
    assert entry.state is GradeState.NEEDS_ATTENTION
    assert entry.next_attempt is None
    assert entry.last_error == (
        "the LMS answered 401 Unauthorized to the outcome request (replaceResult): "
        "unknown consumer key 'stale-key'"
    )
    assert (await outbox.deliver_due(now=now + 10**6)).attempted == 0
    assert lms.outcome_requests == []
    # Fixed (the LMS now knows this key): retry sends it.
    lms.consumer_key, lms.consumer_secret = "stale-key", "not-what-the-lms-has"
    assert outbox.requeue(course_id="course-a") == [grade]
    assert (await outbox.deliver_due()).sent == [grade]


async def test_a_newer_grade_replaces_one_that_needs_attention(outbox, store, lms):
    store.add_consumer("stale-key", "wrong")
    enroll11(store, lms, "ann", key="stale-key")
    stuck = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    outbox.attention_after = 1
    await outbox.deliver_due()
    assert outbox.get(stuck).state is GradeState.NEEDS_ATTENTION
    newer = outbox.enqueue("ann", "course-a", "ps1", 2, 2)
    assert states(outbox) == {stuck: GradeState.SUPERSEDED, newer: GradeState.PENDING}


async def test_the_lms_refusing_the_value_is_permanent(outbox, store, lms):
    launch = enroll11(store, lms, "ann")
    del lms.sourcedids[launch["lis_result_sourcedid"]]  # the LMS forgot the learner
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    await outbox.deliver_due()
    entry = outbox.get(grade)
    assert entry.state is GradeState.FAILED
    assert entry.last_error == "the LMS refused the grade (failure): unknown sourcedId"


@pytest.mark.parametrize(
    ("enroll", "error"),
    [
        pytest.param(
            lambda store, lms: enroll11(store, lms, "ann", outcome=False),
            NO_GRADE_SERVICE,
            id="lti11-no-outcome-service",
        ),
        pytest.param(
            lambda store, lms: enroll13(store, lms, "ann", course="course-a", ags=None),
            NO_GRADE_SERVICE,
            id="lti13-no-ags-claim",
        ),
        pytest.param(
            lambda store, lms: enroll13(
                store, lms, "ann", course="course-a", ags={"scope": [], "lineitems": "x"}
            ),
            "the AGS claim grants no score scope",
            id="lti13-no-score-scope",
        ),
        pytest.param(lambda store, lms: None, "has not launched it", id="never-launched"),
    ],
)
async def test_no_target_is_recorded_and_not_retried(outbox, store, lms, enroll, error):
    enroll(store, lms)
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    assert (await outbox.deliver_due()).no_target == [grade]
    entry = outbox.get(grade)
    assert entry.state is GradeState.NO_TARGET
    assert error in entry.last_error
    assert entry.next_attempt is None
    assert (await outbox.deliver_due(now=time.time() + 10**6)).attempted == 0


async def test_a_refused_client_assertion_is_reported_without_secrets(outbox, store, lms, caplog):
    caplog.set_level(logging.DEBUG)
    store.add_platform(
        issuer=lms.url, client_id="unknown-to-lms", deployment_ids=["dep-1"],
        auth_url=lms.auth_url, jwks_url=lms.jwks_url, token_url=lms.token_url,
    )  # fmt: skip
    enroll13(store, lms, "cy", client_id="unknown-to-lms")
    grade = outbox.enqueue("cy", "course-b", "ps1", 1, 2)
    await outbox.deliver_due()
    entry = outbox.get(grade)
    assert entry.state is GradeState.FAILED
    assert entry.lms_status == 401
    assert entry.last_error == (
        "the LMS answered 401 Unauthorized to the access token request: "
        "client_assertion iss is not the tool's client id"
    )
    assert "eyJ" not in caplog.text
    assert lms.score_posts == []


async def test_an_unregistered_platform_is_named(outbox, store, lms):
    enroll13(store, lms, "cy", client_id="gone")
    grade = outbox.enqueue("cy", "course-b", "ps1", 1, 2)
    await outbox.deliver_due()
    assert "client id gone) is no longer registered" in outbox.get(grade).last_error


async def test_a_revoked_token_is_renewed(outbox, store, lms):
    enroll13(store, lms, "cy")
    outbox.enqueue("cy", "course-b", "ps1", 1, 2)
    await outbox.deliver_due()
    lms._tokens.clear()  # the LMS restarted and forgot its tokens
    grade = outbox.enqueue("cy", "course-b", "ps1", 2, 2)
    assert (await outbox.deliver_due()).sent == [grade]
    assert len(lms.tokens_issued) == 2


def test_a_leased_work_is_not_claimed_twice(outbox):
    first = outbox.enqueue("ann", "c1", "ps1", 1, 2)
    now = time.time()
    assert outbox._claim(first, now) is not None
    assert outbox._claim(first, now) is None  # the same row, leased
    second = outbox.enqueue("ann", "c1", "ps1", 2, 2)  # supersedes the one in flight
    assert outbox._claim(second, now) is None  # same work while the other is in flight
    assert outbox._claim(second, now + outbox.lease + 1) is not None


async def test_run_outbox_delivers_until_stopped(outbox, store, lms):
    enroll11(store, lms, "ann")
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 4)
    stop = asyncio.Event()
    loop = asyncio.create_task(run_outbox(store, stop, interval=0.05, outbox=outbox))
    deadline = time.monotonic() + 10
    while outbox.get(grade).state is not GradeState.SENT and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert outbox.get(grade).state is GradeState.SENT
    later = outbox.enqueue("ann", "course-a", "ps1", 2, 4)
    while outbox.get(later).state is not GradeState.SENT and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert [g.score for g in lms.outcome_requests] == [0.25, 0.5]


# ---------------------------------------------------------------- a link per assignment


def launch11(store, lms, username, link, assignment=None, course="course-a"):
    """A learner's LTI 1.1 launch of one link (naming `assignment`, or none)."""
    params = lms.lti11_outcome_params(f"lms-{username}", "ctx-a", link)
    launch = {
        "consumer_key": "lms-key", "resource_link_id": link,
        "lis_outcome_service_url": params["outcome_service_url"],
        "lis_result_sourcedid": params["result_sourcedid"],
    }  # fmt: skip
    store.record_launch(
        username=username, course_id=course, platform="lti11:lms-key", context_id="ctx-a",
        title="Course A", role="learner", lti_version="1.1", launch=launch, name=None,
        email=None, assignment=assignment,
    )  # fmt: skip


def launch13(store, lms, username, link, assignment=None, *, ags=...):
    """A learner's LTI 1.3 launch of one link; an assignment's link carries its column."""
    sub = f"sub-{username}"
    lms.enroll(sub, "ctx-b")
    if ags is ...:
        own = lms.link_lineitem("ctx-b", link, f"Problem set {assignment}") if assignment else None
        ags = lms.ags_claim("ctx-b", lineitem=own)
    launch = {"issuer": lms.url, "client_id": CLIENT_ID, "sub": sub, "deployment_id": "dep-1",
              "resource_link": {"id": link}, "ags": ags}  # fmt: skip
    store.record_launch(
        username=username, course_id="course-b", platform=f"lti13:{lms.url}",
        context_id="ctx-b", title="Course B", role="learner", lti_version="1.3", launch=launch,
        name=None, email=None, assignment=assignment,
    )  # fmt: skip


def lti11_cells(lms) -> dict[str, float]:
    return {grade.cell[2]: grade.score for grade in lms.outcomes.values()}


async def test_each_assignment_goes_to_the_cell_of_its_own_link_lti11(outbox, store, lms):
    """The learner's last launch (ps2's link) does not decide: each link keeps its cell."""
    launch11(store, lms, "ann", "course-link")
    launch11(store, lms, "ann", "link-ps1", "ps1")
    launch11(store, lms, "ann", "link-ps2", "ps2")
    ps1 = outbox.enqueue("ann", "course-a", "ps1", 1, 4)
    ps2 = outbox.enqueue("ann", "course-a", "ps2", 3, 4)
    ps3 = outbox.enqueue("ann", "course-a", "ps3", 2, 4)
    assert (await outbox.deliver_due()).sent == [ps1, ps2, ps3]
    assert lti11_cells(lms) == {"link-ps1": 0.25, "link-ps2": 0.75, "course-link": 0.5}
    assert [outbox.get(g).destination for g in (ps1, ps2, ps3)] == [
        "LTI 1.1 result of link link-ps1",
        "LTI 1.1 result of link link-ps2",
        "LTI 1.1 result of link course-link",
    ]
    # A second assignment without a link of its own would overwrite ps3 in the course's cell.
    ps4 = outbox.enqueue("ann", "course-a", "ps4", 4, 4)
    assert (await outbox.deliver_due()).no_target == [ps4]
    problem = outbox.get(ps4).last_error
    assert "course's link, which gives one grade cell, already holds the grade of 'ps3'" in problem
    assert "custom parameter assignment=ps4" in problem
    assert lti11_cells(lms)["course-link"] == 0.5
    # ps3 itself may be regraded there; then the learner opens ps4's link and it goes.
    again = outbox.enqueue("ann", "course-a", "ps3", 3, 4)
    assert (await outbox.deliver_due()).sent == [again]
    launch11(store, lms, "ann", "link-ps4", "ps4")
    assert release_held(store, "ann", "course-a") == 1
    assert (await outbox.deliver_due()).sent == [ps4]
    assert lti11_cells(lms) == {
        "link-ps1": 0.25, "link-ps2": 0.75, "course-link": 0.75, "link-ps4": 1.0,
    }  # fmt: skip
    assert len(lms.outcome_requests) == 5


async def test_hold_keeps_a_grade_until_its_link_is_opened(store, lms):
    outbox = GradeOutbox(store, unlinked="hold", request_timeout=5, connect_timeout=2)
    launch11(store, lms, "ann", "course-link")
    grade = outbox.enqueue("ann", "course-a", "ps1", 1, 2)
    assert (await outbox.deliver_due()).no_target == [grade]
    assert "held until the learner opens the link of 'ps1'" in outbox.get(grade).last_error
    assert lms.outcome_requests == []
    launch11(store, lms, "ann", "link-ps1", "ps1")
    release_held(store, "ann", "course-a")
    assert (await outbox.deliver_due()).sent == [grade]
    assert lti11_cells(lms) == {"link-ps1": 0.5}


async def test_only_other_assignments_links_opened_is_no_target(outbox, store, lms):
    launch11(store, lms, "ann", "link-ps1", "ps1")
    grade = outbox.enqueue("ann", "course-a", "ps2", 1, 2)
    assert (await outbox.deliver_due()).no_target == [grade]
    assert "opened only the links of other assignments (ps1)" in outbox.get(grade).last_error


async def test_each_assignment_goes_to_its_links_line_item_lti13(outbox, store, lms):
    launch13(store, lms, "cy", "course-link")
    launch13(store, lms, "cy", "link-ps1", "ps1")
    ps1 = outbox.enqueue("cy", "course-b", "ps1", 6, 10)
    ps2 = outbox.enqueue("cy", "course-b", "ps2", 3, 4)
    assert (await outbox.deliver_due()).sent == [ps1, ps2]
    column = lms.link_lineitem("ctx-b", "link-ps1", "unused")
    assert lms.scores[(column, "sub-cy")]["scoreGiven"] == 6
    # ps2 has no link: a column of its own, found or made by its resourceId, never ps1's.
    (made,) = lms.lineitem_posts
    assert (made["resourceId"], made["resourceLinkId"]) == ("ps2", "course-link")
    assert lms.scores[(made["id"], "sub-cy")]["scoreGiven"] == 3
    assert outbox.get(ps1).destination == f"line item {column}"


async def test_a_link_granting_only_its_line_item_takes_one_assignment(outbox, store, lms):
    only = lms.link_lineitem("ctx-b", "course-link", "Notebooks")
    launch13(store, lms, "cy", "course-link",
             ags={"scope": [SCOPE_SCORE], "lineitem": only})  # fmt: skip
    first = outbox.enqueue("cy", "course-b", "ps1", 1, 2)
    second = outbox.enqueue("cy", "course-b", "ps2", 2, 2)
    report = await outbox.deliver_due()
    assert (report.sent, report.no_target) == ([first], [second])
    assert lms.scores[(only, "sub-cy")]["scoreGiven"] == 1
    assert "already holds the grade of 'ps1'" in outbox.get(second).last_error


def test_an_enrollment_from_before_links_is_the_courses_link(store):
    launch = {"consumer_key": "k", "resource_link_id": "old"}
    store.record_launch(
        username="ann", course_id="c1", platform="lti11:k", context_id="x", title="X",
        role="learner", lti_version="1.1", launch=launch, name=None, email=None,
    )  # fmt: skip
    with store.session() as s:
        row = s.get(Enrollment, ("c1", "ann"))
        row.launch_enc = store.cipher.encrypt(json.dumps(launch))
        s.commit()
    assert store.enrollment("ann", "c1").links == {"": launch}
    store.record_launch(
        username="ann", course_id="c1", platform="lti11:k", context_id="x", title="X",
        role="learner", lti_version="1.1", launch={**launch, "resource_link_id": "ps1-link"},
        name=None, email=None, assignment="ps1",
    )  # fmt: skip
    enrollment = store.enrollment("ann", "c1")
    assert enrollment.links == {"": launch, "ps1": {**launch, "resource_link_id": "ps1-link"}}
    assert enrollment.launch == {**launch, "resource_link_id": "ps1-link"}
