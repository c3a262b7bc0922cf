"""LTI 1.3 Assignment and Grade Services: line items and score payloads (the client assertion
that gets their token is lti13.service_tokens')."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..addresses import link_relations
from ..lti13.service_tokens import (  # noqa: F401 (the client assertion, used with AGS)
    ASSERTION_TYPE,
    build_client_assertion,
    token_request_body,
)

SCOPE_PREFIX = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = SCOPE_PREFIX + "lineitem"
SCOPE_LINEITEM_READONLY = SCOPE_PREFIX + "lineitem.readonly"
SCOPE_RESULT_READONLY = SCOPE_PREFIX + "result.readonly"
SCOPE_SCORE = SCOPE_PREFIX + "score"

LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"


ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return value


def iso_timestamp(when: float | datetime.datetime) -> str:
    """ISO 8601 with milliseconds and a UTC offset, as AGS examples write it."""
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            raise ValueError("a score timestamp needs a timezone; pass an aware datetime")
        moment = when
    else:
        moment = datetime.datetime.fromtimestamp(_finite("timestamp", when), datetime.UTC)
    return moment.isoformat(timespec="milliseconds")


def build_score_payload(
    user_id: str,
    score_given: float,
    score_maximum: float,
    timestamp: float | datetime.datetime,
    *,
    pending_manual: bool = False,
    comment: str | None = None,
) -> dict:
    """An AGS score for one learner; `user_id` is the LTI `sub` of their launch.

    An autograded submission that still waits for manual grading is "Submitted" and
    "PendingManual"; the LMS shows the partial score as not final.
    """
    if not user_id:
        raise ValueError("a score needs the learner's LTI user id (sub)")
    _finite("scoreGiven", score_given)
    _finite("scoreMaximum", score_maximum)
    if score_given < 0:
        raise ValueError(f"scoreGiven must not be negative, not {score_given!r}")
    if score_maximum <= 0:
        raise ValueError(f"scoreMaximum must be positive, not {score_maximum!r}")
    payload = {
        "userId": user_id,
        "scoreGiven": score_given,
        "scoreMaximum": score_maximum,
        "activityProgress": "Submitted" if pending_manual else "Completed",
        "gradingProgress": "PendingManual" if pending_manual else "FullyGraded",
        "timestamp": iso_timestamp(timestamp),
    }
    if comment:
        payload["comment"] = comment
    return payload


def granted_ags_scopes(ags_claim: Mapping) -> list[str]:
    """The AGS scopes a launch's endpoint claim granted, sorted."""
    scopes = ags_claim.get("scope") or []
    if isinstance(scopes, str):
        scopes = scopes.split()
    return sorted({s for s in scopes if isinstance(s, str) and s.startswith(SCOPE_PREFIX)})


def build_lineitem(
    label: str,
    score_maximum: float,
    resource_id: str,
    resource_link_id: str | None = None,
    tag: str | None = None,
) -> dict:
    """A new line item (gradebook column) for one assignment."""
    _finite("scoreMaximum", score_maximum)
    if score_maximum <= 0:
        raise ValueError(f"scoreMaximum must be positive, not {score_maximum!r}")
    item = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id}
    if resource_link_id:
        item["resourceLinkId"] = resource_link_id
    if tag:
        item["tag"] = tag
    return item


def find_lineitem(items: Iterable[Mapping], assignment: str) -> Mapping | None:
    """The line item of `assignment`: resourceId first, else tag (columns made by hand)."""
    items = [i for i in items if isinstance(i, Mapping) and i.get("id")]
    for key in ("resourceId", "tag"):
        for item in items:
            if item.get(key) == assignment:
                return item
    return None


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query (line item URLs may carry their own)."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def scores_url(lineitem_url: str) -> str:
    """The scores endpoint of a line item: its path + /scores, query kept (AGS 2.0 §3.4)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def next_page(link_header: str | None) -> str | None:
    """The rel="next" URL of a paged line item container's Link header."""
    return link_relations(link_header).get("next")
