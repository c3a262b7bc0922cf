"""The learnhub command as an operator runs it: LTI registrations are data in the database."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from learnhub.images import DockerEngine

pytestmark = pytest.mark.integration

LEARNHUB = str(Path(sys.executable).with_name("learnhub"))


def run(state, *args):
    env = {**os.environ, "LEARNHUB_STATE_DIR": str(state)}
    env.pop("LEARNHUB_CONFIG", None)
    return subprocess.run(
        [LEARNHUB, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(autouse=True)
def initialised(tmp_path):
    """The state directory of these tests, made as an operator makes it."""
    made = run(tmp_path, "init")
    assert made.returncode == 0, made.stderr
    assert "made " in made.stdout and (tmp_path / "crypt_key.hex").exists()


def test_commands_elsewhere_make_no_keys_and_say_why(tmp_path):
    """Run from the wrong folder, a command changes nothing and names the fix."""
    elsewhere = tmp_path / "not-a-state-dir"
    elsewhere.mkdir()
    refused = run(elsewhere, "lti", "add-consumer", "canvas-1")
    assert refused.returncode == 2
    assert "not a LearnHub state directory yet" in refused.stderr
    assert "learnhub init" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert list(elsewhere.iterdir()) == []
    doctor = run(elsewhere, "doctor")
    assert "[error]" in doctor.stdout and "learnhub init" in doctor.stdout
    assert list(elsewhere.iterdir()) == []
    again = run(tmp_path, "init")
    assert again.returncode == 0 and "kept as it is" in again.stdout


def test_consumers(tmp_path):
    added = run(tmp_path, "lti", "add-consumer", "canvas-1", "--frame-origin", "https://lms.edu")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1]
    assert len(secret) >= 32 and " " not in secret
    # Stored encrypted: the secret's bytes are nowhere in the database file.
    assert secret.encode() not in (tmp_path / "learnhub.sqlite").read_bytes()

    chosen = run(tmp_path, "lti", "add-consumer", "moodle-1", "--secret", "s3cret-from-moodle")
    assert chosen.stdout.strip().splitlines()[-1] == "s3cret-from-moodle"
    again = run(tmp_path, "lti", "add-consumer", "canvas-1")
    assert again.returncode == 1
    assert "consumer key 'canvas-1' already exists" in again.stderr

    listed = run(tmp_path, "lti", "list-consumers").stdout
    assert "canvas-1\tframe-origin=https://lms.edu" in listed
    assert "moodle-1\tframe-origin=-" in listed
    assert secret not in listed

    assert run(tmp_path, "lti", "remove-consumer", "canvas-1").returncode == 0
    missing = run(tmp_path, "lti", "remove-consumer", "canvas-1")
    assert missing.returncode == 1
    assert "no consumer with key 'canvas-1'" in missing.stderr
    assert "canvas-1" not in run(tmp_path, "lti", "list-consumers").stdout


def test_platforms(tmp_path):
    added = run(
        tmp_path, "lti", "add-platform",
        "--issuer", "https://canvas.instructure.com", "--client-id", "1000042",
        "--deployment-id", "7:a", "--deployment-id", "7:b",
        "--auth-url", "https://sso.example.edu/authorize",
        "--jwks-url", "https://sso.example.edu/jwks",
        "--token-url", "https://sso.example.edu/token",
        "--frame-origin", "https://canvas.example.edu",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "Deployments: 7:a, 7:b" in added.stdout
    assert run(tmp_path, "lti", "add-deployment", "1", "7:c").returncode == 0
    listed = run(tmp_path, "lti", "list-platforms").stdout
    assert "deployments=7:a,7:b,7:c" in listed
    assert "frame-origin=https://canvas.example.edu" in listed

    bad = run(
        tmp_path, "lti", "add-platform", "--issuer", "x", "--client-id", "c",
        "--deployment-id", "d", "--auth-url", "not a url", "--jwks-url", "https://a/j",
        "--token-url", "https://a/t",
    )  # fmt: skip
    assert bad.returncode != 0
    assert "'not a url' is not an http(s) URL" in bad.stderr

    assert run(tmp_path, "lti", "remove-platform", "1").returncode == 0
    assert run(tmp_path, "lti", "list-platforms").stdout.strip() == "No LTI 1.3 platforms."


def test_rotate_key_keeps_the_old_key_published(tmp_path):
    first = run(tmp_path, "lti", "rotate-key")
    second = run(tmp_path, "lti", "rotate-key")
    assert first.returncode == 0 and second.returncode == 0
    with sqlite3.connect(tmp_path / "learnhub.sqlite") as db:
        rows = db.execute("select active from learnhub_tool_keys order by created").fetchall()
    assert [bool(r[0]) for r in rows] == [False, True]


def test_invalid_settings_stop_the_command(tmp_path):
    config = tmp_path / "learnhub.yaml"
    config.write_text("lti:\n  sesion_lifetime: 60\n")
    result = run(tmp_path, "--config", str(config), "doctor")
    assert result.returncode == 2
    assert "unknown key 'lti.sesion_lifetime': did you mean 'session_lifetime'?" in result.stderr


def test_doctor_reports_what_would_run(tmp_path):
    result = run(tmp_path, "doctor")
    assert "[ok] settings: defaults" in result.stdout
    assert "LTI registrations: 0" in result.stdout


def test_doctor_says_where_learnhub_runs_and_where_its_data_lives(tmp_path):
    """With Docker containers: the engine (one host here), the storage, the images."""
    if DockerEngine().version() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Docker engine answers; under CI=true this test may not skip")
        pytest.skip("no Docker engine answers: run scripts/provision-docker.sh (as root)")
    config = tmp_path / "learnhub.yaml"
    config.write_text("spawner:\n  backend: docker\n")
    out = run(tmp_path, "--config", str(config), "doctor").stdout
    assert "[ok] engine: Docker " in out and "one host (no Swarm)" in out
    assert f"gradebooks in {tmp_path}; the database: SQLite at {tmp_path}" in out
    assert "[ok] images on " in out and "learnhub/learner:latest" in out
