"""LTI Deep Linking 2.0: an instructor picks course assignments, the LMS gets one link each.

An `LtiDeepLinkingRequest` launch (validator.check_claims) opens a picker of the course's
assignments (handlers.LTI13LaunchHandler.open_picker). The picker's page carries what the
answer needs, sealed (encrypted and authenticated, with its time) so that a browser
refusing cookies can still answer and nothing in the page can be altered. The answer is
an `LtiDeepLinkingResponse` JWT signed with the tool's key, whose content items are LTI
resource links with the custom parameter `assignment=<name>` and, where the LMS takes
them, a line item worth the assignment's points: the LMS makes the link and its column.
The pure parts are here; the handlers do the I/O.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import jwt
from cryptography.fernet import Fernet, InvalidToken

from ..errors import LaunchError
from . import constants as c

# Seconds the platform may accept the signed answer (it is posted at once).
RESPONSE_LIFETIME = 300
# The tag of the line items LearnHub asks for, so an LMS (and the tool) can tell them apart.
LINEITEM_TAG = "learnhub"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def platform_origins(platform) -> set[str]:
    """Where a platform's deep-linking answer may go: its issuer's origin (when the issuer
    is a URL), its authorization endpoint's, and the origin that frames LearnHub (for
    Canvas, the school's own host, set with `learnhub lti add-platform --frame-origin`)."""
    origins = {origin_of(platform.auth_url)}
    if platform.frame_origin:
        origins.add(platform.frame_origin)
    if urlsplit(platform.issuer).scheme in ("https", "http"):
        origins.add(origin_of(platform.issuer))
    return origins


def check_return_url(return_url: str, allowed: set[str]) -> None:
    """Refuse a deep_link_return_url outside the platform that signed the request."""
    if origin_of(return_url) not in allowed:
        raise LaunchError(
            400,
            f"This request's deep_link_return_url is on {origin_of(return_url)}, which is not "
            f"this LMS ({', '.join(sorted(allowed))}): LearnHub sends nothing there.",
        )


@dataclass(frozen=True)
class PickerState:
    """What the answer to one deep-linking request needs, sealed into the picker's page."""

    platform_id: int
    issuer: str
    client_id: str
    deployment_id: str
    return_url: str
    accept_multiple: bool
    accept_lineitem: bool
    course_id: str
    course_title: str
    username: str
    # The assignments the picker offered, by name: {"title", "points", "released", ...}.
    offered: dict[str, dict] = field(default_factory=dict)
    # The request's opaque `data`, echoed unchanged (any JSON value, or absent).
    data: object = None
    has_data: bool = False


def picker_state(claims: dict, *, platform, course, username: str, catalog: list[dict]):
    """The state of the picker that answers the validated request `claims`."""
    settings = claims[c.DL_SETTINGS]
    return PickerState(
        platform_id=platform.id,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_id=claims[c.DEPLOYMENT_ID],
        return_url=settings["deep_link_return_url"],
        # Deep Linking's defaults when the LMS leaves them out: one item, line items taken.
        accept_multiple=settings.get("accept_multiple") is True,
        accept_lineitem=settings.get("accept_lineitem", True) is not False,
        course_id=course.id,
        course_title=course.title,
        username=username,
        offered={entry["name"]: entry for entry in catalog},
        data=settings.get("data"),
        has_data="data" in settings,
    )


def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))


def seal(state: PickerState, key: bytes, *, now: float | None = None) -> str:
    """`state` encrypted and authenticated with the time it was sealed."""
    payload = json.dumps(asdict(state)).encode()
    return _fernet(key).encrypt_at_time(payload, int(time.time() if now is None else now)).decode()


def unseal(token: str, key: bytes, *, lifetime: int, now: float | None = None) -> PickerState:
    """The state sealed into a picker's page, if it is intact and younger than `lifetime`."""
    current = int(time.time() if now is None else now)
    try:
        payload = _fernet(key).decrypt_at_time(token.encode(), lifetime, current)
    except InvalidToken:
        raise LaunchError(
            400,
            "This assignment picker has expired or was altered: add the LearnHub activity "
            "again from your LMS.",
        ) from None
    return PickerState(**json.loads(payload))


def points_text(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def content_item(name: str, entry: dict, *, launch_url: str, accept_lineitem: bool) -> dict:
    """The LTI resource link that opens assignment `name`, with its column if it has points."""
    item = {
        "type": c.RESOURCE_LINK_ITEM,
        "title": entry["title"],
        "text": f"LearnHub assignment {name}: {points_text(entry['points'])}",
        "url": launch_url,
        "custom": {"assignment": name},
    }
    if accept_lineitem and entry["points"] > 0:
        item["lineItem"] = {
            "scoreMaximum": entry["points"],
            "label": entry["title"],
            "resourceId": name,
            "tag": LINEITEM_TAG,
        }
    return item


def response_claims(state: PickerState, items: list[dict], *, now: float) -> dict:
    """The claims of the LtiDeepLinkingResponse: from this tool (its client id) to the
    platform (its issuer), for the request's deployment, with its data echoed."""
    issued = int(now)
    claims = {
        "iss": state.client_id,
        "aud": state.issuer,
        "iat": issued,
        "exp": issued + RESPONSE_LIFETIME,
        "nonce": secrets.token_urlsafe(24),
        c.MESSAGE_TYPE: c.DEEP_LINKING_RESPONSE,
        c.VERSION: c.SUPPORTED_VERSION,
        c.DEPLOYMENT_ID: state.deployment_id,
        c.DL_CONTENT_ITEMS: items,
        c.DL_MESSAGE: (
            f"Added {len(items)} LearnHub assignment" + ("" if len(items) == 1 else "s")
            if items
            else "No LearnHub assignment was added."
        ),
    }
    if state.has_data:
        claims[c.DL_DATA] = state.data
    return claims


def sign(claims: dict, *, kid: str, private_pem: str) -> str:
    return jwt.encode(claims, private_pem, algorithm=c.ALGORITHM, headers={"kid": kid})


def choose(state: PickerState, chosen: list[str]) -> list[str]:
    """The assignments picked, in the picker's order; LaunchError (400) names what is wrong."""
    unknown = [name for name in chosen if name not in state.offered]
    if unknown:
        raise LaunchError(400, f"{unknown[0][:100]!r} is not an assignment of this course.")
    if not chosen:
        raise LaunchError(400, "Pick at least one assignment, or Cancel.")
    if len(set(chosen)) > 1 and not state.accept_multiple:
        raise LaunchError(400, "Your LMS takes one link here: pick one assignment.")
    return [name for name in state.offered if name in chosen]
