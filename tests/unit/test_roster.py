"""A course's roster from NRPS, the pure parts: a page of members read strictly, the Link
header's rels, and what a read of the roster changes in the course."""

from __future__ import annotations

import pytest

from learnhub.addresses import link_relations
from learnhub.courses.roster import Member, RosterError, members_of, plan

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


def test_a_page_of_members_keeps_only_what_learnhub_may():
    page = {
        "id": "https://lms.example/memberships",
        "context": {"id": "ctx"},
        "members": [
            {"user_id": "u1", "roles": [LIS + "Learner"], "status": "Active",
             "name": "Ann Lee", "email": "ann@example.edu", "picture": "https://x/p.png",
             "lis_person_sourcedid": "SIS-1"},
            {"user_id": "u2", "roles": [LIS + "Learner"], "given_name": "Bo",
             "family_name": "Chen"},
            {"user_id": "u3", "roles": [], "status": "Inactive", "email": " "},
        ],
    }  # fmt: skip
    assert members_of(page) == [
        Member("u1", (LIS + "Learner",), "Active", "Ann Lee", "ann@example.edu"),
        Member("u2", (LIS + "Learner",), "Active", "Bo Chen", None),
        Member("u3", (), "Inactive", None, None),
    ]


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ([], "not a membership container"),
        ({"members": "all"}, "not a membership container"),
        ({"members": [{"roles": []}]}, "without a user_id"),
        ({"members": [{"user_id": ""}]}, "without a user_id"),
        ({"members": [{"user_id": "u1", "roles": "Learner"}]}, "malformed roles"),
    ],
)
def test_a_malformed_page_is_refused(page, message):
    with pytest.raises(RosterError, match=message):
        members_of(page)


def test_link_header_rels():
    header = (
        '<https://lms.example/m?page=2>; rel="next", '
        "<https://lms.example/m?since=9>; rel=differences, <bad>, junk"
    )
    assert link_relations(header) == {
        "next": "https://lms.example/m?page=2",
        "differences": "https://lms.example/m?since=9",
    }
    assert link_relations(None) == {}


def member(user_id, role="Learner", status="Active"):
    return Member(user_id, (LIS + role,), status)


def name(user_id):
    return f"l-{user_id}"


def test_a_full_roster_enrols_newcomers_and_removes_learners_who_left():
    enrolled = {"l-u1": "learner", "l-gone": "learner", "l-teacher": "instructor"}
    changes = plan(
        [member("u1"), member("u2"), member("u3", "Instructor"), member("u4", status="Inactive")],
        full=True, enrolled={**enrolled, "l-u4": "learner"}, username_of=name,
    )  # fmt: skip
    assert [(u, role) for u, role, _ in changes.enrol] == [("l-u2", "learner"),
                                                           ("l-u3", "instructor")]  # fmt: skip
    # Learners absent or inactive go; an instructor missing from the roster stays.
    assert changes.remove == ["l-gone", "l-u4"] and changes.kept is None


def test_changes_remove_only_who_became_inactive_or_was_deleted():
    enrolled = {"l-u1": "learner", "l-u2": "learner", "l-ta": "ta"}
    changes = plan(
        [member("u2", status="Deleted"), member("ta", "TeachingAssistant", "Inactive"),
         member("u5")],
        full=False, enrolled=enrolled, username_of=name,
    )  # fmt: skip
    assert [u for u, _, _ in changes.enrol] == ["l-u5"]
    assert changes.remove == ["l-u2"]  # not l-u1 (unchanged), not the TA


def test_a_full_roster_without_an_active_member_removes_nobody():
    changes = plan([], full=True, enrolled={"l-u1": "learner"}, username_of=name)
    assert changes.remove == [] and "nobody is removed" in changes.kept


def test_the_last_status_of_a_member_listed_twice_counts():
    changes = plan(
        [member("u1", status="Inactive"), member("u1")],
        full=False, enrolled={"l-u1": "learner"}, username_of=name,
    )  # fmt: skip
    assert changes.remove == [] and changes.enrol == []
