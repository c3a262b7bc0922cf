"""A small real LMS on loopback: the demo course's platform and the tests' LTI 1.1/1.3 peer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import EllipsisType
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import tornado.httpserver
import tornado.netutil
import tornado.template
import tornado.web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from oauthlib.oauth1.rfc5849 import (
    CONTENT_TYPE_FORM_URLENCODED,
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_TYPE_BODY,
    Client,
)

LTI_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_ENDPOINT_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
ID_TOKEN_LIFETIME = 300

# Where LearnHub's authenticator listens, relative to the hub's public URL; main()
# and tool_urls() use them when only --tool-url is given.
TOOL_PATHS = {
    "tool_lti11_launch_url": "/hub/lti11/launch",
    "tool_lti13_login_url": "/hub/lti13/login",
    "tool_lti13_launch_url": "/hub/lti13/launch",
    "tool_jwks_url": "/hub/lti13/jwks",
}


class Role(StrEnum):
    """LTI context roles: the value is the LTI 1.3 URI, `.short` the LTI 1.1 name."""

    LEARNER = f"{_MEMBERSHIP}#Learner"
    INSTRUCTOR = f"{_MEMBERSHIP}#Instructor"
    TEACHING_ASSISTANT = f"{_MEMBERSHIP}/Instructor#TeachingAssistant"
    CONTENT_DEVELOPER = f"{_MEMBERSHIP}#ContentDeveloper"
    ADMINISTRATOR = f"{_MEMBERSHIP}#Administrator"

    @property
    def short(self) -> str:
        return self.value.rsplit("#", 1)[1]


# The `role=` choices of the launch routes. A sub-role comes with its principal role,
# as LTI 1.3 asks platforms to do.
ROLE_CHOICES: dict[str, tuple[Role, ...]] = {
    "learner": (Role.LEARNER,),
    "instructor": (Role.INSTRUCTOR,),
    "ta": (Role.INSTRUCTOR, Role.TEACHING_ASSISTANT),
    "content-developer": (Role.CONTENT_DEVELOPER,),
    "administrator": (Role.ADMINISTRATOR,),
}


# ---------------------------------------------------------------- pure builders


def url_origin(url: str) -> str:
    """The web origin (scheme://host[:port]) of a URL, as a browser reports event.origin."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def tool_urls(base_url: str, paths: Mapping[str, str] = TOOL_PATHS) -> dict[str, str]:
    """The tool URLs of a LearnHub at `base_url`, as keyword arguments for DemoLMS."""
    return {name: base_url.rstrip("/") + path for name, path in paths.items()}


def lti11_launch_params(
    *,
    user_id: str,
    roles: str | Iterable[str],
    context_id: str,
    context_title: str,
    resource_link_id: str,
    name: str | None = None,
    email: str | None = None,
    outcome_service_url: str | None = None,
    result_sourcedid: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The unsigned fields of an LTI 1.1 basic launch; `extra` is applied last and wins."""
    if not isinstance(roles, str):
        roles = ",".join(r.short if isinstance(r, Role) else r for r in roles)
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "user_id": user_id,
        "roles": roles,
        "context_id": context_id,
        "context_title": context_title,
        "resource_link_id": resource_link_id,
    }
    optional = {
        "lis_person_name_full": name,
        "lis_person_contact_email_primary": email,
        "lis_outcome_service_url": outcome_service_url,
        "lis_result_sourcedid": result_sourcedid,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    params.update(extra or {})
    return params


def sign_lti11_launch(
    launch_url: str,
    consumer_key: str,
    secret: str,
    params: Mapping[str, str],
    *,
    timestamp: int | str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """All form fields of an LTI 1.1 launch POSTed to `launch_url`, OAuth 1.0a HMAC-SHA1 signed.

    `timestamp` and `nonce` default to now and a fresh random value; tests pass
    old timestamps and repeated nonces to check that the tool refuses them.
    """
    client = Client(
        consumer_key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        # LTI 1.1 has no OAuth callback; its spec and every consumer send this value.
        callback_uri="about:blank",
        timestamp=None if timestamp is None else str(timestamp),
        nonce=nonce,
    )
    _, _, body = client.sign(
        launch_url,
        http_method="POST",
        body=urlencode({k: str(v) for k, v in params.items()}),
        headers={"Content-Type": CONTENT_TYPE_FORM_URLENCODED},
    )
    return dict(parse_qsl(body, keep_blank_values=True))


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _new_kid() -> str:
    return secrets.token_urlsafe(12)


@dataclass
class Platform:
    """An LTI 1.3 platform's identity toward one tool: issuer, client, deployment, signing key."""

    issuer: str
    client_id: str
    deployment_id: str
    kid: str = field(default_factory=_new_kid)
    private_key: rsa.RSAPrivateKey = field(default_factory=_new_rsa_key, repr=False)

    def public_jwk(self) -> dict:
        # PyJWT adds key_ops, which RFC 7517 says not to send beside "use".
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": jwk["n"],
            "e": jwk["e"],
        }

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk()]}

    def rotate_key(self) -> None:
        """Replace the key and kid at once: tokens signed before no longer verify."""
        self.private_key = _new_rsa_key()
        self.kid = _new_kid()


