"""Settings validation: defaults, and errors that name the key and the fix."""

import pytest

from learnhub.settings import SettingsError, init_state, load_settings, validate


def test_defaults_fill_every_area():
    values = validate({})
    assert values["public_url"] == "http://127.0.0.1:8000"
    assert values["hub"]["admin_users"] == ["admin"]
    assert values["lti"]["session_lifetime"] == 14400
    assert values["spawner"]["backend"] == "auto"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"hub": {"adminusers": []}}, "unknown key 'hub.adminusers': did you mean 'admin_users'?"),
        ({"lti": {"session_lifetime": 10}}, "'lti.session_lifetime' is 10"),
        ({"lti": {"session_lifetime": "long"}}, "'lti.session_lifetime' must be of type integer"),
        ({"spawner": {"backend": "podman"}}, "use one of 'auto', 'docker', 'kubernetes', 'local'"),
        ({"public_url": "ftp://x"}, "'public_url'"),
        ({"database": {"url": "mysql://x"}}, "'database.url'"),
        ({"lti": {"frame_origins": ["https://lms.example.edu/path"]}}, "'lti.frame_origins.0'"),
        ({"colour": "blue"}, "unknown key 'colour'"),
    ],
    ids=[
        "typo",
        "too-small",
        "wrong-type",
        "bad-enum",
        "bad-url",
        "bad-db",
        "origin-path",
        "unknown",
    ],
)
def test_invalid_settings_name_the_key(raw, expected):
    with pytest.raises(SettingsError) as info:
        validate(raw)
    assert expected in str(info.value)


def test_too_small_value_names_the_range():
    with pytest.raises(SettingsError, match="300 to 86400"):
        validate({"lti": {"session_lifetime": 10}})


def test_reading_settings_writes_nothing(tmp_path):
    env = {"LEARNHUB_STATE_DIR": str(tmp_path / "state")}
    settings = load_settings(environ=env)
    assert not (tmp_path / "state").exists()
    with pytest.raises(SettingsError, match=r"crypt_key\.hex does not exist .* `learnhub init`"):
        settings.crypt_key  # noqa: B018
    assert list(tmp_path.iterdir()) == []


def test_secrets_are_created_once_with_private_mode(tmp_path):
    env = {"LEARNHUB_STATE_DIR": str(tmp_path / "state")}
    made = init_state(load_settings(environ=env))
    assert sorted(p.name for p in made) == [
        "crypt_key.hex",
        "pseudonym_key.hex",
        "retention-service-token",
    ]
    assert init_state(load_settings(environ=env)) == []
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    first = load_settings(environ=env)
    second = load_settings(environ=env)
    assert first.crypt_key == second.crypt_key
    assert first.pseudonym_key != first.crypt_key
    assert len(first.crypt_key) == 32
    mode = (tmp_path / "state" / "crypt_key.hex").stat().st_mode & 0o777
    assert mode == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'state' / 'learnhub.sqlite'}"


def test_secrets_from_environment(tmp_path):
    env = {
        "LEARNHUB_STATE_DIR": str(tmp_path),
        "LEARNHUB_CRYPT_KEY": "ab" * 32,
        "LEARNHUB_PSEUDONYM_KEY": "cd" * 32,
    }
    settings = load_settings(environ=env)
    assert settings.crypt_key == bytes.fromhex("ab" * 32)
    assert not (tmp_path / "crypt_key.hex").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [("zz" * 32, "must be hex"), ("ab" * 8, "at least 32 bytes")],
    ids=["not-hex", "short"],
)
def test_bad_secret_in_environment(tmp_path, value, message):
    env = {"LEARNHUB_STATE_DIR": str(tmp_path), "LEARNHUB_CRYPT_KEY": value}
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)


def test_settings_file_errors_name_the_file(tmp_path):
    path = tmp_path / "learnhub.yaml"
    path.write_text("lti:\n  timestamp_window: 5\n")
    with pytest.raises(SettingsError, match=r"learnhub.yaml: 'lti.timestamp_window' is 5"):
        load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})
    path.write_text("lti: [unclosed\n")
    with pytest.raises(SettingsError, match="is not valid YAML"):
        load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})
