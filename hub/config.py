"""Turn validated settings into JupyterHub configuration: one update_<area> per area."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from traitlets.log import get_logger

from .courses.config import update_courses, update_grading
from .privacy.config import update_privacy, update_tls
from .request_body import MAX_BODY_SETTINGS_KEY
from .services import update_services
from .settings import Settings
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


def update_hub(c, settings: Settings) -> None:
    hub = settings["hub"]
    c.JupyterHub.bind_url = settings.bind_url
    c.JupyterHub.hub_ip = hub["api_ip"]
    c.JupyterHub.hub_port = hub["api_port"]
    c.JupyterHub.db_url = settings.database_url
    c.JupyterHub.cookie_secret_file = str(settings.state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.log_level = hub["log_level"]
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
    lti = settings["lti"]
    c.JupyterHub.authenticator_class = "learnhub"
    c.LearnHubAuthenticator.database_url = settings.database_url
    c.LearnHubAuthenticator.crypt_key = settings.crypt_key
    c.LearnHubAuthenticator.pseudonym_key = settings.pseudonym_key
    c.LearnHubAuthenticator.public_url = settings.public_url
    c.LearnHubAuthenticator.session_lifetime = lti["session_lifetime"]
    c.LearnHubAuthenticator.timestamp_window = lti["timestamp_window"]
    c.LearnHubAuthenticator.login_state_lifetime = lti["login_state_lifetime"]
    c.LearnHubAuthenticator.jwks_cache_lifetime = lti["jwks_cache_lifetime"]
    c.LearnHubAuthenticator.clock_skew = lti["clock_skew"]
    c.LearnHubAuthenticator.direct_login = settings["login"]["direct"]
    c.LearnHubAuthenticator.open_signup = settings["login"]["open_signup"]
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


def update_spawner(
    c, settings: Settings, origins: list[str], backend: SpawnerBackend | None = None
) -> None:
    """Learner servers: `backend` is what resolve_backend chose (asked here when not given)."""
    spawner = settings["spawner"]
    backend = backend or resolve_backend(settings)
    c.JupyterHub.spawner_class = f"learnhub-{backend.name}"
    c.Spawner.args = [f"--ServerApp.jpserver_extensions={SINGLEUSER_EXTENSION}=True"]
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = spawner["start_timeout"]
    c.Spawner.http_timeout = spawner["start_timeout"]
    c.Spawner.environment = {
        # LMS sessions carry a launch token in the first URL instead of a cookie.
        "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1",
        "LEARNHUB_FRAME_ANCESTORS": " ".join(origins),
    }

    c.LocalLearnerSpawner.home_dir_template = str(settings.state_dir / "homes" / "{username}")
    c.LocalLearnerSpawner.cmd = [str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser")]

    # Containers run their image's command (jupyterhub-singleuser in the learner image).
    c.DockerLearnerSpawner.image = spawner["images"][0]
    c.DockerLearnerSpawner.allowed_images = list(spawner["images"])
    c.DockerLearnerSpawner.cpu_limit = float(spawner["cpu_limit"])
    c.DockerLearnerSpawner.mem_limit = spawner["mem_limit"]
    c.DockerLearnerSpawner.pids_limit = spawner["pids_limit"]
    c.DockerLearnerSpawner.network_name = spawner["network"]


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


def apply_config(c, settings: Settings) -> None:
    """Set every JupyterHub option LearnHub needs from the operator's settings."""
    origins = sorted(
        set(Store(settings.database_url, settings.crypt_key).frame_origins())
        | set(settings["lti"]["frame_origins"])
    )
    update_hub(c, settings)
    update_proxy(c, settings)
    update_auth(c, settings)
    update_security(c, settings, origins)
    backend = resolve_backend(settings, log=get_logger())
    update_spawner(c, settings, origins, backend)
    connect_ip = settings["hub"]["api_ip"]
    if backend.isolated:
        network = learner_network(settings)
        update_network(c, settings, network)
        connect_ip = network.gateway
    update_services(c, settings)
    connect_ip = "127.0.0.1" if connect_ip in ("", "0.0.0.0") else connect_ip  # noqa: S104
    update_courses(c, settings, connect_ip=connect_ip, containers=backend.isolated)
    update_grading(c, settings, connect_ip=connect_ip, containers=backend.isolated)
    update_privacy(c, settings)
    update_tls(c, settings)
