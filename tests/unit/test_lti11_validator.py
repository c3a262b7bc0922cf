"""LTI 1.1 launch validation against a real nonce store: replays at the edge of the window."""

import itertools
import time

import pytest

from learnhub.demo.lti11 import lti11_launch_params, sign_lti11_launch
from learnhub.errors import LaunchError
from learnhub.lti11.validator import validate_launch
from learnhub.store import Store

URL = "https://learnhub.example.edu/hub/lti11/launch"
WINDOW = 300


@pytest.fixture
def store(tmp_path):
    db = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", b"x" * 32)
    db.add_consumer("lms", "shared-secret")
    return db


def launch(timestamp: int, nonce: str = "n-1") -> list[tuple[str, str]]:
    params = lti11_launch_params(
        user_id="u1", roles="Learner", context_id="c1", context_title="C", resource_link_id="r1"
    )
    signed = sign_lti11_launch(
        URL, "lms", "shared-secret", params, timestamp=timestamp, nonce=nonce
    )
    return list(signed.items())


def validate(store: Store, params, now=None):
    return validate_launch(
        method="POST",
        url=URL,
        params=params,
        find_consumer=store.get_consumer,
        use_nonce=lambda key, nonce, ts, checked_at: store.use_nonce(
            key, nonce, ts, now=checked_at, window=WINDOW
        ),
        window=WINDOW,
        now=now,
    )


@pytest.mark.parametrize("step", [0.0, 0.02, 1.0], ids=["frozen", "20ms", "1s"])
def test_replay_at_the_window_edge_is_refused_however_the_clock_moves(store, monkeypatch, step):
    """The review's replay: accepted at its timestamp, posted again 299.99 s later while the
    clock moves on between readings. Every reading of the clock may differ."""
    timestamp = 1_700_000_000
    assert validate(store, launch(timestamp), now=timestamp)["user_id"] == "u1"
    readings = (timestamp + WINDOW - 0.01 + step * i for i in itertools.count())
    monkeypatch.setattr(time, "time", lambda: next(readings))
    with pytest.raises(LaunchError, match="nonce already used"):
        validate(store, launch(timestamp))


def test_nonce_is_refused_by_a_process_whose_clock_runs_a_window_ahead(store):
    timestamp = 1_700_000_000
    validate(store, launch(timestamp), now=timestamp + WINDOW)  # accepted, at the edge
    # Another hub process whose clock is a whole window ahead purges before its insert.
    store.use_nonce(
        "lms", "other", timestamp + 2 * WINDOW, now=timestamp + 2 * WINDOW, window=WINDOW
    )
    with pytest.raises(LaunchError, match="nonce already used"):
        validate(store, launch(timestamp), now=timestamp - WINDOW)


def test_timestamp_outside_the_window_is_refused_before_the_nonce_is_kept(store):
    timestamp = 1_700_000_000
    with pytest.raises(LaunchError, match="timestamp outside the allowed window"):
        validate(store, launch(timestamp), now=timestamp + WINDOW + 1)
    assert store.count_nonces() == 0
