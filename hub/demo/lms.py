"""A small real LMS on loopback: the demo course's platform and the tests' LTI 1.1/1.3 peer."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import hashlib
import hmac
import itertools
import json
import math
import os
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import EllipsisType
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

import jwt
import tornado.httpclient
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
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from ..stopping import skip_exit_collection, stop_signal

LTI_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_ENDPOINT_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/"
NRPS_CLAIM = _NRPS + "claim/namesroleservice"
SCOPE_CONTEXT_MEMBERSHIP_READONLY = _NRPS + "scope/contextmembership.readonly"
MEMBERSHIP_CONTAINER_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
# An NRPS member's enrolment; a differences answer also reports "Deleted" for one dropped.
MEMBER_STATUSES = ("Active", "Inactive")
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DL_SETTINGS_CLAIM = DL_CLAIM + "deep_linking_settings"
DL_CONTENT_ITEMS_CLAIM = DL_CLAIM + "content_items"
DL_DATA_CLAIM = DL_CLAIM + "data"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
# LTI 1.1's deep linking: the Content-Item Message 1.0 and the one media type it offers.
CONTENT_ITEM_REQUEST = "ContentItemSelectionRequest"
CONTENT_ITEM_SELECTION = "ContentItemSelection"
LTI_LINK_MEDIA_TYPE = "application/vnd.ims.lti.v1.ltilink"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
ID_TOKEN_LIFETIME = 300
# An instructor may browse the tool for a while before picking what to add.
DEEP_LINKING_TTL = 1800
# The Security Framework's bound on the age of a tool-originating message.
DEEP_LINK_RESPONSE_MAX_AGE = 300
# The settings' default title, which Deep Linking lets a platform give an untitled item
# (and this LMS gives an untitled Content-Item link alike).
DEEP_LINKING_TITLE = "LearnHub"

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


def lti11_roles(roles: str | Iterable[str]) -> str:
    """The LTI 1.1 roles field: a `Role` by its short name, any other value as given."""
    if isinstance(roles, str):
        return roles
    return ",".join(r.short if isinstance(r, Role) else r for r in roles)


def lti11_custom_params(custom: Mapping[str, str]) -> dict[str, str]:
    """A link's custom parameters as LTI 1.1 sends them: custom_<name>, the name lower-cased
    and each character but a letter or digit made an underscore (Review:Chapter ->
    custom_review_chapter)."""
    return {
        "custom_" + "".join(c if c.isalnum() else "_" for c in name.lower()): value
        for name, value in custom.items()
    }


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
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "user_id": user_id,
        "roles": lti11_roles(roles),
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
    target_link_uri: str,
    resource_link_id: str | None = None,
    name: str | None = None,
    email: str | None = None,
    ags: Mapping | None = None,
    nrps: Mapping | None = None,
    custom: Mapping[str, str] | None = None,
    now: float | None = None,
    message_type: str = RESOURCE_LINK_REQUEST,
    deep_linking: Mapping | None = None,
) -> dict:
    """The claims of an LTI 1.3 id_token, as LTI core and Deep Linking 2.0 require them;
    `ags` and `nrps` are the grade and roster service claims, `custom` the link's custom
    parameters (e.g. {"assignment": "ps01"}).

    An LtiResourceLinkRequest names its `resource_link_id`; an LtiDeepLinkingRequest has no
    resource link but the `deep_linking` settings instead.
    """
    if message_type == DEEP_LINKING_REQUEST and deep_linking is None:
        raise ValueError("an LtiDeepLinkingRequest needs deep_linking settings")
    if message_type != DEEP_LINKING_REQUEST and resource_link_id is None:
        raise ValueError(f"an {message_type} needs a resource_link_id")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": platform.issuer,
        "aud": platform.client_id,
        "azp": platform.client_id,
        "sub": user_id,
        "exp": issued + ID_TOKEN_LIFETIME,
        "iat": issued,
        "nonce": nonce,
        LTI_CLAIM + "message_type": message_type,
        LTI_CLAIM + "version": "1.3.0",
        LTI_CLAIM + "deployment_id": platform.deployment_id,
        LTI_CLAIM + "target_link_uri": target_link_uri,
        LTI_CLAIM + "roles": [str(r) for r in roles],
        LTI_CLAIM + "context": {
            "id": context_id,
            "title": context_title,
            "type": [COURSE_OFFERING],
        },
    }
    if message_type == DEEP_LINKING_REQUEST:
        claims[DL_SETTINGS_CLAIM] = dict(deep_linking)
    else:
        claims[LTI_CLAIM + "resource_link"] = {"id": resource_link_id}
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
    if ags is not None:
        claims[AGS_ENDPOINT_CLAIM] = dict(ags)
    if nrps is not None:
        claims[NRPS_CLAIM] = dict(nrps)
    if custom:
        claims[LTI_CLAIM + "custom"] = dict(custom)
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


def repeated_parameter(arguments: Mapping[str, list[str]]) -> str | None:
    """The problem with a request that repeats a parameter (which value would count?), or None."""
    repeated = sorted(k for k, values in arguments.items() if len(values) > 1)
    return f"parameter {repeated[0]} is repeated" if repeated else None


def auth_request_problem(
    arguments: Mapping[str, list[str]], *, client_id: str, redirect_uri: str | None
) -> tuple[str, str] | None:
    """Why a platform refuses an OIDC authentication request, as (error, description), or None.

    `arguments` maps each parameter to all its values, so a repeated one is caught.
    """
    repeated = repeated_parameter(arguments)
    if repeated:
        return "invalid_request", repeated
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
<input name="assignment" size="16" placeholder="assignment link"
 aria-label="Assignment (the link's custom parameter assignment=, optional)">
</form>
{% end %}</fieldset>
{% end %}<fieldset>
<legend>Assignment links</legend>
{% for route, label in (("/deeplink13", "LTI 1.3 deep linking"),
                        ("/contentitem11", "LTI 1.1 Content-Item")) %}
<form method="get" action="{{ route }}" target="tool">
<input type="hidden" name="user" value="demo-instructor">
<input type="hidden" name="role" value="instructor">
<input type="hidden" name="course" value="{{ course_id }}">
<button type="submit">Add assignment links ({{ label }})</button>
</form>
{% end %}{% if links %}<ul id="links">
{% for link, column in links %}<li data-link="{{ link.id }}">
<span class="title">{{ link.title }}</span> ({{ column or "no column" }})
{% for role in ("learner", "instructor") %}<form method="get"
 action="/launch{{ link.lti_version.replace('.', '') }}" target="tool">
<input type="hidden" name="link" value="{{ link.id }}">
<input type="hidden" name="role" value="{{ role }}">
<input type="hidden" name="user" value="demo-{{ role }}">
<input type="hidden" name="course" value="{{ course_id }}">
<button type="submit">Launch as {{ role }}</button>
</form>
{% end %}</li>
{% end %}</ul>{% else %}<p id="no-links">None yet: an instructor adds them by deep linking.</p>
{% end %}</fieldset>
<iframe name="tool" title="{{ course_title }}: LearnHub" src="about:blank"
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


def course_page_html(
    *,
    course_id: str,
    course_title: str,
    tool_origins: Iterable[str],
    links: Iterable[tuple[CourseLink, str | None]],
) -> str:
    """The demo course page: launch buttons, the `links` made by deep linking or Content-Item
    (each with its column's label, or None), the tool's iframe, and platform storage."""
    return _COURSE_PAGE.generate(
        course_id=course_id,
        course_title=course_title,
        tool_origins=set(tool_origins),
        links=list(links),
    ).decode()


# ---------------------------------------------------------------- grade receiving (pure)

POX_NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = AGS_SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = AGS_SCOPE + "lineitem.readonly"
SCOPE_RESULT_READONLY = AGS_SCOPE + "result.readonly"
SCOPE_SCORE = AGS_SCOPE + "score"
# What the demo LMS grants a tool: line items and scores, as a teacher's default install.
GRANTED_SCOPES = (SCOPE_LINEITEM, SCOPE_SCORE)
TOKEN_SCOPES = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY,
                          SCOPE_SCORE, SCOPE_CONTEXT_MEMBERSHIP_READONLY})  # fmt: skip
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300
OAUTH_WINDOW = 300
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")


class GradeRefused(ValueError):
    """A grade or roster service request the LMS refuses; `status` and the message say how
    and why."""

    def __init__(self, status: int, message: str, error: str = "invalid_request"):
        super().__init__(message)
        self.status = status
        self.error = error


_OAUTH_REQUIRED = ("oauth_consumer_key", "oauth_signature", "oauth_timestamp", "oauth_nonce",
                   "oauth_signature_method")  # fmt: skip


def oauth_request_problem(
    *,
    url: str,
    params: Sequence[tuple[str, str]],
    consumer_key: str,
    secret: str,
    nonce_unused,
    now: float | None = None,
) -> str | None:
    """Why a POST the tool signed with OAuth 1.0a HMAC-SHA1 does not check out, or None: this
    consumer's key, the method, a timestamp in the window, the signature, a one-time nonce.

    `params` are all the request's parameters (oauth_signature, the URL's query and a form
    body's fields among them), `url` the URL it was signed for; `nonce_unused(nonce)` records
    a nonce and says whether it was new. The nonce is recorded only once the signature
    verifies, so unsigned traffic cannot fill the nonce store.
    """
    values = dict(params)
    for name in _OAUTH_REQUIRED:
        if not values.get(name):
            return f"{name} is missing"
    if values["oauth_consumer_key"] != consumer_key:
        return f"unknown consumer key {values['oauth_consumer_key']!r}"
    if values["oauth_signature_method"] != SIGNATURE_HMAC_SHA1:
        return "oauth_signature_method must be HMAC-SHA1"
    try:
        timestamp = int(values["oauth_timestamp"])
    except ValueError:
        return "oauth_timestamp is not a number"
    if abs((time.time() if now is None else now) - timestamp) > OAUTH_WINDOW:
        return "oauth_timestamp is outside the allowed window"
    # The base string RFC 5849 section 3.4.1 builds, as the tool's own check does.
    signed = [(k, v) for k, v in params if k != "oauth_signature"]
    base_string = oauth_signature.signature_base_string(
        "POST",
        oauth_signature.base_string_uri(url),
        oauth_signature.normalize_parameters(signed),
    )
    expected = oauth_signature.sign_hmac_sha1(base_string, secret, "")
    # As bytes: compare_digest refuses a str that is not ASCII, which a forger may send.
    if not hmac.compare_digest(expected.encode(), values["oauth_signature"].encode()):
        return "the OAuth signature does not verify with the consumer secret"
    if not nonce_unused(values["oauth_nonce"]):
        return "oauth_nonce was already used"
    return None


def outcome_request_problem(
    *,
    url: str,
    authorization: str | None,
    body: bytes,
    consumer_key: str,
    secret: str,
    nonce_unused,
    now: float | None = None,
) -> str | None:
    """Why an outcome request's body hash or OAuth signature (`oauth_request_problem`) does
    not check out, or None; `url` is the outcome service URL the tool POSTed to.
    """
    if not authorization or not authorization.startswith("OAuth "):
        return "the request carries no OAuth Authorization header"
    try:
        pairs = oauth_utils.parse_authorization_header(authorization)
    except ValueError:
        return "the OAuth Authorization header is malformed"
    params = [(oauth_utils.unescape(k), oauth_utils.unescape(v)) for k, v in pairs if k != "realm"]
    claimed = dict(params).get("oauth_body_hash")
    if not claimed:
        return "oauth_body_hash is missing"
    body_hash = base64.b64encode(hashlib.sha1(body).digest()).decode()  # noqa: S324 (the spec's)
    if not hmac.compare_digest(body_hash.encode(), claimed.encode()):
        return "oauth_body_hash does not match the body"
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return oauth_request_problem(
        url=url,
        params=params + query,
        consumer_key=consumer_key,
        secret=secret,
        nonce_unused=nonce_unused,
        now=now,
    )


@dataclass(frozen=True)
class OutcomeRequest:
    """A parsed imsx_POXEnvelopeRequest: operation, message id, sourcedId, score text."""

    operation: str
    message_id: str
    sourcedid: str
    score: str | None


def parse_outcome_request(body: bytes) -> OutcomeRequest:
    """The operation of a POX request; ValueError with the reason when it is not one."""
    try:
        root = ET.fromstring(body)  # noqa: S314 (expat >= 2.4.1 refuses entity bombs)
    except ET.ParseError as e:
        raise ValueError(f"the body is not XML ({e})") from None
    ns = {"x": POX_NS}
    if root.tag != f"{{{POX_NS}}}imsx_POXEnvelopeRequest":
        raise ValueError("the body is not an imsx_POXEnvelopeRequest")
    message_id = root.findtext(".//x:imsx_messageIdentifier", "", ns).strip()
    body_element = root.find("x:imsx_POXBody", ns)
    if body_element is None or len(body_element) != 1:
        raise ValueError("imsx_POXBody must hold exactly one operation")
    operation = body_element[0].tag.split("}", 1)[-1].removesuffix("Request")
    sourcedid = body_element.findtext(".//x:sourcedGUID/x:sourcedId", "", ns).strip()
    score = body_element.findtext(".//x:resultScore/x:textString", None, ns)
    return OutcomeRequest(operation, message_id, sourcedid, score.strip() if score else score)


def parse_outcome_score(text: str | None) -> float:
    """The replaceResult score as a number; ValueError unless a decimal in 0.0-1.0."""
    try:
        value = float(text or "")
    except ValueError:
        raise ValueError(f"resultScore {text!r} is not a decimal number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"resultScore {text!r} is not between 0.0 and 1.0")
    return value


def pox_response_xml(
    *,
    success: bool,
    description: str,
    message_ref: str,
    operation: str,
    body: str = "",
) -> str:
    """An imsx_POXEnvelopeResponse; `body` is the operation's response element content."""
    code = "success" if success else "failure"
    severity = "status" if success else "error"
    name = operation.removesuffix("Request") + "Response"
    response_body = f"<{name}>{body}</{name}>" if success and operation else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeResponse xmlns="{POX_NS}">'
        "<imsx_POXHeader><imsx_POXResponseHeaderInfo>"
        "<imsx_version>V1.0</imsx_version>"
        f"<imsx_messageIdentifier>{secrets.token_hex(8)}</imsx_messageIdentifier>"
        "<imsx_statusInfo>"
        f"<imsx_codeMajor>{code}</imsx_codeMajor>"
        f"<imsx_severity>{severity}</imsx_severity>"
        f"<imsx_description>{xml_escape(description)}</imsx_description>"
        f"<imsx_messageRefIdentifier>{xml_escape(message_ref)}</imsx_messageRefIdentifier>"
        f"<imsx_operationRefIdentifier>{xml_escape(operation)}</imsx_operationRefIdentifier>"
        "</imsx_statusInfo>"
        "</imsx_POXResponseHeaderInfo></imsx_POXHeader>"
        f"<imsx_POXBody>{response_body}</imsx_POXBody>"
        "</imsx_POXEnvelopeResponse>"
    )


