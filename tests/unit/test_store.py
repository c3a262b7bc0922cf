"""LearnHub's tables: encrypted secrets, one-time nonces and login states, tool keys."""

import sqlite3
import time

import pytest

from learnhub.lti13.keys import ToolKeys
from learnhub.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'db.sqlite'}", b"x" * 32)


def test_consumer_secret_is_stored_encrypted(store, tmp_path):
    store.add_consumer("key1", "very-secret-value")
    assert store.get_consumer("key1").secret == "very-secret-value"
    raw = (tmp_path / "db.sqlite").read_bytes()
    assert b"very-secret-value" not in raw
    with pytest.raises(ValueError, match="already exists"):
        store.add_consumer("key1", "other")


def test_wrong_crypt_key_is_named(store, tmp_path):
    store.add_consumer("key1", "s")
    other = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", b"y" * 32)
    with pytest.raises(ValueError, match="LEARNHUB_CRYPT_KEY"):
        other.get_consumer("key1")


def test_nonce_is_one_time_and_old_ones_are_purged(store, tmp_path):
    now = time.time()
    assert store.use_nonce("k", "n1", now, now=now, window=300)
    assert not store.use_nonce("k", "n1", now, now=now, window=300)
    assert store.use_nonce("other", "n1", now, now=now, window=300)
    store.use_nonce("k", "old", now - 1000, now=now, window=300)
    store.use_nonce("k", "recent", now - 599, now=now, window=300)
    # The next insert purges what no clock can accept any more (older than two windows),
    # so the store stays bounded.
    store.use_nonce("k", "n2", now, now=now, window=300)
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        nonces = {r[0] for r in db.execute("select nonce from learnhub_lti11_nonces")}
    assert nonces == {"n1", "n2", "recent"}


def test_nonce_store_is_shared_between_processes(store, tmp_path):
    other_process = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", b"x" * 32)
    now = time.time()
    assert store.use_nonce("k", "shared", now, now=now, window=300)
    assert not other_process.use_nonce("k", "shared", now, now=now + 1, window=300)


def add_platform(store):
    return store.add_platform(
        issuer="https://lms",
        client_id="c",
        deployment_ids=["d1", "d2", "d1"],
        auth_url="https://lms/auth",
        jwks_url="https://lms/jwks",
        token_url="https://lms/token",
        frame_origin="https://lms",
    )


def test_platform_with_several_deployments(store):
    platform = add_platform(store)
    assert store.find_platforms("https://lms")[0].deployment_ids == ["d1", "d2"]
    store.add_deployment(platform.id, "d3")
    assert store.get_platform(platform.id).deployment_ids == ["d1", "d2", "d3"]
    with pytest.raises(ValueError, match="already exists"):
        add_platform(store)
    assert store.remove_platform(platform.id)
    assert store.find_platforms("https://lms") == []


def test_login_state_is_one_time(store):
    platform = add_platform(store)
    store.save_login_state(
        "s1",
        platform_id=platform.id,
        nonce="n",
        target_link_uri="t",
        storage_target=None,
        lifetime=60,
    )
    assert store.peek_login_state("s1").nonce == "n"
    assert store.consume_login_state("s1").nonce == "n"
    assert store.consume_login_state("s1") is None
    assert store.peek_login_state("s1") is None


def test_expired_login_state_is_refused(store):
    platform = add_platform(store)
    store.save_login_state(
        "s2",
        platform_id=platform.id,
        nonce="n",
        target_link_uri="t",
        storage_target=None,
        lifetime=-1,
    )
    assert store.peek_login_state("s2") is None
    assert store.consume_login_state("s2") is None


def test_tool_key_rotation_keeps_old_key_published(store):
    keys = ToolKeys(store)
    first = keys.ensure()
    assert keys.ensure() == first
    second = keys.rotate()
    assert second != first
    assert keys.signing_key()[0] == second
    assert {k["kid"] for k in keys.jwks()["keys"]} == {first, second}
    assert all("d" not in k for k in keys.jwks()["keys"])  # public parts only
    store.drop_retired_keys(time.time() + 1)
    assert {k["kid"] for k in keys.jwks()["keys"]} == {second}
