"""Hub services LearnHub runs: the ecosystem's idle culler, with only the scopes it needs."""

from __future__ import annotations

import sys
from typing import Any

from traitlets.config import LazyConfigValue

from .privacy.service import update_retention_service
from .settings import Settings

IDLE_CULLER = "idle-culler"

# Exactly what jupyterhub-idle-culler calls to stop idle servers (see its cull_idle):
# GET /users?state=ready, each server's last_activity/started/pending/ready, and
# DELETE /users/:name/server. It reads a user's own last_activity
# (read:users:activity) and deletes users (admin:users) only with --cull-users,
# which LearnHub never passes: erasing learners' data is the retention service's job.
IDLE_CULLER_SCOPES = ("list:users", "read:servers", "delete:servers")

# JupyterHub's default for both activity reports: the hub reading the proxy's
# per-route last_activity (JupyterHub.last_activity_interval) and each learner
# server posting its own (JUPYTERHUB_ACTIVITY_INTERVAL).
DEFAULT_ACTIVITY_INTERVAL = 300


def activity_interval(idle_timeout: int) -> int:
    """Seconds between activity reports, short enough that an active server never looks idle.

    The hub learns of activity up to one interval late; a sixth of the timeout leaves
    a wide margin. Long timeouts keep JupyterHub's default of 300 seconds.
    """
    return max(1, min(DEFAULT_ACTIVITY_INTERVAL, idle_timeout // 6))


def idle_culler_command(culler: dict[str, Any], python: str = sys.executable) -> list[str]:
    """The managed service's command line: stop idle servers, never delete users."""
    return [
        python,
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={culler['idle_timeout']}",
        f"--cull-every={culler['check_every']}",
        f"--max-age={culler['max_age']}",
        "--cull-users=False",
        # The culler would otherwise load idle_culler_config.py from the hub's
        # working directory: no file there may change what it does.
        "--config=",
    ]


def idle_culler_service(culler: dict[str, Any]) -> dict[str, Any]:
    return {"name": IDLE_CULLER, "command": idle_culler_command(culler)}


def idle_culler_role() -> dict[str, Any]:
    return {
        "name": IDLE_CULLER,
        "description": "Stop learner servers that have been idle (jupyterhub-idle-culler)",
        "scopes": list(IDLE_CULLER_SCOPES),
        "services": [IDLE_CULLER],
    }


def _current(section, key: str, empty):
    """A copy of the list or dict other code configured, or an empty one."""
    value = section.get(key)
    if isinstance(value, LazyConfigValue):
        value = value.get_value(empty)
    return type(empty)(value or empty)


def _with_entry(entries: list[dict], entry: dict) -> list[dict]:
    """entries plus entry, replacing one of the same name so re-applying config is harmless."""
    return [e for e in entries if e.get("name") != entry["name"]] + [entry]


def update_services(c, settings: Settings, retention_token: str) -> None:
    """The hub services of this module: the retention service, and the idle culler."""
    # The retention service (expiry, a person's data on request) runs whatever the culler.
    update_retention_service(c, settings, retention_token)
    update_culler(c, settings)


def update_culler(c, settings: Settings) -> None:
    """Run the idle culler as a managed hub service with a least-privilege role."""
    culler = settings["culler"]
    if not culler["enabled"]:
        return
    c.JupyterHub.services = _with_entry(
        _current(c.JupyterHub, "services", []), idle_culler_service(culler)
    )
    c.JupyterHub.load_roles = _with_entry(
        _current(c.JupyterHub, "load_roles", []), idle_culler_role()
    )

    interval = activity_interval(culler["idle_timeout"])
    c.JupyterHub.last_activity_interval = interval
    if interval != DEFAULT_ACTIVITY_INTERVAL:
        # Only short timeouts need learner servers to report more often than
        # JupyterHub's default; added to the spawner's environment, not replacing it,
        # so this must run after update_spawner.
        environment = _current(c.Spawner, "environment", {})
        environment["JUPYTERHUB_ACTIVITY_INTERVAL"] = str(interval)
        c.Spawner.environment = environment
