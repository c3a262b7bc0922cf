"""Delivery: whether the settings allow a real run, and one message per person through SMTP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..mail import (
    DeliveryError,
    SmtpConnectError,
    SmtpOutbox,
    SmtpServer,
    SmtpSettingsError,
    TokenBucket,
)
from .incident import Incident
from .notice import Sender, build_message
from .recipients import Recipient
from .report import Report


def sending_problems(values: Mapping, incident: Incident, environ: Mapping[str, str]) -> list[str]:
    """What stops a real run, each naming the setting and the fix; empty when ready."""
    problems = []
    try:
        SmtpServer.from_settings(values["smtp"], environ)
    except SmtpSettingsError as e:
        problems.append(str(e))
    if not values["smtp"]["from_address"]:
        problems.append(
            "smtp.from_address is not set: the sender address, e.g. privacy@example.edu"
        )
    if not values["operator"]["name"]:
        problems.append(
            "operator.name is not set: who runs this LearnHub, as learners know you, e.g. "
            "'Python for Everybody (py4e.com)'"
        )
    if not incident.contact and not values["operator"]["contact_email"]:
        problems.append(
            "no contact for questions: set 'contact' in the incident file or "
            "operator.contact_email in the settings"
        )
    return problems


def _redact(text: str, address: str) -> str:
    # Servers often echo the address in their answer; the report keeps usernames only.
    return text.replace(address, "<address>") if address else text


def deliver(
    incident: Incident,
    sender: Sender,
    recipients: Iterable[Recipient],
    outbox: SmtpOutbox,
    bucket: TokenBucket,
    report: Report,
) -> None:
    """Send one message per recipient; a refused message does not stop the others."""
    pending = [r for r in recipients if r.email]
    for i, recipient in enumerate(pending):
        bucket.take()
        try:
            outbox.send(build_message(incident, sender, recipient))
        except DeliveryError as e:
            report.failed.append(
                {"username": recipient.username, "error": _redact(str(e), recipient.email or "")}
            )
        except SmtpConnectError as e:
            # The server is gone (reconnecting failed): the rest are not attempted.
            reason = f"not sent: {_redact(str(e), recipient.email or '')}"
            report.failed += [{"username": r.username, "error": reason} for r in pending[i:]]
            break
        else:
            report.notified.append(recipient.username)
