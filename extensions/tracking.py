"""Do Not Track and Global Privacy Control: detection, the session marker, the Tk header."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.web import OutputTransform

# The hub gives a launch token this scope when the launch asked not to be tracked, so the
# learner's server can tell the choice from the token alone: JupyterHub reports a token's
# scopes to the server with the user model. The scope grants nothing.
DO_NOT_TRACK_SCOPE = "custom:learnhub:do-not-track"
DO_NOT_TRACK_SCOPE_DEFINITION = {
    "description": "Marks a session whose browser asked not to be tracked (DNT or GPC); "
    "grants no permission."
}

# W3C Tracking Preference Expression: "N" says that the origin does not track.
TRACKING_STATUS = "Tk"
NOT_TRACKING = "N"

# Set on a request whose session carries DO_NOT_TRACK_SCOPE.
_SESSION_MARK = "_learnhub_do_not_track"


def tracking_refused(headers: Mapping[str, str]) -> bool:
    """True when a request says DNT: 1 (with or without extensions) or Sec-GPC: 1."""
    # TPE: DNT-field-value = ( "0" / "1" ) *DNT-extension, so only the first character counts.
    dnt = (headers.get("DNT") or "").strip()
    gpc = (headers.get("Sec-GPC") or "").strip()
    return dnt.startswith("1") or gpc == "1"


def scopes_refuse_tracking(scopes) -> bool:
    """True when a token's scopes carry the Do Not Track marker (filtered or not)."""
    return any(s == DO_NOT_TRACK_SCOPE or s.startswith(DO_NOT_TRACK_SCOPE + "!") for s in scopes)


def mark_do_not_track_session(request: HTTPServerRequest) -> None:
    """Record on `request` that its session asked not to be tracked."""
    setattr(request, _SESSION_MARK, True)


def request_refuses_tracking(request: HTTPServerRequest) -> bool:
    """The request's own headers, or its session, ask not to be tracked."""
    return getattr(request, _SESSION_MARK, False) or tracking_refused(request.headers)


class TrackingStatus(OutputTransform):
    """Adds `Tk: N` to every response to a request that refuses tracking.

    A transform, not a header set in a handler: it reaches every response (error pages
    and static files too), whatever handler class answered, and it runs when the first
    bytes are sent, after authentication has marked a Do Not Track session.
    """

    def __init__(self, request: HTTPServerRequest):
        super().__init__(request)
        self.request = request

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        if request_refuses_tracking(self.request):
            headers[TRACKING_STATUS] = NOT_TRACKING
        return status_code, headers, chunk


def follow_do_not_track_sessions(identity_provider) -> None:
    """Make `identity_provider` mark each request whose token carries DO_NOT_TRACK_SCOPE.

    Wraps get_user on this instance only. JupyterHub's identity provider returns a user
    whose hub_user model lists the token's scopes; the mark makes TrackingStatus answer
    `Tk: N` for the whole launch session, whether or not each request repeats DNT.
    """
    get_user = identity_provider.get_user

    async def get_user_and_tracking_choice(handler):
        user = get_user(handler)
        if inspect.isawaitable(user):
            user = await user
        hub_user = getattr(user, "hub_user", None) or {}
        if scopes_refuse_tracking(hub_user.get("scopes") or ()):
            mark_do_not_track_session(handler.request)
        return user

    identity_provider.get_user = get_user_and_tracking_choice
