"""Erasure: every store of personal data, and one code path that empties them for a person."""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import requests
from sqlalchemy import delete, inspect, select, text, update
from sqlalchemy.orm import Session

from ..identity import parse_group_name
from ..settings import Settings
from ..store import CourseRecord, Enrollment, Store
from . import analytics as stats
from .bulk import MAX_USERS_PER_CALL

log = logging.getLogger(__name__)

# Keys that hold a person's name or email wherever LearnHub keeps launch data: the auth
# state's own "name"/"email", and LMS claims a launch may carry.
PERSONAL_KEYS = frozenset(
    {
        "name",
        "email",
        "given_name",
        "family_name",
        "middle_name",
        "picture",
        "lis_person_name_full",
        "lis_person_name_given",
        "lis_person_name_family",
        "lis_person_contact_email_primary",
        "lis_person_sourcedid",
    }
)
# What an LMS launch makes a username: "l" + 19 base32 characters (identity.username_for).
LMS_USERNAME = re.compile(r"l[a-z2-7]{19}")
# Rows deleted per transaction, so a sweep never holds the write lock for long.
BATCH = 500
# Seconds between two write transactions of a batch loop: a launch waiting for SQLite's
# write lock gets it, instead of losing every race to the next batch (seconds at 100,000).
WRITE_PAUSE = 0.05
# People erased at once by stores without a batch form (the hub's REST API).
PARALLEL = 8


class ErasureIncomplete(RuntimeError):
    """A store failed to erase; the stores before it are done and a rerun finishes the rest."""


class PartlyErased(Exception):
    """A batch method (erase_many, scrub_many) did its work except for `failed` people."""

    def __init__(self, failed: Iterable[str], count: int):
        self.failed = set(failed)
        self.count = count
        super().__init__(f"failed for {len(self.failed)} people")


@runtime_checkable
class PersonalDataStore(Protocol):
    """One place that keeps data about people. Every method is idempotent.

    Counts are rows, files or objects affected; they go to logs, never names or emails.
    """

    name: str

    def describe(self, username: str) -> dict[str, Any]:
        """What this store keeps about `username`, for the person's own data page."""

    def export(self, username: str, archive, prefix: str) -> int:
        """Write everything kept about `username` into the zipfile under `prefix`."""

    def scrub(self, username: str) -> int:
        """Drop `username`'s name and email, keep the rest."""

    def erase(self, username: str) -> int:
        """Delete everything about `username`."""

    def erase_course(self, course_id: str) -> int:
        """Delete a course and everything kept for it (its material, every enrollment)."""

    def remove_from_course(self, username: str, course_id: str) -> int:
        """Delete what this store keeps about `username` in one course."""


# Stores of other packages (the course exchange and gradebook, the grade outbox) register a
# factory; it is called with the ErasureContext and returns a store, or None when what it
# keeps does not exist in this installation.
StoreFactory = Callable[["ErasureContext"], PersonalDataStore | None]
_FACTORIES: list[StoreFactory] = []


# Packages declare their factories as entry points of this group, so that the service and
# the command line, which import none of them, still find every store.
ENTRY_POINT_GROUP = "learnhub.personal_data"


def register_store(factory: StoreFactory) -> StoreFactory:
    """Add a store factory (usable as a decorator); registering one twice is harmless."""
    if factory not in _FACTORIES:
        _FACTORIES.append(factory)
    return factory


def _registered() -> list[StoreFactory]:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        register_store(entry_point.load())
    return list(_FACTORIES)


