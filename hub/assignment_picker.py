"""The assignment picker an LMS opens for an instructor adding LearnHub links: its state.

Both LTI versions have one: LTI 1.3 Deep Linking (lti13/deep_linking.py) and LTI 1.1
Content-Item selection (lti11/content_item.py). The picker's page carries what its answer
needs, sealed (encrypted and authenticated, with its time) so that a browser refusing
cookies can still answer and nothing in the page can be altered; picker_pages.py shows
it and sends the answer. Everything here is pure.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field

from cryptography.fernet import Fernet, InvalidToken

from .addresses import origin_of
from .errors import LaunchError


@dataclass(frozen=True)
class PickerState:
    """What the answer to one LMS's request for links needs, sealed into the picker's page."""

    lti_version: str
    return_url: str
    accept_multiple: bool
    accept_lineitem: bool
    course_id: str
    course_title: str
    username: str
    # Whom the answer is for: LTI 1.3 {"platform_id", "issuer", "client_id",
    # "deployment_id"}, LTI 1.1 {"consumer_key"}.
    recipient: dict = field(default_factory=dict)
    # The assignments the picker offered, by name: {"title", "points", "released", ...}.
    offered: dict[str, dict] = field(default_factory=dict)
    # The request's opaque `data`, echoed unchanged (any JSON value, or absent).
    data: object = None
    has_data: bool = False


def offered(catalog: list[dict]) -> dict[str, dict]:
    """The course service's catalog (courses/catalog.py) by assignment name."""
    return {entry["name"]: entry for entry in catalog}


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


def link_text(name: str, entry: dict) -> str:
    """The description of an assignment's link, as the LMS shows it."""
    return f"LearnHub assignment {name}: {points_text(entry['points'])}"


def added_message(count: int) -> str:
    if not count:
        return "No LearnHub assignment was added."
    return f"Added {count} LearnHub assignment" + ("" if count == 1 else "s")


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


def check_return_url(return_url: str, allowed: set[str]) -> None:
    """Refuse a return URL outside the LMS that signed the request."""
    if origin_of(return_url) not in allowed:
        raise LaunchError(
            400,
            f"This request's return URL is on {origin_of(return_url)}, which is not this LMS "
            f"({', '.join(sorted(allowed))}): LearnHub sends nothing there.",
        )
