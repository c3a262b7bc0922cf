"""Who is affected: the --affected forms, and choosing accounts by them (in Python, never SQL)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ...identity import parse_group_name


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
