"""A small real LMS on loopback: the demo course's platform and the tests' LTI 1.1/1.3 peer."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import EllipsisType
from typing import Generic, TypeVar
from urllib.parse import quote

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

from ..stopping import skip_exit_collection, stop_signal
from .constants import (
    CONTENT_ITEM_REQUEST,
    DEEP_LINKING_REQUEST,
    LTI_LINK_MEDIA_TYPE,
    MEMBER_STATUSES,
)
from .handlers import (
    AuthorizationHandler,
    ContentItemRequestHandler,
    ContentItemReturnHandler,
    CoursePageHandler,
    DeepLinkingHandler,
    DeepLinkReturnHandler,
    GradebookHandler,
    GradebookJSONHandler,
    JWKSHandler,
    LineItemHandler,
    LineItemsHandler,
    LTI11LaunchHandler,
    LTI13LaunchHandler,
    MembershipsHandler,
    OutcomeServiceHandler,
    ScoresHandler,
    TokenHandler,
)
from .lti11 import OAUTH_WINDOW, OutcomeGrade, lti11_roles, sign_lti11_launch
from .lti13 import (
    LaunchRefused,
    PendingLaunch,
    Platform,
    ToolKeysUnavailable,
    login_initiation_params,
)
from .registration import (
    RegistrationRefused,
    ToolRegistration,
    check_registration,
    registration_handlers,
)
from .selection import (
    DEEP_LINKING_TITLE,
    DEEP_LINKING_TTL,
    CourseLink,
    DeepLinkRefused,
    DeepLinkRequest,
    url_origin,
)
from .services import GRANTED_SCOPES, AccessToken, Member

# Where LearnHub's authenticator listens, relative to the hub's public URL; main()
# and tool_urls() use them when only --tool-url is given.
TOOL_PATHS = {
    "tool_lti11_launch_url": "/hub/lti11/launch",
    "tool_lti13_login_url": "/hub/lti13/login",
    "tool_lti13_launch_url": "/hub/lti13/launch",
    "tool_jwks_url": "/hub/lti13/jwks",
}


def tool_urls(base_url: str, paths: Mapping[str, str] = TOOL_PATHS) -> dict[str, str]:
    """The tool URLs of a LearnHub at `base_url`, as keyword arguments for DemoLMS."""
    return {name: base_url.rstrip("/") + path for name, path in paths.items()}


V = TypeVar("V")


class OneTimeRequests(Generic[V]):
    """What the LMS sent and waits to see once, by key (a login's lti_message_hint, a
    selection request's data): each redeemed at most once, within `ttl()` seconds of being
    added. `ttl` is read at each use, so a changed lifetime applies to what is pending.

    A redeemed key is refused again even when its first use was refused; `refused` is raised
    with the `unknown`, `used` or `expired` message.
    """

    def __init__(
        self,
        ttl: Callable[[], float],
        refused: type[Exception],
        *,
        unknown: str,
        used: str,
        expired: str,
    ):
        self.ttl = ttl
        self.refused = refused
        self.unknown, self.used, self.expired = unknown, used, expired
        self._pending: dict[str, tuple[V, float]] = {}
        self._redeemed: dict[str, float] = {}

    def __getitem__(self, key: str) -> V:
        """The value pending under `key`, left unredeemed; KeyError if there is none."""
        return self._pending[key][0]

    def add(self, key: str, value: V) -> None:
        now = time.time()
        # Keeps a long-running demo from growing; an old reuse then reads "unknown".
        cutoff = now - self.ttl()
        self._pending = {k: p for k, p in self._pending.items() if p[1] > cutoff}
        self._redeemed = {k: t for k, t in self._redeemed.items() if t > cutoff}
        self._pending[key] = (value, now)

    def redeem(self, key: str) -> V:
        if key in self._redeemed:
            raise self.refused(self.used)
        pending = self._pending.pop(key, None)
        if pending is None:
            raise self.refused(self.unknown)
        value, added = pending
        now = time.time()
        self._redeemed[key] = now
        if now - added >= self.ttl():
            raise self.refused(self.expired)
        return value


def _first_use(seen: dict[str, float], value: str, expires: float) -> bool:
    """Record `value` until a minute past `expires`; False when it is already recorded."""
    now = time.time()
    for stale in [v for v, until in seen.items() if until <= now - 60]:
        del seen[stale]
    if value in seen:
        return False
    seen[value] = expires
    return True


class DemoLMS:
    """The demo course's LMS: one LTI 1.1 consumer and one LTI 1.3 platform, on 127.0.0.1."""

    def __init__(
        self,
        *,
        consumer_key: str = "demo",
        consumer_secret: str | None = None,
        platform: Platform | None = None,
        client_id: str = "learnhub-demo",
        deployment_id: str = "1",
        tool_lti11_launch_url: str | None = None,
        tool_lti13_login_url: str | None = None,
        tool_lti13_launch_url: str | None = None,
        tool_jwks_url: str | None = None,
        course_id: str = "demo-course",
        course_title: str = "Introduction to Python (demo)",
        hint_ttl: float = 300,
        deep_linking_ttl: float = DEEP_LINKING_TTL,
        token_lifetime: float = 3600,
    ):
        self.consumer_key = consumer_key
        # Never a fixed default: a known secret would let anyone launch into the hub.
        self.consumer_secret = consumer_secret or secrets.token_urlsafe(24)
        # An empty issuer becomes the LMS's own URL once start() knows the port.
        self.platform = platform or Platform(
            issuer="", client_id=client_id, deployment_id=deployment_id
        )
        self.tool_lti11_launch_url = tool_lti11_launch_url
        self.tool_lti13_login_url = tool_lti13_login_url
        self.tool_lti13_launch_url = tool_lti13_launch_url
        self.tool_jwks_url = tool_jwks_url
        self.course_id = course_id
        self.course_title = course_title
        self.hint_ttl = hint_ttl
        self.port: int | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self.deep_linking_ttl = deep_linking_ttl
        # LTI 1.3 launches by lti_message_hint; selection requests by their data, each
        # message's apart: an answer to one is no answer to the other.
        self._pending = OneTimeRequests[PendingLaunch](
            lambda: self.hint_ttl,
            LaunchRefused,
            unknown="lti_message_hint is unknown",
            used="lti_message_hint was already used",
            expired="lti_message_hint has expired",
        )
        self._deep_link_requests = self._selection_requests("deep linking", "JWT data")
        self.content_item_requests = self._selection_requests("content-item", "data")
        self._deep_link_nonces: dict[str, float] = {}
        # Links made by deep linking and Content-Item, by id, and the verified answers that
        # made them.
        self.links: dict[str, CourseLink] = {}
        self._link_numbers = itertools.count(1)
        self.deep_link_responses: list[dict] = []
        self.content_item_responses: list[dict] = []
        # Grades, kept in memory: this is a demo. A stop() and start() keeps them.
        self.token_lifetime = token_lifetime
        self.members: dict[str, set[str]] = {}
        # The names and roles NRPS serves, by course and user id, and each course's changes:
        # change n (from 1) is roster_log[course][n - 1], the member's state after it.
        self.roster: dict[str, dict[str, Member]] = {}
        self.roster_log: dict[str, list[Member]] = {}
        self.membership_requests: list[str] = []
        self.sourcedids: dict[str, tuple[str, str, str]] = {}
        self.outcomes: dict[str, OutcomeGrade] = {}
        self.outcome_requests: list[OutcomeGrade] = []
        self.lineitems: dict[str, dict[str, dict]] = {}
        # What the tool created; the columns an instructor made with a link are not in it.
        self.lineitem_posts: list[dict] = []
        self._lineitem_numbers = itertools.count(1)
        self.scores: dict[tuple[str, str], dict] = {}
        self.score_posts: list[dict] = []
        self.refusals: list[tuple[str, int, str]] = []
        self.tokens_issued: list[frozenset[str]] = []
        self._tokens: dict[str, AccessToken] = {}
        self._jtis: dict[str, float] = {}
        self._oauth_nonces: dict[str, float] = {}
        # Dynamic registration: one-time registration tokens, the tools registered with
        # them (the latest is the one this LMS launches), and the Authorization headers the
        # configuration was read with.
        self.registration_token_ttl = hint_ttl
        self._registration_tokens = OneTimeRequests[bool](
            lambda: self.registration_token_ttl,
            lambda message: RegistrationRefused(401, "invalid_token", message),
            unknown="the registration token is unknown",
            used="the registration token was already used",
            expired="the registration token has expired",
        )
        self.tool_registrations: list[ToolRegistration] = []
        self.configuration_requests: list[str] = []

    def _selection_requests(self, kind: str, data: str) -> OneTimeRequests[DeepLinkRequest]:
        """Outstanding `kind` requests, kept `deep_linking_ttl` by the data the answer carries
        back in the field refusals call `data`."""
        return OneTimeRequests(
            lambda: self.deep_linking_ttl,
            DeepLinkRefused,
            unknown=f"{data} names no {kind} request of this LMS",
            used=f"the {kind} request was already answered",
            expired=f"the {kind} request has expired",
        )

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("DemoLMS.url is known only after start()")
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.url + "/auth"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def openid_configuration_url(self) -> str:
        return self.url + "/lti/openid-configuration"

    def new_registration_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self._registration_tokens.add(token, True)
        return token

    def redeem_registration_token(self, token: str) -> None:
        self._registration_tokens.redeem(token)

    def register_tool(self, body) -> ToolRegistration:
        """Accept a tool's client registration: a new client id and deployment, and this
        LMS's LTI 1.3 launches go to that tool from now on (the demo has one tool)."""
        number = len(self.tool_registrations) + 1
        registration = check_registration(
            body, client_id=f"registered-{number}-{secrets.token_hex(4)}",
            deployment_id=f"deployment-{number}",
        )  # fmt: skip
        self.tool_registrations.append(registration)
        self.platform.client_id = registration.client_id
        self.platform.deployment_id = registration.deployment_id
        self.tool_lti13_login_url = registration.login_url
        self.tool_lti13_launch_url = registration.launch_url
        self.tool_jwks_url = registration.jwks_url
        return registration

    @property
    def outcome_service_url(self) -> str:
        return self.url + "/outcomes"

    @property
    def deep_link_return_url(self) -> str:
        return self.url + "/deep_link_return"

    @property
    def content_item_return_url(self) -> str:
        return self.url + "/content_item_return"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.url}/api/lti/courses/{quote(context_id, safe='')}/lineitems"

    def ags_claim(
        self,
        context_id: str,
        scopes: Iterable[str] = GRANTED_SCOPES,
        *,
        lineitem: str | None = None,
    ) -> dict:
        """The AGS endpoint claim of a launch into `context_id`: its line item container, and
        `lineitem`, the column of the launch's link when the link has one."""
        claim = {"scope": list(scopes), "lineitems": self.lineitems_url(context_id)}
        if lineitem:
            claim["lineitem"] = lineitem
        return claim

    def memberships_url(self, context_id: str) -> str:
        return f"{self.url}/api/lti/courses/{quote(context_id, safe='')}/memberships"

    def nrps_claim(self, context_id: str) -> dict:
        """The names and roles service claim of a launch into `context_id`."""
        return {
            "context_memberships_url": self.memberships_url(context_id),
            "service_versions": ["2.0"],
        }

    def new_lineitem_id(self, context_id: str) -> str:
        return f"{self.lineitems_url(context_id)}/{next(self._lineitem_numbers)}"

    def link_lineitem(
        self, context_id: str, resource_link_id: str, label: str, score_maximum: float = 100
    ) -> str:
        """The id of the column an instructor made with a link (as Canvas does for an
        assignment's external tool link): made once, its resourceLinkId the link's."""
        for item in self.lineitems.get(context_id, {}).values():
            if item.get("resourceLinkId") == resource_link_id:
                return item["id"]
        return self._link_column(
            context_id, resource_link_id, {"label": label, "scoreMaximum": score_maximum}
        )

    def _link_column(self, context_id: str, resource_link_id: str, column: Mapping) -> str:
        item_id = self.new_lineitem_id(context_id)
        self.lineitems.setdefault(context_id, {})[item_id] = {
            "id": item_id, **column, "resourceLinkId": resource_link_id,
        }  # fmt: skip
        return item_id

    def add_links(
        self, context_id: str, items: Iterable[Mapping], *, lti_version: str = "1.3"
    ) -> list[CourseLink]:
        """Place the links of a verified deep-linking response (`deep_link_items`), or with
        `lti_version="1.1"` of a Content-Item selection (`content_item_links`), in the course,
        each with the column its lineItem asks for, as Canvas makes an assignment's."""
        links = []
        for item in items:
            link_id = f"{context_id}-link-{next(self._link_numbers)}"
            column = item["column"]
            lineitem = label = maximum = None
            if column is not None and lti_version == "1.1":
                # No line item service to make a column in: the link is the column.
                label, maximum = column["label"], column["scoreMaximum"]
            elif column is not None:
                lineitem = self._link_column(context_id, link_id, column)
            link = CourseLink(
                id=link_id,
                context_id=context_id,
                title=item["title"],
                text=item["text"],
                url=item["url"],
                custom=item["custom"],
                lineitem=lineitem,
                lti_version=lti_version,
                column_label=label,
                score_maximum=maximum,
            )
            self.links[link_id] = link
            links.append(link)
        return links

    def course_links(self, context_id: str) -> list[tuple[CourseLink, str | None]]:
        """The course's links, each with its column's label: an LTI 1.3 link's line item's,
        an LTI 1.1 link's own; None when it has no column, or the tool deleted it."""
        columns = self.lineitems.get(context_id, {})
        return [
            (
                link,
                columns[link.lineitem]["label"] if link.lineitem in columns else link.column_label,
            )
            for link in self.links.values()
            if link.context_id == context_id
        ]

    def course_link(self, link_id: str, context_id: str, lti_version: str) -> CourseLink | None:
        """The link `link_id` of the course, if it launches by `lti_version`; None otherwise."""
        link = self.links.get(link_id)
        if link is None or link.context_id != context_id or link.lti_version != lti_version:
            return None
        return link

    def enroll(self, user_id: str, context_id: str) -> None:
        """Make `user_id` a member of the course: scores for anyone else are refused."""
        self.members.setdefault(context_id, set()).add(user_id)

    def add_member(
        self,
        context_id: str,
        user_id: str,
        roles: Iterable[str],
        *,
        name: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        email: str | None = None,
    ) -> Member:
        """Put `user_id` on the course's roster (replacing what it said of them), Active and
        enrolled, so that scores for them are taken."""
        member = Member(
            user_id,
            tuple(str(r) for r in roles),
            name=name,
            given_name=given_name,
            family_name=family_name,
            email=email,
        )
        self.enroll(user_id, context_id)
        self._record_member(context_id, member)
        return member

    def set_member_status(self, context_id: str, user_id: str, status: str) -> Member:
        """Make a member Active or Inactive (an enrolment the LMS suspends but keeps);
        KeyError for someone not on the roster."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(MEMBER_STATUSES)}, not {status!r}")
        member = replace(self.roster[context_id][user_id], status=status)
        self._record_member(context_id, member)
        return member

    def drop_member(self, context_id: str, user_id: str) -> None:
        """Take `user_id` off the roster and out of the course: scores for them are refused,
        and differences report them Deleted with their last roles."""
        member = self.roster[context_id].pop(user_id)
        self.members[context_id].discard(user_id)
        self.roster_log[context_id].append(Member(user_id, member.roles, status="Deleted"))

    def _record_member(self, context_id: str, member: Member) -> None:
        self.roster.setdefault(context_id, {})[member.user_id] = member
        self.roster_log.setdefault(context_id, []).append(member)

    def roster_sequence(self, context_id: str) -> int:
        """The number of the course's latest roster change; 0 before the first."""
        return len(self.roster_log.get(context_id, ()))

    def memberships(self, context_id: str, since: int | None = None) -> list[Member]:
        """The course's members by user id; with `since`, only those changed after change
        number `since`, each as the latest change left them (status Deleted if dropped)."""
        if since is None:
            members = self.roster.get(context_id, {}).values()
        else:
            latest = {m.user_id: m for m in self.roster_log.get(context_id, [])[since:]}
            members = latest.values()
        return sorted(members, key=lambda m: m.user_id)

    def result_sourcedid(self, user_id: str, context_id: str, resource_link_id: str) -> str:
        """The opaque lis_result_sourcedid of one learner's cell in one resource link's column."""
        cell = (user_id, context_id, resource_link_id)
        for sourcedid, known in self.sourcedids.items():
            if known == cell:
                return sourcedid
        sourcedid = secrets.token_urlsafe(18)
        self.sourcedids[sourcedid] = cell
        self.enroll(user_id, context_id)
        return sourcedid

    def lti11_outcome_params(
        self, user_id: str, context_id: str, resource_link_id: str
    ) -> dict[str, str]:
        """Keyword arguments of lti11_launch_params that make a launch carry the outcome service."""
        return {
            "outcome_service_url": self.outcome_service_url,
            "result_sourcedid": self.result_sourcedid(user_id, context_id, resource_link_id),
        }

    def gradebook(self) -> list[dict]:
        """Every grade the LMS holds, one row per learner and column, for people and tests."""
        rows = []
        for sourcedid, grade in sorted(self.outcomes.items(), key=lambda kv: kv[1].cell):
            user_id, context_id, resource_link_id = grade.cell
            # A Content-Item link is its own column, named as the tool asked.
            link = self.links.get(resource_link_id)
            column = resource_link_id if link is None else link.column_label or link.title
            rows.append({
                "course": context_id, "user_id": user_id, "column": column,
                "score": grade.score, "out_of": 1.0, "progress": "", "via": "LTI 1.1",
                "received": grade.received_iso, "sourcedid": sourcedid,
            })  # fmt: skip
        for (item_id, user_id), score in sorted(self.scores.items()):
            context_id, item = self._lineitem(item_id)
            rows.append({
                "course": context_id, "user_id": user_id, "column": item["label"],
                "score": score.get("scoreGiven"), "out_of": score.get("scoreMaximum"),
                "progress": f"{score['activityProgress']}/{score['gradingProgress']}",
                "via": "LTI 1.3 AGS", "received": score["received"], "lineitem": item_id,
            })  # fmt: skip
        return rows

    def _lineitem(self, item_id: str) -> tuple[str, dict]:
        for context_id, items in self.lineitems.items():
            if item_id in items:
                return context_id, items[item_id]
        raise KeyError(item_id)

    def issue_token(self, scopes: Iterable[str]) -> AccessToken:
        now = time.time()
        self._tokens = {t: a for t, a in self._tokens.items() if a.expires > now}
        token = AccessToken(secrets.token_urlsafe(32), frozenset(scopes), now + self.token_lifetime)
        self._tokens[token.value] = token
        self.tokens_issued.append(token.scopes)
        return token

    def bearer(self, value: str) -> AccessToken | None:
        token = self._tokens.get(value)
        return token if token and token.expires > time.time() else None

    def use_jti(self, jti: str, expires: float) -> bool:
        return _first_use(self._jtis, jti, expires)

    def use_deep_link_nonce(self, nonce: str, expires: float) -> bool:
        return _first_use(self._deep_link_nonces, nonce, expires)

    def use_oauth_nonce(self, nonce: str) -> bool:
        now = time.time()
        self._oauth_nonces = {
            n: t for n, t in self._oauth_nonces.items() if t > now - 2 * OAUTH_WINDOW
        }
        if nonce in self._oauth_nonces:
            return False
        self._oauth_nonces[nonce] = now
        return True

    def registration(self) -> dict[str, str]:
        """What the hub must be told about this LMS to trust its launches."""
        return {
            "issuer": self.platform.issuer,
            "client_id": self.platform.client_id,
            "deployment_id": self.platform.deployment_id,
            "auth_url": self.auth_url,
            "jwks_url": self.jwks_url,
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
        }

    def tool_origins(self) -> set[str]:
        urls = (self.tool_lti11_launch_url, self.tool_lti13_login_url, self.tool_lti13_launch_url)
        return {url_origin(u) for u in urls if u}

    def course_title_for(self, context_id: str) -> str:
        return self.course_title if context_id == self.course_id else context_id

    def sign_lti11(
        self, params: Mapping[str, str], *, launch_url: str | None = None, **kwargs
    ) -> dict[str, str]:
        """`params` signed with this LMS's consumer for `launch_url`, by default the tool's
        LTI 1.1 launch URL."""
        launch_url = launch_url or self.tool_lti11_launch_url
        if not launch_url:
            raise LookupError("DemoLMS.tool_lti11_launch_url is not set")
        return sign_lti11_launch(
            launch_url, self.consumer_key, self.consumer_secret, params, **kwargs
        )

    def content_item_request(
        self,
        *,
        user_id: str,
        roles: str | Iterable[str],
        context_id: str,
        context_title: str | None = None,
        accept_multiple: bool = True,
        return_url: str | None = None,
        data: str | None = None,
    ) -> dict[str, str]:
        """The signed form fields of a ContentItemSelectionRequest (an instructor adding the
        tool's content over LTI 1.1) for the tool's LTI 1.1 launch URL.

        As with deep linking, the request is remembered by its `data` (by default a fresh
        random value), which the tool's ContentItemSelection must carry back: once, within
        `deep_linking_ttl`. Content-Item defines no resource_link_id: no link exists yet.
        """
        data = data or secrets.token_urlsafe(16)
        fields = self.sign_lti11({
            "lti_message_type": CONTENT_ITEM_REQUEST,
            "lti_version": "LTI-1p0",
            "user_id": user_id,
            "roles": lti11_roles(roles),
            "context_id": context_id,
            "context_title": context_title or self.course_title_for(context_id),
            "accept_media_types": LTI_LINK_MEDIA_TYPE,
            "accept_presentation_document_targets": "iframe,window",
            "accept_multiple": "true" if accept_multiple else "false",
            # The answer must be signed: the return route takes no other.
            "accept_unsigned": "false",
            "auto_create": "true",
            "content_item_return_url": return_url or self.content_item_return_url,
            "data": data,
            "launch_presentation_document_target": "iframe",
        })  # fmt: skip
        self.enroll(user_id, context_id)
        self.content_item_requests.add(data, DeepLinkRequest(context_id, user_id, accept_multiple))
        return fields

    def initiate_lti13(
        self,
        *,
        user_id: str,
        roles: Iterable[str],
        context_id: str,
        context_title: str | None = None,
        resource_link_id: str | None = None,
        name: str | None = None,
        email: str | None = None,
        ags: Mapping | EllipsisType | None = ...,
        nrps: bool = True,
        target_link_uri: str | None = None,
        storage_target: str | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Record a launch and return the tool's login URL with the login request's params.

        `ags=...` grants the course's line items and scores (`ags_claim`); None sends
        no AGS claim, as a launch from a link that takes no grades. `nrps=False` sends no
        roster service claim, as a platform without NRPS.
        """
        return self._initiate_login(
            user_id=user_id,
            roles=roles,
            context_id=context_id,
            context_title=context_title,
            target_link_uri=target_link_uri,
            storage_target=storage_target,
            resource_link_id=resource_link_id or f"{context_id}-notebooks",
            name=name,
            email=email,
            ags=self.ags_claim(context_id) if ags is ... else ags,
            nrps=nrps,
            custom=custom,
        )

    def initiate_deep_linking(
        self,
        *,
        user_id: str,
        roles: Iterable[str],
        context_id: str,
        context_title: str | None = None,
        accept_multiple: bool = True,
        return_url: str | None = None,
        target_link_uri: str | None = None,
        storage_target: str | None = None,
        data: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Record a deep-linking request (an instructor adding the tool's content to the
        course) and return the tool's login URL with the login request's params.

        The request is remembered by its `data` (by default a fresh random value), which the
        tool's response must carry back: once, within `deep_linking_ttl`.
        """
        data = data or secrets.token_urlsafe(16)
        login = self._initiate_login(
            user_id=user_id,
            roles=roles,
            context_id=context_id,
            context_title=context_title,
            target_link_uri=target_link_uri,
            storage_target=storage_target,
            message_type=DEEP_LINKING_REQUEST,
            deep_linking={
                "deep_link_return_url": return_url or self.deep_link_return_url,
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": accept_multiple,
                # The LMS makes the column a link's lineItem asks for (add_links).
                "accept_lineitem": True,
                "auto_create": True,
                "title": DEEP_LINKING_TITLE,
                "data": data,
            },
        )
        self._deep_link_requests.add(data, DeepLinkRequest(context_id, user_id, accept_multiple))
        return login

    def _initiate_login(
        self,
        *,
        user_id: str,
        roles: Iterable[str],
        context_id: str,
        context_title: str | None,
        target_link_uri: str | None,
        storage_target: str | None,
        nrps: bool = True,
        **launch,
    ) -> tuple[str, dict[str, str]]:
        """Keep a PendingLaunch (with the `launch` fields and, if `nrps`, the roster service)
        under a fresh lti_message_hint; the tool's login URL and the third-party-initiated
        login's params.

        As in Canvas, whoever launches from the course is one of its members: a user not on
        the roster joins it with the launch's roles, name and email.
        """
        if not self.tool_lti13_login_url:
            raise LookupError("DemoLMS.tool_lti13_login_url is not set")
        target = target_link_uri or self.tool_lti13_launch_url
        if not target:
            raise LookupError("DemoLMS needs target_link_uri or tool_lti13_launch_url")
        roles = tuple(roles)
        # A member on the roster is enrolled already (add_member).
        if user_id not in self.roster.get(context_id, {}):
            self.add_member(
                context_id, user_id, roles, name=launch.get("name"), email=launch.get("email")
            )
        hint = secrets.token_urlsafe(16)
        self._pending.add(
            hint,
            PendingLaunch(
                user_id=user_id,
                roles=roles,
                context_id=context_id,
                context_title=context_title or self.course_title_for(context_id),
                target_link_uri=target,
                nrps=self.nrps_claim(context_id) if nrps else None,
                **launch,
            ),
        )
        params = login_initiation_params(
            self.platform,
            login_hint=user_id,
            message_hint=hint,
            target_link_uri=target,
            storage_target=storage_target,
        )
        return self.tool_lti13_login_url, params

    def redeem_message_hint(self, hint: str, *, login_hint: str) -> PendingLaunch:
        """The launch `hint` names, once: any later use is refused, even after a refusal."""
        pending = self._pending.redeem(hint)
        if login_hint != pending.user_id:
            raise LaunchRefused("login_hint does not match the user of lti_message_hint")
        return pending

    def redeem_deep_link(self, data) -> DeepLinkRequest:
        """The deep-linking request a response's `data` claim names, once: a second answer
        is refused, as one after the request expired."""
        if not isinstance(data, str) or not data:
            raise DeepLinkRefused("JWT has no data claim")
        return self._deep_link_requests.redeem(data)

    async def tool_jwks(self) -> dict:
        """The tool's public keys, fetched from its published JWKS URL on each use."""
        if not self.tool_jwks_url:
            raise ToolKeysUnavailable("DemoLMS.tool_jwks_url is not set")
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(
                self.tool_jwks_url, connect_timeout=5, request_timeout=10, raise_error=False
            )
        except OSError as e:
            raise ToolKeysUnavailable(f"the tool's JWKS cannot be fetched ({e})") from None
        finally:
            client.close()
        if response.code != 200:
            raise ToolKeysUnavailable(f"the tool's JWKS answered {response.code}")
        try:
            jwks = json.loads(response.body)
        except ValueError:
            raise ToolKeysUnavailable("the tool's JWKS is not JSON") from None
        if not isinstance(jwks, dict):
            raise ToolKeysUnavailable("the tool's JWKS is not a JSON object")
        return jwks

    def make_app(self) -> tornado.web.Application:
        args = {"lms": self}
        return tornado.web.Application(
            [
                (r"/", tornado.web.RedirectHandler, {"url": "/course", "permanent": False}),
                (r"/course", CoursePageHandler, args),
                (r"/launch11", LTI11LaunchHandler, args),
                (r"/launch13", LTI13LaunchHandler, args),
                (r"/deeplink13", DeepLinkingHandler, args),
                (r"/deep_link_return", DeepLinkReturnHandler, args),
                (r"/contentitem11", ContentItemRequestHandler, args),
                (r"/content_item_return", ContentItemReturnHandler, args),
                (r"/auth", AuthorizationHandler, args),
                (r"/jwks", JWKSHandler, args),
                (r"/outcomes", OutcomeServiceHandler, args),
                (r"/token", TokenHandler, args),
                (r"/api/lti/courses/([^/]+)/lineitems", LineItemsHandler, args),
                (r"/api/lti/courses/([^/]+)/lineitems/([^/]+)", LineItemHandler, args),
                (r"/api/lti/courses/([^/]+)/lineitems/([^/]+)/scores", ScoresHandler, args),
                (r"/api/lti/courses/([^/]+)/memberships", MembershipsHandler, args),
                (r"/gradebook", GradebookHandler, args),
                (r"/gradebook\.json", GradebookJSONHandler, args),
                *registration_handlers(args),
            ]
        )

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 only; port 0 picks a free one (see `.port`, `.url`).

        After stop(), start(port=lms.port) listens again on the same port with the same
        state (launches, tokens, gradebook): an LMS that was down and came back.
        """
        if self._server is not None:
            raise RuntimeError("DemoLMS is already started")
        # bind_sockets sets SO_REUSEADDR, so a port left in TIME_WAIT can be bound again.
        sockets = tornado.netutil.bind_sockets(port, address="127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(self.make_app())
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        if not self.platform.issuer:
            self.platform.issuer = self.url

    async def stop(self) -> None:
        """Stop listening and drop open connections; the port is free again at return."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    async def __aenter__(self) -> DemoLMS:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()


# ---------------------------------------------------------------- command line


async def _serve(lms: DemoLMS, port: int) -> None:
    await lms.start(port)
    print(f"Demo LMS course page: {lms.url}/course", flush=True)
    for name, value in lms.registration().items():
        if name != "consumer_secret":
            print(f"  {name}: {value}", flush=True)
    await stop_signal("demo LMS")
    await lms.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m learnhub.demo.lms",
        description="Run the demo course's LMS on 127.0.0.1, launching the tool at --tool-url.",
    )
    parser.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (default 8001)")
    parser.add_argument("--tool-url", required=True, help="LearnHub's public URL")
    parser.add_argument("--consumer-key", default="demo", help="LTI 1.1 key (default demo)")
    parser.add_argument(
        "--consumer-secret",
        default=os.environ.get("LEARNHUB_DEMO_LMS_SECRET"),
        help="LTI 1.1 shared secret (default: $LEARNHUB_DEMO_LMS_SECRET)",
    )
    parser.add_argument("--client-id", default="learnhub-demo", help="LTI 1.3 client id")
    parser.add_argument("--deployment-id", default="1", help="LTI 1.3 deployment id (default 1)")
    parser.add_argument("--issuer", default="", help="LTI 1.3 issuer (default: the LMS URL)")
    for name, path in TOOL_PATHS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, help=f"default: --tool-url + {path}")
    options = parser.parse_args(argv)
    if not options.consumer_secret:
        parser.error("--consumer-secret (or $LEARNHUB_DEMO_LMS_SECRET) is required")
    urls = tool_urls(options.tool_url)
    urls.update({k: getattr(options, k) for k in TOOL_PATHS if getattr(options, k)})
    lms = DemoLMS(
        consumer_key=options.consumer_key,
        consumer_secret=options.consumer_secret,
        platform=Platform(options.issuer, options.client_id, options.deployment_id),
        **urls,
    )
    asyncio.run(_serve(lms, options.port))
    skip_exit_collection()


if __name__ == "__main__":
    main()
