"""The demo LMS as LTI 1.1 consumer: signed launches, OAuth checks, Basic Outcomes (POX)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import math
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

from oauthlib.oauth1.rfc5849 import (
    CONTENT_TYPE_FORM_URLENCODED,
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_TYPE_BODY,
    Client,
)
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from .constants import POX_NS, Role


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


OAUTH_WINDOW = 300
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
