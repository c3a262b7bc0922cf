"""Who a launched person is: pseudonymous usernames, courses, and LTI roles as hub groups."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
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
# An LMS Administrator acting in a course gets the instructor's rights in that course
# and nothing hub-wide: hub administrators are named in the settings, not by an LMS.
_ROLE_BY_NAME = {
    "instructor": CourseRole.INSTRUCTOR,
    "administrator": CourseRole.INSTRUCTOR,
    "teachingassistant": CourseRole.TA,
    "grader": CourseRole.TA,
    "contentdeveloper": CourseRole.CONTENT_DEVELOPER,
    "learner": CourseRole.LEARNER,
    "student": CourseRole.LEARNER,
}


def _role_name(role: str) -> str:
    role = role.strip()
    if "#" in role:
        role = role.rsplit("#", 1)[1]
    else:
        role = role.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return role.lower()


def course_roles(lti_roles: Iterable[str]) -> set[CourseRole]:
    """Map LTI roles to course roles; unknown roles (Mentor, Guest...) grant learner only."""
    roles = {_ROLE_BY_NAME[n] for n in map(_role_name, lti_roles) if n in _ROLE_BY_NAME}
    return roles or {CourseRole.LEARNER}


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