def id_token_claims(
    platform: Platform,
    *,
    nonce: str,
    user_id: str,
    roles: Iterable[str],
    context_id: str,
    context_title: str,
    resource_link_id: str,
    target_link_uri: str,
    name: str | None = None,
    email: str | None = None,
    ags: Mapping | None = None,
    now: float | None = None,
) -> dict:
    """The claims of an LTI 1.3 LtiResourceLinkRequest id_token, as LTI core requires them."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": platform.issuer,
        "aud": platform.client_id,
        "azp": platform.client_id,
        "sub": user_id,
        "exp": issued + ID_TOKEN_LIFETIME,
        "iat": issued,
        "nonce": nonce,
        LTI_CLAIM + "message_type": "LtiResourceLinkRequest",
        LTI_CLAIM + "version": "1.3.0",
        LTI_CLAIM + "deployment_id": platform.deployment_id,
        LTI_CLAIM + "target_link_uri": target_link_uri,
        LTI_CLAIM + "resource_link": {"id": resource_link_id},
        LTI_CLAIM + "roles": [str(r) for r in roles],
        LTI_CLAIM + "context": {
            "id": context_id,
            "title": context_title,
            "type": [COURSE_OFFERING],
        },
    }
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
    if ags is not None:
        claims[AGS_ENDPOINT_CLAIM] = dict(ags)
    return claims


def sign_id_token(
    platform: Platform,
    claims: Mapping,
    *,
    kid: str | EllipsisType | None = ...,
    alg: str = "RS256",
    headers: Mapping | None = None,
    hmac_secret: str | bytes | None = None,
) -> str:
    """A signed id_token; also the broken ones a tool must refuse.

    `kid=...` uses the platform's kid, `kid=None` leaves it out, any other string
    names a key the JWKS lacks. `alg="none"` gives an unsigned token. `alg="HS256"`
    signs with `hmac_secret`, by default the public modulus: the key-confusion
    attack, where the attacker's "secret" is a value anyone can read in the JWKS.
    """
    header = {} if kid is None else {"kid": platform.kid if kid is ... else kid}
    header.update(headers or {})
    if alg == "none":
        key = None
    elif alg.startswith("HS"):
        key = hmac_secret if hmac_secret is not None else platform.public_jwk()["n"]
    else:
        key = platform.private_key
    return jwt.encode(dict(claims), key, algorithm=alg, headers=header)


def login_initiation_params(
    platform: Platform,
    *,
    login_hint: str,
    message_hint: str,
    target_link_uri: str,
    storage_target: str | None = None,
) -> dict[str, str]:
    """The third-party-initiated login request a platform sends to the tool's login URL."""
    params = {
        "iss": platform.issuer,
        "login_hint": login_hint,
        "target_link_uri": target_link_uri,
        "lti_message_hint": message_hint,
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
    }
    if storage_target is not None:
        params["lti_storage_target"] = storage_target
    return params


_AUTH_REQUIRED = ("nonce", "state", "login_hint", "lti_message_hint")


def auth_request_problem(
    arguments: Mapping[str, list[str]], *, client_id: str, redirect_uri: str | None
) -> tuple[str, str] | None:
    """Why a platform refuses an OIDC authentication request, as (error, description), or None.

    `arguments` maps each parameter to all its values, so a repeated one is caught.
    """
    repeated = sorted(k for k, values in arguments.items() if len(values) > 1)
    if repeated:
        return "invalid_request", f"parameter {repeated[0]} is repeated"
    args = {k: values[0] for k, values in arguments.items()}
    if args.get("client_id") != client_id:
        return "unauthorized_client", f"unknown client_id {args.get('client_id', '')!r}"
    if redirect_uri is None or args.get("redirect_uri") != redirect_uri:
        return (
            "invalid_request",
            f"redirect_uri {args.get('redirect_uri', '')!r} is not the registered tool launch URL",
        )
    if args.get("response_type") != "id_token":
        return "unsupported_response_type", "response_type must be id_token"
    if "openid" not in args.get("scope", "").split():
        return "invalid_scope", "scope must include openid"
    if args.get("response_mode") != "form_post":
        return "invalid_request", "response_mode must be form_post"
    if args.get("prompt") != "none":
        return "invalid_request", "prompt must be none"
    for name in _AUTH_REQUIRED:
        if not args.get(name):
            return "invalid_request", f"{name} is required"
    return None


