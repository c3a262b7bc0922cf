"""LTI Deep Linking 2.0: an instructor picks course assignments, the LMS gets one link each.

An `LtiDeepLinkingRequest` launch (validator.check_claims) opens the assignment picker
(picker_pages.py). The answer is an `LtiDeepLinkingResponse` JWT signed with the tool's
key, whose content items are LTI resource links with the custom parameter
`assignment=<name>` and, where the LMS takes them, a line item worth the assignment's
points: the LMS makes the link and its column. Everything here is pure.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import jwt

from ..addresses import origin_of
from ..assignment_picker import PickerState, added_message, link_text, offered
from . import constants as c

# Seconds the platform may accept the signed answer (it is posted at once).
RESPONSE_LIFETIME = 300
# The tag of the line items LearnHub asks for, so an LMS (and the tool) can tell them apart.
LINEITEM_TAG = "learnhub"


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


def picker_state(claims: dict, *, platform, course, username: str, catalog: list[dict]):
    """The state of the picker that answers the validated request `claims`."""
    settings = claims[c.DL_SETTINGS]
    return PickerState(
        lti_version="1.3",
        return_url=settings["deep_link_return_url"],
        # Deep Linking's defaults when the LMS leaves them out: one item, line items taken.
        accept_multiple=settings.get("accept_multiple") is True,
        accept_lineitem=settings.get("accept_lineitem", True) is not False,
        course_id=course.id,
        course_title=course.title,
        username=username,
        recipient={
            "platform_id": platform.id,
            "issuer": platform.issuer,
            "client_id": platform.client_id,
            "deployment_id": claims[c.DEPLOYMENT_ID],
        },
        offered=offered(catalog),
        data=settings.get("data"),
        has_data="data" in settings,
    )


def content_item(name: str, entry: dict, *, launch_url: str, accept_lineitem: bool) -> dict:
    """The LTI resource link that opens assignment `name`, with its column if it has points."""
    item = {
        "type": c.RESOURCE_LINK_ITEM,
        "title": entry["title"],
        "text": link_text(name, entry),
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
    recipient = state.recipient
    claims = {
        "iss": recipient["client_id"],
        "aud": recipient["issuer"],
        "iat": issued,
        "exp": issued + RESPONSE_LIFETIME,
        "nonce": secrets.token_urlsafe(24),
        c.MESSAGE_TYPE: c.DEEP_LINKING_RESPONSE,
        c.VERSION: c.SUPPORTED_VERSION,
        c.DEPLOYMENT_ID: recipient["deployment_id"],
        c.DL_CONTENT_ITEMS: items,
        c.DL_MESSAGE: added_message(len(items)),
    }
    if state.has_data:
        claims[c.DL_DATA] = state.data
    return claims


def answer_fields(
    state: PickerState, chosen: list[str], *, launch_url: str, kid: str, private_pem: str,
    now: float,
) -> dict[str, str]:  # fmt: skip
    """The form the browser posts to deep_link_return_url: the signed response."""
    items = [
        content_item(name, state.offered[name], launch_url=launch_url,
                     accept_lineitem=state.accept_lineitem)
        for name in chosen
    ]  # fmt: skip
    return {"JWT": sign(response_claims(state, items, now=now), kid=kid, private_pem=private_pem)}


def sign(claims: dict, *, kid: str, private_pem: str) -> str:
    return jwt.encode(claims, private_pem, algorithm=c.ALGORITHM, headers={"kid": kid})
