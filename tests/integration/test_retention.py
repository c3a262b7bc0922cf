"""Scheduled expiry against a real hub: learners from real launches, the clock moved forward."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from learnhub.demo.lms import DemoLMS
from tests.support import (
    NOTEBOOK,
    CookielessClient,
    Hub,
    launch_from,
    lti11_launch,
    lti13_launch,
    registered_hub,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

DAY = 86400
# Past the default delete_after_days (730) and course_delete_after_days (1095).
LONG_AGO = 1200 * DAY


def start_hub(lms: DemoLMS, state: Path, **settings) -> Hub:
    """A hub of this module's own, local learner servers (their homes are files to check)."""
    hub = registered_hub(state, lms, spawner={"backend": "local"}, **settings)
    hub.start()
    return hub


@pytest.fixture(scope="module")
def lms(loop_thread):
    peer = DemoLMS(consumer_key="retention-consumer", client_id="retention", deployment_id="d1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def hub(lms, tmp_path_factory):
    instance = start_hub(lms, tmp_path_factory.mktemp("retention-hub"))
    yield instance
    instance.shutdown_everything()


@dataclass
class Learner:
    key: str
    username: str
    name: str
    email: str


def launch(client, hub, lms, key: str, version: str, course: str) -> Learner:
    name, email = f"Person {key.title()}", f"{key}.person@example.edu"
    if version == "1.1":
        response = lti11_launch(
            client, hub, lms, user_id=key, context=course, name=name, email=email
        )
    else:
        response = lti13_launch(client, lms, user_id=key, context=course, name=name, email=email)
    session = launch_from(hub.url, response)
    wait_until_ready(client, session)
    saved = client.put(
        session.server_url + "api/contents/work.ipynb",
        headers=session.headers,
        json=NOTEBOOK,
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text
    return Learner(key, session.username, name, email)


def user_id(hub: Hub, username: str) -> int | None:
    rows = hub.query("select id from users where name = ?", username)
    return rows[0][0] if rows else None


def stop_server_process(hub: Hub, username: str) -> None:
    """Kill a local learner server while the hub is down, as a crash or reboot would."""
    rows = hub.query(
        "select s.state from spawners s join users u on u.id = s.user_id where u.name = ?",
        username,
    )
    pid = json.loads(rows[0][0] or "{}").get("pid")
    assert pid, f"no server process recorded for {username}"
    stop_process(pid)


def stop_proxy(hub: Hub) -> None:
    """Stop the proxy the hub left running: it remembers each route's last activity and
    would report the old learners active again to the restarted hub."""
    stop_process(int((hub.state_dir / "proxy.pid").read_text().strip()))


def stop_process(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def backdate(hub: Hub, learners: list[Learner], course_context: str, by: float) -> None:
    """Make these learners (and their only course) last seen `by` seconds ago.

    Written while the hub is stopped: JupyterHub keeps users in memory and would write
    its own values back.
    """
    import sqlite3

    then = time.time() - by
    then_sql = dt.datetime.fromtimestamp(then, dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    with contextlib.closing(sqlite3.connect(hub.db_path)) as db:
        for learner in learners:
            db.execute(
                "update users set last_activity = ?, created = ? where name = ?",
                (then_sql, then_sql, learner.username),
            )
            db.execute(
                "update learnhub_enrollments set first_launch = ?, last_launch = ? "
                "where username = ?",
                (then, then, learner.username),
            )
        db.execute(
            "update learnhub_courses set last_launch = ?, created = ? where context_id = ?",
            (then, then, course_context),
        )
        db.commit()


def db_bytes(hub: Hub) -> bytes:
    """Every byte of the hub's SQLite files (database, journal, WAL)."""
    data = b""
    for path in hub.db_path.parent.glob(hub.db_path.name + "*"):
        data += path.read_bytes()
    return data


def secrets_of(hub: Hub, learner: Learner) -> dict[str, bytes]:
    """What the database holds about a learner, as the bytes a search of the file looks for."""
    found = {
        "username": learner.username.encode(),
        "name": learner.name.encode(),
        "email": learner.email.encode(),
    }
    (state,) = hub.query("select encrypted_auth_state from users where name = ?", learner.username)[
        0
    ]
    assert state, "the launch kept no auth state"
    found["auth_state"] = bytes(state)[:64]
    for i, (name, email, launch_data) in enumerate(
        hub.query(
            "select name_enc, email_enc, launch_enc from learnhub_enrollments where username = ?",
            learner.username,
        )
    ):
        assert name and email, "the launch's name and email were not kept"
        found[f"enrollment{i}.name"] = name.encode()[:80]
        found[f"enrollment{i}.email"] = email.encode()[:80]
        found[f"enrollment{i}.launch"] = launch_data.encode()[:80]
    for i, (hashed,) in enumerate(
        hub.query(
            "select t.hashed from api_tokens t join users u on u.id = t.user_id where u.name = ?",
            learner.username,
        )
    ):
        found[f"token{i}"] = hashed.encode()
    return found


def counts(hub: Hub) -> dict[str, int]:
    return {
        "users": hub.query("select count(*) from users")[0][0],
        "tokens": hub.query("select count(*) from api_tokens")[0][0],
        "enrollments": hub.query("select count(*) from learnhub_enrollments")[0][0],
        "courses": hub.query("select count(*) from learnhub_courses")[0][0],
        "with_contact": hub.query(
            "select count(*) from learnhub_enrollments where name_enc is not null"
        )[0][0],
    }


def iso(days_from_now: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(days=days_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def auth_state(hub: Hub, username: str) -> dict:
    """A user's auth state, decrypted as JupyterHub does it."""
    from jupyterhub.crypto import CryptKeeper

    from learnhub.auth import auth_state_key
    from learnhub.settings import load_settings

    settings = load_settings(hub.config_file, environ=hub.env())
    keeper = CryptKeeper.instance()
    keeper.keys = [auth_state_key(settings.crypt_key)]
    (blob,) = hub.query("select encrypted_auth_state from users where name = ?", username)[0]
    return json.loads(keeper.fernet.decrypt(bytes(blob)))


def test_expiry_deletes_exactly_the_inactive_learners(hub, lms):
    client = CookielessClient()
    started = time.monotonic()
    old11 = launch(client, hub, lms, "old-eleven", "1.1", "course-old")
    old13 = launch(client, hub, lms, "old-thirteen", "1.3", "course-old")
    new11 = launch(client, hub, lms, "new-eleven", "1.1", "course-new")
    new13 = launch(client, hub, lms, "new-thirteen", "1.3", "course-new")
    print(f"four launches with servers: {time.monotonic() - started:.1f}s")
    old, new = [old11, old13], [new11, new13]
    homes = hub.state_dir / "homes"
    for learner in [*old, *new]:
        assert (homes / learner.username / "work.ipynb").is_file()

    # Two years pass for the old learners: their servers are gone, their rows are old.
    hub.stop()
    for learner in [*old, new11]:
        stop_server_process(hub, learner.username)
    stop_proxy(hub)
    # The restarted hub finds those servers gone and records their stop as activity;
    # only then are the rows made old.
    hub.start()
    hub.stop()
    backdate(hub, old, "course-old", LONG_AGO)
    hub.start()

    old_ids = {learner.username: user_id(hub, learner.username) for learner in old}
    kept_secrets = {learner.key: secrets_of(hub, learner) for learner in old}
    before_bytes = db_bytes(hub)
    for found in kept_secrets.values():
        for what, value in found.items():
            if what not in {"name", "email"}:  # stored encrypted: never in the file
                assert value in before_bytes, f"{what} is not in the file to begin with"
    before = counts(hub)

    dry = hub.cli("retention", "--dry-run", "--now", iso(1))
    assert dry.returncode == 0, dry.stderr
    assert "delete person\t2" in dry.stdout
    assert "delete course\t2" in dry.stdout  # course-old on each platform
    assert "scrub name and email\t0" in dry.stdout
    listed = set(re.findall(r"^delete\t(\S+)$", dry.stdout, re.M))
    assert listed == {old11.username, old13.username}
    assert counts(hub) == before, "a dry run changed the database"
    for learner in old:
        assert (homes / learner.username).is_dir()

    started = time.monotonic()
    run = hub.cli("retention", "run", "--now", iso(1))
    print(f"retention run: {time.monotonic() - started:.1f}s\n{run.stdout}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "database compacted" in run.stdout

    after = counts(hub)
    assert after["users"] == before["users"] - 2
    assert after["courses"] == before["courses"] - 2
    assert after["enrollments"] == before["enrollments"] - 2
    for learner in old:
        assert user_id(hub, learner.username) is None
        assert not (homes / learner.username).exists(), "the home folder is left"
        assert hub.query(
            "select count(*) from learnhub_enrollments where username = ?", learner.username
        ) == [(0,)]
    assert hub.query(
        "select count(*) from api_tokens where user_id in (?, ?)", *old_ids.values()
    ) == [(0,)]
    for learner in new:
        assert user_id(hub, learner.username) is not None
        assert (homes / learner.username / "work.ipynb").is_file()
        assert auth_state(hub, learner.username)["email"] == learner.email
    assert after["with_contact"] == before["with_contact"] - 2

    after_bytes = db_bytes(hub)
    for key, found in kept_secrets.items():
        for what, value in found.items():
            assert value not in after_bytes, f"{key}'s {what} can be read back from the file"

    # A year on, the learner who has not come back loses name and email; the one whose
    # server still runs is in use and keeps them.
    scrubbed_secrets = secrets_of(hub, new11)
    dry = hub.cli("retention", "--dry-run", "--now", iso(400))
    assert "scrub name and email\t1" in dry.stdout
    assert "delete person\t0" in dry.stdout
    assert "kept (running)\t1" in dry.stdout
    run = hub.cli("retention", "run", "--now", iso(400))
    assert run.returncode == 0, run.stdout + run.stderr
    state = auth_state(hub, new11.username)
    assert "name" not in state and "email" not in state
    assert state["lms_user_id"] == new11.key  # the account itself stays
    assert "email" in auth_state(hub, new13.username)
    assert hub.query(
        "select name_enc, email_enc from learnhub_enrollments where username = ?", new11.username
    ) == [(None, None)]
    assert (homes / new11.username / "work.ipynb").is_file()
    after_bytes = db_bytes(hub)
    for what in ("enrollment0.name", "enrollment0.email", "auth_state"):
        assert scrubbed_secrets[what] not in after_bytes, f"scrubbed {what} is still in the file"


def test_retention_refuses_a_window_below_the_minimum(hub, tmp_path):
    config = tmp_path / "learnhub.yaml"
    config.write_text("privacy:\n  retention:\n    scrub_after_days: 7\n")
    result = hub.cli("--config", str(config), "retention", "--dry-run")
    assert result.returncode == 2
    assert "privacy.retention.scrub_after_days" in result.stderr
    assert "minimum of 30" in result.stderr
