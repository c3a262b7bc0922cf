"""Grade passback to the LMS (LTI 1.1 Basic Outcomes, LTI 1.3 AGS) through a persistent outbox."""

from __future__ import annotations

from .ags import build_client_assertion, build_lineitem, build_score_payload, find_lineitem
from .lti11 import build_replace_result_xml, parse_pox_response, sign_outcome_request
from .outbox import (
    NO_GRADE_SERVICE,
    PROBLEM_STATES,
    DeliveryError,
    DeliveryReport,
    GradeOutbox,
    GradeState,
    OutboxEntry,
    OutboxGrade,
    release_held,
    retry_delay,
    run_outbox,
)
from .targets import Unlinked

__all__ = [
    "NO_GRADE_SERVICE",
    "PROBLEM_STATES",
    "DeliveryError",
    "DeliveryReport",
    "GradeOutbox",
    "GradeState",
    "OutboxEntry",
    "OutboxGrade",
    "Unlinked",
    "build_client_assertion",
    "build_lineitem",
    "build_replace_result_xml",
    "build_score_payload",
    "find_lineitem",
    "parse_pox_response",
    "release_held",
    "retry_delay",
    "run_outbox",
    "sign_outcome_request",
]