def _number(payload: Mapping, name: str, *, positive: bool = False) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GradeRefused(400, f"{name} must be a number")
    if value < 0 or (positive and value == 0):
        raise GradeRefused(400, f"{name} must be {'positive' if positive else 'at least 0'}")
    return float(value)


def parse_iso_timestamp(value) -> datetime.datetime:
    """An ISO 8601 timestamp with a UTC offset, as AGS requires; GradeRefused otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise GradeRefused(400, f"timestamp {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise GradeRefused(400, f"timestamp {value!r} has no timezone")
    return moment


def validate_score(payload, members: Iterable[str]) -> dict:
    """A score POST as AGS 2.0 defines it, checked; GradeRefused says what is wrong."""
    if not isinstance(payload, dict):
        raise GradeRefused(400, "the score must be a JSON object")
    user_id = payload.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise GradeRefused(400, "userId is required")
    if user_id not in set(members):
        raise GradeRefused(400, f"userId {user_id!r} is not a member of this course")
    if payload.get("activityProgress") not in ACTIVITY_PROGRESS:
        raise GradeRefused(400, f"activityProgress must be one of {', '.join(ACTIVITY_PROGRESS)}")
    if payload.get("gradingProgress") not in GRADING_PROGRESS:
        raise GradeRefused(400, f"gradingProgress must be one of {', '.join(GRADING_PROGRESS)}")
    parse_iso_timestamp(payload.get("timestamp"))
    if "scoreGiven" in payload:
        _number(payload, "scoreGiven")
        _number(payload, "scoreMaximum", positive=True)
    elif "scoreMaximum" in payload:
        _number(payload, "scoreMaximum", positive=True)
    return dict(payload)


def validate_new_lineitem(payload) -> dict:
    """A line item POST: label and a positive scoreMaximum required; GradeRefused otherwise."""
    if not isinstance(payload, dict):
        raise GradeRefused(400, "the line item must be a JSON object")
    if not isinstance(payload.get("label"), str) or not payload["label"].strip():
        raise GradeRefused(400, "label is required")
    _number(payload, "scoreMaximum", positive=True)
    for key in ("resourceId", "resourceLinkId", "tag"):
        if key in payload and not isinstance(payload[key], str):
            raise GradeRefused(400, f"{key} must be a string")
    allowed = ("label", "scoreMaximum", "resourceId", "resourceLinkId", "tag",
               "startDateTime", "endDateTime", "gradesReleased")  # fmt: skip
    return {k: payload[k] for k in allowed if k in payload}


def _tool_key(token: str, jwks: Mapping, *, name: str):
    """The public key in the tool's JWKS that signed `token`, by the kid of its RS256 header;
    ValueError naming the problem (and the token as `name`) otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise ValueError(f"{name} is not a JWT ({e})") from None
    if header.get("alg") != "RS256":
        raise ValueError(f"{name} must be signed with RS256")
    if not header.get("kid"):
        raise ValueError(f"{name} header has no kid")
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    matching = [k for k in keys if k.get("kid") == header["kid"]]
    if not matching:
        raise ValueError(f"the tool's JWKS has no key {header['kid']!r}")
    return RSAAlgorithm.from_jwk(json.dumps(matching[0]))