class HubAPI:
    """The few JupyterHub REST calls erasure makes, with the retention service's token."""

    def __init__(self, url: str, token: str, timeout: float = 120):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token
        # One connection pool per thread: erasure calls the hub from several at once.
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"token {self._token}"
        return session

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=self.timeout, **kwargs)

    def users(self, page: int = 200) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            response = self._call(
                "GET",
                "/users",
                params={"offset": offset, "limit": page},
                headers={"Accept": "application/jupyterhub-pagination+json"},
            )
            response.raise_for_status()
            body = response.json()
            yield from body["items"]
            following = (body.get("_pagination") or {}).get("next")
            if not following:
                return
            offset = following["offset"]

    def user(self, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/users/{quote(name)}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def set_auth_state(self, name: str, state: dict[str, Any] | None) -> None:
        self._call("PATCH", f"/users/{quote(name)}", json={"auth_state": state}).raise_for_status()

    def delete_user(self, name: str, wait: float = 120) -> bool:
        """Delete the user (JupyterHub stops the server, drops tokens and auth state, and
        calls the spawner's delete_forever); False when there was no such user."""
        deadline = time.monotonic() + wait
        while True:
            response = self._call("DELETE", f"/users/{quote(name)}")
            if response.status_code == 404:
                return False
            if response.status_code == 204:
                return True
            # 400 while a server is still stopping: JupyterHub asks to wait.
            if response.status_code == 400 and time.monotonic() < deadline:
                time.sleep(1)
                continue
            response.raise_for_status()
            return True

    def erase_users(self, names: list[str]) -> dict[str, list[str]]:
        """Delete users whose servers are stopped in one call (LearnHub's bulk endpoint in
        the hub, see privacy.bulk): {"deleted", "busy", "failed", "missing"}."""
        response = self._call("POST", "/learnhub/users/erase", json={"users": names})
        response.raise_for_status()
        return response.json()

    def remove_from_group(self, group: str, name: str) -> bool:
        response = self._call("DELETE", f"/groups/{quote(group)}/users", json={"users": [name]})
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def delete_group(self, group: str) -> bool:
        response = self._call("DELETE", f"/groups/{quote(group)}")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def groups(self) -> Iterator[str]:
        offset = 0
        while True:
            response = self._call(
                "GET",
                "/groups",
                params={"offset": offset, "limit": 200},
                headers={"Accept": "application/jupyterhub-pagination+json"},
            )
            response.raise_for_status()
            body = response.json()
            for group in body["items"]:
                yield group["name"]
            following = (body.get("_pagination") or {}).get("next")
            if not following:
                return
            offset = following["offset"]


@dataclass
class ErasureContext:
    """What stores need: the settings, LearnHub's store and the hub's REST API."""

    settings: Settings
    store: Store
    hub: HubAPI
    log: logging.Logger = field(default_factory=lambda: log)

    @property
    def engine(self):
        return self.store.engine


def stores(context: ErasureContext) -> list[PersonalDataStore]:
    """Every store, in the order erasure runs them.

    Other packages' stores first, while enrollments still say which courses a person is
    in; then enrollments and analytics; then the hub user, whose deletion stops the
    person's server; last the local home folder, which nothing writes to any more.
    """
    found = [s for s in (factory(context) for factory in _registered()) if s is not None]
    return [
        *found,
        EnrollmentStore(context.store),
        AnalyticsStore(context.settings),
        HubUserStore(context.hub),
        LocalHomeStore(context.settings.state_dir / "homes"),
    ]


def _each(
    context: ErasureContext, action: str, call: Callable[[PersonalDataStore], int]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for store in stores(context):
        try:
            counts[store.name] = int(call(store) or 0)
        except Exception as e:
            context.log.error("%s: store %s failed: %s", action, store.name, type(e).__name__)
            raise ErasureIncomplete(f"{action} stopped at the {store.name} store: {e}") from e
    return counts


@dataclass
class ErasureResult:
    """Per-store counts and seconds, and the people a store failed for (retried later)."""

    counts: dict[str, int] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)


def _for_people(
    context: ErasureContext, action: str, usernames: Iterable[str], method: str
) -> ErasureResult:
    """Run `method` ("erase" or "scrub") of every store for every person, store by store.

    A store with a batch form (`erase_many`, `scrub_many`) gets everyone at once, in short
    transactions. A person a store fails for is skipped by the stores after it (their
    server may still run, so their home folder stays) and is tried again next time.
    """
    result = ErasureResult()
    remaining = list(dict.fromkeys(usernames))
    for store in stores(context):
        if not remaining:
            break
        count = 0
        started = time.monotonic()
        many = getattr(store, f"{method}_many", None)
        if many is not None:
            try:
                count = int(many(remaining) or 0)
            except PartlyErased as e:
                context.log.error(
                    "%s: store %s failed for %d people", action, store.name, len(e.failed)
                )
                count = e.count
                result.failed.update(e.failed)
                remaining = [u for u in remaining if u not in e.failed]
            except Exception as e:
                context.log.error("%s: store %s failed: %s", action, store.name, e)
                result.failed.update(remaining)
                remaining = []
        else:
            # One person at a time per call, several calls at once: a store that goes through
            # the hub's REST API waits on the network, not on this process.
            def one(username: str, store=store) -> int:
                try:
                    return int(getattr(store, method)(username) or 0)
                except Exception as e:
                    context.log.error(
                        "%s: store %s failed for one person: %s", action, store.name, e
                    )
                    result.failed.add(username)
                    return 0

            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(remaining))) as pool:
                count = sum(pool.map(one, remaining))
            remaining = [u for u in remaining if u not in result.failed]
        result.counts[store.name] = count
        result.seconds[store.name] = time.monotonic() - started
    context.log.info(
        "%s: %d people, %d failed; %s; seconds: %s",
        action,
        len(remaining) + len(result.failed),
        len(result.failed),
        _counts_text(result.counts),
        ", ".join(f"{name}={seconds:.1f}" for name, seconds in result.seconds.items()),
    )
    return result


