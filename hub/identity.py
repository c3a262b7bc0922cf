"""Who a launched person is: pseudonymous usernames, courses, and LTI roles as hub groups."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class CourseRole(enum.StrEnum):
    """A person's role in one course, as LearnHub grants rights by it."""

    INSTRUCTOR = "instructor"
    TA = "ta"
    CONTENT_DEVELOPER = "developer"
    LEARNER = "learner"


# The last segment of an LTI role (LTI 1.1 short names, LTI 1.1 URNs such as
# urn:lti:role:ims/lis/Instructor, and LTI 1.3 URIs such as
# http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor) decides the course role.
# Only context roles (membership, LTI 1.1's urn:lti:role:, short names) say what someone
# is in this course: an institution or system role says what they are elsewhere (a
# lecturer of the university enrolled as a learner here is a learner here). The one
# exception is Administrator: an LMS Administrator acting in a course gets the
# instructor's rights in that course and nothing hub-wide (hub administrators are named
# in the settings, not by an LMS).
_ROLE_BY_NAME = {
    "instructor": CourseRole.INSTRUCTOR,
    "administrator": CourseRole.INSTRUCTOR,
    "teachingassistant": CourseRole.TA,
    "grader": CourseRole.TA,
    "contentdeveloper": CourseRole.CONTENT_DEVELOPER,
    "learner": CourseRole.LEARNER,
    "student": CourseRole.LEARNER,
}


# LTI 1.3's institution and system role vocabularies, and LTI 1.1's URNs of the same.
_OUTSIDE_THE_COURSE = (
    "purl.imsglobal.org/vocab/lis/v2/institution/",
    "purl.imsglobal.org/vocab/lis/v2/system/",
    "urn:lti:instrole:",
    "urn:lti:sysrole:",
)
_ADMINISTRATORS = {"administrator", "sysadmin"}


def _role_name(role: str) -> str:
    role = role.strip()
    if "#" in role:
        role = role.rsplit("#", 1)[1]
    else:
        role = role.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return role.lower()


def _course_role(role: str) -> CourseRole | None:
    name = _role_name(role)
    if any(marker in role.lower() for marker in _OUTSIDE_THE_COURSE):
        return CourseRole.INSTRUCTOR if name in _ADMINISTRATORS else None
    return _ROLE_BY_NAME.get(name)


def course_roles(lti_roles: Iterable[str]) -> set[CourseRole]:
    """Map LTI roles to course roles; unknown roles (Mentor, Guest...), institution and
    system roles (but Administrator) and no role at all grant learner only."""
    roles = {role for role in map(_course_role, lti_roles) if role is not None}
    return roles or {CourseRole.LEARNER}


# An nbgrader assignment's name, as a link's custom parameter `assignment` may give it: it
# becomes a path in the learner's server and a folder of their home, so nothing else.
ASSIGNMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class LinkError(ValueError):
    """A link's custom parameters name no assignment LearnHub could open."""


def link_assignment(value) -> str | None:
    """The assignment a link opens (its custom parameter `assignment`), or None for a link
    that opens JupyterLab as it is."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not ASSIGNMENT_NAME.fullmatch(value) or ".." in value:
        raise LinkError(
            f"This link's custom parameter assignment={str(value)[:100]!r} is not the name of "
            "an assignment (letters, digits, '.', '_' and '-'): tell your instructor."
        )
    return value


def split_lti11_roles(value: str) -> list[str]:
    return [r for r in (part.strip() for part in value.split(",")) if r]


def _pseudonym(key: bytes, purpose: str, *parts: str, length: int) -> str:
    message = "\x00".join((purpose, *parts)).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:length]


def username_for(platform: str, lms_user_id: str, key: bytes) -> str:
    """A stable pseudonym for (platform, LMS user id): same at every launch, never the email.

    95 bits of an HMAC keyed by the server's pseudonym key: it cannot be linked back to
    the LMS id without the key, and collisions are negligible at any real number of users.
    """
    return "l" + _pseudonym(key, "user", platform, lms_user_id, length=19)


def course_id_for(platform: str, context_id: str, key: bytes) -> str:
    """A stable short id for (platform, LTI context id), safe in group and folder names."""
    return "c" + _pseudonym(key, "course", platform, context_id, length=11)


def group_name(course_id: str, role: CourseRole) -> str:
    return f"{course_id}-{role.value}"


def parse_group_name(name: str) -> tuple[str, CourseRole] | None:
    course_id, _, role = name.rpartition("-")
    if not course_id.startswith("c") or role not in CourseRole._value2member_map_:
        return None
    return course_id, CourseRole(role)


@dataclass(frozen=True)
class Course:
    """An LTI context as LearnHub knows it."""

    id: str
    platform: str
    context_id: str
    title: str


@dataclass
class Identity:
    """What a validated launch says about the person, whichever LTI version carried it."""

    platform: str
    lms_user_id: str
    roles: set[CourseRole]
    course: Course | None
    name: str | None = None
    email: str | None = None
    lti_version: str = "1.3"
    # Whatever later features need from the launch (outcome service, AGS endpoint).
    launch_claims: dict = field(default_factory=dict)
    # The assignment the link opens (its custom parameter `assignment`), if it names one.
    assignment: str | None = None

    def groups(self, current_groups: Iterable[str] = ()) -> list[str]:
        """This course's role groups, keeping the person's groups in other courses.

        JupyterHub replaces a user's groups with the auth model's at each login
        (manage_groups), so the groups of every other course must be carried over or a
        launch from course A would drop the person from course B.
        """
        this_course = self.course.id if self.course else None
        kept = {
            g
            for g in current_groups
            if (parsed := parse_group_name(g)) is None or parsed[0] != this_course
        }
        if self.course:
            kept |= {group_name(self.course.id, role) for role in self.roles}
        return sorted(kept)