def verify_client_assertion(
    assertion: str,
    *,
    jwks: Mapping,
    client_id: str,
    token_url: str,
    jti_unused,
    now: float | None = None,
) -> dict:
    """The claims of a valid client assertion; GradeRefused(401, invalid_client) otherwise.

    Checks the RS256 signature against the tool's JWKS, iss = sub = client_id,
    aud = the token URL, exp (at most five minutes ahead) and a one-time jti.
    """

    def refuse(message: str) -> GradeRefused:
        return GradeRefused(401, message, "invalid_client")

    try:
        key = _tool_key(assertion, jwks, name="client_assertion")
    except ValueError as e:
        raise refuse(str(e)) from None
    current = time.time() if now is None else now
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["RS256"],
            audience=token_url,
            issuer=client_id,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"], "verify_iat": False},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise refuse("client_assertion has expired") from None
    except jwt.InvalidAudienceError:
        raise refuse("client_assertion aud is not this token URL") from None
    except jwt.InvalidIssuerError:
        raise refuse("client_assertion iss is not the tool's client id") from None
    except jwt.PyJWTError as e:
        raise refuse(f"client_assertion does not verify ({e})") from None
    if claims["sub"] != client_id:
        raise refuse("client_assertion sub is not the tool's client id")
    if claims["exp"] > current + MAX_ASSERTION_LIFETIME + 5:
        raise refuse("client_assertion lives longer than five minutes")
    if not jti_unused(str(claims["jti"]), float(claims["exp"])):
        raise refuse("client_assertion jti was already used")
    return claims