def erase_people(context: ErasureContext, usernames: Iterable[str]) -> ErasureResult:
    """Delete everything about these people from every store."""
    return _for_people(context, "erase", usernames, "erase")


def scrub_people(context: ErasureContext, usernames: Iterable[str]) -> ErasureResult:
    """Drop these people's names and emails from every store."""
    return _for_people(context, "scrub", usernames, "scrub")


def erase_person(context: ErasureContext, username: str) -> dict[str, int]:
    """Delete everything about one person: the one path of expiry and of "erase my data
    now". Returns per-store counts; raises ErasureIncomplete when a store failed."""
    result = erase_people(context, [username])
    if result.failed:
        raise ErasureIncomplete("a store failed; the rest is retried by the next sweep")
    return result.counts


def scrub_person(context: ErasureContext, username: str) -> dict[str, int]:
    result = scrub_people(context, [username])
    if result.failed:
        raise ErasureIncomplete("a store failed to scrub")
    return result.counts


def erase_course(context: ErasureContext, course_id: str) -> dict[str, int]:
    counts = _each(context, "erase course", lambda s: s.erase_course(course_id))
    context.log.info("erased one course: %s", _counts_text(counts))
    return counts


def remove_from_course(context: ErasureContext, username: str, course_id: str) -> dict[str, int]:
    """An instructor removes a student: the enrollment and every store's course data."""
    counts = _each(
        context, "remove from course", lambda s: s.remove_from_course(username, course_id)
    )
    context.log.info("removed one person from one course: %s", _counts_text(counts))
    return counts


def describe_person(context: ErasureContext, username: str) -> dict[str, Any]:
    return {store.name: store.describe(username) for store in stores(context)}


def export_person(context: ErasureContext, username: str, archive) -> dict[str, int]:
    """Everything every store keeps about one person, into one zipfile."""
    counts = {}
    for store in stores(context):
        counts[store.name] = int(store.export(username, archive, f"{store.name}/") or 0)
    return counts


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}={count}" for name, count in counts.items())


