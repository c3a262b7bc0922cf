"""Grades go back to the LMS: real launches into the real hub, then the outbox to the demo LMS."""

import asyncio
import time

import pytest
import requests

from learnhub.passback import GradeOutbox, GradeState, build_replace_result_xml
from learnhub.passback import sign_outcome_request as sign_lti11
from learnhub.settings import load_settings
from learnhub.store import Store
from tests.support import launch_from, lti11_launch, lti13_launch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(hub):
    """The hub's own database, opened the way `learnhub` commands open it."""
    settings = load_settings(hub.config_file, environ=hub.env())
    return Store(settings.database_url, settings.crypt_key)


@pytest.fixture
def outbox(store):
    return GradeOutbox(store, connect_timeout=3, request_timeout=10)


def deliver(outbox, now=None):
    return asyncio.run(outbox.deliver_due(now=now))


def enrolled(store, username):
    (enrollment,) = store.enrollments_of(username)
    return enrollment


@pytest.fixture(scope="module")
def learner11(hub, lms, store):
    """An LTI 1.1 launch from a link with an outcome service: (username, course id, sourcedid)."""
    user, context = "pb-learner-11", "pb-course-11"
    outcome = lms.lti11_outcome_params(user, context, f"{context}-link")
    with requests.Session() as client:
        response = lti11_launch(client, hub, lms, user_id=user, context=context, **outcome)
    enrollment = enrolled(store, launch_from(hub.url, response).username)
    assert enrollment.lti_version == "1.1"
    assert enrollment.launch["lis_result_sourcedid"] == outcome["result_sourcedid"]
    return enrollment.username, enrollment.course_id, outcome["result_sourcedid"]


@pytest.fixture(scope="module")
def learner13(hub, lms, store):
    """An LTI 1.3 launch whose id_token carries the AGS claim: (username, course id, sub)."""
    user, context = "pb-learner-13", "pb-course-13"
    with requests.Session() as client:
        response = lti13_launch(client, lms, user_id=user, context=context)
    enrollment = enrolled(store, launch_from(hub.url, response).username)
    assert enrollment.lti_version == "1.3"
    assert enrollment.launch["ags"]["lineitems"] == lms.lineitems_url(context)
    return enrollment.username, enrollment.course_id, user


def test_lti11_grade_arrives_as_a_fraction(outbox, lms, learner11):
    username, course_id, sourcedid = learner11
    grade = outbox.enqueue(username, course_id, "ps1", 7, 10)
    assert grade in deliver(outbox).sent
    assert lms.outcomes[sourcedid].score == pytest.approx(0.7)
    assert lms.outcomes[sourcedid].cell == ("pb-learner-11", "pb-course-11", "pb-course-11-link")
    entry = outbox.get(grade)
    assert (entry.state, entry.lms_status, entry.lti_version) == (GradeState.SENT, 200, "1.1")


