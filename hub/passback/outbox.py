"""The grade outbox: grades kept in the hub database until the LMS has acknowledged them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from http.client import responses as http_reasons

from sqlalchemy import (
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    and_,
    exists,
    select,
    update,
)
from sqlalchemy.orm import Mapped, aliased, mapped_column
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from ..addresses import origin_of
from ..db.leases import lapsed, take_lease
from ..lti13.keys import ToolKeys
from ..lti13.service_tokens import WHAT as TOKEN_REQUEST
from ..lti13.service_tokens import ServiceTokens, TokenRefused
from ..store import Base, Store
from . import ags
from .lti11 import build_replace_result_xml, parse_pox_response
from .lti11 import sign_outcome_request as sign_lti11
from .targets import NoLink, Target, Unlinked, target_for

log = logging.getLogger("learnhub.passback")

NO_GRADE_SERVICE = "no passback target (the LMS launch carried no grade service)"
# Statuses that mean "this request will fail the same way until someone changes
# something": a wrong secret, a removed column, a refused payload.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 409, 410, 413, 415, 422})
MAX_LINEITEM_PAGES = 50


class GradeState(StrEnum):
    PENDING = "pending"  # waiting for its first attempt
    FAILED = "failed"  # an attempt failed; another is scheduled at next_attempt
    SENT = "sent"  # the LMS acknowledged it (2xx)
    NEEDS_ATTENTION = "needs-attention"  # failed in a way retrying alone will not fix
    NO_TARGET = "no-target"  # no launch of the learner may carry it (passback.targets); waits
    SUPERSEDED = "superseded"  # a newer grade for the same work replaced it before it was sent


DUE_STATES = (GradeState.PENDING, GradeState.FAILED)
UNSENT_STATES = (*DUE_STATES, GradeState.NEEDS_ATTENTION, GradeState.NO_TARGET)
PROBLEM_STATES = (GradeState.FAILED, GradeState.NEEDS_ATTENTION, GradeState.NO_TARGET)


class OutboxGrade(Base):
    """One grade on its way to the LMS, and what happened on each try."""

    __tablename__ = "learnhub_grade_outbox"
    __table_args__ = (
        Index("ix_learnhub_grade_outbox_work", "username", "course_id", "assignment"),
        Index("ix_learnhub_grade_outbox_due", "state", "next_attempt"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    course_id: Mapped[str] = mapped_column(String(64), index=True)
    assignment: Mapped[str] = mapped_column(String(255))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    pending_manual: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the grade was given: the AGS timestamp, identical on every retry.
    graded_at: Mapped[float] = mapped_column(Float)
    # The LTI 1.1 message id, identical on every retry of this grade.
    message_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default=GradeState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    permanent_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt: Mapped[float | None] = mapped_column(Float)
    # A deliverer holds the row until then, so two processes never send it at once.
    lease_until: Mapped[float | None] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)
    lms_status: Mapped[int | None] = mapped_column(Integer)
    lti_version: Mapped[str | None] = mapped_column(String(8))
    superseded_by: Mapped[int | None] = mapped_column(Integer)
    # Where it went, or was to go: "LTI 1.1 result of link <id>" or "line item <url>".
    destination: Mapped[str | None] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class OutboxEntry:
    """A read-only copy of an outbox row, for listings."""

    id: int
    username: str
    course_id: str
    assignment: str
    score: float
    max_score: float
    pending_manual: bool
    state: GradeState
    attempts: int
    last_error: str | None
    next_attempt: float | None
    sent_at: float | None
    lms_status: int | None
    lti_version: str | None
    superseded_by: int | None
    graded_at: float
    destination: str | None = None

    @classmethod
    def of(cls, row: OutboxGrade) -> OutboxEntry:
        return cls(
            id=row.id,
            username=row.username,
            course_id=row.course_id,
            assignment=row.assignment,
            score=row.score,
            max_score=row.max_score,
            pending_manual=row.pending_manual,
            state=GradeState(row.state),
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt=row.next_attempt,
            sent_at=row.sent_at,
            lms_status=row.lms_status,
            lti_version=row.lti_version,
            superseded_by=row.superseded_by,
            graded_at=row.graded_at,
            destination=row.destination,
        )


@dataclass
class DeliveryReport:
    """What one pass over the due grades did, by resulting state."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    needs_attention: list[int] = field(default_factory=list)
    no_target: list[int] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return len(self.sent) + len(self.failed) + len(self.needs_attention) + len(self.no_target)