_GRADEBOOK_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Gradebook · LearnHub demo LMS</title>
<style>body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }
table { border-collapse: collapse; } th, td { border: 1px solid #888; padding: .3rem .6rem; }
</style></head>
<body>
<h1>Gradebook</h1>
{% if rows %}<table id="gradebook">
<thead><tr><th>Course</th><th>Learner</th><th>Column</th><th>Score</th><th>Out of</th>
<th>Progress</th><th>Via</th><th>Received</th></tr></thead>
<tbody>
{% for row in rows %}<tr data-course="{{ row['course'] }}" data-user="{{ row['user_id'] }}"
 data-column="{{ row['column'] }}">
<td>{{ row['course'] }}</td><td>{{ row['user_id'] }}</td><td>{{ row['column'] }}</td>
<td class="score">{{ row['score'] }}</td><td>{{ row['out_of'] }}</td>
<td>{{ row['progress'] }}</td><td>{{ row['via'] }}</td><td>{{ row['received'] }}</td></tr>
{% end %}</tbody>
</table>{% else %}<p id="empty">No grades yet.</p>{% end %}
</body>
</html>
""",
    name="gradebook.html",
)


def gradebook_html(rows: list[dict]) -> str:
    return _GRADEBOOK_PAGE.generate(rows=rows).decode()


# ---------------------------------------------------------------- content selection (pure)

_LEEWAY = 5


class DeepLinkRefused(ValueError):
    """A deep-linking response or Content-Item selection the LMS will not take; the message
    says why."""


def verify_deep_linking_response(
    token: str, *, jwks: Mapping, platform: Platform, nonce_unused
) -> dict:
    """The claims of an LtiDeepLinkingResponse, checked as Deep Linking 2.0 and the Security
    Framework ask a platform to: the tool's RS256 signature, iss = the tool's client id, aud
    naming this issuer, a fresh exp and iat, a one-time nonce, and the LTI claims.

    `nonce_unused(nonce, until)` records a nonce and says whether it was new.
    DeepLinkRefused says what is wrong.
    """
    try:
        key = _tool_key(token, jwks, name="JWT")
    except ValueError as e:
        raise DeepLinkRefused(str(e)) from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=platform.issuer,
            issuer=platform.client_id,
            options={"require": ["iss", "aud", "exp", "iat"]},
            leeway=_LEEWAY,
        )
    except jwt.InvalidSignatureError:
        raise DeepLinkRefused("JWT signature does not verify with the tool's key") from None
    except jwt.MissingRequiredClaimError as e:
        raise DeepLinkRefused(f"JWT has no {e.claim} claim") from None
    except jwt.ExpiredSignatureError:
        raise DeepLinkRefused("JWT has expired") from None
    except jwt.ImmatureSignatureError:
        raise DeepLinkRefused("JWT is not valid yet (iat or nbf in the future)") from None
    except jwt.InvalidIssuerError:
        raise DeepLinkRefused("JWT iss is not the tool's client id") from None
    except jwt.InvalidAudienceError:
        raise DeepLinkRefused("JWT aud does not include this platform's issuer") from None
    except jwt.PyJWTError as e:
        raise DeepLinkRefused(f"JWT does not verify ({e})") from None
    # PyJWT has read both as integers already.
    issued, expires = float(claims["iat"]), float(claims["exp"])
    if time.time() - issued > DEEP_LINK_RESPONSE_MAX_AGE + _LEEWAY:
        raise DeepLinkRefused("JWT was issued more than five minutes ago")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise DeepLinkRefused("JWT has no nonce claim")
    if claims.get(LTI_CLAIM + "message_type") != DEEP_LINKING_RESPONSE:
        raise DeepLinkRefused(f"JWT message_type must be {DEEP_LINKING_RESPONSE}")
    if claims.get(LTI_CLAIM + "version") != "1.3.0":
        raise DeepLinkRefused("JWT version must be 1.3.0")
    if claims.get(LTI_CLAIM + "deployment_id") != platform.deployment_id:
        raise DeepLinkRefused("JWT deployment_id is not this platform's deployment")
    # A replay is refused by its age once the nonce is forgotten.
    if not nonce_unused(nonce, min(expires, issued + DEEP_LINK_RESPONSE_MAX_AGE)):
        raise DeepLinkRefused("JWT nonce was already used")
    return claims


def verify_content_item_selection(
    arguments: Mapping[str, list[str]],
    *,
    url: str,
    consumer_key: str,
    secret: str,
    nonce_unused,
    now: float | None = None,
) -> dict[str, str]:
    """The fields of a ContentItemSelection, checked as Content-Item 1.0 asks a consumer that
    sent accept_unsigned=false to: each parameter once, signed by this consumer's key and
    secret for `url`, the return URL (`oauth_request_problem`), and the LTI message type and
    version.

    `arguments` maps each parameter to all its values; DeepLinkRefused says what is wrong.
    """
    repeated = repeated_parameter(arguments)
    if repeated is not None:
        raise DeepLinkRefused(repeated)
    fields = {name: values[0] for name, values in arguments.items()}
    problem = oauth_request_problem(
        url=url,
        params=list(fields.items()),
        consumer_key=consumer_key,
        secret=secret,
        nonce_unused=nonce_unused,
        now=now,
    )
    if problem is not None:
        raise DeepLinkRefused(problem)
    if fields.get("lti_message_type") != CONTENT_ITEM_SELECTION:
        raise DeepLinkRefused(f"lti_message_type must be {CONTENT_ITEM_SELECTION}")
    if fields.get("lti_version") != "LTI-1p0":
        raise DeepLinkRefused("lti_version must be LTI-1p0")
    return fields


def deep_link_items(
    content_items, *, accept_multiple: bool, tool_origins: Iterable[str]
) -> list[dict]:
    """The links a verified response asks for, every item checked before any link is made:
    {"title", "text", "url", "custom", "column"}, `column` the line item to make or None.

    Deep Linking makes the claim optional: absent, as empty, it asks for nothing.
    """
    if content_items is None:
        return []
    if not isinstance(content_items, list):
        raise DeepLinkRefused("content_items must be a list")
    return _checked_items(content_items, _resource_link, accept_multiple, tool_origins)


def content_item_links(
    content_items: str | None, *, accept_multiple: bool, tool_origins: Iterable[str]
) -> list[dict]:
    """The links a verified ContentItemSelection asks for, as `deep_link_items` gives them;
    `column` is the {"label", "scoreMaximum"} of the item's lineItem, or None.

    Content-Item makes the parameter optional: absent or empty, as with an empty @graph, it
    asks for nothing (the instructor selected nothing).
    """
    if not content_items:
        return []
    try:
        graph = json.loads(content_items)
    except ValueError:
        raise DeepLinkRefused("content_items is not JSON") from None
    if not isinstance(graph, dict) or not isinstance(graph.get("@graph"), list):
        raise DeepLinkRefused("content_items must be a JSON object whose @graph is a list")
    return _checked_items(graph["@graph"], _lti_link_item, accept_multiple, tool_origins)


def _checked_items(items: list, check, accept_multiple: bool, tool_origins: Iterable[str]):
    """`check(item, origins)` of each item; DeepLinkRefused names the first bad one."""
    if len(items) > 1 and not accept_multiple:
        raise DeepLinkRefused(f"the request accepts one content item, not {len(items)}")
    origins = set(tool_origins)
    links = []
    for n, item in enumerate(items, 1):
        try:
            if not isinstance(item, dict):
                raise DeepLinkRefused("must be a JSON object")
            links.append(check(item, origins))
        except DeepLinkRefused as e:
            raise DeepLinkRefused(f"content item {n}: {e}") from None
    return links


def _link_fields(item: dict, tool_origins: set[str]) -> dict:
    """What a link item says alike in both messages: title, text, url, custom parameters."""
    for name in ("title", "text", "url"):
        if name in item and not isinstance(item[name], str):
            raise DeepLinkRefused(f"{name} must be a string")
    url = item.get("url")
    if url is not None:
        try:
            origin = url_origin(url)
        except ValueError:  # a port out of range
            origin = None
        if origin not in tool_origins:
            raise DeepLinkRefused(f"url {url!r} is not on the tool's origin")
    custom = item.get("custom", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        raise DeepLinkRefused("custom must map names to strings")
    title = item.get("title", "").strip() or DEEP_LINKING_TITLE
    return {"title": title, "text": item.get("text", ""), "url": url, "custom": dict(custom)}


def _resource_link(item: dict, tool_origins: set[str]) -> dict:
    if item.get("type") != "ltiResourceLink":
        raise DeepLinkRefused(f"type {item.get('type')!r} is not accepted, only ltiResourceLink")
    link = _link_fields(item, tool_origins)
    column = item.get("lineItem")
    if column is not None:
        if not isinstance(column, dict):
            raise DeepLinkRefused("lineItem must be a JSON object")
        try:
            # Without a label, Deep Linking names the column after the item.
            column = validate_new_lineitem({"label": link["title"], **column})
        except GradeRefused as e:
            raise DeepLinkRefused(f"lineItem {e}") from None
    return {**link, "column": column}


def _lti_link_item(item: dict, tool_origins: set[str]) -> dict:
    if item.get("@type") != "LtiLinkItem":
        raise DeepLinkRefused(f"@type {item.get('@type')!r} is not accepted, only LtiLinkItem")
    if item.get("mediaType") != LTI_LINK_MEDIA_TYPE:
        raise DeepLinkRefused(
            f"mediaType {item.get('mediaType')!r} is not accepted, only {LTI_LINK_MEDIA_TYPE}"
        )
    link = _link_fields(item, tool_origins)
    line = item.get("lineItem")
    return {**link, "column": None if line is None else _link_item_column(line, link["title"])}


def _link_item_column(line, title: str) -> dict:
    """The column a Content-Item lineItem asks for: its label (by default the item's title)
    and normalMaximum. The rest is checked but not kept: LTI 1.1 has no line item service."""
    if not isinstance(line, dict) or line.get("@type") != "LineItem":
        raise DeepLinkRefused("lineItem must be a JSON object of @type LineItem")
    label = line.get("label", title)
    if not isinstance(label, str) or not label.strip():
        raise DeepLinkRefused("lineItem label is required")
    if not isinstance(line.get("reportingMethod", ""), str):
        raise DeepLinkRefused("lineItem reportingMethod must be a string")
    activity = line.get("assignedActivity", {})
    if not isinstance(activity, dict) or not isinstance(activity.get("activityId", ""), str):
        raise DeepLinkRefused("lineItem assignedActivity must hold a string activityId")
    limits = line.get("scoreConstraints")
    if not isinstance(limits, dict) or limits.get("@type") != "NumericLimits":
        raise DeepLinkRefused("lineItem scoreConstraints must be of @type NumericLimits")
    try:
        maximum = _number(limits, "normalMaximum", positive=True)
        if "totalMaximum" in limits:
            _number(limits, "totalMaximum")
    except GradeRefused as e:
        raise DeepLinkRefused(f"lineItem scoreConstraints {e}") from None
    return {"label": label, "scoreMaximum": maximum}


_DEEP_LINK_RETURN_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Deep linking · LearnHub demo LMS</title>
<style>body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }</style></head>
<body>
{% if links %}<h1>Added {{ len(links) }} link{{ "s" if len(links) > 1 else "" }}
 to {{ course_title }}</h1>
<ul id="added">
{% for link in links %}<li>{{ link.title }}</li>
{% end %}</ul>
{% else %}<h1>No links added to {{ course_title }}</h1>
<p>The tool sent no content items: the selection was cancelled.</p>
{% end %}{% for note in notes %}<p class="tool-message">{{ note }}</p>
{% end %}<p><a href="/course" target="_top">Back to the course</a></p>
</body>
</html>
""",
    name="deep_link_return.html",
)


def deep_link_return_html(
    *, course_title: str, links: list[CourseLink], notes: Iterable[str]
) -> str:
    """The page the tool's frame shows once the LMS has taken a response: the links made and
    the tool's own messages to the instructor (`notes`)."""
    return _DEEP_LINK_RETURN_PAGE.generate(
        course_title=course_title, links=links, notes=list(notes)
    ).decode()


# ---------------------------------------------------------------- the LMS


class LaunchRefused(ValueError):
    """The platform will not answer this authentication request; the message says why."""


class ToolKeysUnavailable(LookupError):
    """The tool's JWKS cannot be had: its URL is unset, unreachable, or serves no key set."""


@dataclass
class OutcomeGrade:
    """An LTI 1.1 result the LMS holds: the cell (user, course, resource link) and its score."""

    sourcedid: str
    cell: tuple[str, str, str]
    score: float
    message_id: str
    received: float = field(default_factory=time.time)

    @property
    def received_iso(self) -> str:
        return datetime.datetime.fromtimestamp(self.received, datetime.UTC).isoformat()


@dataclass(frozen=True)
class AccessToken:
    """A bearer token the LMS issued to the tool, with its scopes."""

    value: str = field(repr=False)
    scopes: frozenset[str]
    expires: float


@dataclass(frozen=True)
class Member:
    """One person's membership of a course, as NRPS reports it; frozen, so that the change
    log keeps each state a member had."""

    user_id: str
    roles: tuple[str, ...]
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    status: str = "Active"

    def membership(self) -> dict:
        """The member in a membership container: names and email only where the LMS knows
        them, as a platform withholds what it does not share."""
        entry = {"user_id": self.user_id, "roles": list(self.roles), "status": self.status}
        for key in ("name", "given_name", "family_name", "email"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        return entry


@dataclass
class PendingLaunch:
    """An LTI 1.3 launch the LMS has started and the tool has not yet redeemed."""

    user_id: str
    roles: tuple[str, ...]
    context_id: str
    context_title: str
    target_link_uri: str
    resource_link_id: str | None = None
    name: str | None = None
    email: str | None = None
    ags: Mapping | None = None
    nrps: Mapping | None = None
    custom: Mapping[str, str] | None = None
    message_type: str = RESOURCE_LINK_REQUEST
    deep_linking: Mapping | None = None

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
            nrps=self.nrps,
            custom=self.custom,
            message_type=self.message_type,
            deep_linking=self.deep_linking,
        )


@dataclass(frozen=True)
class DeepLinkRequest:
    """A request to pick content, by LTI 1.3 deep linking or LTI 1.1 Content-Item, that the
    LMS sent and the tool has not answered; kept by its data."""

    context_id: str
    user_id: str
    accept_multiple: bool


@dataclass(frozen=True)
class CourseLink:
    """A resource link placed in a course by deep linking (LTI 1.3) or Content-Item (LTI 1.1),
    launched as the tool asked: `url` None launches the tool's launch URL.

    An LTI 1.3 link's column is the line item `lineitem`. LTI 1.1 has no line item service:
    its link is its own column, graded by lis_result_sourcedid, and keeps the `column_label`
    and `score_maximum` the tool asked for.
    """

    id: str
    context_id: str
    title: str
    text: str
    url: str | None
    custom: dict[str, str]
    lineitem: str | None
    lti_version: str = "1.3"
    column_label: str | None = None
    score_maximum: float | None = None


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

    def all_arguments(self) -> dict[str, list[str]]:
        """Every query and form parameter with all its values, so a repeated one is seen."""
        return {
            name: [v.decode("utf-8", "replace") for v in values]
            for name, values in self.request.arguments.items()
        }

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
                links=self.lms.course_links(self.lms.course_id),
            )
        )


