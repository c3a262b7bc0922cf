"""What LearnHub relies on in JupyterHub, tornado and the standard library that is not their
public API, all in this one module.

Each is here because no public way does the same (or the public way costs what the comment
says). tests/unit/test_upstream_contract.py checks every name of PRIVATE_NAMES against the
installed versions, and that no other module of LearnHub uses them, so an upgrade that
changes one fails loudly there and nowhere else.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

from jupyterhub.crypto import CryptKeeper
from jupyterhub.metrics import TOTAL_USERS

# name -> where it lives upstream, and why LearnHub uses it.
PRIVATE_NAMES: dict[str, str] = {
    "_spawn_pending": "jupyterhub.spawner.Spawner: a start under way, before the database "
    "says so (bulk erasure must not delete a server that is starting)",
    "_stop_pending": "jupyterhub.spawner.Spawner: a stop under way (the same)",
    "_spawn_future": "jupyterhub.spawner.Spawner: the start under way, to wait for "
    "(formgrader opens once the grader server runs; the REST API would poll)",
    "oauth_no_confirm_list": "a JupyterHub tornado setting: OAuth clients that skip the "
    "'authorize access?' page (a course's grader server, opened by its own staff)",
    "_headers": "tornado.web.RequestHandler: the response's headers (is it an HTML page?), "
    "which tornado has no public reader of",
    "_periodic_callbacks": "jupyterhub.app.JupyterHub: its periodic checks, stopped before "
    "its services are (learnhub.hub_app)",
    "_service_map": "jupyterhub.app.JupyterHub: its services, stopped together (learnhub.hub_app)",
    "_processes": "concurrent.futures.ProcessPoolExecutor: its worker processes, to signal "
    "at a stop (the grading service)",
}


def spawner_busy(spawner) -> bool:
    """Whether the hub is starting or stopping `spawner`, or it runs."""
    return bool(
        spawner.active or spawner.pending or spawner._stop_pending or spawner._spawn_pending
    )


async def wait_for_spawn(spawner) -> None:
    """Wait for the start of `spawner` under way, if there is one."""
    if spawner._spawn_future is not None:
        await spawner._spawn_future


def skip_oauth_confirmation(tornado_settings: dict, client_id: str) -> None:
    """Let `client_id` skip JupyterHub's "authorize access?" page; JupyterHub reads the set
    at each OAuth request."""
    tornado_settings.setdefault("oauth_no_confirm_list", set()).add(client_id)


def response_content_type(handler) -> str:
    """The Content-Type a tornado handler answers with ("" when none was set)."""
    return handler._headers.get("Content-Type") or ""


def periodic_callbacks(hub) -> list[Any]:
    """The JupyterHub application's periodic callbacks (health checks, activity, ...)."""
    return list(hub._periodic_callbacks.values())


def services(hub) -> list[Any]:
    """The JupyterHub application's services."""
    return list(hub._service_map.values())


def pool_processes(pool: ProcessPoolExecutor) -> list[Any]:
    """The worker processes a ProcessPoolExecutor started so far."""
    return list((getattr(pool, "_processes", None) or {}).values())


def use_auth_state_key(key: bytes) -> None:
    """JupyterHub encrypts auth state with the keys of its CryptKeeper singleton, which it
    builds from JUPYTERHUB_CRYPT_KEY without config: give it LearnHub's derived key."""
    CryptKeeper.instance().keys = [key]


def users_deleted(count: int) -> None:
    """JupyterHub's user count, after users were deleted without its User.delete path."""
    TOTAL_USERS.dec(count)
