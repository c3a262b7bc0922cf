"""`learnhub report usage|accounting|support`: aggregate system statistics, never a learner's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import func, inspect, select, text

from ..db import engine_for
from ..docker_engine import docker_client
from ..service_names import RETENTION_SERVICE, service_port
from ..settings import Settings
from ..spawners import USER_LABEL
from ..store import CourseRecord, Enrollment
from . import analytics as stats

# Fewer than this many people in a cell could point at someone: such counts print as "<5".
SMALL_COUNT = 5
# Tables of other packages that support reports read when they exist.
OUTBOX_TABLE = "learnhub_grade_outbox"


@dataclass(frozen=True)
class Row:
    """One line of a report: a label and its figures, nothing that names a person."""

    label: str
    values: tuple


def _table(title: str, header: Iterable[str], rows: Iterable[Row]) -> str:
    lines = [f"# {title}", "\t".join(header)]
    lines += ["\t".join([row.label, *(str(v) for v in row.values)]) for row in rows]
    return "\n".join(lines)


def bounded(count: int) -> str:
    """A count of people as printed: small non-zero numbers are shown only as "<5"."""
    return f"<{SMALL_COUNT}" if 0 < count < SMALL_COUNT else str(count)


# usage


def usage_rows(counts: Iterable[stats.Count]) -> list[Row]:
    """Per day: launches (all LTI versions), distinct learners, server starts, page views."""
    days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        days[c.day][c.metric] += c.count
    return [
        Row(
            day,
            (
                metrics[stats.LAUNCHES],
                bounded(metrics[stats.ACTIVE_LEARNERS]),
                metrics[stats.SERVER_STARTS],
                metrics[stats.PAGE_VIEWS],
            ),
        )
        for day, metrics in sorted(days.items())
    ]


def usage_report(settings: Settings, since: str | None = None) -> str:
    analytics = stats.Analytics(settings.database_url, settings.crypt_key)
    analytics.roll_over()
    rows = usage_rows(analytics.counts(since=since))
    return _table(
        "usage per UTC day (DNT/GPC requests are not counted)",
        ["day", "launches", "active_learners", "server_starts", "page_views"],
        rows,
    )


# accounting


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under path; (0, 0) when it does not exist."""
    if not path.is_dir():
        return 0, 0
    files = total = 0
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            files += 1
            total += item.stat().st_size
    return files, total


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _scalar(connection, sql: str) -> int:
    return int(connection.execute(text(sql)).scalar() or 0)


def docker_home_volumes() -> tuple[int, int] | None:
    """(volumes, bytes) of learners' home volumes, or None without a Docker engine."""
    try:
        client = docker_client()
        try:
            volumes = client.df().get("Volumes") or []
        finally:
            client.close()
    except Exception:
        return None
    homes = [v for v in volumes if USER_LABEL in (v.get("Labels") or {})]
    return len(homes), sum(max(0, (v.get("UsageData") or {}).get("Size", 0)) for v in homes)