class _LTI11Handler(_LMSHandler):
    """A route that sends the browser to the tool's LTI 1.1 launch URL, which it needs."""

    def prepare(self) -> None:
        if not self.lms.tool_lti11_launch_url:
            self.refuse(503, "DemoLMS.tool_lti11_launch_url is not set (see --tool-url)")


class LTI11LaunchHandler(_LTI11Handler):
    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        link_id = self.get_argument("link", "")
        assignment = self.get_argument("assignment", "").strip()
        launch_url = self.lms.tool_lti11_launch_url
        if link_id:
            # A link made by Content-Item launches what the tool put in it.
            link = self.lms.course_link(link_id, course, "1.1")
            if link is None:
                return self.refuse(404, "no such link in this course")
            resource_link_id, custom = link.id, link.custom
            placement = {"resource_link_title": link.title}
            launch_url = link.url or launch_url
        else:
            # ?assignment=ps01 plays a link of its own for that assignment (custom parameter).
            resource_link_id = f"{course}-{assignment}" if assignment else f"{course}-notebooks"
            custom = {"assignment": assignment} if assignment else {}
            placement = {}
        params = lti11_launch_params(
            user_id=user,
            roles=roles,
            context_id=course,
            context_title=self.lms.course_title_for(course),
            resource_link_id=resource_link_id,
            name=self.get_argument("name", None),
            email=self.get_argument("email", None),
            extra={
                "launch_presentation_document_target": "iframe",
                **placement,
                **lti11_custom_params(custom),
            },
            **self.lms.lti11_outcome_params(user, course, resource_link_id),
        )
        fields = self.lms.sign_lti11(params, launch_url=launch_url)
        self.finish(autosubmit_form_html(launch_url, fields, title="Opening LearnHub…"))