_AUTOSUBMIT_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
<form id="autosubmit" method="post" action="{{ action }}">
{% for name, value in fields.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% end %}<p>{{ title }}</p>
<button type="submit">Continue</button>
</form>
<script>
// A field named "submit" would shadow form.submit(), so call the prototype's.
HTMLFormElement.prototype.submit.call(document.getElementById("autosubmit"));
</script>
</body>
</html>
""",
    name="autosubmit.html",
)


def autosubmit_form_html(action: str, fields: Mapping[str, str], *, title: str) -> str:
    """A page that POSTs `fields` to `action` at once, with a button for clients without JS."""
    return _AUTOSUBMIT_PAGE.generate(action=action, fields=fields, title=title).decode()


# The storage half of the page follows 1EdTech's "LTI Client Side postMessages" and
# "Platform Storage": the tool in the iframe keeps its OIDC state and nonce here
# when its own cookies are blocked.
_COURSE_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ course_title }} · LearnHub demo LMS</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }
fieldset { display: inline-block; margin: 0 1rem 1rem 0; }
form { display: inline; }
iframe { width: 100%; height: 75vh; border: 1px solid #888; }
</style>
</head>
<body>
<header>
<h1>{{ course_title }}</h1>
<p>This page plays the LMS. Pick a role to open the course's notebooks, framed below
by this other site the way Canvas or Moodle frame a tool.</p>
</header>
<main>
{% for version, label in (("lti13", "LTI 1.3"), ("lti11", "LTI 1.1")) %}<fieldset>
<legend>{{ label }}</legend>
{% for role in ("learner", "instructor") %}
<form method="get" action="/launch{{ version[3:] }}" target="tool">
<input type="hidden" name="user" value="demo-{{ role }}">
<input type="hidden" name="role" value="{{ role }}">
<input type="hidden" name="course" value="{{ course_id }}">
<button type="submit">Launch as {{ role }} ({{ label }})</button>
</form>
{% end %}</fieldset>
{% end %}<iframe name="tool" title="{{ course_title }}: LearnHub" src="about:blank"
 allow="clipboard-read; clipboard-write; fullscreen"></iframe>
</main>
<script id="lti-platform-storage">
(function () {
  "use strict";
  // Storage belongs to the framed tool only; any other sender is ignored, not answered.
  const toolOrigins = new Set({% raw json_encode(sorted(tool_origins)) %});
  const stores = new Map();
  // "_parent": the storage lives in this page, the tool frame's parent, not in a frame of its own.
  const supportedMessages = [
    {subject: "lti.capabilities"},
    {subject: "lti.put_data", frame: "_parent"},
    {subject: "lti.get_data", frame: "_parent"},
  ];

  function answer(event, fields) {
    const reply = {subject: event.data.subject + ".response", message_id: event.data.message_id};
    event.source.postMessage(Object.assign(reply, fields), event.origin);
  }

  function refuse(event, code, message) {
    answer(event, {error: {code: code, message: message}});
  }

  window.addEventListener("message", function (event) {
    const data = event.data;
    if (!data || typeof data !== "object" || typeof data.subject !== "string" || !event.source) {
      return;
    }
    if (!toolOrigins.has(event.origin)) {
      console.warn("LTI storage: ignoring " + data.subject + " from " + event.origin);
      return;
    }
    if (!stores.has(event.origin)) {
      stores.set(event.origin, new Map());
    }
    const store = stores.get(event.origin);
    switch (data.subject) {
      case "lti.capabilities":
        return answer(event, {supported_messages: supportedMessages});
      case "lti.put_data":
        if (typeof data.key !== "string" || data.key === "") {
          return refuse(event, "bad_request", "lti.put_data needs a key");
        }
        if (data.value === undefined) {
          return refuse(event, "bad_request", "lti.put_data needs a value");
        }
        store.set(data.key, data.value);
        return answer(event, {key: data.key, value: data.value});
      case "lti.get_data":
        if (typeof data.key !== "string" || data.key === "") {
          return refuse(event, "bad_request", "lti.get_data needs a key");
        }
        const value = store.has(data.key) ? store.get(data.key) : null;
        return answer(event, {key: data.key, value: value});
      default:
        if (data.subject.endsWith(".response")) {
          return;  // answering an answer could start a ping-pong between frames
        }
        return refuse(event, "unsupported_subject", "unsupported subject " + data.subject);
    }
  });
})();
</script>
</body>
</html>
""",
    name="course.html",
)