def without_personal_keys(value: Any) -> Any:
    """`value` with every name and email key removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_personal_keys(v) for k, v in value.items() if k not in PERSONAL_KEYS}
    if isinstance(value, list):
        return [without_personal_keys(v) for v in value]
    return value


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _write_json(archive, path: str, value: Any) -> int:
    archive.writestr(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    return 1


# The hub-side stores


class HubUserStore:
    """The JupyterHub user: account, groups, tokens, encrypted auth state, server, home volume.

    Deleted through the REST API, so JupyterHub removes tokens, OAuth codes, auth state and
    servers itself and calls the spawner's delete_forever (a Docker container and its home
    volume). Course groups are JupyterHub groups named <course>-<role>.
    """

    name = "hub-user"

    def __init__(self, hub: HubAPI):
        self.hub = hub

    def describe(self, username: str) -> dict[str, Any]:
        user = self.hub.user(username)
        if user is None:
            return {"exists": False}
        state = user.get("auth_state") or {}
        return {
            "exists": True,
            "created": user.get("created"),
            "last_activity": user.get("last_activity"),
            "groups": sorted(user.get("groups") or []),
            "name": state.get("name"),
            "email": state.get("email"),
            "lms_platform": state.get("platform"),
            "lms_user_id": state.get("lms_user_id"),
            "courses": sorted((state.get("courses") or {}).keys()),
        }

    def export(self, username: str, archive, prefix: str) -> int:
        user = self.hub.user(username)
        if user is None:
            return 0
        profile = {k: v for k, v in user.items() if k not in {"servers", "server"}}
        return _write_json(archive, prefix + "account.json", profile)

    def scrub(self, username: str) -> int:
        user = self.hub.user(username)
        if user is None or not user.get("auth_state"):
            return 0
        state = user["auth_state"]
        scrubbed = without_personal_keys(state)
        if scrubbed == state:
            return 0
        self.hub.set_auth_state(username, scrubbed)
        return 1

    def erase(self, username: str) -> int:
        return int(self.hub.delete_user(username))

    def erase_many(self, usernames: Iterable[str]) -> int:
        """Delete users in batches inside the hub (privacy.bulk); those whose server is
        running or stopping one at a time through DELETE /users/:name, which stops it."""
        deleted = 0
        one_by_one: list[str] = []
        failed: set[str] = set()
        for batch in batches(usernames, MAX_USERS_PER_CALL):
            answer = self.hub.erase_users(batch)
            deleted += len(answer["deleted"])
            one_by_one += answer["busy"]
            failed.update(answer["failed"])
        for username in one_by_one:
            try:
                deleted += int(self.hub.delete_user(username))
            except requests.RequestException as e:
                log.error("erase: a busy hub user could not be deleted: %s", e)
                failed.add(username)
        if failed:
            raise PartlyErased(failed, deleted)
        return deleted

    def erase_course(self, course_id: str) -> int:
        deleted = 0
        for group in list(self.hub.groups()):
            parsed = parse_group_name(group)
            if parsed is not None and parsed[0] == course_id:
                deleted += int(self.hub.delete_group(group))
        return deleted

    def remove_from_course(self, username: str, course_id: str) -> int:
        user = self.hub.user(username)
        if user is None:
            return 0
        removed = 0
        for group in user.get("groups") or []:
            parsed = parse_group_name(group)
            if parsed is not None and parsed[0] == course_id:
                removed += int(self.hub.remove_from_group(group, username))
        state = user.get("auth_state")
        if state and course_id in (state.get("courses") or {}):
            courses = {k: v for k, v in state["courses"].items() if k != course_id}
            self.hub.set_auth_state(username, {**state, "courses": courses})
            removed += 1
        return removed


class EnrollmentStore:
    """LearnHub's enrollments (course, role, launch data, encrypted name and email) and courses."""

    name = "enrollments"

    def __init__(self, store: Store):
        self.store = store

    def describe(self, username: str) -> dict[str, Any]:
        titles = {c.id: c.title for c in self.store.courses()}
        return {
            "courses": [
                {
                    "course": titles.get(e.course_id, e.course_id),
                    "course_id": e.course_id,
                    "role": e.role,
                    "first_launch": _iso(e.first_launch),
                    "last_launch": _iso(e.last_launch),
                    "name": e.name,
                    "email": e.email,
                }
                for e in self.store.enrollments_of(username)
            ]
        }

    def export(self, username: str, archive, prefix: str) -> int:
        enrollments = self.store.enrollments_of(username)
        if not enrollments:
            return 0
        titles = {c.id: c.title for c in self.store.courses()}
        rows = [
            {
                "course_id": e.course_id,
                "course_title": titles.get(e.course_id),
                "role": e.role,
                "lti_version": e.lti_version,
                "platform": e.platform,
                "launch": e.launch,
                "launches_by_link": e.links,
                "name": e.name,
                "email": e.email,
                "first_launch": _iso(e.first_launch),
                "last_launch": _iso(e.last_launch),
            }
            for e in enrollments
        ]
        _write_json(archive, prefix + "enrollments.json", rows)
        return len(rows)

    def scrub(self, username: str) -> int:
        return self.scrub_many([username])

    def scrub_many(self, usernames: Iterable[str]) -> int:
        scrubbed = 0
        for batch in batches(usernames, pause=WRITE_PAUSE):
            with self.store.session() as s:
                scrubbed += s.execute(
                    update(Enrollment)
                    .where(
                        Enrollment.username.in_(batch),
                        (Enrollment.name_enc.is_not(None)) | (Enrollment.email_enc.is_not(None)),
                    )
                    .values(name_enc=None, email_enc=None)
                ).rowcount
                s.commit()
        return scrubbed

    def erase(self, username: str) -> int:
        return self.erase_many([username])

    def erase_many(self, usernames: Iterable[str]) -> int:
        erased = 0
        for batch in batches(usernames, pause=WRITE_PAUSE):
            with self.store.session() as s:
                erased += s.execute(
                    delete(Enrollment).where(Enrollment.username.in_(batch))
                ).rowcount
                s.commit()
        return erased

    def erase_course(self, course_id: str) -> int:
        with self.store.session() as s:
            erased = s.execute(delete(Enrollment).where(Enrollment.course_id == course_id)).rowcount
            erased += s.execute(delete(CourseRecord).where(CourseRecord.id == course_id)).rowcount
            s.commit()
        return erased

    def remove_from_course(self, username: str, course_id: str) -> int:
        return int(self.store.remove_enrollment(username, course_id))


