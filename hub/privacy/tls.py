"""HTTPS: a certificate the proxy serves, or a trusted proxy in front that terminates TLS."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from learnhub_singleuser.headers import HSTS, HSTS_ENV

from ..settings import LOOPBACK_HOSTS, serves_https

__all__ = ["HSTS", "HSTS_ENV", "HSTS_VALUE", "serves_https", "tls_findings"]

# One year. No includeSubDomains: the operator's other hosts are not LearnHub's to decide for.
HSTS_VALUE = "max-age=31536000"


def _bind_host(values: dict[str, Any]) -> str:
    return urlsplit(values["bind_url"] or values["public_url"]).hostname or ""


def tls_findings(values: dict[str, Any]) -> list[tuple[str, str]]:
    """`learnhub doctor`'s (level, message) pairs about HTTPS."""
    tls = values["tls"]
    bind = values["bind_url"] or values["public_url"]
    loopback = _bind_host(values) in LOOPBACK_HOSTS
    findings: list[tuple[str, str]] = []
    if tls["cert_file"]:
        unreadable = [
            f"tls.{name} ({path})"
            for name, path in (("cert_file", tls["cert_file"]), ("key_file", tls["key_file"]))
            if not os.access(path, os.R_OK)
        ]
        if unreadable:
            findings.append(("error", f"cannot read {', '.join(unreadable)}"))
        else:
            findings.append(("ok", f"TLS: the proxy serves {tls['cert_file']} on {bind}"))
    elif tls["terminated_by_proxy"]:
        findings.append(("ok", f"TLS: terminated by the proxy in front of {bind}"))
        if not loopback:
            findings.append(
                (
                    "warning",
                    f"plain HTTP on {bind} can be reached from other machines: only the TLS "
                    "proxy should reach it (bind_url on 127.0.0.1, or a firewall)",
                )
            )
    elif not loopback:
        findings.append(
            (
                "warning",
                f"the hub listens on {bind} without TLS: set tls.cert_file and tls.key_file, "
                "or tls.terminated_by_proxy: true behind a proxy that terminates TLS",
            )
        )
    elif serves_https(values):
        findings.append(
            (
                "warning",
                "public_url is https but no TLS is configured: if a proxy in front terminates "
                "TLS, set tls.terminated_by_proxy: true",
            )
        )
    if serves_https(values):
        findings.append(("ok", f"HSTS: {HSTS}: {HSTS_VALUE} on hub and learner server pages"))
    return findings
