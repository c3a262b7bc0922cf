"""A course's roster from its LMS: LTI Names and Role Provisioning Services 2.0 (NRPS).

The course service reads the membership of an LTI 1.3 course whose launches carry the
NRPS claim: paging through `rel="next"`, then keeping the `rel="differences"` link for the
next read, which answers only what changed. Members the course does not know yet are
enrolled (and become gradebook students), so formgrader shows the whole class before its
first launch; a learner whose status becomes Inactive or Deleted, or who is missing from a
full roster, is removed from the course by the retention service's removal (the erasure
path of `learnhub course remove-student`). Only the pseudonym, the course role and, when
the LMS sends them and `courses.roster_names` keeps them, name and email are stored.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..addresses import link_relations, origin_of
from ..identity import course_roles, username_for
from ..lti13.service_tokens import ServiceTokens, TokenRefused
from ..store import STAFF_ROLES, Store, principal_role

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
ACTIVE = "Active"
# A roster longer than this many pages is an LMS answering in a loop.
MAX_PAGES = 500

log = logging.getLogger("learnhub.courses.roster")


class RosterError(Exception):
    """The roster could not be read; nothing was changed."""


@dataclass(frozen=True)
class Member:
    """One member of the course as the LMS lists them; only what LearnHub may keep."""

    user_id: str
    roles: tuple[str, ...]
    status: str
    name: str | None = None
    email: str | None = None


def _text(value) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def members_of(payload) -> list[Member]:
    """The members of one page of a membership container; RosterError if it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("members"), list):
        raise RosterError("the LMS's roster is not a membership container (no members list)")
    members = []
    for entry in payload["members"]:
        user_id = entry.get("user_id") if isinstance(entry, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise RosterError("the LMS's roster lists a member without a user_id")
        roles = entry.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise RosterError(f"the LMS's roster gives member {user_id[:40]!r} malformed roles")
        name = _text(entry.get("name")) or _text(
            " ".join(p for p in (entry.get("given_name"), entry.get("family_name"))
                     if isinstance(p, str))
        )  # fmt: skip
        members.append(
            Member(
                user_id=user_id,
                roles=tuple(roles),
                status=entry.get("status") if isinstance(entry.get("status"), str) else ACTIVE,
                name=name,
                email=_text(entry.get("email")),
            )
        )
    return members


@dataclass(frozen=True)
class RosterPlan:
    """What one read of the roster changes: people to enrol, learners to remove."""

    enrol: list[tuple[str, str, Member]]  # (username, role, member)
    remove: list[str]
    # Why learners missing from a full roster are kept, when they are.
    kept: str | None = None


def plan(
    members: Iterable[Member], *, full: bool, enrolled: dict[str, str],
    username_of: Callable[[str], str],
) -> RosterPlan:  # fmt: skip
    """Compare the roster with the course's enrollments (username → role).

    Only learners are removed (instructors and TAs are removed in the LMS, as
    `learnhub course remove-student` says), and a full roster without a single active
    member removes no one: an empty answer is an LMS's fault far more often than a class
    that left at once.
    """
    active: dict[str, Member] = {}
    gone: set[str] = set()
    for member in members:
        username = username_of(member.user_id)
        if member.status == ACTIVE:
            active[username] = member
            gone.discard(username)
        else:
            gone.add(username)
            active.pop(username, None)
    kept = None
    if full:
        missing = {u for u in enrolled if u not in active}
        if active:
            gone |= missing
        elif missing:
            kept = "the LMS listed no active member: nobody is removed"
    enrol = [
        (username, principal_role(course_roles(member.roles)), member)
        for username, member in sorted(active.items())
        if username not in enrolled
    ]
    remove = sorted(u for u in gone if u in enrolled and enrolled[u] not in STAFF_ROLES)
    return RosterPlan(enrol=enrol, remove=remove, kept=kept)


@dataclass(frozen=True)
class RosterSource:
    """Where a course's roster is read, from the latest launch that carried NRPS."""

    memberships_url: str
    issuer: str
    client_id: str
    token_url: str

    @property
    def platform(self) -> str:
        return f"lti13:{self.issuer}"


def roster_source(store: Store, course_id: str) -> RosterSource | None:
    launches = sorted(
        (e for e in store.enrollments_in(course_id) if e.lti_version == "1.3"),
        key=lambda e: e.last_launch,
        reverse=True,
    )
    for enrollment in launches:
        launch = enrollment.launch
        url = (launch.get("nrps") or {}).get("context_memberships_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            continue
        platforms = store.find_platforms(launch.get("issuer", ""), launch.get("client_id"))
        if platforms:
            return RosterSource(url, launch["issuer"], launch["client_id"], platforms[0].token_url)
    return None


@dataclass
class RosterSync:
    """Reads courses' rosters and applies them: the course service's part of NRPS."""

    store: Store
    tokens: ServiceTokens
    pseudonym_key: bytes
    # Makes the enrolled people gradebook students (CourseDirectories.sync_students).
    add_students: Callable[[str, list], object]
    # Removes a learner from a course through the erasure path (the retention service).
    remove: Callable[[str, str], Awaitable[object]]
    keep_names: bool = False
    # Seconds between two reads of a course's roster prompted by launches.
    interval: float = 3600
    clock: Callable[[], float] = time.time
    request_timeout: float = 60
    _differences: dict[str, str] = field(default_factory=dict)
    _last_read: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def due(self, course_id: str) -> bool:
        last = self._last_read.get(course_id)
        return last is None or self.clock() - last >= self.interval

    async def sync(self, course_id: str, *, full: bool = False) -> dict:
        """Read the course's roster (its changes, after a first full read) and apply it."""
        lock = self._locks.setdefault(course_id, asyncio.Lock())
        async with lock:
            source = await asyncio.to_thread(roster_source, self.store, course_id)
            if source is None:
                return {"course_id": course_id, "roster": "none"}
            url = None if full else self._differences.get(course_id)
            whole = url is None
            # Who is enrolled before the roster is read: someone whose first launch comes
            # while it is read is missing from it, and must not be taken for one who left.
            enrolled = {
                e.username: e.role
                for e in await asyncio.to_thread(self.store.enrollments_in, course_id)
            }
            members, differences = await self._read(source, url or source.memberships_url)
            self._last_read[course_id] = self.clock()
            changes = plan(
                members, full=whole, enrolled=enrolled,
                username_of=functools.partial(self._username, source.platform),
            )  # fmt: skip
            await asyncio.to_thread(self._enrol, course_id, source, changes.enrol)
            removed = 0
            for username in changes.remove:
                await self.remove(course_id, username)
                removed += 1
            if differences:
                self._differences[course_id] = differences
            if changes.kept:
                log.warning("Roster of %s: %s", course_id, changes.kept)
            log.info(
                "Roster of %s read (%s): %d members, %d enrolled, %d removed",
                course_id, "whole" if whole else "changes", len(members),
                len(changes.enrol), removed,
            )  # fmt: skip
            return {
                "course_id": course_id, "read": "whole" if whole else "changes",
                "members": len(members), "enrolled": len(changes.enrol), "removed": removed,
            }  # fmt: skip

    def _username(self, platform: str, user_id: str) -> str:
        return username_for(platform, user_id, self.pseudonym_key)

    def _enrol(self, course_id: str, source: RosterSource, people) -> None:
        if not people:
            return
        for username, role, member in people:
            self.store.add_roster_member(
                course_id=course_id, username=username, role=role, platform=source.platform,
                name=member.name if self.keep_names else None,
                email=member.email if self.keep_names else None,
            )  # fmt: skip
        enrollments = [self.store.enrollment(username, course_id) for username, _, _ in people]
        self.add_students(course_id, [e for e in enrollments if e is not None])

    async def _read(self, source: RosterSource, url: str) -> tuple[list[Member], str | None]:
        """Every page from `url` on, and the differences link of the last page."""
        http = AsyncHTTPClient()
        members: list[Member] = []
        origin = origin_of(source.memberships_url)
        for _ in range(MAX_PAGES):
            # The bearer token goes to the LMS's own roster service and nowhere else.
            if origin_of(url) != origin:
                raise RosterError(f"the LMS's roster links to another origin ({origin_of(url)})")
            response = await self._get(http, source, url)
            try:
                members += members_of(json.loads(response.body))
            except ValueError:
                raise RosterError("the LMS's roster is not JSON") from None
            links = link_relations(response.headers.get("Link"))
            if "next" not in links:
                return members, links.get("differences")
            url = links["next"]
        raise RosterError(f"the LMS's roster has more than {MAX_PAGES} pages")

    async def _get(self, http: AsyncHTTPClient, source: RosterSource, url: str):
        for renew in (False, True):
            try:
                token = await self.tokens.get(
                    functools.partial(self._fetch, http), token_url=source.token_url,
                    client_id=source.client_id, scopes=[NRPS_SCOPE], renew=renew,
                )  # fmt: skip
            except TokenRefused as e:
                raise RosterError(f"the LMS refused a roster token: {e}") from None
            response = await self._fetch(
                http, url, "the roster",
                headers={"Authorization": f"Bearer {token}", "Accept": MEMBERSHIP_TYPE},
            )  # fmt: skip
            if response.code == 401 and not renew:
                continue
            if response.code != 200:
                raise RosterError(f"the LMS answered {response.code} to the roster request")
            return response
        raise AssertionError("unreachable")

    async def _fetch(self, http: AsyncHTTPClient, url: str, what: str, **kwargs):
        request = HTTPRequest(
            url, request_timeout=self.request_timeout, follow_redirects=False, **kwargs
        )
        try:
            return await http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            where = origin_of(url)
            raise RosterError(f"could not reach the LMS at {where} for {what} ({e})") from e
