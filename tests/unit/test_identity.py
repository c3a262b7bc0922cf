"""Pseudonymous usernames, course ids and the mapping of LTI roles to course groups."""

import pytest

from learnhub.identity import (
    Course,
    CourseRole,
    Identity,
    LinkError,
    course_id_for,
    course_roles,
    link_assignment,
    split_lti11_roles,
    username_for,
)

KEY = b"k" * 32
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person"


def test_username_is_stable_and_platform_specific():
    a = username_for("lti13:https://canvas.example.edu", "1234", KEY)
    assert a == username_for("lti13:https://canvas.example.edu", "1234", KEY)
    assert a != username_for("lti13:https://moodle.example.edu", "1234", KEY)
    assert a != username_for("lti13:https://canvas.example.edu", "1235", KEY)
    assert a != username_for("lti13:https://canvas.example.edu", "1234", b"j" * 32)
    assert a.startswith("l") and len(a) == 20 and a.isalnum() and a.islower()


def test_username_never_contains_the_lms_id_or_email():
    name = username_for("lti11:key", "ada@example.edu", KEY)
    assert "ada" not in name and "example" not in name


def test_separator_prevents_ambiguous_concatenation():
    assert username_for("a", "bc", KEY) != username_for("ab", "c", KEY)


def test_course_id_shape():
    cid = course_id_for("lti11:key", "context-1", KEY)
    assert cid.startswith("c") and len(cid) == 12
    assert cid != course_id_for("lti11:other", "context-1", KEY)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["Instructor"], {CourseRole.INSTRUCTOR}),
        (["urn:lti:role:ims/lis/Learner"], {CourseRole.LEARNER}),
        (["urn:lti:role:ims/lis/TeachingAssistant"], {CourseRole.TA}),
        (["urn:lti:instrole:ims/lis/Administrator"], {CourseRole.INSTRUCTOR}),
        ([f"{MEMBERSHIP}#Learner"], {CourseRole.LEARNER}),
        ([f"{MEMBERSHIP}#Instructor"], {CourseRole.INSTRUCTOR}),
        ([f"{MEMBERSHIP}/Instructor#TeachingAssistant"], {CourseRole.TA}),
        ([f"{MEMBERSHIP}#ContentDeveloper"], {CourseRole.CONTENT_DEVELOPER}),
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"],
            {CourseRole.INSTRUCTOR},
        ),
        ([f"{MEMBERSHIP}#Mentor"], {CourseRole.LEARNER}),
        ([], {CourseRole.LEARNER}),
        (
            [f"{MEMBERSHIP}#Instructor", f"{MEMBERSHIP}#Learner"],
            {CourseRole.INSTRUCTOR, CourseRole.LEARNER},
        ),
        # A lecturer of the university, enrolled as a learner in this course: a learner.
        ([f"{INSTITUTION}#Instructor", f"{MEMBERSHIP}#Learner"], {CourseRole.LEARNER}),
        ([f"{INSTITUTION}#Faculty", f"{INSTITUTION}#Staff"], {CourseRole.LEARNER}),
        (["urn:lti:instrole:ims/lis/Instructor", "Learner"], {CourseRole.LEARNER}),
        ([f"{SYSTEM}#SysAdmin"], {CourseRole.INSTRUCTOR}),
        (["urn:lti:sysrole:ims/lis/User"], {CourseRole.LEARNER}),
        # The certification's instructor with several roles, and its short names.
        (
            [f"{INSTITUTION}#Instructor", f"{MEMBERSHIP}#Instructor", f"{SYSTEM}#User"],
            {CourseRole.INSTRUCTOR},
        ),
        (["Learner"], {CourseRole.LEARNER}),
        (["http://purl.imsglobal.org/vocab/lis/v2/unknown#Wizard"], {CourseRole.LEARNER}),
    ],
    ids=[
        "11-short-instructor",
        "11-urn-learner",
        "11-urn-ta",
        "11-instrole-admin",
        "13-learner",
        "13-instructor",
        "13-ta-subrole",
        "13-content-developer",
        "13-institution-admin",
        "13-mentor-least-privilege",
        "no-roles",
        "two-roles",
        "13-institution-instructor-is-a-learner-here",
        "13-institution-roles-only",
        "11-instrole-instructor-is-a-learner-here",
        "13-system-sysadmin",
        "11-sysrole-user",
        "13-certification-instructor-several-roles",
        "13-short-learner",
        "13-unknown-role",
    ],
)
def test_course_roles(roles, expected):
    assert course_roles(roles) == expected


def test_split_lti11_roles():
    assert split_lti11_roles("Instructor, urn:lti:role:ims/lis/Learner,,") == [
        "Instructor",
        "urn:lti:role:ims/lis/Learner",
    ]


def test_groups_keep_other_courses_and_replace_this_one():
    course = Course(id="caaaaaaaaaaa", platform="p", context_id="x", title="Python 101")
    person = Identity(platform="p", lms_user_id="1", roles={CourseRole.TA}, course=course)
    current = ["caaaaaaaaaaa-learner", "cbbbbbbbbbbb-instructor", "staff"]
    assert person.groups(current) == [
        "caaaaaaaaaaa-ta",
        "cbbbbbbbbbbb-instructor",
        "staff",
    ]


def test_launch_without_course_keeps_groups():
    person = Identity(platform="p", lms_user_id="1", roles={CourseRole.LEARNER}, course=None)
    assert person.groups(["cbbbbbbbbbbb-learner"]) == ["cbbbbbbbbbbb-learner"]


@pytest.mark.parametrize("value", [None, "", "ps01", "PS1_expressions", "week-2.b"])
def test_a_link_names_an_assignment_or_none(value):
    assert link_assignment(value) == (value or None)


@pytest.mark.parametrize(
    "value", ["../etc", "ps/1", ".hidden", "a..b", "ps 1", "x" * 101, 7, ["ps1"], "ps1\n"]
)
def test_a_link_naming_no_assignment_is_refused_with_its_reason(value):
    with pytest.raises(LinkError, match="is not the name of an assignment"):
        link_assignment(value)


def test_lti11_and_lti13_links_carry_their_assignment():
    from learnhub.lti11.handlers import identity_from_launch
    from learnhub.lti13 import constants as c
    from learnhub.lti13.handlers import identity_from_claims

    lti11 = identity_from_launch(
        {"user_id": "u", "context_id": "k", "roles": "Learner", "custom_assignment": "ps01"},
        "key", lambda platform, context: "c" + context,
    )  # fmt: skip
    assert lti11.assignment == "ps01"
    claims = {
        "iss": "https://lms", "aud": "tool", "sub": "u", c.DEPLOYMENT_ID: "d",
        c.RESOURCE_LINK: {"id": "r"}, c.ROLES: [], c.CUSTOM: {"assignment": "ps02"},
    }  # fmt: skip
    assert identity_from_claims(claims, lambda p, k: "c" + k).assignment == "ps02"
    assert identity_from_claims({**claims, c.CUSTOM: "x"}, lambda p, k: k).assignment is None
