"""Do Not Track and GPC: detection, the session marker, and the Tk header transform."""

import asyncio
from types import SimpleNamespace

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from learnhub_singleuser.tracking import (
    DO_NOT_TRACK_SCOPE,
    TrackingStatus,
    follow_do_not_track_sessions,
    mark_do_not_track_session,
    request_refuses_tracking,
    scopes_refuse_tracking,
    tracking_refused,
)


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"DNT": "1"}, True),
        ({"DNT": " 1 "}, True),
        ({"DNT": "1xyz"}, True),  # TPE allows extensions after the first character
        ({"DNT": "0"}, False),
        ({"DNT": ""}, False),
        ({"DNT": "yes"}, False),
        ({"Sec-GPC": "1"}, True),
        ({"Sec-GPC": "0"}, False),
        ({"DNT": "0", "Sec-GPC": "1"}, True),
        ({}, False),
    ],
    ids=["dnt", "dnt-spaces", "dnt-extension", "dnt-0", "dnt-empty", "dnt-word", "gpc", "gpc-0",
         "gpc-wins", "none"],
)  # fmt: skip
def test_tracking_refused(headers, refused):
    assert tracking_refused(HTTPHeaders(headers)) is refused


def test_header_names_are_case_insensitive():
    assert tracking_refused(HTTPHeaders({"dnt": "1"}))
    assert tracking_refused(HTTPHeaders({"sec-gpc": "1"}))


@pytest.mark.parametrize(
    ("scopes", "refused"),
    [
        ([DO_NOT_TRACK_SCOPE], True),
        ([f"{DO_NOT_TRACK_SCOPE}!user=ada"], True),
        (["access:servers!server=ada/"], False),
        ([f"{DO_NOT_TRACK_SCOPE}-other"], False),
        ([], False),
    ],
    ids=["marker", "filtered-marker", "other", "lookalike", "empty"],
)
def test_scopes_refuse_tracking(scopes, refused):
    assert scopes_refuse_tracking(scopes) is refused


def request(headers=None) -> HTTPServerRequest:
    return HTTPServerRequest(method="GET", uri="/x", headers=HTTPHeaders(headers or {}))


@pytest.mark.parametrize(
    ("headers", "marked", "tk"),
    [
        ({"DNT": "1"}, False, "N"),
        ({"Sec-GPC": "1"}, False, "N"),
        ({}, True, "N"),
        ({}, False, None),
    ],
    ids=["dnt-request", "gpc-request", "dnt-session", "neither"],
)
def test_tracking_status_transform(headers, marked, tk):
    r = request(headers)
    if marked:
        mark_do_not_track_session(r)
    status, out, chunk = TrackingStatus(r).transform_first_chunk(
        200, HTTPHeaders({"Content-Type": "text/html"}), b"<p>", False
    )
    assert (status, chunk) == (200, b"<p>")
    assert out.get("Tk") == tk
    assert request_refuses_tracking(r) is (tk == "N")


class IdentityProvider:
    """Returns what JupyterHub's identity provider returns: a user with the hub's model."""

    def __init__(self, scopes, asynchronous=True):
        self.user = SimpleNamespace(hub_user={"name": "ada", "scopes": scopes})
        self.asynchronous = asynchronous

    def get_user(self, handler):
        if not self.asynchronous:
            return self.user

        async def user():
            return self.user

        return user()


@pytest.mark.parametrize("asynchronous", [True, False], ids=["async", "sync"])
@pytest.mark.parametrize(
    ("scopes", "marked"),
    [(["access:servers!server=ada/", DO_NOT_TRACK_SCOPE], True), (["access:servers"], False)],
    ids=["dnt-token", "plain-token"],
)
def test_sessions_follow_the_tokens_marker(scopes, marked, asynchronous):
    provider = IdentityProvider(scopes, asynchronous)
    follow_do_not_track_sessions(provider)
    handler = SimpleNamespace(request=request())
    user = asyncio.run(provider.get_user(handler))
    assert user is provider.user
    assert request_refuses_tracking(handler.request) is marked


def test_anonymous_requests_are_not_marked():
    provider = IdentityProvider([])
    provider.user = None
    follow_do_not_track_sessions(provider)
    handler = SimpleNamespace(request=request())
    assert asyncio.run(provider.get_user(handler)) is None
    assert not request_refuses_tracking(handler.request)
