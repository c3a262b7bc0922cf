"""First-party analytics: daily counts in a real SQLite database, and the hub's hooks."""

import calendar
import sqlite3
from types import SimpleNamespace

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from learnhub.privacy.analytics import (
    ACTIVE_LEARNERS,
    LAUNCHES,
    PAGE_VIEWS,
    SERVER_STARTS,
    Analytics,
    PageViewCounter,
    ServerStartCounter,
    learner_digest,
)

KEY = b"k" * 32


class Clock:
    """A settable clock: days change when the test says so."""

    def __init__(self, day: str):
        self.set(day)

    def set(self, day: str, hour: int = 12) -> None:
        year, month, date = (int(p) for p in day.split("-"))
        self.now = calendar.timegm((year, month, date, hour, 0, 0))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock("2026-03-01")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "analytics.sqlite"


@pytest.fixture
def analytics(db, clock):
    return Analytics(f"sqlite:///{db}", KEY, clock=clock)


def table(analytics):
    return {(c.day, c.metric, c.key): c.count for c in analytics.counts()}


def rows(db, name):
    with sqlite3.connect(db) as conn:
        return conn.execute(f"select * from {name}").fetchall()  # noqa: S608


def test_launches_are_counted_per_lti_version(analytics):
    analytics.record_launch("1.1", "learner-a")
    analytics.record_launch("1.1", "learner-b")
    analytics.record_launch("1.3", "learner-a")
    counts = table(analytics)
    assert counts[("2026-03-01", LAUNCHES, "1.1")] == 2
    assert counts[("2026-03-01", LAUNCHES, "1.3")] == 1
    # Today's distinct learners come from the day's hashes: a and b, once each.
    assert counts[("2026-03-01", ACTIVE_LEARNERS, "")] == 2


def test_the_day_is_counted_then_its_learner_hashes_deleted(analytics, clock, db):
    for learner in ("a", "b", "c", "a"):
        analytics.record_launch("1.3", learner)
    assert analytics.learner_hashes() == 3
    clock.set("2026-03-02", hour=0)
    analytics.record_server_start()  # any write of the next day rolls the last one over
    assert analytics.learner_hashes() == 0
    assert rows(db, "learnhub_analytics_active_learners") == []
    assert table(analytics)[("2026-03-01", ACTIVE_LEARNERS, "")] == 3

    analytics.record_launch("1.3", "a")
    clock.set("2026-03-03")
    assert analytics.roll_over() == 1
    counts = table(analytics)
    assert counts[("2026-03-02", ACTIVE_LEARNERS, "")] == 1
    assert counts[("2026-03-01", ACTIVE_LEARNERS, "")] == 3


def test_roll_over_if_due_runs_once_a_day(analytics, clock):
    analytics.record_launch("1.1", "a")
    clock.set("2026-03-02")
    analytics.roll_over_if_due()
    assert analytics.learner_hashes() == 0
    analytics.record_launch("1.1", "b")
    analytics.roll_over_if_due()  # same day: the new hash stays
    assert analytics.learner_hashes() == 1


def test_no_username_is_stored_and_hashes_differ_by_day(analytics, db):
    analytics.record_launch("1.1", "0123456789abcdef-learner")
    dump = db.read_bytes()
    assert b"0123456789abcdef-learner" not in dump
    (day, digest), *_ = rows(db, "learnhub_analytics_active_learners")
    assert digest == learner_digest(analytics._key, day, "0123456789abcdef-learner")
    assert learner_digest(KEY, "2026-03-01", "x") != learner_digest(KEY, "2026-03-02", "x")
    # Keyed: without the key, hashing candidate usernames finds nothing.
    assert learner_digest(b"o" * 32, day, "0123456789abcdef-learner") != digest


def test_server_starts_and_page_views(analytics):
    analytics.record_server_start()
    analytics.record_server_start()
    analytics.record_page_view("/hub/login")
    analytics.record_page_view("/hub/privacy")
    analytics.record_page_view("/hub/login")
    counts = table(analytics)
    assert counts[("2026-03-01", SERVER_STARTS, "")] == 2
    assert counts[("2026-03-01", PAGE_VIEWS, "/hub/login")] == 2
    assert counts[("2026-03-01", PAGE_VIEWS, "/hub/privacy")] == 1


def test_counts_since(analytics, clock):
    analytics.record_server_start()
    clock.set("2026-03-05")
    analytics.record_server_start()
    assert [c.day for c in analytics.counts(since="2026-03-02")] == ["2026-03-05"]


