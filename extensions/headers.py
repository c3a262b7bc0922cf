"""Response headers that let the LMS frame a learner server and keep URLs out of Referer."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

CSP = "Content-Security-Policy"
REFERRER_POLICY = "Referrer-Policy"
HSTS = "Strict-Transport-Security"
# The hub's spawner sets it to the HSTS value when LearnHub is served over HTTPS.
HSTS_ENV = "LEARNHUB_STRICT_TRANSPORT_SECURITY"
# The hub's spawner sets it to the origins that may frame the server, space-separated.
FRAME_ANCESTORS_ENV = "LEARNHUB_FRAME_ANCESTORS"

# An origin as CSP source expressions spell one: scheme, host (optionally "*."-wildcarded,
# or a bracketed IPv6 literal) and an optional port. No path, quote, comma or semicolon,
# so a value can never end the directive and smuggle in another one.
_ORIGIN = re.compile(
    r"https?://(?:\*\.)?(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)


def sent_from_this_site(headers: Mapping[str, str], host: str) -> bool:
    """Whether the browser says this request comes from a page of this origin.

    Sec-Fetch-Site decides when present (every current browser sends it). Without it, an
    Origin of this host proves it; a request with neither (curl, a script, an old browser)
    proves nothing and is refused. LearnHub's own pages send Origin: null (their
    Referrer-Policy is no-referrer), so Origin alone cannot be required.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("Origin")
    return origin not in (None, "null") and urlsplit(origin).netloc == host


def check_origin(origin: str) -> str:
    """Return `origin` if it is a scheme://host[:port] origin, else raise ValueError."""
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(
            f"{origin!r} is not an origin: write scheme://host[:port], without a path,"
            " a trailing slash or quotes"
        )
    return origin


def check_origins(origins: Iterable[str], source: str) -> list[str]:
    """Return `origins` if each is an origin, else raise a ValueError that names `source`."""
    try:
        return [check_origin(origin) for origin in origins]
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from e


def frame_ancestors_csp(existing: str, origins: Iterable[str]) -> str:
    """Return the policy `existing` with frame-ancestors set to 'self' and exactly `origins`.

    Other directives of `existing` are kept, so an operator's own policy survives.
    """
    directives = [
        d.strip()
        for d in existing.split(";")
        if d.strip() and d.split()[0].lower() != "frame-ancestors"
    ]
    frame_ancestors = " ".join(["frame-ancestors", "'self'", *origins])
    return "; ".join([*directives, frame_ancestors])


def security_headers(existing: Mapping[str, str], origins: Iterable[str]) -> dict[str, str]:
    """Return the headers to set on every response, given the server's current ones."""
    return {
        CSP: frame_ancestors_csp(existing.get(CSP, ""), origins),
        # A Lab URL can carry ?token=; no-referrer keeps it from reaching other sites.
        REFERRER_POLICY: "no-referrer",
    }


def with_directive(existing: str, directive: str, sources: str) -> str:
    """Return the policy `existing` with `directive` set to exactly `sources`, first.

    Other directives of `existing` are kept, e.g. the frame-ancestors the hub sends.
    """
    others = [
        d.strip()
        for d in existing.split(";")
        if d.strip() and d.split()[0].lower() != directive.lower()
    ]
    return "; ".join([f"{directive} {sources}", *others])