def test_the_lms_refuses_a_forged_outcome(lms, learner11):
    """The peer checks: the same request signed with a guessed secret changes nothing."""
    _, _, sourcedid = learner11
    before = lms.outcomes[sourcedid].score if sourcedid in lms.outcomes else None
    body = build_replace_result_xml(sourcedid, 1.0, "forged-1")
    headers = sign_lti11(lms.outcome_service_url, lms.consumer_key, "guessed-secret", body)
    response = requests.post(lms.outcome_service_url, data=body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert "<imsx_codeMajor>failure</imsx_codeMajor>" in response.text
    assert "does not verify with the consumer secret" in response.text
    held = lms.outcomes.get(sourcedid)
    assert (held.score if held else None) == before


def test_lti13_score_creates_the_line_item_once(outbox, lms, learner13):
    username, course_id, sub = learner13
    column = lms.lineitems_url("pb-course-13")
    first = outbox.enqueue(username, course_id, "ps1", 6, 8)
    assert first in deliver(outbox).sent
    second = outbox.enqueue(username, course_id, "ps1", 7.5, 8, pending_manual=True)
    assert second in deliver(outbox).sent

    made = [i for i in lms.lineitem_posts if i["id"].startswith(column)]
    assert [(i["label"], i["resourceId"], i["scoreMaximum"]) for i in made] == [("ps1", "ps1", 8)]
    assert made[0]["resourceLinkId"] == "pb-course-13-notebooks"
    posts = [p for p in lms.score_posts if p["lineitem"] == made[0]["id"]]
    sent = [(p["userId"], p["scoreGiven"], p["scoreMaximum"], p["gradingProgress"]) for p in posts]
    assert sent == [(sub, 6, 8, "FullyGraded"), (sub, 7.5, 8, "PendingManual")]
    gradebook = requests.get(lms.url + "/gradebook.json", timeout=10).json()
    assert {"user_id": sub, "column": "ps1", "score": 7.5, "out_of": 8} in [
        {k: r[k] for k in ("user_id", "column", "score", "out_of")} for r in gradebook
    ]


def test_lms_down_grades_wait_then_arrive_once(outbox, hub, lms, loop_thread, learner11,
                                               learner13):  # fmt: skip
    user11, course11, sourcedid = learner11
    user13, course13, sub = learner13
    outcomes_before, scores_before = len(lms.outcome_requests), len(lms.score_posts)
    port = lms.port
    loop_thread.run(lms.stop())
    try:
        grades = [
            # A regrade of ps1: the LTI 1.1 learner's one link gives one cell, ps1's.
            outbox.enqueue(user11, course11, "ps1", 3, 4),
            outbox.enqueue(user13, course13, "ps2", 9, 12),
        ]
        started = time.time()
        report = deliver(outbox)
        assert sorted(report.failed) == grades
        for grade in grades:
            entry = outbox.get(grade)
            assert entry.state is GradeState.FAILED
            assert entry.last_error.startswith(f"could not reach the LMS at {lms.url}")
            assert "connection refused" in entry.last_error
            assert entry.next_attempt > started
        listed = hub.cli("grades", "outbox", "--failed", "--course", course11)
        assert listed.returncode == 0, listed.stderr
        assert f"#{grades[0]}\tfailed\t{course11}\tps1" in listed.stdout
        assert "connection refused" in listed.stdout
        # Still down, and not yet due: nothing is sent.
        assert deliver(outbox).attempted == 0
    finally:
        loop_thread.run(lms.start(port))
    due = max(outbox.get(g).next_attempt for g in grades) + 1
    assert sorted(deliver(outbox, now=due).sent) == grades
    assert deliver(outbox, now=due + 86400).attempted == 0

    assert len(lms.outcome_requests) == outcomes_before + 1
    assert lms.outcomes[sourcedid].score == 0.75
    new_scores = lms.score_posts[scores_before:]
    assert [(p["userId"], p["scoreGiven"], p["scoreMaximum"]) for p in new_scores] == [(sub, 9, 12)]
    listed = hub.cli("grades", "outbox", "--course", course13)
    assert f"#{grades[1]}\tsent\t{course13}\tps2" in listed.stdout
    assert "(LMS answered 200)" in listed.stdout


def test_no_grade_service_is_said_plainly(hub, lms, store, outbox):
    with requests.Session() as client:
        response = lti13_launch(client, lms, user_id="pb-no-ags", context="pb-course-x", ags=None)
    enrollment = enrolled(store, launch_from(hub.url, response).username)
    assert "ags" not in enrollment.launch
    grade = outbox.enqueue(enrollment.username, enrollment.course_id, "ps1", 1, 1)
    assert grade in deliver(outbox).no_target
    assert outbox.get(grade).last_error == (
        "no passback target (the LMS launch carried no grade service)"
    )
    retried = hub.cli("grades", "retry", "--id", str(grade))
    assert retried.returncode == 1
    assert "no-target" in retried.stdout
