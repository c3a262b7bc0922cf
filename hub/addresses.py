"""Addresses, one rule for every caller: where to connect to a server from the address it
listens on, a URL's origin, and the URLs an HTTP Link header names."""

from __future__ import annotations

from urllib.parse import urlsplit

# Addresses that mean "every interface of this machine": a listener, never a destination.
ANY_INTERFACE = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (compared, never bound here)
LOOPBACK = "127.0.0.1"


def connect_address(listen_ip: str | None) -> str:
    """The address to reach a server listening on `listen_ip` from this machine: loopback
    for any interface (IPv4 or IPv6: Linux's dual-stack `::` takes IPv4 too), else itself."""
    return LOOPBACK if not listen_ip or listen_ip in ANY_INTERFACE else listen_ip


def origin_of(url: str) -> str:
    """A URL's scheme and host[:port], as written in it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def link_relations(header: str | None) -> dict[str, str]:
    """The URLs of an HTTP Link header (RFC 8288) by their rel, e.g. "next", "differences"."""
    links = {}
    for part in (header or "").split(","):
        url, _, params = part.partition(";")
        url = url.strip()
        if not (url.startswith("<") and url.endswith(">")):
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in value.strip().strip('"').split():
                    links[rel.lower()] = url[1:-1]
    return links
