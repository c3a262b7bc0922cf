"""The retention service config: least-privilege role, server token scope, secure_delete."""

import sqlite3

import pytest
from traitlets.config import Config

from learnhub.privacy.retention import SecureDeleteConnection, hub_db_kwargs
from learnhub.privacy.service import (
    RETENTION_SCOPES,
    SERVER_TOKEN_SCOPE,
    SERVICE_URL_ENV,
    service_token,
    update_retention_service,
)
from learnhub.settings import SettingsError, init_state, load_settings


def settings_in(tmp_path, text=""):
    path = tmp_path / "learnhub.yaml"
    path.write_text(text)
    settings = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "state")})
    init_state(settings)
    return settings


def test_service_role_and_environment(tmp_path):
    settings = settings_in(tmp_path, "hub:\n  api_port: 9000\n")
    c = Config()
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "custom"]
    update_retention_service(c, settings, service_token(settings.state_dir))
    (service,) = c.JupyterHub.services
    assert service["name"] == "learnhub-retention"
    assert service["url"] == "http://127.0.0.1:9003"
    assert service["environment"]["LEARNHUB_CONFIG"] == str((tmp_path / "learnhub.yaml").resolve())
    token_file = settings.state_dir / "retention-service-token"
    assert service["api_token"] == token_file.read_text()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    (role,) = c.JupyterHub.load_roles
    assert role["scopes"] == list(RETENTION_SCOPES)
    assert "admin:servers" not in role["scopes"] and "tokens" not in role["scopes"]
    assert role["services"] == ["learnhub-retention"]
    assert c.Spawner.environment[SERVICE_URL_ENV] == (
        "http://127.0.0.1:9003/services/learnhub-retention/"
    )
    assert c.Spawner.server_token_scopes[-1] == SERVER_TOKEN_SCOPE
    assert "custom" in c.Spawner.server_token_scopes
    assert SERVER_TOKEN_SCOPE in c.JupyterHub.extra_user_scopes
    # Applying twice changes nothing.
    update_retention_service(c, settings, service_token(settings.state_dir))
    assert len(c.JupyterHub.services) == 1
    assert c.Spawner.server_token_scopes.count(SERVER_TOKEN_SCOPE) == 1


def test_service_listens_where_containers_reach_the_hub(tmp_path):
    settings = settings_in(tmp_path, "privacy:\n  retention:\n    service_port: 8999\n")
    c = Config()
    c.JupyterHub.hub_connect_ip = "172.30.0.1"
    update_retention_service(c, settings, service_token(settings.state_dir))
    assert c.JupyterHub.services[0]["url"] == "http://172.30.0.1:8999"


def test_hub_sqlite_connections_overwrite_deleted_rows(tmp_path):
    kwargs = hub_db_kwargs("sqlite:///x.sqlite", {"pool_recycle": 5})
    assert kwargs["pool_recycle"] == 5
    assert kwargs["connect_args"]["check_same_thread"] is False
    connection = sqlite3.connect(tmp_path / "db", factory=kwargs["connect_args"]["factory"])
    assert isinstance(connection, SecureDeleteConnection)
    assert connection.execute("PRAGMA secure_delete").fetchone() == (1,)
    assert hub_db_kwargs("postgresql://db/x", {}) == {}


def test_reading_the_service_token_writes_nothing(tmp_path):
    """`learnhub init` makes the token; a process that only reads it never mints one (two
    processes minting at once could each hold a different token)."""
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(SettingsError, match="learnhub init"):
        service_token(state)
    assert list(state.iterdir()) == []
    settings = load_settings(environ={"LEARNHUB_STATE_DIR": str(state)})
    made = init_state(settings)
    assert state / "retention-service-token" in made
    token = service_token(state)
    assert len(token) == 64 and init_state(settings) == []
    assert service_token(state) == token
