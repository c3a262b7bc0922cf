"""What the single-user extension relies on in jupyter_server, JupyterHub's HubAuth and
tornado that is not their public API, in this one module (as learnhub.upstream for the hub).

tests/unit/test_upstream_contract.py checks each name of PRIVATE_NAMES against the installed
versions and that no other module uses them.
"""

from __future__ import annotations

from collections.abc import Callable

PRIVATE_NAMES: dict[str, str] = {
    "_xsrf_token": "tornado.web.RequestHandler: the xsrf token already made for this "
    "request; set, rendering a page makes no _xsrf cookie",
    "_persist_url_token_if_set": "jupyterhub.services.auth.HubAuth: stores a ?token= that "
    "authenticated a page in the OAuth cookie, which LMS sessions must not get",
}


def no_xsrf_cookie(handler) -> None:
    """Rendering `handler`'s page sets no _xsrf cookie (it reads the token made here)."""
    handler._xsrf_token = b""


def replace_url_token_persistence(hub_auth, persist: Callable) -> None:
    """`persist(handler)` instead of HubAuth's own, on this HubAuth instance only."""
    hub_auth._persist_url_token_if_set = persist
