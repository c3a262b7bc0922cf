"""The tool's Deep Linking and Content-Item answers, checked, and the course links they make."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt

from .constants import CONTENT_ITEM_SELECTION, DEEP_LINKING_RESPONSE, LTI_CLAIM, LTI_LINK_MEDIA_TYPE
from .lti11 import oauth_request_problem
from .lti13 import Platform, repeated_parameter, tool_key
from .services import GradeRefused, score_number, validate_new_lineitem

# An instructor may browse the tool for a while before picking what to add.
DEEP_LINKING_TTL = 1800
# The Security Framework's bound on the age of a tool-originating message.
DEEP_LINK_RESPONSE_MAX_AGE = 300
# The settings' default title, which Deep Linking lets a platform give an untitled item
# (and this LMS gives an untitled Content-Item link alike).
DEEP_LINKING_TITLE = "LearnHub"
_LEEWAY = 5


def url_origin(url: str) -> str:
    """The web origin (scheme://host[:port]) of a URL, as a browser reports event.origin."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


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
        key = tool_key(token, jwks, name="JWT")
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
        maximum = score_number(limits, "normalMaximum", positive=True)
        if "totalMaximum" in limits:
            score_number(limits, "totalMaximum")
    except GradeRefused as e:
        raise DeepLinkRefused(f"lineItem scoreConstraints {e}") from None
    return {"label": label, "scoreMaximum": maximum}


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
