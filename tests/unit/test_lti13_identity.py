"""What a validated LTI 1.3 launch makes of the person: the 1EdTech certification's valid
launches (several roles, short names, an unknown role, no role, email only, names only, no
personal data, no context), each with a sensible role and course, keeping only what came."""

from __future__ import annotations

import pytest

from learnhub.identity import CourseRole
from learnhub.lti13 import constants as c
from learnhub.lti13.handlers import identity_from_claims

LIS = "http://purl.imsglobal.org/vocab/lis/v2"


def claims(roles, *, context=True, **person):
    made = {
        "iss": "https://lms.example",
        "aud": "tool-1",
        "sub": "user-7",
        c.DEPLOYMENT_ID: "d-1",
        c.RESOURCE_LINK: {"id": "link-1"},
        c.ROLES: roles,
        **person,
    }
    if context:
        made[c.CONTEXT] = {"id": "ctx-1", "label": "PY101", "title": "Python 101"}
    return made


def course_id(platform: str, context_id: str) -> str:
    return f"c-{context_id}"


CASES = [
    # id, roles, context?, person claims, roles expected, name, email
    ("instructor-several-roles",
     [f"{LIS}/institution/person#Instructor", f"{LIS}/membership#Instructor",
      f"{LIS}/system/person#User"], True, {}, {CourseRole.INSTRUCTOR}, None, None),
    ("learner-several-roles",
     [f"{LIS}/institution/person#Student", f"{LIS}/membership#Learner"], True, {},
     {CourseRole.LEARNER}, None, None),
    ("short-instructor", ["Instructor"], True, {}, {CourseRole.INSTRUCTOR}, None, None),
    ("short-learner", ["Learner"], True, {}, {CourseRole.LEARNER}, None, None),
    ("unknown-role", [f"{LIS}/membership#Wizard"], True, {}, {CourseRole.LEARNER}, None, None),
    ("no-role", [], True, {}, {CourseRole.LEARNER}, None, None),
    ("email-only", [f"{LIS}/membership#Learner"], True, {"email": "ann@example.edu"},
     {CourseRole.LEARNER}, None, "ann@example.edu"),
    ("names-only", [f"{LIS}/membership#Instructor"], True,
     {"given_name": "Ann", "family_name": "Lee"}, {CourseRole.INSTRUCTOR}, "Ann Lee", None),
    ("no-personal-data", [f"{LIS}/membership#Learner"], True, {}, {CourseRole.LEARNER},
     None, None),
    ("no-context", [f"{LIS}/membership#Instructor"], False, {}, {CourseRole.INSTRUCTOR},
     None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("roles", "context", "person", "expected", "name", "email"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_certification_launches(roles, context, person, expected, name, email):
    identity = identity_from_claims(claims(roles, context=context, **person), course_id)
    assert identity.roles == expected
    assert (identity.name, identity.email) == (name, email)
    if context:
        assert identity.course.id == "c-ctx-1" and identity.course.title == "Python 101"
        assert identity.groups() == sorted(f"c-ctx-1-{r.value}" for r in expected)
    else:
        # No context: no course, no course group, whatever the role.
        assert identity.course is None and identity.groups() == []
    # Only what arrived: no name made up from the email, nothing beyond the launch's ids.
    assert set(identity.launch_claims) == {
        "issuer", "client_id", "sub", "deployment_id", "resource_link",
    }  # fmt: skip