class ContentItemRequestHandler(_LTI11Handler):
    """GET /contentitem11: a ContentItemSelectionRequest, as an LMS's "add content from a
    tool" button over LTI 1.1."""

    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        fields = self.lms.content_item_request(user_id=user, roles=roles, context_id=course)
        self.finish(
            autosubmit_form_html(self.lms.tool_lti11_launch_url, fields, title="Opening LearnHub…")
        )


class _LTI13LoginHandler(_LMSHandler):
    """A route that starts an LTI 1.3 login at the tool, which needs both tool URLs."""

    def prepare(self) -> None:
        if not (self.lms.tool_lti13_login_url and self.lms.tool_lti13_launch_url):
            self.refuse(503, "DemoLMS.tool_lti13_login_url/launch_url are not set")

    def storage_target(self) -> str | None:
        # ?storage=off starts a launch without platform storage, as older LMSs do.
        return None if self.get_argument("storage", "") == "off" else "_parent"


class LTI13LaunchHandler(_LTI13LoginHandler):
    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        link_id = self.get_argument("link", "")
        assignment = self.get_argument("assignment", "").strip()
        if link_id:
            # A link made by deep linking launches what the tool put in it.
            link = self.lms.course_link(link_id, course, "1.3")
            if link is None:
                return self.refuse(404, "no such link in this course")
            placement = {
                "resource_link_id": link.id,
                "target_link_uri": link.url,
                "custom": link.custom,
                "ags": self.lms.ags_claim(course, lineitem=link.lineitem),
            }
        elif assignment:
            # An assignment's link comes with its column, as in Canvas.
            resource_link_id = f"{course}-{assignment}"
            lineitem = self.lms.link_lineitem(course, resource_link_id, assignment)
            placement = {
                "resource_link_id": resource_link_id,
                "custom": {"assignment": assignment},
                "ags": self.lms.ags_claim(course, lineitem=lineitem),
            }
        else:
            placement = {}
        login_url, params = self.lms.initiate_lti13(
            user_id=user,
            roles=roles,
            context_id=course,
            name=self.get_argument("name", None),
            email=self.get_argument("email", None),
            storage_target=self.storage_target(),
            **placement,
        )
        self.finish(autosubmit_form_html(login_url, params, title="Opening LearnHub…"))


class DeepLinkingHandler(_LTI13LoginHandler):
    """GET /deeplink13: a deep-linking request, as an LMS's "add content from a tool" button."""

    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        login_url, params = self.lms.initiate_deep_linking(
            user_id=user, roles=roles, context_id=course, storage_target=self.storage_target()
        )
        self.finish(autosubmit_form_html(login_url, params, title="Opening LearnHub…"))


class _SelectionReturnHandler(_LMSHandler):
    """Where the tool answers a request to pick content. Nothing is made unless the whole
    answer checks out; a refusal is kept in `lms.refusals` under `route`."""

    route: str

    def refuse_answer(self, refused: Exception) -> None:
        self.lms.refusals.append((self.route, 400, str(refused)))
        self.refuse(400, str(refused))

    def show_links(self, context_id: str, links: list[CourseLink], *, msg, errormsg) -> None:
        """The answer page: the links made, and the tool's own messages to the instructor."""
        notes = [
            prefix + message
            for message, prefix in ((msg, "The tool says: "), (errormsg, "The tool reports: "))
            if isinstance(message, str) and message
        ]
        self.finish(
            deep_link_return_html(
                course_title=self.lms.course_title_for(context_id), links=links, notes=notes
            )
        )


