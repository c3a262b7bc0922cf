"""Where to connect to a server from the address it listens on: one rule for every caller."""

from __future__ import annotations

# Addresses that mean "every interface of this machine": a listener, never a destination.
ANY_INTERFACE = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (compared, never bound here)
LOOPBACK = "127.0.0.1"


def connect_address(listen_ip: str | None) -> str:
    """The address to reach a server listening on `listen_ip` from this machine: loopback
    for any interface (IPv4 or IPv6: Linux's dual-stack `::` takes IPv4 too), else itself."""
    return LOOPBACK if not listen_ip or listen_ip in ANY_INTERFACE else listen_ip