def course_page_html(*, course_id: str, course_title: str, tool_origins: Iterable[str]) -> str:
    """The demo course page: launch buttons, the tool's iframe, and platform storage."""
    return _COURSE_PAGE.generate(
        course_id=course_id, course_title=course_title, tool_origins=set(tool_origins)
    ).decode()


# ---------------------------------------------------------------- the LMS


class LaunchRefused(ValueError):
    """The platform will not answer this authentication request; the message says why."""


@dataclass
class PendingLaunch:
    """An LTI 1.3 launch the LMS has started and the tool has not yet redeemed."""

    user_id: str
    roles: tuple[str, ...]
    context_id: str
    context_title: str
    resource_link_id: str
    target_link_uri: str
    name: str | None = None
    email: str | None = None
    ags: Mapping | None = None
    created: float = field(default_factory=time.time)

    def claims(self, platform: Platform, *, nonce: str) -> dict:
        return id_token_claims(
            platform,
            nonce=nonce,
            user_id=self.user_id,
            roles=self.roles,
            context_id=self.context_id,
            context_title=self.context_title,
            resource_link_id=self.resource_link_id,
            target_link_uri=self.target_link_uri,
            name=self.name,
            email=self.email,
            ags=self.ags,
        )


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
        self._pending: dict[str, PendingLaunch] = {}
        self._redeemed: dict[str, float] = {}

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

    def sign_lti11(self, params: Mapping[str, str], **kwargs) -> dict[str, str]:
        """`params` signed for the tool's LTI 1.1 launch URL with this LMS's consumer."""
        if not self.tool_lti11_launch_url:
            raise LookupError("DemoLMS.tool_lti11_launch_url is not set")
        return sign_lti11_launch(
            self.tool_lti11_launch_url, self.consumer_key, self.consumer_secret, params, **kwargs
        )

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
        ags: Mapping | None = None,
        target_link_uri: str | None = None,
        storage_target: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Record a launch and return the tool's login URL with the login request's params."""
        if not self.tool_lti13_login_url:
            raise LookupError("DemoLMS.tool_lti13_login_url is not set")
        target = target_link_uri or self.tool_lti13_launch_url
        if not target:
            raise LookupError(
                "DemoLMS.initiate_lti13 needs target_link_uri or tool_lti13_launch_url"
            )
        self._forget_expired_hints()
        hint = secrets.token_urlsafe(16)
        self._pending[hint] = PendingLaunch(
            user_id=user_id,
            roles=tuple(roles),
            context_id=context_id,
            context_title=context_title or self.course_title_for(context_id),
            resource_link_id=resource_link_id or f"{context_id}-notebooks",
            target_link_uri=target,
            name=name,
            email=email,
            ags=ags,
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
        if hint in self._redeemed:
            raise LaunchRefused("lti_message_hint was already used")
        pending = self._pending.pop(hint, None)
        if pending is None:
            raise LaunchRefused("lti_message_hint is unknown")
        now = time.time()
        self._redeemed[hint] = now
        if now - pending.created >= self.hint_ttl:
            raise LaunchRefused("lti_message_hint has expired")
        if login_hint != pending.user_id:
            raise LaunchRefused("login_hint does not match the user of lti_message_hint")
        return pending

    def _forget_expired_hints(self) -> None:
        # Keeps a long-running demo from growing; an old reuse then reads "unknown".
        cutoff = time.time() - self.hint_ttl
        self._pending = {h: p for h, p in self._pending.items() if p.created > cutoff}
        self._redeemed = {h: t for h, t in self._redeemed.items() if t > cutoff}

    def make_app(self) -> tornado.web.Application:
        args = {"lms": self}
        return tornado.web.Application(
            [
                (r"/", tornado.web.RedirectHandler, {"url": "/course", "permanent": False}),
                (r"/course", CoursePageHandler, args),
                (r"/launch11", LTI11LaunchHandler, args),
                (r"/launch13", LTI13LaunchHandler, args),
                (r"/auth", AuthorizationHandler, args),
                (r"/jwks", JWKSHandler, args),
                # Grade passback joins here: LTI 1.1 Outcomes, LTI 1.3 AGS and its token URL.
            ]
        )

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 only; port 0 picks a free one (see `.port`, `.url`)."""
        sockets = tornado.netutil.bind_sockets(port, address="127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(self.make_app())
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        if not self.platform.issuer:
            self.platform.issuer = self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    async def __aenter__(self) -> DemoLMS:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()


# ---------------------------------------------------------------- handlers


class _LMSHandler(tornado.web.RequestHandler):
    def initialize(self, lms: DemoLMS) -> None:
        self.lms = lms

    def set_default_headers(self) -> None:
        # Pages carry signatures and id_tokens (never cache them), their URLs name
        # users (never send them on as Referer), and only the LMS frames its own pages.
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", "frame-ancestors 'self'")

    def refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message + "\n")

    def launch_arguments(self) -> tuple[str, tuple[Role, ...], str] | None:
        """(user, roles, course) from ?user=&role=&course=, or None after a 400."""
        role = self.get_argument("role", "learner")
        if role not in ROLE_CHOICES:
            self.refuse(400, f"role must be one of: {', '.join(ROLE_CHOICES)}")
            return None
        user = self.get_argument("user", f"demo-{role}")
        return user, ROLE_CHOICES[role], self.get_argument("course", self.lms.course_id)


