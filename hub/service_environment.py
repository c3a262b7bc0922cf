"""The environment of LearnHub's managed hub services: the same settings, secrets and tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .settings import Settings

# The largest request body of the grading and retention services' APIs: they take small
# JSON (tornado's default would let a caller send 100 MB).
API_MAX_BODY_SIZE = 64 * 1024
# The address a service listens on instead of its URL's host: on Kubernetes, its URL names
# the hub's Service (spawner.kubernetes.hub_host), and it listens on every interface.
LISTEN_IP_ENV = "LEARNHUB_LISTEN_IP"
# Variables of the hub's environment its LearnHub services need too.
PASSED_ON = ("LEARNHUB_CRYPT_KEY", "LEARNHUB_PSEUDONYM_KEY", "LEARNHUB_DEMO_COURSE_TEMPLATE")


def service_environment(settings: Settings, environ=os.environ) -> dict[str, str]:
    """What a LearnHub hub service needs to load the same settings as the hub.

    JupyterHub starts managed services with a bare environment: the settings file, the
    state directory and any secrets or database credentials given by environment go along.
    """
    env = {
        "LEARNHUB_STATE_DIR": str(settings.state_dir),
        # nbgrader runs `alembic` from PATH when it opens a gradebook.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")]),
    }
    if settings.source is not None:
        env["LEARNHUB_CONFIG"] = str(Path(settings.source).resolve())
    if settings["spawner"]["backend"] == "kubernetes":
        env[LISTEN_IP_ENV] = "0.0.0.0"  # noqa: S104 (the pod's interfaces; network policies)
    for name, value in environ.items():
        if name in PASSED_ON or name.startswith("PG"):
            env[name] = value
    return env