def test_two_processes_share_the_counts(db, clock):
    first = Analytics(f"sqlite:///{db}", KEY, clock=clock)
    second = Analytics(f"sqlite:///{db}", KEY, clock=clock)
    first.record_launch("1.1", "a")
    second.record_launch("1.1", "a")
    clock.set("2026-03-02")
    first.roll_over()
    assert second.roll_over() == 0  # nothing left to count twice
    assert table(first)[("2026-03-01", ACTIVE_LEARNERS, "")] == 1
    assert table(first)[("2026-03-01", LAUNCHES, "1.1")] == 2


# --- the hooks, on a real tornado application ------------------------------------------------


class Page(RequestHandler):
    def get(self, *args, **kwargs):
        self.write("<p>page</p>")


class Api(RequestHandler):
    def get(self):
        self.write({"ok": True})


class Redirect(RequestHandler):
    def get(self):
        self.redirect("/hub/login")


@pytest.fixture
async def hub_app(analytics):
    logged = []
    app = Application(
        [
            (r"/hub/login", Page),
            (r"/hub/user/(?P<user_name>[^/]+)/lab", Page),
            (r"/hub/api/info", Api),
            (r"/hub/", Redirect),
        ],
        log_function=PageViewCounter(logged.append, analytics),
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)

    async def get(path, **headers):
        return await client.fetch(
            f"http://127.0.0.1:{port}{path}", headers=headers, follow_redirects=False,
            raise_error=False,
        )  # fmt: skip

    yield SimpleNamespace(get=get, logged=logged)
    client.close()
    server.stop()
    await server.close_all_connections()


async def test_page_views_are_counted_by_route_pattern(hub_app, analytics):
    await hub_app.get("/hub/login")
    await hub_app.get("/hub/user/ada-pseudonym/lab")
    await hub_app.get("/hub/api/info")  # JSON: not a page view
    await hub_app.get("/hub/")  # a redirect: not a page view
    await hub_app.get("/hub/missing")  # 404: not a page view
    views = {c.key: c.count for c in analytics.counts() if c.metric == PAGE_VIEWS}
    assert views == {"/hub/login": 1, "/hub/user/(?P<user_name>[^/]+)/lab": 1}
    # JupyterHub's own log function still ran for every request.
    assert len(hub_app.logged) == 5


@pytest.mark.parametrize("header", [{"DNT": "1"}, {"Sec-GPC": "1"}], ids=["dnt", "gpc"])
async def test_page_views_with_dnt_or_gpc_are_not_counted(hub_app, analytics, header):
    response = await hub_app.get("/hub/login", **header)
    assert response.code == 200
    assert analytics.counts() == []


async def test_page_view_roll_over_happens_on_any_request(hub_app, analytics, clock):
    analytics.record_launch("1.1", "a")
    clock.set("2026-03-02")
    await hub_app.get("/hub/api/info")
    assert analytics.learner_hashes() == 0


def spawner_for(headers=None, with_handler=True):
    handler = SimpleNamespace(
        request=HTTPServerRequest(method="POST", uri="/", headers=HTTPHeaders(headers or {}))
    )
    return SimpleNamespace(handler=handler if with_handler else None)


@pytest.mark.parametrize(
    ("headers", "with_handler", "counted"),
    [({}, True, 1), ({"DNT": "1"}, True, 0), ({"Sec-GPC": "1"}, True, 0), ({}, False, 1)],
    ids=["plain", "dnt", "gpc", "no-request"],
)
def test_server_starts_follow_the_request_that_asked(analytics, headers, with_handler, counted):
    hook = ServerStartCounter(analytics=analytics)
    hook(spawner_for(headers, with_handler))
    starts = [c.count for c in analytics.counts() if c.metric == SERVER_STARTS]
    assert sum(starts) == counted


def test_server_start_hook_runs_the_previous_one(analytics):
    ran = []
    hook = ServerStartCounter(
        analytics=analytics, previous=lambda spawner: ran.append(spawner) or "r"
    )
    spawner = spawner_for()
    assert hook(spawner) == "r"
    assert ran == [spawner]


def test_a_broken_database_costs_no_request(tmp_path, clock, caplog):
    broken = Analytics(f"sqlite:///{tmp_path / 'missing-dir' / 'x.sqlite'}", KEY, clock=clock)
    ServerStartCounter(analytics=broken)(spawner_for())
    assert "analytics: server start not counted" in caplog.text
