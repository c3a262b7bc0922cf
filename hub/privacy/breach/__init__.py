"""Breach notification: email every affected person whose address is known, and report."""

from .affected import (
    AFFECTED_FORMS,
    Account,
    Affected,
    AffectedError,
    parse_affected,
    read_usernames_csv,
    select_accounts,
)
from .delivery import deliver, sending_problems
from .directory import HubDirectory
from .incident import INCIDENT_SCHEMA, Incident, IncidentError, load_incident, parse_incident
from .notice import Sender, build_message, message_body, message_subject
from .recipients import (
    NO_ADDRESS,
    UNREADABLE,
    Recipient,
    recipient_from,
    resolve_recipients,
    usable_address,
)
from .report import REPORTS_DIR, Report, default_report_path, write_report

__all__ = [
    "AFFECTED_FORMS",
    "INCIDENT_SCHEMA",
    "NO_ADDRESS",
    "REPORTS_DIR",
    "UNREADABLE",
    "Account",
    "Affected",
    "AffectedError",
    "HubDirectory",
    "Incident",
    "IncidentError",
    "Recipient",
    "Report",
    "Sender",
    "build_message",
    "default_report_path",
    "deliver",
    "load_incident",
    "message_body",
    "message_subject",
    "parse_affected",
    "parse_incident",
    "read_usernames_csv",
    "recipient_from",
    "resolve_recipients",
    "select_accounts",
    "sending_problems",
    "usable_address",
    "write_report",
]
