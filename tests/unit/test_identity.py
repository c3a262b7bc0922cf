"""Pseudonymous usernames, course ids and the mapping of LTI roles to course groups."""

import pytest

from learnhub.identity import (
    Course,
    CourseRole,
    Identity,
    course_id_for,
    course_roles,
    split_lti11_roles,
    username_for,
)

KEY = b"k" * 32
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"


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
