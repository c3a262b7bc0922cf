"""Which launch carries an assignment's grade: that of the assignment's own link, or the course's.

An LMS gives every link its own gradebook column: LTI 1.1 a `lis_result_sourcedid` per
learner and link, LTI 1.3 the link's AGS `lineitem`. A learner's launches of each link are
kept (EnrollmentInfo.links, by the assignment the link names, "" for a link naming none), and
a grade goes with the launch of its assignment's link. An assignment whose link the learner
never opened goes where the operator chose (`grading.unlinked_assignments`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Unlinked(StrEnum):
    """Where the grade of an assignment goes when the learner never opened a link naming it."""

    # With the launch of the course's link (one naming no assignment). Under LTI 1.3 with the
    # line item container the assignment gets a column of its own there; where that link
    # gives one cell only (LTI 1.1, or a platform granting only the link's line item), the
    # cell holds the first assignment sent to it, and the others wait for links of their own.
    COURSE_LINK = "course-link"
    # Kept in the outbox until the learner opens the assignment's link.
    HOLD = "hold"


@dataclass(frozen=True)
class Target:
    """The launch whose grade service an assignment's grade is sent through."""

    launch: dict
    # True: the launch is of a link naming this assignment, so its column is the assignment's.
    own_link: bool


class NoLink(LookupError):
    """No launch may carry this grade; the message says what the learner or instructor can do."""


def target_for(links: dict[str, dict], assignment: str, unlinked: Unlinked) -> Target:
    """The launch that carries `assignment`'s grade, among a learner's launches of each link."""
    if assignment in links:
        return Target(links[assignment], own_link=True)
    if unlinked is Unlinked.HOLD:
        raise NoLink(
            f"held until the learner opens the link of {assignment!r} in the LMS "
            f"(grading.unlinked_assignments is {Unlinked.HOLD.value!r}; a link names its "
            f"assignment with the custom parameter assignment={assignment})"
        )
    if "" in links:
        return Target(links[""], own_link=False)
    named = ", ".join(sorted(links)) or "none"
    raise NoLink(
        f"the learner opened only the links of other assignments ({named}), none of the "
        f"course and none of {assignment!r}: the grade is sent when they open one"
    )
