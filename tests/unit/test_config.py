"""The config appliers, run against a bare traitlets Config."""

import pytest
from traitlets.config import Config

from learnhub.config import apply_config, frame_ancestors, update_security, update_spawner
from learnhub.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    # Local learner servers: with "auto", apply_config would ask a Docker engine.
    path = tmp_path / "learnhub.yaml"
    path.write_text("spawner:\n  backend: local\n")
    return load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})


def test_apply_config_sets_every_area(settings):
    c = Config()
    apply_config(c, settings)
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
    update_spawner(c, settings, origins)
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
    apply_config(c, settings)
    headers = c.JupyterHub.tornado_settings["headers"]
    assert headers["Content-Security-Policy"] == "frame-ancestors 'self' https://lms.example.edu"
