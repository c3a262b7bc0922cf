"""The roster from the LMS (issue 13 item 5), through a real hub, its course and retention
services and the demo LMS as the NRPS peer (tokens it grants, pages it serves).

The course's learners are in its gradebook before any of them launched; a member whose
status becomes Inactive, or who is dropped from the course, is removed from the course by
the retention service's removal; only pseudonym and role are kept for people who have not
launched (courses.roster_names is off by default)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from learnhub.demo.constants import Role
from learnhub.demo.lms import DemoLMS
from learnhub.identity import username_for
from learnhub.settings import load_settings
from tests.support import (
    CookielessClient,
    launch_from,
    lti13_launch,
    registered_hub,
    until,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

CONTEXT = "roster-101"
CLASS = ["ann", "bo", "cy", "di", "ed"]


@pytest.fixture(scope="module")
def lms(loop_thread):
    peer = DemoLMS(consumer_key="roster-consumer", client_id="roster-tool", deployment_id="r-1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def hub(lms, tmp_path_factory):
    state = tmp_path_factory.mktemp("roster-hub")
    # Every launch reads what changed: the test needs no hour to pass.
    instance = registered_hub(state, lms, courses={"roster_sync_minutes": 0})
    instance.start()
    yield instance
    instance.shutdown_everything()


def pseudonym(hub, lms, user_id: str) -> str:
    key = load_settings(hub.config_file, environ=hub.env()).pseudonym_key
    return username_for(f"lti13:{lms.platform.issuer}", user_id, key)


def gradebook_students(hub, course_id: str) -> dict[str, tuple]:
    path = hub.state_dir / "courses" / course_id / "gradebook.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        rows = db.execute("select id, first_name, last_name, email from student").fetchall()
    return {row[0]: row[1:] for row in rows}


def enrollments(hub, course_id: str) -> dict[str, tuple]:
    rows = hub.query(
        "select username, role, name_enc, email_enc from learnhub_enrollments where course_id = ?",
        course_id,
    )
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def test_the_class_is_in_the_gradebook_before_anyone_launched_and_leavers_are_removed(hub, lms):
    for user_id in CLASS:
        lms.add_member(
            CONTEXT, user_id, [Role.LEARNER], name=f"{user_id.title()} Student",
            email=f"{user_id}@example.edu",
        )  # fmt: skip
    lms.add_member(CONTEXT, "prof", [Role.INSTRUCTOR], name="The Professor")
    client = CookielessClient()
    names = {user_id: pseudonym(hub, lms, user_id) for user_id in CLASS}

    # A learner's launch is the course's first: the course service reads the whole roster.
    first = launch_from(hub.url, lti13_launch(client, lms, user_id="ann", context=CONTEXT))
    course_id = hub.query("select id from learnhub_courses where context_id = ?", CONTEXT)[0][0]
    students = until(
        lambda: (found := gradebook_students(hub, course_id)) and len(found) == len(CLASS)
        and found
    )  # fmt: skip
    assert set(students) == set(names.values())
    enrolled = enrollments(hub, course_id)
    assert enrolled[pseudonym(hub, lms, "prof")][0] == "instructor"
    # Those who have not launched: pseudonym and role only (courses.roster_names is off).
    for user_id in ("bo", "cy", "di", "ed"):
        assert enrolled[names[user_id]] == ("learner", None, None), user_id
        assert students[names[user_id]] == (None, None, None), user_id
    # The roster came in pages? One page here; the token was the LMS's, for NRPS only.
    assert any("/memberships" in url for url in lms.membership_requests)
    wait_until_ready(client, first)

    # The LMS marks one learner inactive and drops another; the next launch reads the
    # changes only (the differences link), and both leave the course.
    lms.set_member_status(CONTEXT, "bo", "Inactive")
    lms.drop_member(CONTEXT, "cy")
    read_before = len(lms.membership_requests)
    lti13_launch(client, lms, user_id="ann", context=CONTEXT)
    until(lambda: names["bo"] not in enrollments(hub, course_id)
          and names["cy"] not in enrollments(hub, course_id))  # fmt: skip
    assert "since=" in lms.membership_requests[read_before]

    def without_the_leavers():
        found = gradebook_students(hub, course_id)
        return found if names["bo"] not in found and names["cy"] not in found else None

    students = until(without_the_leavers)
    assert set(students) == {names[u] for u in ("ann", "di", "ed")}
    # The instructor is never removed by a roster: instructors leave in the LMS.
    lms.drop_member(CONTEXT, "prof")
    lti13_launch(client, lms, user_id="ann", context=CONTEXT)
    until(lambda: len(lms.membership_requests) > read_before + 1)
    time.sleep(2)
    assert pseudonym(hub, lms, "prof") in enrollments(hub, course_id)
    assert client.cookie_headers_sent == []
