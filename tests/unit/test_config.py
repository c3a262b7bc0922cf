"""The config appliers, run against a bare traitlets Config."""

import socket

import docker
import pytest
import sqlalchemy
from traitlets.config import Config

from learnhub.config import (
    Facts,
    apply_config,
    frame_ancestors,
    gather_facts,
    update_security,
    update_spawner,
)
from learnhub.settings import init_state, load_settings
from learnhub.spawners import LearnerNetwork, SpawnerBackend

LOCAL = SpawnerBackend("local", "test")


def local_facts(origins=()) -> Facts:
    return Facts(frame_origins=tuple(origins), backend=LOCAL, network=None, retention_token="t")


@pytest.fixture
def settings(tmp_path):
    # Local learner servers: with "auto", gather_facts would ask a Docker engine.
    path = tmp_path / "learnhub.yaml"
    path.write_text("spawner:\n  backend: local\n")
    settings = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})
    init_state(settings)
    return settings


def test_apply_config_sets_every_area(settings):
    c = Config()
    apply_config(c, settings, local_facts())
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.db_url == settings.database_url
    assert c.JupyterHub.authenticator_class == "learnhub"
    assert c.JupyterHub.spawner_class == "learnhub-local"
    assert c.LearnHubAuthenticator.crypt_key == settings.crypt_key
    assert c.Authenticator.admin_users == {"admin"}
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert c.JupyterHub.cleanup_servers is False


def test_frame_ancestors_lists_exactly_the_origins(settings):
    c = Config()
    origins = ["https://canvas.example.edu", "https://moodle.example.edu"]
    update_security(c, settings, origins)
    update_spawner(c, settings, origins, LOCAL)
    csp = c.JupyterHub.tornado_settings["headers"]["Content-Security-Policy"]
    assert csp == "frame-ancestors 'self' https://canvas.example.edu https://moodle.example.edu"
    assert c.Spawner.environment["LEARNHUB_FRAME_ANCESTORS"] == " ".join(origins)
    assert c.Spawner.environment["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"


def test_frame_ancestors_without_platforms_is_self_only():
    assert frame_ancestors([]) == "frame-ancestors 'self'"


def test_registered_platforms_reach_the_csp(settings):
    from learnhub.store import Store

    Store(settings.database_url, settings.crypt_key).add_consumer(
        "k", "s", "https://lms.example.edu"
    )
    c = Config()
    apply_config(c, settings, gather_facts(settings))
    headers = c.JupyterHub.tornado_settings["headers"]
    assert headers["Content-Security-Policy"] == "frame-ancestors 'self' https://lms.example.edu"


def test_apply_config_opens_no_database_no_socket_and_writes_no_file(tmp_path, monkeypatch):
    """Containers, analytics, the culler, retention: every area, from the facts alone."""
    path = tmp_path / "learnhub.yaml"
    path.write_text("culler:\n  enabled: true\nprivacy:\n  analytics: true\n")
    environ = {
        "LEARNHUB_STATE_DIR": str(tmp_path / "state"),
        "LEARNHUB_CRYPT_KEY": "ab" * 32,
        "LEARNHUB_PSEUDONYM_KEY": "cd" * 32,
    }
    settings = load_settings(path, environ=environ)

    def refused(*args, **kwargs):
        raise AssertionError(f"apply_config reached out: {args!r:.200}")

    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.setattr(sqlalchemy, "create_engine", refused)
    monkeypatch.setattr(docker, "APIClient", refused)
    monkeypatch.setattr(docker, "from_env", refused)
    facts = Facts(
        frame_origins=("https://lms.example.edu",),
        backend=SpawnerBackend("docker", "test"),
        network=LearnerNetwork("learners", "172.20.0.1", internal=True),
        retention_token="retention-token",
    )
    c = Config()
    apply_config(c, settings, facts)

    assert list(tmp_path.iterdir()) == [path]
    assert c.JupyterHub.spawner_class == "learnhub-docker"
    assert c.JupyterHub.hub_connect_ip == "172.20.0.1"
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["learnhub-retention"]["api_token"] == "retention-token"
    assert services["learnhub-courses"]["url"].startswith("http://172.20.0.1:")
    tornado = c.JupyterHub.tornado_settings
    assert tornado["headers"]["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://lms.example.edu"
    )
    # Plain values only: JupyterHub deep-copies them, and no handle on a database is made.
    plain = (str, int, float, bool, type(None), list, dict, tuple)
    for key, value in tornado.items():
        if key not in ("transforms", "log_function"):
            assert isinstance(value, plain), (key, value)
