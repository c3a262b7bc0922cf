"""update_services and the culler settings, against a bare traitlets Config."""

import json
import sys

import pytest
from traitlets.config import Config

from learnhub.config import Facts, apply_config
from learnhub.services import (
    IDLE_CULLER,
    activity_interval,
    idle_culler_command,
    update_culler,
)
from learnhub.settings import SettingsError, init_state, load_settings
from learnhub.spawners import SpawnerBackend


def settings_with(tmp_path, culler=None):
    path = tmp_path / "learnhub.yaml"
    path.write_text(json.dumps({"culler": culler or {}}))
    return load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})


def test_defaults_cull_after_an_hour_checking_every_five_minutes(tmp_path):
    c = Config()
    update_culler(c, settings_with(tmp_path))
    [service] = c.JupyterHub.services
    assert service == {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            "--timeout=3600",
            "--cull-every=300",
            "--max-age=0",
            "--cull-users=False",
            "--config=",
        ],
    }
    assert "admin" not in service
    assert "api_token" not in service
    # JupyterHub's own activity interval, and the spawner left alone.
    assert c.JupyterHub.last_activity_interval == 300
    assert "environment" not in c.Spawner


def test_the_role_holds_only_what_stopping_servers_needs(tmp_path):
    c = Config()
    update_culler(c, settings_with(tmp_path))
    [role] = c.JupyterHub.load_roles
    assert role["name"] == "idle-culler"
    assert role["services"] == ["idle-culler"]
    assert sorted(role["scopes"]) == ["delete:servers", "list:users", "read:servers"]
    assert not {"admin:users", "read:users:activity", "admin:servers"} & set(role["scopes"])


def test_values_come_from_the_settings(tmp_path):
    c = Config()
    culler = {"idle_timeout": 7200, "check_every": 600, "max_age": 86400}
    update_culler(c, settings_with(tmp_path, culler))
    command = c.JupyterHub.services[0]["command"]
    assert "--timeout=7200" in command
    assert "--cull-every=600" in command
    assert "--max-age=86400" in command


@pytest.mark.parametrize(
    ("idle_timeout", "interval"),
    [(30, 5), (60, 10), (600, 100), (1800, 300), (3600, 300), (604800, 300)],
    ids=["30s", "1min", "10min", "30min", "1h", "7d"],
)
def test_activity_reports_come_well_within_the_timeout(idle_timeout, interval):
    assert activity_interval(idle_timeout) == interval


def test_short_timeouts_make_learner_servers_report_more_often(tmp_path):
    c = Config()
    c.Spawner.environment = {"LEARNHUB_FRAME_ANCESTORS": "https://lms.example.edu"}
    update_culler(c, settings_with(tmp_path, {"idle_timeout": 30, "check_every": 5}))
    assert c.JupyterHub.last_activity_interval == 5
    assert c.Spawner.environment == {
        "LEARNHUB_FRAME_ANCESTORS": "https://lms.example.edu",
        "JUPYTERHUB_ACTIVITY_INTERVAL": "5",
    }


def test_disabled_adds_no_service_and_no_role(tmp_path):
    c = Config()
    update_culler(c, settings_with(tmp_path, {"enabled": False}))
    assert "services" not in c.JupyterHub
    assert "load_roles" not in c.JupyterHub
    assert "last_activity_interval" not in c.JupyterHub


def test_services_and_roles_set_by_other_code_are_kept(tmp_path):
    c = Config()
    other_service = {"name": "retention", "command": ["retention"]}
    other_role = {"name": "retention", "scopes": ["admin:users"], "services": ["retention"]}
    c.JupyterHub.services = [other_service]
    c.JupyterHub.load_roles.append(other_role)  # a lazy append is merged too
    update_culler(c, settings_with(tmp_path))
    assert [s["name"] for s in c.JupyterHub.services] == ["retention", IDLE_CULLER]
    assert c.JupyterHub.services[0] == other_service
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["retention", IDLE_CULLER]
    assert c.JupyterHub.load_roles[0] == other_role


