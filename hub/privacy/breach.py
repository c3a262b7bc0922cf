"""`learnhub notify-breach`: email every affected person whose address is known, and report."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from string import Template
from typing import Any

import jsonschema
import yaml

from ..identity import parse_group_name
from .mail import (
    DeliveryError,
    SmtpConnectError,
    SmtpOutbox,
    SmtpServer,
    SmtpSettingsError,
    TokenBucket,
)

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "breach-email.txt"
REPORTS_DIR = "breach-reports"

# Exit codes of the command.
EXIT_OK = 0
EXIT_REFUSED = 1  # bad input or settings, or the server cannot be used: nothing was sent
EXIT_SOME_FAILED = 3  # the run finished but some messages were not delivered


# The incident file


class IncidentError(ValueError):
    """An incident file that cannot be sent, with a message naming the field and the fix."""


# Each field's description is what the operator reads when it is missing or wrong.
INCIDENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "title",
        "occurred",
        "discovered",
        "data_affected",
        "what_happened",
        "what_we_are_doing",
        "what_you_can_do",
    ],
    "properties": {
        "title": {
            "type": "string",
            "minLength": 5,
            "maxLength": 150,
            "pattern": "^[^\\n]+$",
            "description": "a one-line summary, e.g. 'Learner names and emails exposed "
            "by a misconfigured backup'",
        },
        "occurred": {
            "type": "string",
            "minLength": 4,
            "description": "when it happened: a date, or a period in words, e.g. "
            "'between 2026-05-20 and 2026-05-28'",
        },
        "discovered": {
            "type": "string",
            "minLength": 4,
            "description": "when you found out, e.g. 2026-05-29",
        },
        "data_affected": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 2},
            "description": "which personal data was involved, a list such as "
            "[names, email addresses, course grades]",
        },
        "what_happened": {
            "type": "string",
            "minLength": 80,
            "description": "what happened in reasonable detail, in words a learner "
            "understands (at least 80 characters)",
        },
        "what_we_are_doing": {
            "type": "string",
            "minLength": 40,
            "description": "the steps you have taken and are taking in response "
            "(at least 40 characters)",
        },
        "what_you_can_do": {
            "type": "string",
            "minLength": 10,
            "description": "what the learner can do to protect themselves, or that "
            "they need not do anything",
        },
        "contact": {
            "type": "string",
            "minLength": 5,
            "description": "how learners reach you with questions; operator.contact_email "
            "from the settings when unset",
        },
    },
}

# Markdown section headings and the fields they fill.
SECTIONS = {
    "what happened": "what_happened",
    "what we are doing": "what_we_are_doing",
    "what you can do": "what_you_can_do",
    "data affected": "data_affected",
    "contact": "contact",
}
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|<[A-Za-z ]+>")


@dataclass(frozen=True)
class Incident:
    """What the operator tells affected people about one breach."""

    title: str
    occurred: str
    discovered: str
    data_affected: tuple[str, ...]
    what_happened: str
    what_we_are_doing: str
    what_you_can_do: str
    contact: str | None = None


def _split_front_matter(text: str, name: str) -> tuple[str, str]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise IncidentError(
            f"{name}: a Markdown incident file starts with YAML front matter between "
            "two '---' lines (title, occurred, discovered, data_affected)"
        )
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() in {"---", "..."}:
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    raise IncidentError(f"{name}: the front matter has no closing '---' line")


def _markdown_sections(body: str, name: str) -> dict[str, str]:
    """`## What happened` style sections of the Markdown body, by field name."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        heading = re.match(r"^#{1,3}\s+(.*?)\s*#*\s*$", line)
        if heading:
            key = " ".join(heading.group(1).lower().rstrip(":?").split())
            if key not in SECTIONS:
                known = ", ".join(f"'## {s.capitalize()}'" for s in SECTIONS)
                raise IncidentError(f"{name}: unknown section '{heading.group(1)}': use {known}")
            field_name = SECTIONS[key]
            if field_name in sections:
                raise IncidentError(f"{name}: section '{heading.group(1)}' appears twice")
            current = sections[field_name] = []
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise IncidentError(
                f"{name}: text before the first section: start the body with '## What happened'"
            )
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def _bullets(text: str) -> list[str]:
    items = [re.sub(r"^\s*[-*]\s+", "", line).strip() for line in text.splitlines()]
    return [i for i in items if i]


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key in ("occurred", "discovered"):
        # YAML reads an unquoted 2026-05-28 as a date.
        if isinstance(out.get(key), dt.date | dt.datetime):
            out[key] = out[key].isoformat()
    if isinstance(out.get("data_affected"), str):
        out["data_affected"] = _bullets(out["data_affected"]) or [out["data_affected"]]
    for key, value in out.items():
        if isinstance(value, str):
            out[key] = value.strip()
    return out


