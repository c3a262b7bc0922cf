"""What JupyterLab needs to know of the person's courses: whether to offer formgrader."""

from __future__ import annotations

import os
import time
from typing import Any

import requests

STAFF_TTL = 60.0
_cache: dict[str, tuple[float, bool]] = {}


def is_staff_somewhere(exchange_url: str | None = None, token: str | None = None) -> bool:
    """Whether this server's user teaches (instructor or TA) any course, per the course service.

    Asked with the server's own token, cached for a minute; False when the service does not
    answer (the menu item then stays hidden, nothing else breaks).
    """
    exchange_url = exchange_url or os.environ.get("LEARNHUB_EXCHANGE_URL", "")
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not exchange_url or not token:
        return False
    cached = _cache.get(exchange_url)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        response = requests.get(
            exchange_url.rstrip("/") + "/api/courses",
            headers={"Authorization": f"token {token}"},
            timeout=3,
        )
        staff = response.ok and any(
            c.get("role") == "staff" for c in response.json().get("courses", [])
        )
    except (requests.RequestException, ValueError):
        return False
    _cache[exchange_url] = (time.monotonic() + STAFF_TTL, staff)
    return staff


def course_page_config_hook(previous):
    """Wrap a page_config_hook: `learnhubStaff` tells JupyterLab to offer formgrader."""

    def page_config_hook(handler, page_config: dict[str, Any]) -> dict[str, Any]:
        if previous is not None:
            page_config = previous(handler, page_config)
        return {**page_config, "learnhubStaff": is_staff_somewhere()}

    return page_config_hook