class DeliveryError(Exception):
    """A grade did not reach the LMS; the message says why in words an instructor can act on."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False,
                 no_target: bool = False):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.permanent = permanent or no_target
        self.no_target = no_target


def retry_delay(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Seconds before retry number `attempt` (1 = first retry): exponential, capped, jittered.

    `rand` in [0, 1) spreads half the delay, so grades that failed together (the LMS
    went down) do not all come back in the same second.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + delay / 2 * rand


def is_permanent(status: int) -> bool:
    return status in PERMANENT_STATUSES


def _reason(status: int) -> str:
    return f"{status} {http_reasons.get(status, '')}".strip()


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(data, dict):
            text = str(data.get("error_description") or data.get("error") or data.get("message")
                       or text)  # fmt: skip
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GradeOutbox:
    """Grades waiting for the LMS, in the hub database; `deliver_due` sends them.

    A grade is marked sent only after a 2xx from the LMS. Both protocols write the
    latest value (replaceResult, an AGS score), so sending a grade again after a lost
    answer changes nothing at the LMS: delivery is exactly once in effect.
    """

    def __init__(
        self,
        store: Store,
        *,
        connect_timeout: float = 10,
        request_timeout: float = 30,
        backoff_base: float = 30,
        backoff_cap: float = 3600,
        attention_after: int = 3,
        give_up_after: float = 14 * 24 * 3600,
        lease: float = 300,
        rng: random.Random | None = None,
        unlinked: Unlinked | str = Unlinked.COURSE_LINK,
    ):
        self.store = store
        self.unlinked = Unlinked(unlinked)
        self.tool_keys = ToolKeys(store)
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.attention_after = attention_after
        self.give_up_after = give_up_after
        self.lease = lease
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._tokens = ServiceTokens(self.tool_keys)
        self._lineitems: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------ queue

    def enqueue(
        self,
        username: str,
        course_id: str,
        assignment: str,
        score: float,
        max_score: float,
        *,
        pending_manual: bool = False,
        graded_at: float | None = None,
    ) -> int:
        """Queue a grade; it replaces any unsent grade of the same learner's same assignment."""
        for name, value in (("score", score), ("max_score", max_score)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, not {value!r}")
        if max_score <= 0:
            raise ValueError(f"max_score must be positive, not {max_score!r}")
        if score < 0:
            raise ValueError(f"score must not be negative, not {score!r}")
        now = time.time()
        with self.store.session() as s:
            row = OutboxGrade(
                username=username,
                course_id=course_id,
                assignment=assignment,
                score=float(score),
                max_score=float(max_score),
                pending_manual=pending_manual,
                graded_at=now if graded_at is None else graded_at,
                message_id=uuid.uuid4().hex,
                state=GradeState.PENDING,
                attempts=0,
                permanent_failures=0,
                next_attempt=now,
                created=now,
                updated=now,
            )
            s.add(row)
            s.flush()
            # Same transaction: there is never a moment with two unsent grades for one work.
            s.execute(
                update(OutboxGrade)
                .where(
                    OutboxGrade.username == username,
                    OutboxGrade.course_id == course_id,
                    OutboxGrade.assignment == assignment,
                    OutboxGrade.id != row.id,
                    OutboxGrade.state.in_(UNSENT_STATES),
                )
                .values(
                    state=GradeState.SUPERSEDED,
                    superseded_by=row.id,
                    next_attempt=None,
                    updated=now,
                )
            )
            s.commit()
            log.info("grade %d queued: %s, course %s, %s", row.id, username, course_id, assignment)
            return row.id

    def entries(
        self,
        *,
        course_id: str | None = None,
        states: tuple[str, ...] | None = None,
        username: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxEntry]:
        """Outbox rows, newest first."""
        query = select(OutboxGrade).order_by(OutboxGrade.id.desc())
        if course_id is not None:
            query = query.where(OutboxGrade.course_id == course_id)
        if states is not None:
            query = query.where(OutboxGrade.state.in_([str(s) for s in states]))
        if username is not None:
            query = query.where(OutboxGrade.username == username)
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as s:
            return [OutboxEntry.of(r) for r in s.scalars(query)]

    def get(self, grade_id: int) -> OutboxEntry | None:
        with self.store.session() as s:
            row = s.get(OutboxGrade, grade_id)
            return OutboxEntry.of(row) if row else None

    def requeue(self, *, course_id: str | None = None, ids: list[int] | None = None) -> list[int]:
        """Make failed, needs-attention and no-target grades due now, with a fresh count."""
        now = time.time()
        query = select(OutboxGrade.id).where(OutboxGrade.state.in_(PROBLEM_STATES))
        if course_id is not None:
            query = query.where(OutboxGrade.course_id == course_id)
        if ids:
            query = query.where(OutboxGrade.id.in_(ids))
        with self.store.session() as s:
            chosen = list(s.scalars(query))
            if chosen:
                s.execute(
                    update(OutboxGrade)
                    .where(OutboxGrade.id.in_(chosen))
                    .values(
                        state=GradeState.PENDING,
                        permanent_failures=0,
                        next_attempt=now,
                        updated=now,
                    )
                )
                s.commit()
        return chosen

    # ------------------------------------------------------------ delivery

    def _claim(self, grade_id: int, now: float) -> OutboxGrade | None:
        """Take the lease on a due row, unless another deliverer holds this work's lease."""
        other = aliased(OutboxGrade)
        busy = exists().where(
            and_(
                other.username == OutboxGrade.username,
                other.course_id == OutboxGrade.course_id,
                other.assignment == OutboxGrade.assignment,
                other.id != OutboxGrade.id,
                other.lease_until > now,
            )
        )
        free = and_(OutboxGrade.state.in_(DUE_STATES), lapsed(OutboxGrade, now), ~busy)
        with self.store.session() as s:
            claimed = take_lease(s, OutboxGrade, grade_id, free=free, until=now + self.lease)
            return s.get(OutboxGrade, grade_id) if claimed else None

    async def deliver_due(self, now: float | None = None) -> DeliveryReport:
        """Send every grade whose attempt is due, one after the other; record each outcome.

        One at a time on purpose: two first grades of one assignment sent at once
        would each find no line item and create two.
        """
        now = time.time() if now is None else now
        report = DeliveryReport()
        # The database is asked in threads: the event loop serves the service's API meanwhile.
        due = await asyncio.to_thread(self._due, now)
        if not due:
            return report
        http = AsyncHTTPClient(force_instance=True)
        try:
            for grade_id in due:
                row = await asyncio.to_thread(self._claim, grade_id, now)
                if row is None:
                    continue
                state = await self._deliver(http, row, now)
                getattr(report, state.replace("-", "_")).append(grade_id)
        finally:
            http.close()
        return report

    def _due(self, now: float) -> list[int]:
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(OutboxGrade.id)
                    .where(OutboxGrade.state.in_(DUE_STATES), OutboxGrade.next_attempt <= now)
                    .order_by(OutboxGrade.id)
                )
            )

    async def _deliver(self, http: AsyncHTTPClient, row: OutboxGrade, now: float) -> GradeState:
        enrollment = await asyncio.to_thread(self.store.enrollment, row.username, row.course_id)
        version = enrollment.lti_version if enrollment else None
        row.destination = None
        try:
            if enrollment is None:
                raise DeliveryError(
                    f"no passback target (no enrollment of {row.username} in course "
                    f"{row.course_id}: the learner has not launched it from the LMS)",
                    no_target=True,
                )
            try:
                target = target_for(enrollment.links, row.assignment, self.unlinked)
            except NoLink as problem:
                raise DeliveryError(f"no passback target ({problem})", no_target=True) from None
            if enrollment.lti_version == "1.1":
                status = await self._send_lti11(http, row, target)
            elif enrollment.lti_version == "1.3":
                status = await self._send_ags(http, row, target)
            else:
                raise DeliveryError(
                    f"no passback target (unknown LTI version {enrollment.lti_version!r})",
                    no_target=True,
                )
        except DeliveryError as error:
            return await asyncio.to_thread(self._record_failure, row, error, version, now)
        except Exception as error:
            # A bug or a broken answer must not stop the other grades; it is retried.
            log.exception("grade %d: unexpected error while sending", row.id)
            failure = DeliveryError(f"unexpected error: {type(error).__name__}: {error}")
            return await asyncio.to_thread(self._record_failure, row, failure, version, now)
        return await asyncio.to_thread(self._record_success, row, status, version)

    def _record_success(self, row: OutboxGrade, status: int, version: str | None) -> GradeState:
        done = time.time()
        with self.store.session() as s:
            # Even when a newer grade superseded it meanwhile, this one did reach the LMS.
            s.execute(
                update(OutboxGrade)
                .where(OutboxGrade.id == row.id)
                .values(
                    state=GradeState.SENT,
                    attempts=OutboxGrade.attempts + 1,
                    permanent_failures=0,
                    last_error=None,
                    next_attempt=None,
                    lease_until=None,
                    sent_at=done,
                    lms_status=status,
                    lti_version=version,
                    destination=row.destination,
                    updated=done,
                )
            )
            s.commit()
        log.info("grade %d sent to the LMS (LTI %s, HTTP %d)", row.id, version, status)
        return GradeState.SENT

    def _record_failure(
        self, row: OutboxGrade, error: DeliveryError, version: str | None, now: float
    ) -> GradeState:
        attempts = row.attempts + 1
        permanent_failures = row.permanent_failures + 1 if error.permanent else 0
        message = str(error)
        next_attempt = None
        if error.no_target:
            state = GradeState.NO_TARGET
        elif permanent_failures >= self.attention_after:
            state = GradeState.NEEDS_ATTENTION
        elif now - row.created > self.give_up_after:
            state = GradeState.NEEDS_ATTENTION
            message = f"still failing after {self.give_up_after / 86400:g} days: {message}"
        else:
            state = GradeState.FAILED
            next_attempt = now + retry_delay(
                attempts, base=self.backoff_base, cap=self.backoff_cap, rand=self.rng.random()
            )
        with self.store.session() as s:
            # A grade superseded while it was in flight stays superseded.
            s.execute(
                update(OutboxGrade)
                .where(OutboxGrade.id == row.id, OutboxGrade.state.in_(DUE_STATES))
                .values(
                    state=state,
                    attempts=attempts,
                    permanent_failures=permanent_failures,
                    last_error=message,
                    next_attempt=next_attempt,
                    lms_status=error.status,
                    lti_version=version,
                    destination=row.destination,
                    updated=time.time(),
                )
            )
            s.execute(update(OutboxGrade).where(OutboxGrade.id == row.id).values(lease_until=None))
            s.commit()
        log.warning("grade %d %s (attempt %d): %s", row.id, state, attempts, message)
        return state

    async def _fetch(self, http: AsyncHTTPClient, url: str, what: str, **kwargs) -> HTTPResponse:
        """One request with timeouts; a refused connection or a timeout becomes a DeliveryError."""
        request = HTTPRequest(
            url,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
            follow_redirects=False,
            **kwargs,
        )
        try:
            return await http.fetch(request, raise_error=False)
        except ConnectionRefusedError:
            raise DeliveryError(
                f"could not reach the LMS at {origin_of(url)} for {what} (connection refused)"
            ) from None
        except (OSError, HTTPClientError) as error:
            raise DeliveryError(
                f"could not reach the LMS at {origin_of(url)} for {what} ({error})"
            ) from None

    def _refusal(
        self, response: HTTPResponse, what: str, detail: str | None = None
    ) -> DeliveryError:
        if response.code == 599:
            # tornado's code for "no HTTP answer": timeout, reset, DNS failure.
            cause = str(response.error) if response.error else "no answer"
            where = origin_of(response.effective_url)
            return DeliveryError(f"could not reach the LMS at {where} for {what} ({cause})")
        detail = detail if detail is not None else _snippet(response.body or b"")
        message = f"the LMS answered {_reason(response.code)} to {what}"
        return DeliveryError(
            f"{message}: {detail}" if detail else message,
            status=response.code,
            permanent=is_permanent(response.code),
        )

    # ------------------------------------------------------------ LTI 1.1

    async def _aim(self, row: OutboxGrade, destination: str, target: Target) -> None:
        """Record where the grade goes; refuse a cell that holds another assignment's grade.

        A column is one assignment's: a grade sent there would overwrite the other's. That
        happens only through a link that is not the assignment's own (the course's link giving
        one cell), or a link whose assignment an instructor changed.
        """
        row.destination = destination
        holder = await asyncio.to_thread(self._holder, row, destination)
        if holder is not None:
            how = (
                "the link of another assignment" if target.own_link
                else "the course's link, which gives one grade cell"
            )  # fmt: skip
            raise DeliveryError(
                f"no passback target ({destination}, {how}, already holds the grade of "
                f"{holder!r}: add a link for {row.assignment!r} in the LMS with the custom "
                f"parameter assignment={row.assignment}; the grade is sent when the learner "
                "opens it)",
                no_target=True,
            )

    def _holder(self, row: OutboxGrade, destination: str) -> str | None:
        """The other assignment whose grade this learner's cell at `destination` holds."""
        with self.store.session() as s:
            return s.scalars(
                select(OutboxGrade.assignment)
                .where(
                    OutboxGrade.username == row.username,
                    OutboxGrade.course_id == row.course_id,
                    OutboxGrade.destination == destination,
                    OutboxGrade.assignment != row.assignment,
                    OutboxGrade.state == GradeState.SENT,
                )
                .limit(1)
            ).first()

    async def _send_lti11(self, http: AsyncHTTPClient, row: OutboxGrade, target: Target) -> int:
        launch = target.launch
        url = launch.get("lis_outcome_service_url")
        sourcedid = launch.get("lis_result_sourcedid")
        if not url or not sourcedid:
            raise DeliveryError(NO_GRADE_SERVICE, no_target=True)
        link = launch.get("resource_link_id") or "without an id"
        await self._aim(row, f"LTI 1.1 result of link {link}", target)
        key = launch.get("consumer_key", "")
        consumer = await asyncio.to_thread(self.store.get_consumer, key)
        if consumer is None:
            raise DeliveryError(
                f"LTI 1.1 consumer key {key!r} is no longer registered "
                "(learnhub lti add-consumer), so the grade cannot be signed",
                permanent=True,
            )
        fraction = min(1.0, row.score / row.max_score)
        body = build_replace_result_xml(sourcedid, fraction, row.message_id)
        headers = sign_lti11(url, consumer.key, consumer.secret, body)
        what = "the outcome request (replaceResult)"
        response = await self._fetch(http, url, what, method="POST", headers=headers, body=body)
        if response.code == 599:
            raise self._refusal(response, what)
        try:
            pox = parse_pox_response(response.body or b"")
        except ValueError as problem:
            if 200 <= response.code < 300:
                raise DeliveryError(f"{problem}", status=response.code, permanent=True) from None
            raise self._refusal(response, what) from None
        if not 200 <= response.code < 300:
            raise self._refusal(response, what, pox.description or pox.code_major)
        if not pox.success:
            raise DeliveryError(
                f"the LMS refused the grade ({pox.code_major}): {pox.description or 'no reason'}",
                status=response.code,
                permanent=True,
            )
        return response.code

    # ------------------------------------------------------------ LTI 1.3 AGS

    async def _send_ags(self, http: AsyncHTTPClient, row: OutboxGrade, target: Target) -> int:
        launch = target.launch
        claim = launch.get("ags")
        if not isinstance(claim, dict):
            raise DeliveryError(NO_GRADE_SERVICE, no_target=True)
        scopes = ags.granted_ags_scopes(claim)
        if ags.SCOPE_SCORE not in scopes or not (claim.get("lineitems") or claim.get("lineitem")):
            raise DeliveryError(
                f"{NO_GRADE_SERVICE[:-1]}: the AGS claim grants no score scope or line item)",
                no_target=True,
            )
        issuer, client_id = launch.get("issuer"), launch.get("client_id")
        platforms = (
            await asyncio.to_thread(self.store.find_platforms, issuer, client_id)
            if issuer and client_id
            else []
        )
        if not platforms:
            raise DeliveryError(
                f"LTI 1.3 platform {issuer} (client id {client_id}) is no longer registered "
                "(learnhub lti add-platform)",
                permanent=True,
            )
        service = _AGSTarget(
            token_url=platforms[0].token_url,
            client_id=client_id,
            scopes=tuple(scopes),
            claim=claim,
            resource_link_id=(launch.get("resource_link") or {}).get("id"),
            own_link=target.own_link,
        )
        payload = ags.build_score_payload(
            launch["sub"], row.score, row.max_score, row.graded_at,
            pending_manual=row.pending_manual,
        )  # fmt: skip
        body = json.dumps(payload)
        for fresh in (False, True):
            lineitem = await self._lineitem(http, service, row, fresh=fresh)
            await self._aim(row, f"line item {lineitem}", target)
            response = await self._authorized(
                http, service, ags.scores_url(lineitem), "the score", method="POST",
                headers={"Content-Type": ags.SCORE_TYPE}, body=body,
            )  # fmt: skip
            if response.code == 404 and not fresh and lineitem != claim.get("lineitem"):
                # The column was deleted in the LMS since we cached it: find or make it again.
                self._lineitems.pop((service.container, row.assignment), None)
                continue
            if 200 <= response.code < 300:
                return response.code
            raise self._refusal(response, "the score")
        raise AssertionError("unreachable")

    async def _authorized(
        self, http: AsyncHTTPClient, target: _AGSTarget, url: str, what: str, **kwargs
    ) -> HTTPResponse:
        """A request with the bearer token; one retry with a new token if the LMS forgot it."""
        headers = kwargs.pop("headers", {})
        for renew in (False, True):
            token = await self._access_token(http, target, renew=renew)
            response = await self._fetch(
                http, url, what, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs
            )
            if response.code != 401 or renew:
                return response
        raise AssertionError("unreachable")

    async def _access_token(
        self, http: AsyncHTTPClient, target: _AGSTarget, *, renew: bool = False
    ) -> str:
        try:
            return await self._tokens.get(
                functools.partial(self._fetch, http), token_url=target.token_url,
                client_id=target.client_id, scopes=target.scopes, renew=renew,
            )  # fmt: skip
        except TokenRefused as refused:
            if refused.detail:
                raise DeliveryError(refused.detail, status=refused.response.code) from None
            raise self._refusal(refused.response, TOKEN_REQUEST) from None

    async def _search_lineitems(
        self, http: AsyncHTTPClient, target: _AGSTarget, url: str | None, assignment: str
    ) -> str | None:
        """The id of the assignment's line item in a (paged) container listing, or None.

        Matching is done here too: an LMS may ignore the filter in the query.
        """
        pages = 0
        while url and pages < MAX_LINEITEM_PAGES:
            pages += 1
            response = await self._authorized(
                http, target, url, "the line item lookup",
                headers={"Accept": ags.LINEITEM_CONTAINER_TYPE},
            )  # fmt: skip
            if not 200 <= response.code < 300:
                raise self._refusal(response, "the line item lookup")
            try:
                items = json.loads(response.body)
            except ValueError:
                items = None
            if not isinstance(items, list):
                raise DeliveryError(
                    "the LMS answered the line item lookup with something other than a list "
                    "of line items",
                    status=response.code,
                )
            found = ags.find_lineitem(items, assignment)
            if found is not None:
                return found["id"]
            url = ags.next_page(response.headers.get("Link"))
        return None

    async def _lineitem(
        self, http: AsyncHTTPClient, target: _AGSTarget, row: OutboxGrade, *, fresh: bool
    ) -> str:
        """The URL of the assignment's line item: its link's, cached, found in the container,
        or created."""
        claim, scopes = target.claim, target.scopes
        if target.own_link and claim.get("lineitem"):
            # The LMS made this link's column: the assignment's grade belongs there.
            return claim["lineitem"]
        container = target.container
        can_read = ags.SCOPE_LINEITEM in scopes or ags.SCOPE_LINEITEM_READONLY in scopes
        if not container or not can_read:
            # Only the launch's own line item may be written (_aim keeps it to one assignment).
            return claim["lineitem"]
        cache_key = (container, row.assignment)
        if not fresh and cache_key in self._lineitems:
            return self._lineitems[cache_key]
        # resourceId is what LearnHub sets; tag finds a column an instructor made by hand.
        for name in ("resource_id", "tag"):
            found = await self._search_lineitems(
                http, target, ags.with_query(container, **{name: row.assignment}), row.assignment
            )
            if found is not None:
                self._lineitems[cache_key] = found
                return found
        if ags.SCOPE_LINEITEM not in scopes:
            if claim.get("lineitem"):
                return claim["lineitem"]
            raise DeliveryError(
                f"the LMS has no line item for {row.assignment!r} and did not grant the "
                "lineitem scope to create one: add the column in the LMS",
                permanent=True,
            )
        item = ags.build_lineitem(
            row.assignment, row.max_score, row.assignment, target.resource_link_id
        )
        response = await self._authorized(
            http, target, container, "the line item creation", method="POST",
            headers={"Content-Type": ags.LINEITEM_TYPE, "Accept": ags.LINEITEM_TYPE},
            body=json.dumps(item),
        )  # fmt: skip
        if not 200 <= response.code < 300:
            raise self._refusal(response, "the line item creation")
        try:
            created = json.loads(response.body)["id"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(
                "the LMS created a line item but did not say its id", status=response.code
            ) from None
        log.info("created the line item for %s in %s", row.assignment, origin_of(container))
        self._lineitems[cache_key] = created
        return created


@dataclass(frozen=True)
class _AGSTarget:
    token_url: str
    client_id: str
    scopes: tuple[str, ...]
    claim: dict
    resource_link_id: str | None
    own_link: bool

    @property
    def container(self) -> str | None:
        return self.claim.get("lineitems")


def release_held(store: Store, username: str, course_id: str, now: float | None = None) -> int:
    """Make due now this learner's grades in this course that had no target: a launch has
    just given them one (the link of their assignment, or the course's). How many."""
    now = time.time() if now is None else now
    with store.session() as s:
        released = s.execute(
            update(OutboxGrade)
            .where(
                OutboxGrade.username == username,
                OutboxGrade.course_id == course_id,
                OutboxGrade.state == GradeState.NO_TARGET,
            )
            .values(state=GradeState.PENDING, next_attempt=now, updated=now)
        ).rowcount
        s.commit()
    if released:
        log.info("%d held grade(s) of %s in course %s due again", released, username, course_id)
    return released


async def run_outbox(
    store: Store,
    stop_event: asyncio.Event,
    interval: float = 30,
    *,
    outbox: GradeOutbox | None = None,
) -> None:
    """Deliver due grades every `interval` seconds until `stop_event` is set.

    A failing pass (the database restarting, say) is logged and the loop goes on:
    the grades are safe in the outbox and the next pass picks them up.
    """
    outbox = outbox or GradeOutbox(store)
    while not stop_event.is_set():
        try:
            report = await outbox.deliver_due()
            if report.attempted:
                log.info(
                    "outbox pass: %d sent, %d failed, %d need attention, %d without target",
                    len(report.sent), len(report.failed), len(report.needs_attention),
                    len(report.no_target),
                )  # fmt: skip
        except Exception:
            log.exception("outbox pass failed; retrying in %g s", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
