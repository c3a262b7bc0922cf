"""The JupyterHub configuration file ships in the package: the checkout's root file points to
it, `learnhub run` and the hub image run it directly, and a jupyterhub_config.local.py beside
the settings file is read after it. Read by JupyterHub itself (`--show-config-json`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import learnhub
from learnhub.cli.run import hub_config_file
from learnhub.settings import init_state, load_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def shown_config(tmp_path: Path, config_file: str) -> dict:
    """The configuration JupyterHub loads from `config_file`, as JSON."""
    env = {
        "LEARNHUB_CONFIG": str(tmp_path / "learnhub.yaml"),
        "LEARNHUB_STATE_DIR": str(tmp_path / "state"),
    }
    init_state(load_settings(environ=env))
    done = subprocess.run(
        [str(BIN / "jupyterhub"), "--show-config-json", "-f", config_file],
        env={"PATH": str(BIN), **env},
        cwd=tmp_path / "state",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture
def settings_dir(tmp_path):
    (tmp_path / "learnhub.yaml").write_text(
        yaml.safe_dump(
            {
                "public_url": "http://127.0.0.1:18000",
                "spawner": {"backend": "local"},
                "lti": {"session_lifetime": 900},
            }
        )
    )
    return tmp_path


@pytest.mark.parametrize(
    "config_file",
    [str(REPO / "jupyterhub_config.py"), learnhub.HUB_CONFIG],
    ids=["checkout-root", "package"],
)
def test_the_root_file_and_the_package_s_give_the_same_configuration(settings_dir, config_file):
    config = shown_config(settings_dir, config_file)
    assert config["JupyterHub"]["authenticator_class"] == "learnhub"
    assert config["JupyterHub"]["spawner_class"] == "learnhub-local"
    assert config["LearnHubAuthenticator"]["session_lifetime"] == 900
    assert "template_vars" not in config["JupyterHub"]  # no local overrides here


def test_local_overrides_beside_the_settings_file_are_read_last(settings_dir):
    (settings_dir / "jupyterhub_config.local.py").write_text(
        'c.JupyterHub.template_vars = {"site": "overridden"}\n'
        "c.LearnHubAuthenticator.session_lifetime = 1200\n"
    )
    config = shown_config(settings_dir, learnhub.HUB_CONFIG)
    assert config["JupyterHub"]["template_vars"] == {"site": "overridden"}
    assert config["LearnHubAuthenticator"]["session_lifetime"] == 1200


def test_learnhub_run_runs_the_package_s_file(monkeypatch):
    monkeypatch.delenv("LEARNHUB_HUB_CONFIG", raising=False)
    assert hub_config_file() == Path(learnhub.HUB_CONFIG)
    assert Path(learnhub.HUB_CONFIG).parent == Path(learnhub.__file__).parent
    monkeypatch.setenv("LEARNHUB_HUB_CONFIG", "/srv/learnhub/jupyterhub_config.py")
    assert hub_config_file() == Path("/srv/learnhub/jupyterhub_config.py")
