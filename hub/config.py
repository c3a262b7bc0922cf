"""Turn validated settings into JupyterHub configuration: one update_<area> per area.

Two steps, as jupyterhub_config.py runs them: gather_facts asks the world what the
configuration depends on (the LMS origins registered in the database, whether a Docker
engine runs, the learners' network), then apply_config only sets values from the settings
and those facts: it opens no database, asks no engine and writes no file.
"""

from __future__ import annotations

import copy
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.log import get_logger

from learnhub_singleuser.headers import FRAME_ANCESTORS_ENV

from .addresses import connect_address
from .courses.config import update_courses, update_grading
from .db import upgrade_at_start
from .kubernetes import update_kubernetes
from .privacy.analytics import Analytics
from .privacy.config import update_privacy, update_tls
from .privacy.service import service_token
from .request_body import MAX_BODY_SETTINGS_KEY
from .services import update_services
from .settings import Settings, options
from .spawners import (
    LearnerNetwork,
    SpawnerBackend,
    hub_listen_ip,
    learner_network,
    resolve_backend,
)
from .store import Store

TEMPLATES = Path(__file__).parent / "templates"
SINGLEUSER_EXTENSION = "learnhub_singleuser"


def find_proxy_command(configured: str | None) -> str:
    """configurable-http-proxy: the configured path, the venv's npm install, or PATH."""
    if configured:
        return configured
    local = Path(sys.prefix) / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    return shutil.which("configurable-http-proxy") or "configurable-http-proxy"


def frame_ancestors(origins: list[str]) -> str:
    return " ".join(["frame-ancestors", "'self'", *origins])


def update_options(c, settings: Settings) -> None:
    """Every key of learnhub.yaml that names the option it sets (its schema's "sets"), copied
    unchanged; the update_<area> functions set what is computed from several keys."""
    for path, prop in options():
        if "sets" in prop:
            section, name = prop["sets"].split(".")
            setattr(c[section], name, copy.deepcopy(settings.value(path)))


def update_hub(c, settings: Settings) -> None:
    c.JupyterHub.bind_url = settings.bind_url
    # Where the API listens; update_network adds the learners' gateway with containers.
    c.JupyterHub.hub_ip = settings["hub"]["api_ip"]
    c.JupyterHub.db_url = settings.database_url
    c.JupyterHub.cookie_secret_file = str(settings.state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    # Learner servers keep running while the hub restarts (an upgrade, a crash).
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False


def update_proxy(c, settings: Settings) -> None:
    proxy = settings["proxy"]
    c.ConfigurableHTTPProxy.command = [find_proxy_command(proxy["command"])]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy['api_port']}"
    c.ConfigurableHTTPProxy.pid_file = str(settings.state_dir / "proxy.pid")


def update_auth(c, settings: Settings) -> None:
    c.JupyterHub.authenticator_class = "learnhub"
    c.LearnHubAuthenticator.database_url = settings.database_url
    c.LearnHubAuthenticator.crypt_key = settings.crypt_key
    c.LearnHubAuthenticator.pseudonym_key = settings.pseudonym_key
    c.LearnHubAuthenticator.public_url = settings.public_url
    c.Authenticator.admin_users = set(settings["hub"]["admin_users"])
    # Direct-login accounts need an administrator's approval in NativeAuthenticator,
    # and LMS launches are allowed once their signature checks out.
    c.Authenticator.allow_all = True


def update_security(c, settings: Settings, origins: list[str]) -> None:
    c.JupyterHub.tornado_settings = {
        "headers": {
            "Content-Security-Policy": frame_ancestors(origins),
            "Referrer-Policy": "no-referrer",
        },
        # The launch handler answers with its waiting page instead of blocking on a spawn.
        "slow_spawn_timeout": 1,
        MAX_BODY_SETTINGS_KEY: settings["hub"]["max_body_size"],
    }


