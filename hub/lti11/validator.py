"""Check an LTI 1.1 launch: OAuth 1.0a HMAC-SHA1 signature, timestamp window, one-time nonce."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence

from oauthlib.oauth1.rfc5849 import signature as oauth_signature

from ..errors import LaunchError
from ..store import ConsumerInfo
from .constants import (
    LAUNCH_MESSAGE_TYPE,
    LTI_VERSIONS,
    MESSAGE_TYPES,
    REQUIRED_PARAMS,
    SIGNATURE_METHOD,
)


def expected_signature(
    method: str, url: str, params: Sequence[tuple[str, str]], secret: str
) -> str:
    """The HMAC-SHA1 signature an LMS holding `secret` computes for this request."""
    signed = [(k, v) for k, v in params if k != "oauth_signature"]  # RFC 5849 3.4.1.3.1
    base_string = oauth_signature.signature_base_string(
        method.upper(),
        oauth_signature.base_string_uri(url),
        oauth_signature.normalize_parameters(signed),
    )
    return oauth_signature.sign_hmac_sha1(base_string, secret, "")


def validate_launch(
    *,
    method: str,
    url: str,
    params: Sequence[tuple[str, str]],
    find_consumer: Callable[[str], ConsumerInfo | None],
    use_nonce: Callable[[str, str, float, float], bool],
    window: float,
    now: float | None = None,
) -> dict[str, str]:
    """Validate a launch and return its parameters as a dict.

    The nonce is recorded only after the signature checks out, so unsigned traffic
    cannot fill the nonce store. The clock is read once: `use_nonce(key, nonce, timestamp,
    now)` gets the reading the timestamp was checked against.
    """
    now = time.time() if now is None else now
    values: dict[str, str] = {}
    for key, value in params:
        if key in values:
            raise LaunchError(400, f"LTI launch parameter {key} appears more than once")
        values[key] = value
    # A basic launch comes from a link; a Content-Item request asks for links to be made.
    link = ("resource_link_id",) if values.get("lti_message_type") == LAUNCH_MESSAGE_TYPE else ()
    missing = [p for p in (*REQUIRED_PARAMS, *link) if not values.get(p)]
    if missing:
        raise LaunchError(400, f"LTI launch is missing {', '.join(missing)}")
    if values["lti_message_type"] not in MESSAGE_TYPES:
        raise LaunchError(400, f"Unsupported lti_message_type {values['lti_message_type']!r}")
    if values["lti_version"] not in LTI_VERSIONS:
        raise LaunchError(400, f"Unsupported lti_version {values['lti_version']!r}")
    if values["oauth_signature_method"] != SIGNATURE_METHOD:
        raise LaunchError(
            400,
            f"Unsupported oauth_signature_method {values['oauth_signature_method']!r}: "
            f"use {SIGNATURE_METHOD}",
        )

    consumer = find_consumer(values["oauth_consumer_key"])
    if consumer is None:
        raise LaunchError(401, "Unknown LTI consumer key")

    try:
        timestamp = int(values["oauth_timestamp"])
    except ValueError:
        raise LaunchError(400, "oauth_timestamp is not a number") from None
    if abs(now - timestamp) > window:
        raise LaunchError(
            401, "OAuth timestamp outside the allowed window: check the LMS server's clock"
        )

    expected = expected_signature(method, url, params, consumer.secret)
    if not hmac.compare_digest(expected, values["oauth_signature"]):
        raise LaunchError(401, "Invalid OAuth signature")

    if not use_nonce(consumer.key, values["oauth_nonce"], timestamp, now):
        raise LaunchError(401, "OAuth nonce already used: this launch was replayed")

    if not values.get("user_id"):
        raise LaunchError(400, "LTI launch has no user_id: anonymous launches are not supported")
    return values