def _describe_incident_error(error: jsonschema.ValidationError, name: str) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        sub = INCIDENT_SCHEMA["properties"][missing]
        return f"{name}: missing field '{missing}': add {sub['description']}"
    if error.validator == "additionalProperties":
        known = sorted(INCIDENT_SCHEMA["properties"])
        extra = sorted(set(error.instance) - set(known))
        return f"{name}: unknown field(s) {', '.join(extra)}: known fields are {', '.join(known)}"
    field_name = str(error.absolute_path[0]) if error.absolute_path else where
    description = INCIDENT_SCHEMA["properties"].get(field_name, {}).get("description", "")
    if error.validator == "minLength" and isinstance(error.instance, str):
        return (
            f"{name}: field '{where}' is too short ({len(error.instance)} characters): "
            f"write {description}"
        )
    return f"{name}: field '{where}': {error.message}; expected {description}"


def parse_incident(text: str, name: str = "incident", markdown: bool | None = None) -> Incident:
    """Read an incident from YAML, or from Markdown with YAML front matter and sections."""
    if markdown is None:
        markdown = text.lstrip("\ufeff").startswith("---")
    try:
        if markdown:
            front, body = _split_front_matter(text, name)
            data = yaml.safe_load(front) or {}
            if not isinstance(data, dict):
                raise IncidentError(f"{name}: the front matter must be a mapping of fields")
            for key, value in _markdown_sections(body, name).items():
                if key in data:
                    raise IncidentError(
                        f"{name}: '{key}' is both in the front matter and a section: keep one"
                    )
                data[key] = value
        else:
            data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise IncidentError(f"{name} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise IncidentError(f"{name} must hold a mapping of fields (title, occurred, ...)")
    data = _normalise(data)
    errors = sorted(
        jsonschema.Draft202012Validator(INCIDENT_SCHEMA).iter_errors(data),
        key=lambda e: (e.validator != "required", list(e.absolute_path)),
    )
    if errors:
        raise IncidentError(_describe_incident_error(errors[0], name))
    for key, value in data.items():
        for text_value in value if isinstance(value, list) else [value]:
            found = PLACEHOLDER.search(text_value)
            if found:
                raise IncidentError(
                    f"{name}: field '{key}' still holds the placeholder {found.group(0)!r}: "
                    "replace it with the real text"
                )
    data["data_affected"] = tuple(data["data_affected"])
    return Incident(**data)


def load_incident(path: str | os.PathLike) -> Incident:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise IncidentError(f"cannot read the incident file {path}: {e.strerror}") from None
    markdown = True if path.suffix.lower() in {".md", ".markdown"} else None
    return parse_incident(text, name=str(path), markdown=markdown)


# Who is affected


class AffectedError(ValueError):
    """An --affected value that cannot be used, with the forms that can."""


AFFECTED_FORMS = (
    "all, a CSV file with a 'username' column, active-since:YYYY-MM-DD, "
    "group:<group name> or course:<course id>"
)
COURSE_ID = re.compile(r"^c[a-z0-9]{1,40}$")


@dataclass(frozen=True)
class Affected:
    """Whom a notification is for: everyone, a list of usernames, or a safe query."""

    kind: str  # all | usernames | active-since | group | course
    label: str
    since: dt.datetime | None = None
    name: str | None = None
    usernames: frozenset[str] = frozenset()


def read_usernames_csv(path: Path) -> frozenset[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            if "username" not in columns:
                raise AffectedError(
                    f"{path} needs a header row with a 'username' column "
                    f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})"
                )
            names = {(row[columns["username"]] or "").strip() for row in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AffectedError(f"cannot read {path}: {e}") from None
    names.discard("")
    if not names:
        raise AffectedError(f"{path} lists no usernames")
    return frozenset(names)


def parse_affected(value: str) -> Affected:
    """`all`, a CSV file of usernames, or a query; never SQL: queries are matched in Python."""
    value = value.strip()
    if value == "all":
        return Affected("all", "all")
    kind, sep, arg = value.partition(":")
    if sep and kind in {"active-since", "group", "course"}:
        arg = arg.strip()
        if kind == "active-since":
            try:
                day = dt.date.fromisoformat(arg)
            except ValueError:
                raise AffectedError(
                    f"--affected {value!r}: the date must be YYYY-MM-DD, e.g. "
                    "active-since:2026-01-31"
                ) from None
            # JupyterHub stores last_activity as naive UTC.
            since = dt.datetime(day.year, day.month, day.day)
            return Affected(kind, f"active-since:{day.isoformat()}", since=since)
        if kind == "course" and not COURSE_ID.match(arg):
            raise AffectedError(
                f"--affected {value!r}: a course id looks like c3kq7ab2xyzd (the part of a "
                "course group's name before the role)"
            )
        if not arg:
            raise AffectedError(f"--affected {value!r}: name the {kind}, e.g. {kind}:<name>")
        return Affected(kind, f"{kind}:{arg}", name=arg)
    path = Path(value)
    if path.is_file():
        names = read_usernames_csv(path)
        return Affected("usernames", f"{path} ({len(names)} usernames)", usernames=names)
    raise AffectedError(
        f"--affected {value!r} is not a file or a known query: use {AFFECTED_FORMS}"
    )


@dataclass(frozen=True)
class Account:
    """A person as the hub database knows them, before their auth state is decrypted."""

    username: str
    groups: frozenset[str] = frozenset()
    last_activity: dt.datetime | None = None
    encrypted_auth_state: bytes | None = field(default=None, repr=False)
    staff_email: str | None = field(default=None, repr=False)


def select_accounts(
    accounts: Iterable[Account], affected: Affected
) -> tuple[list[Account], list[str]]:
    """The affected accounts (by username) and the listed usernames the hub does not know."""
    accounts = list(accounts)
    if affected.kind == "all":
        chosen = accounts
    elif affected.kind == "usernames":
        chosen = [a for a in accounts if a.username in affected.usernames]
    elif affected.kind == "active-since":
        chosen = [
            a for a in accounts if a.last_activity is not None and a.last_activity >= affected.since
        ]
    elif affected.kind == "group":
        chosen = [a for a in accounts if affected.name in a.groups]
        if not chosen:
            raise AffectedError(f"no user is in group {affected.name!r}: check the group name")
    elif affected.kind == "course":
        chosen = [
            a
            for a in accounts
            if any((p := parse_group_name(g)) and p[0] == affected.name for g in a.groups)
        ]
        if not chosen:
            raise AffectedError(
                f"no user is in course {affected.name!r}: course groups are named "
                "<course id>-<role>, e.g. c3kq7ab2xyzd-learner"
            )
    else:
        raise AffectedError(f"unknown kind of --affected: {affected.kind}")
    known = {a.username for a in accounts}
    not_found = sorted(affected.usernames - known)
    return sorted(chosen, key=lambda a: a.username), not_found


class HubDirectory:
    """Reads accounts from JupyterHub's database (and NativeAuthenticator's users_info)."""

    def __init__(self, url: str):
        self.url = url

    def accounts(self) -> list[Account]:
        from jupyterhub import orm
        from sqlalchemy import create_engine, inspect, select

        if self.url.startswith("sqlite:///"):
            path = self.url.removeprefix("sqlite:///")
            if not Path(path).is_file():
                raise AffectedError(
                    f"no hub database at {path}: run this where the hub keeps its state "
                    "(LEARNHUB_STATE_DIR) or set database.url"
                )
        engine = create_engine(self.url)
        try:
            tables = set(inspect(engine).get_table_names())
            if "users" not in tables:
                raise AffectedError(
                    f"{self.url} holds no JupyterHub users table: check database.url"
                )
            with engine.connect() as db:
                users = db.execute(
                    select(orm.User.name, orm.User.last_activity, orm.User.encrypted_auth_state)
                ).all()
                groups: dict[str, set[str]] = {}
                rows = db.execute(
                    select(orm.User.name, orm.Group.name)
                    .join(orm.user_group_map, orm.user_group_map.c.user_id == orm.User.id)
                    .join(orm.Group, orm.Group.id == orm.user_group_map.c.group_id)
                ).all()
                for user, group in rows:
                    groups.setdefault(user, set()).add(group)
                staff: dict[str, str] = {}
                if "users_info" in tables:
                    from nativeauthenticator.orm import UserInfo

                    for username, email in db.execute(
                        select(UserInfo.username, UserInfo.email)
                    ).all():
                        if email:
                            staff[username] = email
        finally:
            engine.dispose()
        accounts = {
            name: Account(
                username=name,
                groups=frozenset(groups.get(name, ())),
                last_activity=last_activity,
                encrypted_auth_state=state,
                staff_email=staff.get(name),
            )
            for name, last_activity, state in users
        }
        # A direct-login account that signed up but never logged in has no hub user yet.
        for username, email in staff.items():
            accounts.setdefault(username, Account(username=username, staff_email=email))
        return list(accounts.values())


@dataclass(frozen=True)
class Recipient:
    """An affected person: their address and name when known, or why there is none."""

    username: str
    email: str | None = field(default=None, repr=False)
    name: str | None = field(default=None, repr=False)
    missing: str | None = None  # why there is no usable address


NO_ADDRESS = "no email address on record"
UNREADABLE = "auth state could not be decrypted"


def usable_address(value: Any) -> str | None:
    """The address if it can be written into a To header as it is, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+", value):
        return None
    try:
        Address(addr_spec=value)
    except (ValueError, IndexError):
        return None
    return value


def recipient_from(account: Account, auth_state: Mapping | None) -> Recipient:
    """Prefer the address the LMS sent (auth state); fall back to a staff account's email."""
    auth_state = auth_state or {}
    name = auth_state.get("name") if isinstance(auth_state.get("name"), str) else None
    raw = auth_state.get("email") or account.staff_email
    if not raw:
        return Recipient(account.username, name=name, missing=NO_ADDRESS)
    email = usable_address(raw)
    if email is None:
        return Recipient(account.username, name=name, missing="the address on record is invalid")
    return Recipient(account.username, email=email, name=name)


async def resolve_recipients(accounts: Iterable[Account], crypt_key: bytes) -> list[Recipient]:
    """Decrypt the auth state of the selected accounts only, and read name and email."""
    from jupyterhub.crypto import CryptKeeper, InvalidToken
    from traitlets.config import Config

    from ..auth import auth_state_key

    keeper = CryptKeeper(config=Config(), keys=[auth_state_key(crypt_key)])
    recipients = []
    try:
        for account in accounts:
            if account.encrypted_auth_state is None:
                recipients.append(recipient_from(account, None))
                continue
            try:
                state = await keeper.decrypt(account.encrypted_auth_state)
            except (InvalidToken, ValueError):
                if account.staff_email:
                    recipients.append(recipient_from(account, None))
                else:
                    recipients.append(Recipient(account.username, missing=UNREADABLE))
                continue
            recipients.append(recipient_from(account, state if isinstance(state, dict) else None))
    finally:
        keeper.executor.shutdown(wait=True)
    return recipients


# The message


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


# The run


@dataclass
class Report:
    """Who was notified, who failed with the server's answer, and who has no address."""

    incident: str
    affected: str
    dry_run: bool
    started: str
    finished: str = ""
    notified: list[str] = field(default_factory=list)
    would_notify: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    no_address: list[dict[str, str]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "notified": len(self.notified),
            "would_notify": len(self.would_notify),
            "failed": len(self.failed),
            "no_address": len(self.no_address),
            "not_found": len(self.not_found),
        }

    def to_json(self) -> str:
        data = {**self.__dict__, "counts": self.counts()}
        if not self.dry_run:
            data.pop("would_notify")
        return json.dumps(data, indent=2) + "\n"

    def lines(self) -> list[str]:
        out = []
        if self.dry_run:
            out.append(f"Would notify ({len(self.would_notify)}):")
            out += [f"  {u}" for u in self.would_notify]
        else:
            out.append(f"Notified ({len(self.notified)}):")
            out += [f"  {u}" for u in self.notified]
            out.append(f"Failed ({len(self.failed)}):")
            out += [f"  {f['username']}: {f['error']}" for f in self.failed]
        out.append(f"No address ({len(self.no_address)}):")
        out += [f"  {n['username']}: {n['reason']}" for n in self.no_address]
        if self.not_found:
            out.append(f"Not a user of this hub ({len(self.not_found)}):")
            out += [f"  {u}" for u in self.not_found]
        return out


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def write_report(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(report.to_json())


def default_report_path(settings, incident_file: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return settings.state_dir / REPORTS_DIR / f"{incident_file.stem}-{stamp}.json"


def _duration(count: int, rate_per_minute: int) -> str:
    minutes = max(count - 1, 0) / rate_per_minute
    return "under a minute" if minutes < 1 else f"about {minutes:.0f} min"


PREVIEW_RECIPIENT = Recipient("preview", email="learner@example.invalid", name="Ada Learner")


def cmd_notify_breach(settings, args, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        incident = load_incident(args.incident)
        affected = parse_affected(args.affected)
    except (IncidentError, AffectedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    problems = sending_problems(settings.values, incident, environ)
    if problems and not args.dry_run:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("Nothing was sent.", file=sys.stderr)
        return EXIT_REFUSED

    try:
        accounts = HubDirectory(settings.database_url).accounts()
        chosen, not_found = select_accounts(accounts, affected)
    except AffectedError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    recipients = asyncio.run(resolve_recipients(chosen, settings.crypt_key))
    encrypted = sum(1 for a in chosen if a.encrypted_auth_state is not None)
    unreadable = sum(1 for r in recipients if r.missing == UNREADABLE)
    if encrypted and unreadable == encrypted:
        print(
            f"error: none of the {encrypted} auth states could be decrypted: this is not the "
            "hub's crypt key (LEARNHUB_CRYPT_KEY, or crypt_key.hex in the state directory)",
            file=sys.stderr,
        )
        return EXIT_REFUSED

    report = Report(
        incident=incident.title,
        affected=affected.label,
        dry_run=args.dry_run,
        started=_now(),
        not_found=not_found,
        no_address=[{"username": r.username, "reason": r.missing} for r in recipients if r.missing],
    )
    sendable = [r for r in recipients if r.email]
    rate = settings["smtp"]["rate_per_minute"]
    print(f"Incident: {incident.title}")
    print(
        f"Affected ({affected.label}): {len(recipients)} users, {len(sendable)} with an "
        f"address, {len(report.no_address)} without"
    )
    sender = Sender.from_settings(settings.values, settings.public_url)

    if args.dry_run:
        report.would_notify = [r.username for r in sendable]
        report.finished = _now()
        print("Dry run: nothing is sent.")
        for problem in problems:
            print(f"A real run would refuse: {problem}")
        if not problems:
            server = SmtpServer.from_settings(settings["smtp"], environ)
            print(
                f"Would send {len(sendable)} messages through {server.describe()}, at most "
                f"{rate} per minute ({_duration(len(sendable), rate)})."
            )
            preview = build_message(incident, sender, PREVIEW_RECIPIENT)
            print("\nThe message, for a made-up recipient:\n")
            for header in ("From", "To", "Reply-To", "Subject"):
                if preview[header]:
                    print(f"{header}: {preview[header]}")
            print(f"\n{preview.get_content()}")
        print("\n".join(report.lines()))
        return EXIT_REFUSED if problems else EXIT_OK

    server = SmtpServer.from_settings(settings["smtp"], environ)
    print(
        f"Sending {len(sendable)} messages through {server.describe()}, at most {rate} per "
        f"minute ({_duration(len(sendable), rate)})."
    )
    try:
        with SmtpOutbox(server) as outbox:
            deliver(incident, sender, recipients, outbox, TokenBucket(rate), report)
    except SmtpConnectError as e:
        print(f"error: {e}", file=sys.stderr)
        print("Nothing was sent.", file=sys.stderr)
        return EXIT_REFUSED
    report.finished = _now()
    log.info(
        "breach notification: %d notified, %d failed, %d without an address, %d not found",
        len(report.notified),
        len(report.failed),
        len(report.no_address),
        len(report.not_found),
    )
    path = Path(args.report) if args.report else default_report_path(settings, Path(args.incident))
    write_report(report, path)
    print("\n".join(report.lines()))
    print(f"Report: {path}")
    return EXIT_SOME_FAILED if report.failed else EXIT_OK


def add_commands(subparsers) -> None:
    """Add `notify-breach` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "notify-breach",
        help="email everyone affected by a data breach and report who was notified",
        description="Email every affected user whose address is known about a data breach, "
        "through the SMTP server in the settings (smtp, operator). Try --dry-run first. "
        f"Exit status: {EXIT_OK} all sent, {EXIT_REFUSED} refused (nothing sent), "
        f"{EXIT_SOME_FAILED} some messages failed.",
    )
    p.add_argument(
        "--incident",
        required=True,
        metavar="FILE",
        help="YAML or Markdown-with-front-matter file describing the incident "
        "(see docs/breach-notification.md)",
    )
    p.add_argument(
        "--affected",
        default="all",
        metavar="WHO",
        help=f"who is affected: {AFFECTED_FORMS} (default: all)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="send nothing; show who would get which message"
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="where to write the JSON report (default: the state directory's breach-reports/)",
    )
    p.set_defaults(func=cmd_notify_breach)


def main(argv: list[str] | None = None) -> int:
    """`python -m learnhub.privacy.breach notify-breach ...`, as `learnhub` would run it."""
    from ..settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="learnhub")
    parser.add_argument("--config", help="settings file (default: $LEARNHUB_CONFIG)")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as e:
        print(f"error: invalid settings: {e}", file=sys.stderr)
        return 2
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())