def update_spawner(c, settings: Settings, origins: list[str], backend: SpawnerBackend) -> None:
    """Learner servers: `backend` is what resolve_backend chose (Facts.backend)."""
    spawner = settings["spawner"]
    c.JupyterHub.spawner_class = f"learnhub-{backend.name}"
    c.Spawner.args = [f"--ServerApp.jpserver_extensions={SINGLEUSER_EXTENSION}=True"]
    c.Spawner.default_url = "/lab"
    c.Spawner.http_timeout = spawner["start_timeout"]
    c.Spawner.environment = {
        # LMS sessions carry a launch token in the first URL instead of a cookie.
        "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1",
        FRAME_ANCESTORS_ENV: " ".join(origins),
    }

    c.LocalLearnerSpawner.home_dir_template = str(settings.state_dir / "homes" / "{username}")
    c.LocalLearnerSpawner.cmd = [str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser")]

    # Containers run their image's command (jupyterhub-singleuser in the learner image).
    c.DockerLearnerSpawner.image = spawner["images"][0]


def update_network(c, settings: Settings, network: LearnerNetwork) -> None:
    """The hub API where learner containers reach it, and how the hub reaches them."""
    # The API port only: the proxy keeps listening on bind_url.
    c.JupyterHub.hub_ip = hub_listen_ip(settings["hub"]["api_ip"], network.gateway)
    c.JupyterHub.hub_connect_ip = network.gateway
    c.DockerLearnerSpawner.network_name = network.name
    c.DockerLearnerSpawner.host_ip = "127.0.0.1"
    # Docker publishes no ports from an internal network: the hub and the proxy then reach a
    # container at its own address, which only this machine can route to.
    c.DockerLearnerSpawner.use_internal_ip = network.internal


@dataclass(frozen=True)
class Facts:
    """What the configuration depends on besides the settings, gathered by gather_facts."""

    # Origins of the LMS pages that may frame LearnHub: the registered consumers' and
    # platforms' (from the database) and lti.frame_origins.
    frame_origins: tuple[str, ...]
    backend: SpawnerBackend
    # The learners' Docker network, when learner servers run in containers.
    network: LearnerNetwork | None
    # The retention service's hub API token (a file of the state directory).
    retention_token: str


def gather_facts(settings: Settings, log=None) -> Facts:
    """Ask the database, the Docker engine and the state directory what apply_config needs.

    Also what must be in place before the hub starts: LearnHub's tables at this version's
    schema (SQLite upgraded, PostgreSQL checked: learnhub.db.migrate), the learners' network
    when containers will use it (idempotent), and the analytics tables rolled over to today.
    """
    upgrade_at_start(settings.database_url)
    origins = set(Store(settings.database_url, settings.crypt_key).frame_origins())
    if settings["privacy"]["analytics"]:
        # Now rather than at the first request: the tables exist once the hub answers, and
        # learner hashes of days gone by (a hub stopped over midnight) are counted.
        Analytics(settings.database_url, settings.crypt_key).roll_over()
    backend = resolve_backend(settings, log=log or get_logger())
    return Facts(
        frame_origins=tuple(sorted(origins | set(settings["lti"]["frame_origins"]))),
        backend=backend,
        network=learner_network(settings) if backend.name == "docker" else None,
        retention_token=service_token(settings.state_dir),
    )


def apply_config(c, settings: Settings, facts: Facts) -> None:
    """Set every JupyterHub option LearnHub needs from the operator's settings and the facts
    gathered about this machine; nothing else is read or written."""
    origins = list(facts.frame_origins)
    update_options(c, settings)
    update_hub(c, settings)
    kubernetes = facts.backend.name == "kubernetes"
    if not kubernetes:
        # On Kubernetes the proxy is Zero to JupyterHub's own pod, configured by its chart.
        update_proxy(c, settings)
    update_auth(c, settings)
    update_security(c, settings, origins)
    update_spawner(c, settings, origins, facts.backend)
    connect_ip = settings["hub"]["api_ip"]
    if facts.network is not None:
        update_network(c, settings, facts.network)
        connect_ip = facts.network.gateway
    if kubernetes:
        update_kubernetes(c, settings)
        connect_ip = settings["spawner"]["kubernetes"]["hub_host"]
    update_services(c, settings, facts.retention_token)
    connect_ip = connect_address(connect_ip)
    containers = facts.backend.isolated
    update_courses(c, settings, connect_ip=connect_ip, containers=containers)
    update_grading(c, settings, connect_ip=connect_ip, containers=containers)
    update_privacy(c, settings)
    update_tls(c, settings)