class AnalyticsStore:
    """The only per-learner analytics row: today's keyed hash of who launched (see analytics)."""

    name = "analytics"

    def __init__(self, settings: Settings):
        self.analytics = stats.Analytics(settings.database_url, settings.crypt_key)

    def describe(self, username: str) -> dict[str, Any]:
        return {
            "kept": "daily counts only; for today, a keyed hash that you launched, deleted "
            "when the day is over",
            "hashes_today": len(self._matching([username])),
        }

    def export(self, username: str, archive, prefix: str) -> int:
        return 0  # A hash that only says "launched today" is not data about anyone's work.

    def _matching(self, usernames: Iterable[str]) -> list[tuple[str, str]]:
        """(day, hash) rows of these people: one read of the hashes kept (today's, and a
        missed day's), then a hash per person and day."""
        with Session(self.analytics.engine) as s:
            rows = s.execute(select(stats.ActiveLearner.day, stats.ActiveLearner.digest))
            kept = {(day, digest) for day, digest in rows}
        key, days = self.analytics._key, {day for day, _ in kept}
        return [
            (day, digest)
            for username in usernames
            for day in days
            if (day, digest := stats.learner_digest(key, day, username)) in kept
        ]

    def scrub(self, username: str) -> int:
        return 0

    def erase(self, username: str) -> int:
        return self.erase_many([username])

    def erase_many(self, usernames: Iterable[str]) -> int:
        matching = self._matching(usernames)
        if not matching:
            return 0
        with Session(self.analytics.engine) as s:
            for day, digest in matching:
                s.execute(
                    delete(stats.ActiveLearner).where(
                        stats.ActiveLearner.day == day, stats.ActiveLearner.digest == digest
                    )
                )
            s.commit()
        return len(matching)

    def erase_course(self, course_id: str) -> int:
        return 0

    def remove_from_course(self, username: str, course_id: str) -> int:
        return 0


class LocalHomeStore:
    """A learner's home folder when servers run as local processes (state_dir/homes/<user>).

    JupyterHub's local process spawner has no delete_forever, so deleting the hub user
    leaves it; this store removes it once the server is gone. The learner's own server
    adds its files to an export, so this store exports nothing.
    """

    name = "home-folder"

    def __init__(self, homes: Path):
        self.homes = homes

    def _path(self, username: str) -> Path | None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", username):
            return None
        path = self.homes / username
        # Never anything but a folder directly inside homes/ (no "..", no symlink out).
        if path.is_symlink() or not path.is_dir() or path.resolve().parent != self.homes.resolve():
            return None
        return path

    def describe(self, username: str) -> dict[str, Any]:
        path = self._path(username)
        if path is None:
            return {"exists": False}
        files = [p for p in path.rglob("*") if p.is_file()]
        return {"exists": True, "files": len(files), "bytes": sum(p.stat().st_size for p in files)}

    def export(self, username: str, archive, prefix: str) -> int:
        return 0

    def scrub(self, username: str) -> int:
        return 0

    def erase(self, username: str) -> int:
        path = self._path(username)
        if path is None:
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count

    def erase_course(self, course_id: str) -> int:
        return 0

    def remove_from_course(self, username: str, course_id: str) -> int:
        return 0


def batches(items: Iterable[str], size: int = BATCH, pause: float = 0.0) -> Iterator[list[str]]:
    """`items` in lists of `size`; with `pause`, that many seconds before each list but the
    first (loops that write a transaction per list pass WRITE_PAUSE)."""
    for n, batch in enumerate(_chunks(items, size)):
        if n:
            time.sleep(pause)
        yield batch


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# The database file keeps no copy


def direct_login_usernames(engine) -> set[str]:
    """Accounts of NativeAuthenticator (staff who log in at /hub/login): never expired."""
    if not inspect(engine).has_table("users_info"):
        return set()
    with engine.connect() as connection:
        return {row[0] for row in connection.execute(text("SELECT username FROM users_info"))}


# Tables that hold what an erasure deletes: JupyterHub's and LearnHub's.
ERASED_TABLES = (
    "users",
    "api_tokens",
    "oauth_codes",
    "spawners",
    "servers",
    "user_group_map",
    "user_role_map",
    "groups",
    "users_info",
    Enrollment.__tablename__,
    CourseRecord.__tablename__,
    stats.ActiveLearner.__tablename__,
)


def compact(engine, extra_tables: Iterable[str] = ()) -> str:
    """Rewrite the database so deleted rows cannot be read back from its files.

    SQLite: VACUUM rebuilds the file from live rows only (secure_delete already zeroes
    deleted cells). PostgreSQL: VACUUM FULL rewrites each table that erasure touches; a
    plain VACUUM would only mark the space reusable, leaving the bytes in place.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM")
        return "VACUUM"
    existing = set(inspect(engine).get_table_names())
    tables = [t for t in (*ERASED_TABLES, *extra_tables) if t in existing]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.exec_driver_sql(f'VACUUM FULL "{table}"')
    return f"VACUUM FULL on {len(tables)} tables"