class CoursePageHandler(_LMSHandler):
    def get(self) -> None:
        self.finish(
            course_page_html(
                course_id=self.lms.course_id,
                course_title=self.lms.course_title,
                tool_origins=self.lms.tool_origins(),
            )
        )


class LTI11LaunchHandler(_LMSHandler):
    def get(self) -> None:
        if not self.lms.tool_lti11_launch_url:
            return self.refuse(503, "DemoLMS.tool_lti11_launch_url is not set (see --tool-url)")
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        params = lti11_launch_params(
            user_id=user,
            roles=roles,
            context_id=course,
            context_title=self.lms.course_title_for(course),
            resource_link_id=f"{course}-notebooks",
            name=self.get_argument("name", None),
            email=self.get_argument("email", None),
            extra={"launch_presentation_document_target": "iframe"},
        )
        fields = self.lms.sign_lti11(params)
        self.finish(
            autosubmit_form_html(self.lms.tool_lti11_launch_url, fields, title="Opening LearnHub…")
        )


class LTI13LaunchHandler(_LMSHandler):
    def get(self) -> None:
        if not (self.lms.tool_lti13_login_url and self.lms.tool_lti13_launch_url):
            return self.refuse(503, "DemoLMS.tool_lti13_login_url/launch_url are not set")
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        # ?storage=off starts a launch without platform storage, as older LMSs do.
        storage = None if self.get_argument("storage", "") == "off" else "_parent"
        login_url, params = self.lms.initiate_lti13(
            user_id=user,
            roles=roles,
            context_id=course,
            name=self.get_argument("name", None),
            email=self.get_argument("email", None),
            storage_target=storage,
        )
        self.finish(autosubmit_form_html(login_url, params, title="Opening LearnHub…"))


class AuthorizationHandler(_LMSHandler):
    """The OIDC authorization endpoint: answers the tool's login with a signed id_token."""

    def get(self) -> None:
        self._authorize()

    def post(self) -> None:
        self._authorize()

    def _authorize(self) -> None:
        arguments = {
            name: [v.decode("utf-8", "replace") for v in values]
            for name, values in self.request.arguments.items()
        }
        problem = auth_request_problem(
            arguments,
            client_id=self.lms.platform.client_id,
            redirect_uri=self.lms.tool_lti13_launch_url,
        )
        args = {name: values[0] for name, values in arguments.items()}
        if problem is None:
            try:
                pending = self.lms.redeem_message_hint(
                    args["lti_message_hint"], login_hint=args["login_hint"]
                )
            except LaunchRefused as refused:
                problem = ("invalid_request", str(refused))
        if problem is not None:
            self.set_status(400)
            self.finish({"error": problem[0], "error_description": problem[1]})
            return
        id_token = sign_id_token(
            self.lms.platform, pending.claims(self.lms.platform, nonce=args["nonce"])
        )
        fields = {"id_token": id_token, "state": args["state"]}
        self.finish(
            autosubmit_form_html(args["redirect_uri"], fields, title="Signing in to LearnHub…")
        )


class JWKSHandler(_LMSHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.lms.platform.jwks()))


# ---------------------------------------------------------------- command line


async def _serve(lms: DemoLMS, port: int) -> None:
    await lms.start(port)
    print(f"Demo LMS course page: {lms.url}/course", flush=True)
    for name, value in lms.registration().items():
        if name != "consumer_secret":
            print(f"  {name}: {value}", flush=True)
    await asyncio.Event().wait()


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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(lms, options.port))


if __name__ == "__main__":
    main()
