"""One source per option: the settings schema gives the traits their defaults, ranges and help,
apply_config copies what a key "sets", and the configuration reference is written from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jupyterhub.app import JupyterHub
from jupyterhub.spawner import Spawner
from traitlets import TraitError
from traitlets.config import Config

from learnhub.auth import LearnHubAuthenticator
from learnhub.cli import main
from learnhub.config import update_options
from learnhub.configuration_reference import markdown, type_of
from learnhub.kubernetes_spawner import KubeLearnerSpawner
from learnhub.settings import RULES, load_settings, option, options, trait_arguments, trait_help
from learnhub.spawners import CourseServers, DockerLearnerSpawner, LocalLearnerSpawner

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
CLASSES = {
    cls.__name__: cls
    for cls in (
        JupyterHub, Spawner, LearnHubAuthenticator, DockerLearnerSpawner, KubeLearnerSpawner,
    )
}  # fmt: skip
# LearnHub's own traits that no key of learnhub.yaml sets, and why.
NOT_KEYS = {
    # Computed by apply_config from the state directory and the secrets.
    "LearnHubAuthenticator.database_url": "database.url, or SQLite in the state directory",
    "LearnHubAuthenticator.crypt_key": "a secret: LEARNHUB_CRYPT_KEY or the state directory",
    "LearnHubAuthenticator.pseudonym_key": "a secret: LEARNHUB_PSEUDONYM_KEY or the state",
    "LearnHubAuthenticator.public_url": "public_url without its trailing slash",
    "CourseServers.courses_dir": "the state directory's courses/",
    "LocalLearnerSpawner.home_dir_template": "the state directory's homes/",
    # The learner image's layout and the isolation guarantees: jupyterhub_config.local.py only.
    "DockerLearnerSpawner.tmp_size": "the container's /tmp, part of mem_limit",
    "DockerLearnerSpawner.read_only_root": "an isolation guarantee, on unless an expert says",
    "DockerLearnerSpawner.home_volume_template": "volume names erasure looks for",
    "DockerLearnerSpawner.home_dir": "the learner image's home",
}


def sets() -> dict[str, str]:
    """The option each key copies to: {"Class.trait": "key.path"}."""
    return {prop["sets"]: path for path, prop in options() if "sets" in prop}


def own_traits(cls) -> dict[str, object]:
    """The configurable traits a LearnHub class declares itself (not inherited)."""
    return {
        name: trait for name, trait in cls.class_traits(config=True).items() if name in vars(cls)
    }


def test_the_committed_reference_is_the_schema_s():
    assert REFERENCE.read_text() == markdown(), (
        "docs/configuration.md is stale: run `learnhub settings reference > docs/configuration.md`"
    )


def test_every_key_is_described_and_in_the_reference():
    page = markdown()
    for path, prop in options():
        assert prop.get("description"), f"{path} has no description"
        assert f"### `{path}`" in page
    for rule in RULES:
        assert rule.__doc__, f"{rule.__name__} says nothing for the reference"


@pytest.mark.parametrize("target", sorted(sets()))
def test_every_key_that_sets_an_option_names_a_real_trait(target):
    section, name = target.split(".")
    assert name in CLASSES[section].class_trait_names(config=True), target


@pytest.mark.parametrize(
    "cls",
    [
        LearnHubAuthenticator,
        CourseServers,
        LocalLearnerSpawner,
        DockerLearnerSpawner,
        KubeLearnerSpawner,
    ],
)
def test_learnhub_traits_are_keys_or_say_why_not(cls):
    """A new trait is a decision: a key of learnhub.yaml, or a reason it is not one."""
    for name, trait in own_traits(cls).items():
        target = f"{cls.__name__}.{name}"
        if target in NOT_KEYS:
            continue
        assert target in sets(), f"{target} is neither set by a key nor listed in NOT_KEYS"
        path = sets()[target]
        prop = option(path)
        assert trait.default() == prop["default"], target
        assert trait.help == trait_help(path)
        assert getattr(trait, "min", None) == prop.get("minimum"), target
        assert getattr(trait, "max", None) == prop.get("maximum"), target


def test_a_trait_refuses_what_its_key_refuses():
    """The ranges come with the defaults: a jupyterhub_config.local.py cannot go below them."""
    with pytest.raises(TraitError, match="pids_limit"):
        DockerLearnerSpawner(pids_limit=16, user=None)
    assert trait_arguments("spawner.pids_limit")["min"] == 64


def test_update_options_copies_every_key_that_sets_an_option(tmp_path):
    """Values other than the defaults, to a bare Config: each lands where its key says."""
    changed = {
        "hub": {"api_port": 9081, "log_level": "DEBUG"},
        "lti": {
            "session_lifetime": 600,
            "timestamp_window": 60,
            "login_state_lifetime": 60,
            "deep_linking_lifetime": 900,
            "jwks_cache_lifetime": 120,
            "clock_skew": 5,
            "frame_origins": ["https://lms.example.edu"],
        },
        "spawner": {
            "images": ["learnhub/learner:1", "learnhub/learner:2"],
            "cpu_limit": 0.5,
            "mem_limit": "1G",
            "pids_limit": 100,
            "network": "class-net",
            "start_timeout": 60,
            "kubernetes": {"state_claim": "class-state"},
        },
        "login": {"direct": False, "open_signup": True},
    }
    path = tmp_path / "learnhub.yaml"
    path.write_text(yaml.safe_dump(changed))
    settings = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "state")})
    c = Config()
    update_options(c, settings)
    for target, key in sets().items():
        section, name = target.split(".")
        value = changed
        for part in key.split("."):
            value = value[part]
        assert c[section][name] == value, target
    assert not (tmp_path / "state").exists()


def test_type_in_words():
    assert type_of(option("lti.session_lifetime")) == "integer, 300 to 86400"
    assert type_of(option("spawner.cpu_limit")) == "number, above 0 to 256"
    assert type_of(option("grading.sandbox")) == 'one of `"auto"`, `"docker"`, `"process"`'
    assert type_of(option("courses.port")) == "integer or null, 1 to 65535"


def test_settings_show_prints_the_values_in_effect_without_secrets(tmp_path, capsys, monkeypatch):
    path = tmp_path / "learnhub.yaml"
    path.write_text(yaml.safe_dump({"smtp": {"password": "hunter2-smtp"}, "culler": {}}))
    monkeypatch.setenv("LEARNHUB_STATE_DIR", str(tmp_path / "state"))
    assert main(["--config", str(path), "settings", "show"]) == 0
    out = capsys.readouterr().out
    assert "hunter2-smtp" not in out
    shown = yaml.safe_load(out)
    assert shown["smtp"]["password"] == "(set)"
    assert shown["culler"]["idle_timeout"] == 3600  # defaults filled in
    assert f"# settings: {path}" in out


def test_settings_reference_prints_the_page(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["settings", "reference"]) == 0
    assert capsys.readouterr().out == markdown()
