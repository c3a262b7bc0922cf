"""The notice: one plain-text message to one affected person, from the operator's settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from string import Template

from .incident import Incident
from .recipients import Recipient

TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "breach-email.txt"


@dataclass(frozen=True)
class Sender:
    """Who the message is from: the operator's settings."""

    name: str
    from_address: str
    contact_email: str | None = None
    postal_address: str | None = None
    site: str = ""

    @classmethod
    def from_settings(cls, values: Mapping, site: str) -> Sender:
        operator, smtp = values["operator"], values["smtp"]
        return cls(
            name=operator["name"] or "",
            from_address=smtp["from_address"] or "",
            contact_email=operator["contact_email"],
            postal_address=operator["postal_address"],
            site=site,
        )


def _one_line(value: str) -> str:
    return " ".join(value.split())


def message_subject(incident: Incident, sender: Sender) -> str:
    return f"Notice of a data breach at {_one_line(sender.name)}: {_one_line(incident.title)}"


def message_body(incident: Incident, sender: Sender, recipient_name: str | None) -> str:
    contact = incident.contact or (
        f"Write to {sender.contact_email} with any question about this incident."
        if sender.contact_email
        else ""
    )
    signature = "\n".join(
        line
        for line in (
            _one_line(sender.name),
            sender.contact_email or "",
            *(sender.postal_address or "").strip().splitlines(),
        )
        if line.strip()
    )
    name = _one_line(recipient_name or "")
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        greeting=f"Dear {name}," if name else "Hello,",
        operator_name=_one_line(sender.name),
        title=_one_line(incident.title),
        what_happened=incident.what_happened,
        occurred=incident.occurred,
        discovered=incident.discovered,
        data_affected="\n".join(f"- {item}" for item in incident.data_affected),
        what_we_are_doing=incident.what_we_are_doing,
        what_you_can_do=incident.what_you_can_do,
        contact=contact,
        site=sender.site,
        signature=signature,
    )


def build_message(
    incident: Incident, sender: Sender, recipient: Recipient, now: dt.datetime | None = None
) -> EmailMessage:
    """The plain-text notification to one person."""
    if recipient.email is None:
        raise ValueError(f"{recipient.username} has no address")
    message = EmailMessage()
    message["From"] = Address(_one_line(sender.name), addr_spec=sender.from_address)
    message["To"] = Address(_one_line(recipient.name or ""), addr_spec=recipient.email)
    message["Subject"] = message_subject(incident, sender)
    message["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=sender.from_address.rpartition("@")[2])
    if sender.contact_email:
        message["Reply-To"] = sender.contact_email
    # RFC 3834: vacation responders should not answer a mass notice.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(message_body(incident, sender, recipient.name))
    return message