class DeepLinkReturnHandler(_SelectionReturnHandler):
    """POST /deep_link_return: the tool's LtiDeepLinkingResponse, form field JWT."""

    route = "deep_link_return"

    async def post(self) -> None:
        lms = self.lms
        token = self.get_body_argument("JWT", "")
        try:
            if not token:
                raise DeepLinkRefused("the form field JWT is required")
            claims = verify_deep_linking_response(
                token,
                jwks=await lms.tool_jwks(),
                platform=lms.platform,
                nonce_unused=lms.use_deep_link_nonce,
            )
            request = lms.redeem_deep_link(claims.get(DL_DATA_CLAIM))
            items = deep_link_items(
                claims.get(DL_CONTENT_ITEMS_CLAIM),
                accept_multiple=request.accept_multiple,
                tool_origins=lms.tool_origins(),
            )
        except (DeepLinkRefused, ToolKeysUnavailable) as refused:
            return self.refuse_answer(refused)
        links = lms.add_links(request.context_id, items)
        lms.deep_link_responses.append(claims)
        self.show_links(
            request.context_id,
            links,
            msg=claims.get(DL_CLAIM + "msg"),
            errormsg=claims.get(DL_CLAIM + "errormsg"),
        )


class ContentItemReturnHandler(_SelectionReturnHandler):
    """POST /content_item_return: the tool's ContentItemSelection, a form the tool signed
    with this consumer's key and secret."""

    route = "content_item_return"

    def post(self) -> None:
        lms = self.lms
        try:
            fields = verify_content_item_selection(
                self.all_arguments(),
                url=lms.content_item_return_url,
                consumer_key=lms.consumer_key,
                secret=lms.consumer_secret,
                nonce_unused=lms.use_oauth_nonce,
            )
            request = lms.content_item_requests.redeem(fields.get("data", ""))
            items = content_item_links(
                fields.get("content_items"),
                accept_multiple=request.accept_multiple,
                tool_origins=lms.tool_origins(),
            )
        except DeepLinkRefused as refused:
            return self.refuse_answer(refused)
        links = lms.add_links(request.context_id, items, lti_version="1.1")
        lms.content_item_responses.append(fields)
        self.show_links(
            request.context_id,
            links,
            msg=fields.get("lti_msg"),
            errormsg=fields.get("lti_errormsg"),
        )


class AuthorizationHandler(_LMSHandler):
    """The OIDC authorization endpoint: answers the tool's login with a signed id_token."""

    def get(self) -> None:
        self._authorize()

    def post(self) -> None:
        self._authorize()

    def _authorize(self) -> None:
        arguments = self.all_arguments()
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


class OutcomeServiceHandler(_LMSHandler):
    """POST /outcomes: LTI 1.1 Basic Outcomes, signed with the consumer secret and body hash."""

    def answer(self, status: int, **pox) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(pox_response_xml(**pox))

    def post(self) -> None:
        lms = self.lms
        body = self.request.body
        problem = outcome_request_problem(
            url=lms.url + self.request.uri,
            authorization=self.request.headers.get("Authorization"),
            body=body,
            consumer_key=lms.consumer_key,
            secret=lms.consumer_secret,
            nonce_unused=lms.use_oauth_nonce,
        )
        if problem is not None:
            lms.refusals.append(("outcomes", 401, problem))
            self.answer(401, success=False, description=problem, message_ref="", operation="")
            return
        try:
            request = parse_outcome_request(body)
        except ValueError as e:
            lms.refusals.append(("outcomes", 400, str(e)))
            self.answer(400, success=False, description=str(e), message_ref="", operation="")
            return
        reply = {"message_ref": request.message_id, "operation": request.operation + "Request"}
        cell = lms.sourcedids.get(request.sourcedid)
        if cell is None:
            return self.answer(200, success=False, description="unknown sourcedId", **reply)
        if request.operation == "replaceResult":
            try:
                score = parse_outcome_score(request.score)
            except ValueError as e:
                lms.refusals.append(("outcomes", 200, str(e)))
                return self.answer(200, success=False, description=str(e), **reply)
            grade = OutcomeGrade(request.sourcedid, cell, score, request.message_id)
            lms.outcomes[request.sourcedid] = grade
            lms.outcome_requests.append(grade)
            description = f"Score for {request.sourcedid} is now {score:g}"
            return self.answer(200, success=True, description=description, **reply)
        if request.operation == "readResult":
            held = lms.outcomes.get(request.sourcedid)
            text = "" if held is None else f"{held.score:g}"
            result = (
                "<result><resultScore><language>en</language>"
                f"<textString>{text}</textString></resultScore></result>"
            )
            return self.answer(200, success=True, description="Result read", body=result, **reply)
        if request.operation == "deleteResult":
            lms.outcomes.pop(request.sourcedid, None)
            return self.answer(200, success=True, description="Result deleted", **reply)
        self.answer(
            200,
            success=False,
            description=f"{request.operation} is not supported",
            message_ref=request.message_id,
            operation=request.operation + "Request",
        )


class TokenHandler(_LMSHandler):
    """POST /token: the client-credentials grant with a JWT assertion signed by the tool's key."""

    def refuse_token(self, refused: GradeRefused) -> None:
        self.lms.refusals.append(("token", refused.status, str(refused)))
        self.set_status(refused.status)
        self.finish({"error": refused.error, "error_description": str(refused)})

    async def post(self) -> None:
        lms = self.lms
        args = {k: self.get_body_argument(k, "") for k in self.request.body_arguments}
        try:
            if args.get("grant_type") != "client_credentials":
                raise GradeRefused(400, "grant_type must be client_credentials",
                                   "unsupported_grant_type")  # fmt: skip
            if args.get("client_assertion_type") != ASSERTION_TYPE:
                raise GradeRefused(400, f"client_assertion_type must be {ASSERTION_TYPE}")
            if not args.get("client_assertion"):
                raise GradeRefused(400, "client_assertion is required")
            try:
                jwks = await lms.tool_jwks()
            except ToolKeysUnavailable as e:
                raise GradeRefused(401, str(e), "invalid_client") from None
            verify_client_assertion(
                args["client_assertion"],
                jwks=jwks,
                client_id=lms.platform.client_id,
                token_url=lms.token_url,
                jti_unused=lms.use_jti,
            )
            requested = set(args.get("scope", "").split())
            granted = requested & TOKEN_SCOPES
            if not granted:
                raise GradeRefused(400, "none of the requested scopes is granted", "invalid_scope")
        except GradeRefused as refused:
            return self.refuse_token(refused)
        token = lms.issue_token(granted)
        self.finish({
            "access_token": token.value,
            "token_type": "Bearer",
            "expires_in": int(lms.token_lifetime),
            "scope": " ".join(sorted(granted)),
        })  # fmt: skip