def accounting_report(settings: Settings) -> str:
    engine = engine_for(settings.database_url)
    tables = set(inspect(engine).get_table_names())
    lines = []
    with engine.connect() as connection:
        people = []
        if "users" in tables:
            people.append(Row("hub accounts", (_scalar(connection, "SELECT count(*) FROM users"),)))
            people.append(
                Row(
                    "administrators",
                    (_scalar(connection, "SELECT count(*) FROM users WHERE admin"),),
                )
            )
        if "users_info" in tables:
            people.append(
                Row(
                    "direct-login accounts",
                    (_scalar(connection, "SELECT count(*) FROM users_info"),),
                )
            )
        lines.append(_table("accounts", ["what", "count"], people))

        courses: list[Row] = []
        course, enrollment = CourseRecord.__table__, Enrollment.__table__
        if course.name in tables:
            count = connection.scalar(select(func.count()).select_from(course))
            courses.append(Row("courses", (count,)))
        if enrollment.name in tables:
            role = enrollment.c.role
            by_role = connection.execute(
                select(role, func.count()).group_by(role).order_by(role)
            ).all()
            courses += [Row(f"enrollments as {role}", (n,)) for role, n in by_role]
        lines.append(_table("courses and enrollments", ["what", "count"], courses))

        storage = []
        titles = {}
        if course.name in tables:
            titles = dict(connection.execute(select(course.c.id, course.c.title)).all())
    for course in sorted((settings.state_dir / "courses").glob("*")):
        if course.is_dir():
            files, size = folder_size(course)
            storage.append(
                Row(f"course {course.name}", (titles.get(course.name, "-"), files, human(size)))
            )
    exchange = settings.state_dir / "exchange"
    if exchange.is_dir():
        files, size = folder_size(exchange)
        storage.append(Row("exchange (all courses)", ("-", files, human(size))))
    homes = settings.state_dir / "homes"
    if homes.is_dir():
        count = sum(1 for h in homes.iterdir() if h.is_dir())
        files, size = folder_size(homes)
        storage.append(Row(f"local home folders ({count})", ("-", files, human(size))))
    volumes = docker_home_volumes()
    if volumes is not None:
        storage.append(Row(f"home volumes ({volumes[0]})", ("-", "-", human(volumes[1]))))
    lines.append(_table("storage", ["where", "course title", "files", "size"], storage))

    spawner = settings["spawner"]
    limits = [
        Row("backend", (spawner["backend"],)),
        Row("cpu per learner", (spawner["cpu_limit"],)),
        Row("memory per learner", (spawner["mem_limit"],)),
        Row("processes per learner", (spawner["pids_limit"],)),
        Row("images", (", ".join(spawner["images"]),)),
    ]
    lines.append(_table("container limits", ["what", "value"], limits))
    return "\n\n".join(lines)


# support


def support_report(settings: Settings, http=requests) -> str:
    engine = engine_for(settings.database_url)
    tables = set(inspect(engine).get_table_names())
    lines = []
    servers = []
    with engine.connect() as connection:
        if "spawners" in tables:
            servers.append(
                Row(
                    "learner servers running or starting",
                    (
                        _scalar(
                            connection, "SELECT count(*) FROM spawners WHERE server_id IS NOT NULL"
                        ),
                    ),
                )
            )
        outbox = []
        if OUTBOX_TABLE in tables:
            states = connection.execute(
                text(f"SELECT state, count(*) FROM {OUTBOX_TABLE} GROUP BY state ORDER BY state")  # noqa: S608 (a constant)
            ).all()
            outbox = [Row(f"grades {state}", (n,)) for state, n in states]
    # JupyterHub keeps no record of failed spawns: its log says which and why.
    servers.append(
        Row("failed spawns", ("not recorded: see the hub log (Unhandled error starting)",))
    )
    lines.append(_table("learner servers", ["what", "value"], servers))
    if OUTBOX_TABLE in tables:
        lines.append(
            _table("grade passback outbox", ["state", "count"], outbox or [Row("empty", (0,))])
        )
    else:
        lines.append("# grade passback outbox\n(no outbox table: grade passback has not run)")

    retention = f"http://127.0.0.1:{service_port(settings, RETENTION_SERVICE)}"
    checks = [
        ("hub", f"{settings.public_url}/hub/health"),
        (RETENTION_SERVICE, f"{retention}/services/{RETENTION_SERVICE}/api/health"),
    ]
    health = []
    for name, url in checks:
        try:
            response = http.get(url, timeout=5)
            detail = f"HTTP {response.status_code}"
            if name == RETENTION_SERVICE and response.ok:
                body = response.json()
                detail += f", last sweep {body.get('last_sweep') or 'not yet'}"
        except requests.RequestException as e:
            detail = f"no answer ({type(e).__name__})"
        health.append(Row(name, (detail,)))
    lines.append(_table("services", ["service", "health"], health))
    return "\n\n".join(lines)
