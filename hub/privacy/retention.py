"""Scheduled expiry of inactive data: who to scrub, who and which course to delete, and doing it."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, select, text

from ..store import STAFF_ROLES, CourseRecord, Enrollment
from .erasure import (
    LMS_USERNAME,
    ErasureContext,
    compact,
    direct_login_usernames,
    erase_course,
    erase_people,
    scrub_people,
)

log = logging.getLogger(__name__)

DAY = 86400
# Below this, a semester break would cost learners their work: the schema refuses less.
MINIMUM_DAYS = 30


@dataclass(frozen=True)
class RetentionPolicy:
    """How long inactive data is kept, in seconds."""

    scrub_after: float
    delete_after: float
    course_delete_after: float
    interval: float = DAY
    enabled: bool = True

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> RetentionPolicy:
        retention = values["privacy"]["retention"]
        return cls(
            scrub_after=retention["scrub_after_days"] * DAY,
            delete_after=retention["delete_after_days"] * DAY,
            course_delete_after=retention["course_delete_after_days"] * DAY,
            interval=retention["interval_hours"] * 3600,
            enabled=retention["enabled"],
        )


@dataclass(frozen=True)
class Person:
    """What retention knows about one account: when it was last seen, and what protects it."""

    username: str
    last_activity: float | None = None  # the hub's: any request, server activity
    created: float | None = None
    last_launch: float | None = None  # the newest LMS launch of any enrollment
    admin: bool = False
    direct_login: bool = False  # a NativeAuthenticator account (staff log in at /hub/login)
    running: bool = False  # a server is running or starting
    has_contact: bool = False  # a name or email is kept in an enrollment
    staff_in: tuple[str, ...] = ()  # courses where the person is instructor or TA
    in_hub: bool = True

    @property
    def last_seen(self) -> float | None:
        seen = [t for t in (self.last_activity, self.last_launch, self.created) if t is not None]
        return max(seen) if seen else None


@dataclass(frozen=True)
class CourseActivity:
    id: str
    last_launch: float


@dataclass
class RetentionPlan:
    """Pseudonymous usernames and course ids to act on, and why the others are kept."""

    scrub: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    delete_courses: list[str] = field(default_factory=list)
    kept: Counter = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        return {
            "scrub": len(self.scrub),
            "delete": len(self.delete),
            "delete_courses": len(self.delete_courses),
            **{f"kept_{reason}": n for reason, n in sorted(self.kept.items())},
        }


def protection(person: Person) -> str | None:
    """Why retention never touches this account, or None.

    Administrators and direct-login accounts are people the operator created and manages
    (staff); only accounts an LMS launch created (pseudonymous usernames) expire. A running
    server means someone is using it now, whatever the timestamps say.
    """
    if person.admin:
        return "admin"
    if person.direct_login:
        return "direct_login"
    if not LMS_USERNAME.fullmatch(person.username):
        return "not_lms_account"
    if person.running:
        return "running"
    return None


def plan(
    now: float,
    people: Iterable[Person],
    courses: Iterable[CourseActivity],
    policy: RetentionPolicy,
) -> RetentionPlan:
    """Decide, without touching anything, who is scrubbed or deleted and which course goes.

    A person is inactive for a window when neither the hub's last activity nor any
    enrollment's last launch (nor the account's creation) falls within it; an account that
    cannot be dated is kept. Protected accounts (see protection) are never touched. Staff of
    a course that is still active are scrubbed when inactive but not deleted: their course
    still runs. A course is deleted when nobody launched it within its window; a course
    with a launch inside the window is active and kept.
    """
    result = RetentionPlan()
    course_list = list(courses)
    active_courses = {c.id for c in course_list if now - c.last_launch < policy.course_delete_after}
    result.delete_courses = sorted(c.id for c in course_list if c.id not in active_courses)
    for person in people:
        reason = protection(person)
        if reason:
            result.kept[reason] += 1
            continue
        seen = person.last_seen
        if seen is None:
            result.kept["undated"] += 1
            continue
        idle = now - seen
        if idle >= policy.delete_after:
            if any(c in active_courses for c in person.staff_in):
                result.kept["staff_of_active_course"] += 1
                if person.has_contact:
                    result.scrub.append(person.username)
                continue
            result.delete.append(person.username)
        elif idle >= policy.scrub_after:
            if person.has_contact:
                result.scrub.append(person.username)
            else:
                result.kept["already_scrubbed"] += 1
        else:
            result.kept["active"] += 1
    result.scrub.sort()
    result.delete.sort()
    return result


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def gather(context: ErasureContext) -> tuple[list[Person], list[CourseActivity]]:
    """Every account (the hub's users and whoever only an enrollment remembers) and course."""
    with context.store.session() as s:
        rows = s.execute(
            select(
                Enrollment.username,
                Enrollment.course_id,
                Enrollment.role,
                Enrollment.last_launch,
                (Enrollment.name_enc.is_not(None)) | (Enrollment.email_enc.is_not(None)),
            )
        ).all()
        courses = [
            CourseActivity(id, last)
            for id, last in s.execute(select(CourseRecord.id, CourseRecord.last_launch))
        ]
    enrolled: dict[str, dict[str, Any]] = {}
    for username, course_id, role, last_launch, contact in rows:
        entry = enrolled.setdefault(username, {"last": 0.0, "contact": False, "staff": []})
        entry["last"] = max(entry["last"], last_launch)
        entry["contact"] = entry["contact"] or bool(contact)
        if role in STAFF_ROLES:
            entry["staff"].append(course_id)
    direct = direct_login_usernames(context.engine)
    people = []
    for user in hub_users(context):
        entry = enrolled.pop(user["name"], None) or {}
        people.append(
            Person(
                username=user["name"],
                last_activity=_timestamp(user.get("last_activity")),
                created=_timestamp(user.get("created")),
                last_launch=entry.get("last"),
                admin=bool(user.get("admin")),
                direct_login=user["name"] in direct,
                running=bool(user.get("server") or user.get("pending")),
                has_contact=entry.get("contact", False),
                staff_in=tuple(entry.get("staff", ())),
            )
        )
    # Enrollments of people the hub no longer knows (an administrator deleted the user).
    for username, entry in enrolled.items():
        people.append(
            Person(
                username=username,
                last_launch=entry["last"],
                direct_login=username in direct,
                has_contact=entry["contact"],
                staff_in=tuple(entry["staff"]),
                in_hub=False,
            )
        )
    return people, courses


def hub_users(context: ErasureContext) -> list[dict[str, Any]]:
    """Every hub user as the REST API's user model has it (name, admin, created,
    last_activity, server), read from JupyterHub's tables in the shared database.

    Read, never written: deletion goes through the REST API so JupyterHub runs its own
    hooks. Paging GET /users costs minutes at 100,000 users (each page is an OFFSET scan);
    this query costs a second. Without JupyterHub's tables (another database layout), the
    REST API is used.
    """
    tables = set(inspect(context.engine).get_table_names())
    if not {"users", "spawners"} <= tables:
        return list(context.hub.users())
    # Two plain scans, not a correlated subquery: spawners.user_id has no index of
    # JupyterHub's, and a read that scans spawners once per user holds SQLite's shared lock
    # for seconds at 10,000 users, stalling every launch that writes meanwhile.
    with context.engine.connect() as connection:
        running = set(
            connection.execute(
                text("SELECT user_id FROM spawners WHERE server_id IS NOT NULL")
            ).scalars()
        )
        rows = connection.execute(
            text("SELECT id, name, admin, created, last_activity FROM users")
        ).all()
    return [
        {
            "name": name,
            "admin": bool(admin),
            "created": _iso_of(created),
            "last_activity": _iso_of(last_activity),
            "server": user_id in running,
        }
        for user_id, name, admin, created, last_activity in rows
    ]


def _iso_of(value) -> str | None:
    """JupyterHub's naive UTC datetimes (a datetime, or text on SQLite) as ISO with Z."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = value.isoformat()
    return value.replace(" ", "T") + "Z"


@dataclass
class SweepReport:
    plan: RetentionPlan
    dry_run: bool
    scrubbed: dict[str, int] = field(default_factory=dict)
    erased: dict[str, int] = field(default_factory=dict)
    erase_seconds: dict[str, float] = field(default_factory=dict)  # by store
    phases: dict[str, float] = field(default_factory=dict)  # plan, scrub, erase, ... seconds
    courses_erased: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    compacted: str | None = None
    seconds: float = 0.0


def sweep(
    context: ErasureContext, policy: RetentionPolicy, now: float | None = None, dry_run=False
) -> SweepReport:
    """Plan at `now` (default: the clock) and, unless dry_run, apply it through erasure.

    Logs counts only. After deleting anything, the database is compacted so that no
    deleted row can be read back from its files.
    """
    started = mark = time.monotonic()
    now = time.time() if now is None else now
    people, courses = gather(context)
    decided = plan(now, people, courses, policy)
    report = SweepReport(decided, dry_run)

    def phase(name: str) -> None:
        nonlocal mark
        report.phases[name] = time.monotonic() - mark
        mark = time.monotonic()

    phase("plan")
    if not dry_run:
        if decided.scrub:
            scrubbed = scrub_people(context, decided.scrub)
            report.scrubbed, report.failed = scrubbed.counts, report.failed + len(scrubbed.failed)
            phase("scrub")
        if decided.delete:
            erased = erase_people(context, decided.delete)
            report.erased, report.failed = erased.counts, report.failed + len(erased.failed)
            report.erase_seconds = erased.seconds
            phase("erase")
        for course_id in decided.delete_courses:
            for name, count in erase_course(context, course_id).items():
                report.courses_erased[name] = report.courses_erased.get(name, 0) + count
        if decided.delete_courses:
            phase("courses")
        if decided.delete or decided.delete_courses or decided.scrub:
            try:
                report.compacted = compact(context.engine)
            except Exception as e:  # a busy database: the next sweep compacts
                context.log.warning("retention: could not compact the database: %s", e)
            phase("compact")
    report.seconds = time.monotonic() - started
    context.log.info(
        "retention sweep%s: %s; failed=%d; %.1fs",
        " (dry run)" if dry_run else "",
        ", ".join(f"{k}={v}" for k, v in decided.counts().items()),
        report.failed,
        report.seconds,
    )
    return report


# JupyterHub's own database connections


class SecureDeleteConnection(sqlite3.Connection):
    """A SQLite connection that overwrites deleted content (PRAGMA secure_delete).

    JupyterHub's engine is not LearnHub's: passed as the sqlite3 `factory` in
    JupyterHub.db_kwargs, so the users, tokens and auth state JupyterHub deletes are zeroed
    in the file instead of lingering in free pages.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA secure_delete=ON")


def hub_db_kwargs(database_url: str, current: dict[str, Any]) -> dict[str, Any]:
    """JupyterHub.db_kwargs with secure_delete on SQLite connections; others unchanged."""
    if not database_url.startswith("sqlite"):
        return current
    connect_args = {"check_same_thread": False, **(current.get("connect_args") or {})}
    connect_args["factory"] = SecureDeleteConnection
    return {**current, "connect_args": connect_args}