def test_applying_twice_does_not_duplicate(tmp_path):
    c = Config()
    settings = settings_with(tmp_path)
    update_culler(c, settings)
    update_culler(c, settings)
    assert [s["name"] for s in c.JupyterHub.services] == [IDLE_CULLER]
    assert [r["name"] for r in c.JupyterHub.load_roles] == [IDLE_CULLER]


def test_apply_config_runs_the_culler_after_the_spawner(tmp_path):
    """The activity interval survives update_spawner's own environment."""
    c = Config()
    settings = settings_with(tmp_path, {"idle_timeout": 60, "check_every": 10})
    init_state(settings)
    apply_config(c, settings, Facts((), SpawnerBackend("local", "test"), None, "t"))
    assert IDLE_CULLER in [s["name"] for s in c.JupyterHub.services]
    assert c.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] == "10"
    assert c.Spawner.environment["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"


@pytest.mark.parametrize(
    ("culler", "message"),
    [
        ({"idle_timeout": 10}, "'culler.idle_timeout' is 10: 10 is less than the minimum of 30"),
        ({"check_every": 1}, "'culler.check_every' is 1: 1 is less than the minimum of 5"),
        ({"max_age": -1}, "'culler.max_age' is -1: -1 is less than the minimum of 0"),
        ({"enabled": "yes"}, "'culler.enabled' must be of type boolean"),
        ({"idle_timout": 60}, "unknown key 'culler.idle_timout': did you mean 'idle_timeout'?"),
    ],
    ids=["timeout-too-short", "check-too-often", "negative-age", "enabled-not-bool", "typo"],
)
def test_bad_values_name_the_key_and_the_fix(tmp_path, culler, message):
    with pytest.raises(SettingsError) as raised:
        settings_with(tmp_path, culler)
    assert message in str(raised.value)
    if "unknown key" not in message:
        assert "Expected " in str(raised.value)


def test_checking_less_often_than_the_timeout_is_refused(tmp_path):
    with pytest.raises(SettingsError) as raised:
        settings_with(tmp_path, {"idle_timeout": 60})  # check_every stays 300
    assert str(raised.value) == f"{tmp_path / 'learnhub.yaml'}: " + (
        "'culler.check_every' is 300, longer than 'culler.idle_timeout' (60): idle servers "
        "would run up to 360 seconds; set culler.check_every to at most 60"
    )


def test_the_command_is_one_the_culler_accepts():
    """Every option parses to the intended value in jupyterhub-idle-culler's own app."""
    from jupyterhub_idle_culler import IdleCuller

    command = idle_culler_command({"idle_timeout": 45, "check_every": 7, "max_age": 900})
    assert command[:3] == [sys.executable, "-m", "jupyterhub_idle_culler"]
    app = IdleCuller()
    app.parse_command_line(command[3:])
    assert app.timeout == 45
    assert app.cull_every == 7
    assert app.max_age == 900
    assert app.cull_users is False
    assert app.config_file == ""


def test_each_hub_service_listens_next_to_the_hub_api_unless_configured(tmp_path):
    from learnhub.service_names import (
        COURSE_SERVICE,
        GRADING_SERVICE,
        RETENTION_SERVICE,
        service_port,
    )

    settings = settings_with(tmp_path)
    api = settings["hub"]["api_port"]
    names = (COURSE_SERVICE, GRADING_SERVICE, RETENTION_SERVICE)
    assert [service_port(settings, n) for n in names] == [api + 1, api + 2, api + 3]
    path = tmp_path / "learnhub.yaml"
    path.write_text(json.dumps({"grading": {"port": 9999}}))
    configured = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})
    assert service_port(configured, GRADING_SERVICE) == 9999
    assert service_port(configured, COURSE_SERVICE) == api + 1
