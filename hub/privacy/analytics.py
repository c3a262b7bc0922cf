"""First-party analytics: aggregate counts per day, and no per-learner row that outlives the day."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Integer, String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from learnhub_singleuser.tracking import request_refuses_tracking

from ..db import Base, engine_for, ensure_schema
from ..keys import analytics_key
from ..upstream import response_content_type

log = logging.getLogger(__name__)

# What is counted, per UTC day. Keys say which launch, route or nothing; never who.
LAUNCHES = "launches"  # key: the LTI version, "1.1" or "1.3"
ACTIVE_LEARNERS = "active_learners"  # key: "", the number of distinct learners who launched
SERVER_STARTS = "server_starts"  # key: "", learner servers asked to start
PAGE_VIEWS = "page_views"  # key: the hub route's URL pattern, e.g. /hub/login
METRICS = (LAUNCHES, ACTIVE_LEARNERS, SERVER_STARTS, PAGE_VIEWS)
KEY_LENGTH = 255
# Where handlers find the hub's Analytics: a key of JupyterHub.tornado_settings.
SETTINGS_KEY = "learnhub_analytics"


class DailyCount(Base):
    """How many times `metric` (for `key`) happened on `day`: the only lasting record."""

    __tablename__ = "learnhub_analytics_daily_counts"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ActiveLearner(Base):
    """One learner who launched on `day`, as a keyed hash that changes every day.

    Rows of a day are counted into DailyCount and deleted by the first write (or the
    first hub request) of a later day, so none survives the day it belongs to by more
    than a few minutes of hub traffic.
    """

    __tablename__ = "learnhub_analytics_active_learners"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)


@dataclass(frozen=True)
class Count:
    day: str
    metric: str
    key: str
    count: int


def utc_day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def learner_digest(key: bytes, day: str, learner: str) -> str:
    """A learner's hash for one day: equal within the day, unrelated across days.

    Keyed by a secret, so the table alone cannot be matched against a list of usernames.
    """
    return hmac.new(key, f"{day}\n{learner}".encode(), hashlib.sha256).hexdigest()


class Analytics:
    """Every read and write of the analytics tables; counts, never profiles."""

    def __init__(
        self, database_url: str, crypt_key: bytes, *, clock: Callable[[], float] = time.time
    ):
        self.database_url = database_url
        self._key = analytics_key(crypt_key)
        self._clock = clock
        self._rolled_over_before: str | None = None

    @cached_property
    def engine(self):
        engine = engine_for(self.database_url)
        ensure_schema(engine)
        return engine

    def today(self) -> str:
        return utc_day(self._clock())

    # recording

    def record_launch(self, lti_version: str, learner: str) -> None:
        """A launch over LTI `lti_version`, and `learner` active today."""
        day = self.today()
        with Session(self.engine) as s:
            self._roll_over(s, day)
            self._increment(s, day, LAUNCHES, lti_version)
            s.execute(
                self._insert(ActiveLearner)
                .values(day=day, digest=learner_digest(self._key, day, learner))
                .on_conflict_do_nothing(index_elements=["day", "digest"])
            )
            s.commit()

    def record_server_start(self) -> None:
        self._record(SERVER_STARTS, "")

    def record_page_view(self, route: str) -> None:
        self._record(PAGE_VIEWS, route[:KEY_LENGTH])

    def _record(self, metric: str, key: str) -> None:
        day = self.today()
        with Session(self.engine) as s:
            self._roll_over(s, day)
            self._increment(s, day, metric, key)
            s.commit()

    def roll_over(self) -> int:
        """Count and delete the learner hashes of past days; return how many were deleted."""
        day = self.today()
        with Session(self.engine) as s:
            deleted = self._roll_over(s, day)
            s.commit()
        self._rolled_over_before = day
        return deleted

    def roll_over_if_due(self) -> None:
        """roll_over, at most once per day and process (cheap enough for every request)."""
        if self._rolled_over_before != self.today():
            self.roll_over()

    def _roll_over(self, s: Session, day: str) -> int:
        total = 0
        past = s.scalars(select(ActiveLearner.day).where(ActiveLearner.day < day).distinct()).all()
        for past_day in past:
            # The DELETE's row count is the day's number: two hub processes rolling over
            # at once cannot both count the same rows.
            deleted = s.execute(delete(ActiveLearner).where(ActiveLearner.day == past_day))
            if deleted.rowcount:
                self._increment(s, past_day, ACTIVE_LEARNERS, "", deleted.rowcount)
                total += deleted.rowcount
        return total

    def _insert(self, model):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(model)

    def _increment(self, s: Session, day: str, metric: str, key: str, by: int = 1) -> None:
        insert = self._insert(DailyCount).values(day=day, metric=metric, key=key, count=by)
        s.execute(
            insert.on_conflict_do_update(
                index_elements=["day", "metric", "key"],
                set_={"count": DailyCount.count + insert.excluded.count},
            )
        )

    # reading

    def counts(self, since: str | None = None) -> list[Count]:
        """The daily counts from `since` (YYYY-MM-DD) on, oldest first.

        Today's active learners are counted from the day's hashes, since their row in
        the daily counts is written only once the day is over.
        """
        with Session(self.engine) as s:
            query = select(DailyCount).order_by(DailyCount.day, DailyCount.metric, DailyCount.key)
            if since:
                query = query.where(DailyCount.day >= since)
            rows = [Count(r.day, r.metric, r.key, r.count) for r in s.scalars(query)]
            today = self.today()
            active = s.scalar(
                select(func.count()).select_from(ActiveLearner).where(ActiveLearner.day == today)
            )
        if active:
            rows.append(Count(today, ACTIVE_LEARNERS, "", active))
        return rows

    def learner_hashes(self) -> int:
        """How many per-learner hashes exist right now (all of today's, after a roll-over)."""
        with Session(self.engine) as s:
            return s.scalar(select(func.count()).select_from(ActiveLearner)) or 0


# Where the hub calls in: a launch, a spawn, a finished request.


def record_safely(what: str, action: Callable[[], None]) -> None:
    """Run a recording; a database error is logged, never passed on.

    Analytics serve the operator's statistics; a count that cannot be written must not
    cost a learner their launch or a page.
    """
    try:
        action()
    except SQLAlchemyError as e:
        log.warning("analytics: %s not counted: %s", what, e)


def route_of(handler) -> str:
    """The URL pattern of the route that answered, e.g. /hub/login, never the concrete path.

    A path can hold a username (/hub/user/<name>/...); the pattern cannot.
    """
    request = handler.request
    for rule in handler.application.wildcard_router.rules:
        if rule.target is type(handler) and rule.matcher.match(request) is not None:
            return rule.matcher.regex.pattern.removesuffix("$")
    return type(handler).__name__


def is_page_view(handler) -> bool:
    """A GET answered with an HTML page (not an API call, a redirect or a file)."""
    return (
        handler.request.method == "GET"
        and handler.get_status() == 200
        and response_content_type(handler).startswith("text/html")
    )


_HUB_ANALYTICS: dict[tuple[str, bytes], Analytics] = {}


def hub_analytics(authenticator) -> Analytics:
    """The hub process's Analytics, on its authenticator's database and key: one handle, and
    one connection pool, for every handler and spawner of the process (made on first use)."""
    key = (authenticator.database_url, authenticator.crypt_key)
    if key not in _HUB_ANALYTICS:
        _HUB_ANALYTICS[key] = Analytics(*key)
    return _HUB_ANALYTICS[key]


@dataclass(frozen=True)
class PageViewCounter:
    """A tornado log_function: runs the one it wraps, then counts hub page views by route.

    It holds no database handle: the hub's Analytics is found through the handler's
    authenticator (hub_analytics), unless one is given (tests).
    """

    log_function: Callable
    analytics: Analytics | None = None

    def __call__(self, handler) -> None:
        self.log_function(handler)
        analytics = self.analytics
        if analytics is None:
            authenticator = handler.settings.get("authenticator")
            if authenticator is None:
                return
            analytics = hub_analytics(authenticator)
        # Every request to the hub comes here (the proxy's and the culler's too), so the
        # past day's learner hashes are deleted within minutes of midnight UTC.
        record_safely("roll-over", analytics.roll_over_if_due)
        if is_page_view(handler) and not request_refuses_tracking(handler.request):
            route = route_of(handler)
            record_safely("page view", lambda: analytics.record_page_view(route))


@dataclass(frozen=True)
class ServerStartCounter:
    """A Spawner.pre_spawn_hook: counts a learner server start, unless its request said DNT.
    The hub's Analytics is found through the spawner's authenticator, unless one is given."""

    previous: Callable | None = None
    analytics: Analytics | None = None

    def __call__(self, spawner):
        result = self.previous(spawner) if self.previous else None
        # The handler that asked for the start: a launch, the home page, the REST API.
        handler = getattr(spawner, "handler", None)
        if handler is None or not request_refuses_tracking(handler.request):
            analytics = self.analytics or hub_analytics(spawner.authenticator)
            record_safely("server start", analytics.record_server_start)
        return result
