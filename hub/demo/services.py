"""The pure parts of the LTI services: token client assertion, AGS line items and scores, NRPS."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import jwt

from .constants import (
    ACTIVITY_PROGRESS,
    GRADING_PROGRESS,
    SCOPE_CONTEXT_MEMBERSHIP_READONLY,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
)
from .lti13 import tool_key

# What the demo LMS grants a tool: line items and scores, as a teacher's default install.
GRANTED_SCOPES = (SCOPE_LINEITEM, SCOPE_SCORE)
TOKEN_SCOPES = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY,
                          SCOPE_SCORE, SCOPE_CONTEXT_MEMBERSHIP_READONLY})  # fmt: skip
MAX_ASSERTION_LIFETIME = 300


class GradeRefused(ValueError):
    """A grade or roster service request the LMS refuses; `status` and the message say how
    and why."""

    def __init__(self, status: int, message: str, error: str = "invalid_request"):
        super().__init__(message)
        self.status = status
        self.error = error


def score_number(payload: Mapping, name: str, *, positive: bool = False) -> float:
    """`payload[name]`, a finite number at least 0 (above 0 if `positive`); GradeRefused
    otherwise."""
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GradeRefused(400, f"{name} must be a number")
    if value < 0 or (positive and value == 0):
        raise GradeRefused(400, f"{name} must be {'positive' if positive else 'at least 0'}")
    return float(value)


def parse_iso_timestamp(value) -> datetime.datetime:
    """An ISO 8601 timestamp with a UTC offset, as AGS requires; GradeRefused otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise GradeRefused(400, f"timestamp {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise GradeRefused(400, f"timestamp {value!r} has no timezone")
    return moment


def validate_score(payload, members: Iterable[str]) -> dict:
    """A score POST as AGS 2.0 defines it, checked; GradeRefused says what is wrong."""
    if not isinstance(payload, dict):
        raise GradeRefused(400, "the score must be a JSON object")
    user_id = payload.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise GradeRefused(400, "userId is required")
    if user_id not in set(members):
        raise GradeRefused(400, f"userId {user_id!r} is not a member of this course")
    if payload.get("activityProgress") not in ACTIVITY_PROGRESS:
        raise GradeRefused(400, f"activityProgress must be one of {', '.join(ACTIVITY_PROGRESS)}")
    if payload.get("gradingProgress") not in GRADING_PROGRESS:
        raise GradeRefused(400, f"gradingProgress must be one of {', '.join(GRADING_PROGRESS)}")
    parse_iso_timestamp(payload.get("timestamp"))
    if "scoreGiven" in payload:
        score_number(payload, "scoreGiven")
        score_number(payload, "scoreMaximum", positive=True)
    elif "scoreMaximum" in payload:
        score_number(payload, "scoreMaximum", positive=True)
    return dict(payload)


def validate_new_lineitem(payload) -> dict:
    """A line item POST: label and a positive scoreMaximum required; GradeRefused otherwise."""
    if not isinstance(payload, dict):
        raise GradeRefused(400, "the line item must be a JSON object")
    if not isinstance(payload.get("label"), str) or not payload["label"].strip():
        raise GradeRefused(400, "label is required")
    score_number(payload, "scoreMaximum", positive=True)
    for key in ("resourceId", "resourceLinkId", "tag"):
        if key in payload and not isinstance(payload[key], str):
            raise GradeRefused(400, f"{key} must be a string")
    allowed = ("label", "scoreMaximum", "resourceId", "resourceLinkId", "tag",
               "startDateTime", "endDateTime", "gradesReleased")  # fmt: skip
    return {k: payload[k] for k in allowed if k in payload}


def verify_client_assertion(
    assertion: str,
    *,
    jwks: Mapping,
    client_id: str,
    token_url: str,
    jti_unused,
    now: float | None = None,
) -> dict:
    """The claims of a valid client assertion; GradeRefused(401, invalid_client) otherwise.

    Checks the RS256 signature against the tool's JWKS, iss = sub = client_id,
    aud = the token URL, exp (at most five minutes ahead) and a one-time jti.
    """

    def refuse(message: str) -> GradeRefused:
        return GradeRefused(401, message, "invalid_client")

    try:
        key = tool_key(assertion, jwks, name="client_assertion")
    except ValueError as e:
        raise refuse(str(e)) from None
    current = time.time() if now is None else now
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["RS256"],
            audience=token_url,
            issuer=client_id,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"], "verify_iat": False},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise refuse("client_assertion has expired") from None
    except jwt.InvalidAudienceError:
        raise refuse("client_assertion aud is not this token URL") from None
    except jwt.InvalidIssuerError:
        raise refuse("client_assertion iss is not the tool's client id") from None
    except jwt.PyJWTError as e:
        raise refuse(f"client_assertion does not verify ({e})") from None
    if claims["sub"] != client_id:
        raise refuse("client_assertion sub is not the tool's client id")
    if claims["exp"] > current + MAX_ASSERTION_LIFETIME + 5:
        raise refuse("client_assertion lives longer than five minutes")
    if not jti_unused(str(claims["jti"]), float(claims["exp"])):
        raise refuse("client_assertion jti was already used")
    return claims


@dataclass(frozen=True)
class AccessToken:
    """A bearer token the LMS issued to the tool, with its scopes."""

    value: str = field(repr=False)
    scopes: frozenset[str]
    expires: float


@dataclass(frozen=True)
class Member:
    """One person's membership of a course, as NRPS reports it; frozen, so that the change
    log keeps each state a member had."""

    user_id: str
    roles: tuple[str, ...]
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    status: str = "Active"

    def membership(self) -> dict:
        """The member in a membership container: names and email only where the LMS knows
        them, as a platform withholds what it does not share."""
        entry = {"user_id": self.user_id, "roles": list(self.roles), "status": self.status}
        for key in ("name", "given_name", "family_name", "email"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        return entry