class _ServiceHandler(_LMSHandler):
    """An LTI service endpoint (AGS, NRPS): a valid bearer token with one of the needed
    scopes, JSON in and out."""

    def authorize(self, *scopes: str) -> bool:
        header = self.request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        token = self.lms.bearer(value.strip()) if kind.lower() == "bearer" else None
        if token is None:
            self.refuse_json(GradeRefused(401, "a valid bearer token is required", "invalid_token"))
            return False
        if not token.scopes & set(scopes):
            self.refuse_json(
                GradeRefused(403, f"the token lacks the scope {scopes[0]}", "insufficient_scope")
            )
            return False
        return True

    def refuse_json(self, refused: GradeRefused) -> None:
        self.lms.refusals.append((self.request.path, refused.status, str(refused)))
        self.set_status(refused.status)
        if refused.status == 401:
            self.set_header("WWW-Authenticate", f'Bearer error="{refused.error}"')
        self.finish({"error": refused.error, "error_description": str(refused)})

    def json_body(self, content_type: str):
        if self.request.headers.get("Content-Type", "").split(";")[0].strip() != content_type:
            raise GradeRefused(415, f"Content-Type must be {content_type}")
        try:
            return json.loads(self.request.body)
        except ValueError:
            raise GradeRefused(400, "the body is not JSON") from None

    def known_course(self, context: str) -> None:
        if context not in self.lms.members:
            raise GradeRefused(404, f"no course {context!r}", "not_found")

    def course_items(self, context: str) -> dict[str, dict]:
        self.known_course(context)
        return self.lms.lineitems.setdefault(context, {})

    def check_accept(self, media_type: str) -> None:
        """GradeRefused(406) unless the Accept header (if any) allows `media_type`."""
        header = self.request.headers.get("Accept", "*/*")
        accepted = {t.split(";")[0].strip() for t in header.split(",")}
        if not accepted & {media_type, media_type.split("/")[0] + "/*", "*/*"}:
            raise GradeRefused(406, f"Accept must allow {media_type}", "not_acceptable")

    def count_argument(self, name: str, *, least: int = 0) -> int | None:
        """The query argument `name` as a whole number of at least `least`, None if absent."""
        value = self.get_query_argument(name, None)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or int(value) < least:
            raise GradeRefused(400, f"{name} must be a whole number of at least {least}")
        return int(value)

    def send_json(self, data, content_type: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.finish(json.dumps(data))


class LineItemsHandler(_ServiceHandler):
    """GET and POST /api/lti/courses/<context>/lineitems: the course's grade columns."""

    def get(self, context: str) -> None:
        if not self.authorize(SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY):
            return
        try:
            items = list(self.course_items(context).values())
        except GradeRefused as refused:
            return self.refuse_json(refused)
        for arg, key in (("resource_id", "resourceId"), ("resource_link_id", "resourceLinkId"),
                         ("tag", "tag")):  # fmt: skip
            wanted = self.get_query_argument(arg, None)
            if wanted is not None:
                items = [i for i in items if i.get(key) == wanted]
        self.send_json(items, LINEITEM_CONTAINER_TYPE)

    def post(self, context: str) -> None:
        if not self.authorize(SCOPE_LINEITEM):
            return
        try:
            items = self.course_items(context)
            item = validate_new_lineitem(self.json_body(LINEITEM_TYPE))
        except GradeRefused as refused:
            return self.refuse_json(refused)
        item["id"] = self.lms.new_lineitem_id(context)
        items[item["id"]] = item
        self.lms.lineitem_posts.append(dict(item))
        self.send_json(item, LINEITEM_TYPE, status=201)


class LineItemHandler(_ServiceHandler):
    """GET and DELETE one line item."""

    def item(self, context: str, number: str) -> dict:
        item_id = f"{self.lms.lineitems_url(context)}/{number}"
        item = self.course_items(context).get(item_id)
        if item is None:
            raise GradeRefused(404, f"no line item {number} in course {context!r}", "not_found")
        return item

    def get(self, context: str, number: str) -> None:
        if not self.authorize(SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY):
            return
        try:
            self.send_json(self.item(context, number), LINEITEM_TYPE)
        except GradeRefused as refused:
            self.refuse_json(refused)

    def delete(self, context: str, number: str) -> None:
        if not self.authorize(SCOPE_LINEITEM):
            return
        try:
            item = self.item(context, number)
        except GradeRefused as refused:
            return self.refuse_json(refused)
        del self.lms.lineitems[context][item["id"]]
        self.lms.scores = {k: v for k, v in self.lms.scores.items() if k[0] != item["id"]}
        self.set_status(204)
        self.finish()


class ScoresHandler(LineItemHandler):
    """POST a learner's score to a line item; an older timestamp than the held one is refused."""

    def get(self, context: str, number: str) -> None:
        raise tornado.web.HTTPError(405)

    def delete(self, context: str, number: str) -> None:
        raise tornado.web.HTTPError(405)

    def post(self, context: str, number: str) -> None:
        if not self.authorize(SCOPE_SCORE):
            return
        try:
            item = self.item(context, number)
            score = validate_score(self.json_body(SCORE_TYPE), self.lms.members.get(context, ()))
            key = (item["id"], score["userId"])
            held = self.lms.scores.get(key)
            if held and parse_iso_timestamp(held["timestamp"]) > parse_iso_timestamp(
                score["timestamp"]
            ):
                raise GradeRefused(409, "a score with a later timestamp is already held",
                                   "conflict")  # fmt: skip
        except GradeRefused as refused:
            return self.refuse_json(refused)
        score["received"] = datetime.datetime.now(datetime.UTC).isoformat()
        self.lms.scores[key] = score
        self.lms.score_posts.append({**score, "lineitem": item["id"]})
        self.send_json({"resultUrl": f"{item['id']}/results/{quote(score['userId'])}"},
                       "application/json")  # fmt: skip


class MembershipsHandler(_ServiceHandler):
    """GET /api/lti/courses/<context>/memberships: NRPS 2.0's membership container.

    `limit` pages through the members by user id, a Link rel="next" naming the next page;
    the last page's rel="differences" link asks, with `since`, for what changes after it.
    """

    def get(self, context: str) -> None:
        if not self.authorize(SCOPE_CONTEXT_MEMBERSHIP_READONLY):
            return
        lms = self.lms
        try:
            self.known_course(context)
            self.check_accept(MEMBERSHIP_CONTAINER_TYPE)
            since = self.count_argument("since")
            limit = self.count_argument("limit", least=1)
            offset = self.count_argument("offset") or 0
        except GradeRefused as refused:
            return self.refuse_json(refused)
        members = lms.memberships(context, since)
        end = len(members) if limit is None else min(offset + limit, len(members))
        if end < len(members):
            paging = {"since": since, "limit": limit, "offset": end}
            query, rel = {k: v for k, v in paging.items() if v is not None}, "next"
        else:
            query, rel = {"since": lms.roster_sequence(context)}, "differences"
        self.set_header("Link", f'<{lms.memberships_url(context)}?{urlencode(query)}>; rel="{rel}"')
        request_url = lms.url + self.request.uri
        lms.membership_requests.append(request_url)
        self.send_json(
            {
                "id": request_url,
                "context": {"id": context, "title": lms.course_title_for(context)},
                "members": [m.membership() for m in members[offset:end]],
            },
            MEMBERSHIP_CONTAINER_TYPE,
        )


class GradebookHandler(_LMSHandler):
    def get(self) -> None:
        self.finish(gradebook_html(self.lms.gradebook()))


class GradebookJSONHandler(_LMSHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.lms.gradebook()))


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
