"""How long one retention sweep takes at 10,000 and 100,000 learners, and what it does to launches.

A script, not a test. For each size it makes a fresh state directory, starts a real hub
(local learner servers) once so JupyterHub creates its tables, stops it, and fills the
database in bulk: N hub users with encrypted auth state, N enrollments (name and email
encrypted) over N/100 courses, and a home folder with a notebook per learner. One learner
in ten last came 800 days ago. The hub is started again, one real learner is launched over
LTI 1.1, and while `learnhub retention run` deletes the 10% a loop keeps launching that
learner and times each launch. Prints the sweep's wall time and launch latency (median, p95,
max) before and during the sweep.

    .venv/bin/python benchmarks/retention.py            # 10,000 and 100,000
    .venv/bin/python benchmarks/retention.py 2000       # any sizes
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from learnhub.auth import auth_state_key  # noqa: E402
from learnhub.demo.lms import lti11_launch_params, sign_lti11_launch  # noqa: E402
from learnhub.settings import load_settings  # noqa: E402
from learnhub.store import Cipher  # noqa: E402
from tests import support  # noqa: E402
from tests.support import Hub, free_port, write_settings  # noqa: E402

# JupyterHub's start-up reads every user: allow for large databases.
support.HUB_START_TIMEOUT = 3600

CONSUMER = "bench-consumer"
SECRET = "bench-secret-" + secrets.token_hex(8)
DAY = 86400


# Pseudonyms in the shape LMS launches make ("l" + 19 base32 letters), from a number.
DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")


def learner_name(i: int) -> str:
    return "l" + f"{i:019d}".translate(DIGITS_AS_LETTERS)


def sql_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def fill(hub: Hub, n: int, inactive_every: int = 10) -> int:
    """Bulk-insert n learners; every `inactive_every`-th last came 800 days ago."""
    import base64

    from cryptography.fernet import Fernet, MultiFernet

    settings = load_settings(hub.config_file, environ=hub.env())
    cipher = Cipher(settings.crypt_key)
    hub_fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(auth_state_key(settings.crypt_key)))])
    now = time.time()
    old = now - 800 * DAY
    courses = max(1, n // 100)
    homes = hub.state_dir / "homes"
    started = time.monotonic()
    with sqlite3.connect(hub.db_path) as db:
        (user_role,) = db.execute("select id from roles where name = 'user'").fetchone()
        next_id = (db.execute("select max(id) from users").fetchone()[0] or 0) + 1
        db.executemany(
            "insert into learnhub_courses (id, platform, context_id, title, created, last_launch)"
            " values (?, 'bench', ?, ?, ?, ?)",
            [(f"cbench{c:06d}", f"ctx-{c}", f"Course {c}", old, now) for c in range(courses)],
        )
        users, roles, enrollments = [], [], []
        inactive = 0
        for i in range(n):
            name = learner_name(i)
            seen = old if i % inactive_every == 0 else now - (i % 300) * DAY / 10
            inactive += i % inactive_every == 0
            person = f"Learner Number{i}"
            email = f"learner{i}@example.edu"
            state = {"platform": "bench", "lms_user_id": str(i), "name": person, "email": email}
            users.append(
                (
                    next_id + i, name, False, sql_time(seen), sql_time(seen),
                    secrets.token_hex(16), hub_fernet.encrypt(json.dumps(state).encode()),
                )
            )  # fmt: skip
            roles.append((next_id + i, user_role))
            enrollments.append(
                (
                    f"cbench{i % courses:06d}", name, "learner", "1.1", "bench",
                    cipher.encrypt("{}"), cipher.encrypt(person), cipher.encrypt(email),
                    seen, seen,
                )
            )  # fmt: skip
        db.executemany(
            "insert into users (id, name, admin, created, last_activity, cookie_id,"
            " encrypted_auth_state) values (?, ?, ?, ?, ?, ?, ?)",
            users,
        )
        db.executemany(
            "insert into user_role_map (user_id, role_id, managed_by_auth) values (?, ?, 0)",
            roles,
        )
        db.executemany(
            "insert into learnhub_enrollments (course_id, username, role, lti_version, platform,"
            " launch_enc, name_enc, email_enc, first_launch, last_launch)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            enrollments,
        )
    for i in range(n):
        home = homes / learner_name(i)
        home.mkdir(parents=True)
        (home / "work.ipynb").write_text('{"cells": [], "nbformat": 4}')
    print(f"  filled {n} learners in {time.monotonic() - started:.1f}s", flush=True)
    return inactive


class LaunchLoop(threading.Thread):
    """Launches one learner again and again over LTI 1.1, timing each launch."""

    def __init__(self, hub: Hub):
        super().__init__(daemon=True)
        self.hub = hub
        self.times: list[tuple[float, float]] = []  # (start, seconds)
        self.failures = 0
        self.stop = threading.Event()

    def launch_once(self) -> float:
        params = lti11_launch_params(
            user_id="bench-active", roles="Learner", context_id="bench-course",
            context_title="Bench course", resource_link_id="bench-link",
        )  # fmt: skip
        form = sign_lti11_launch(f"{self.hub.url}/hub/lti11/launch", CONSUMER, SECRET, params)
        started = time.monotonic()
        response = requests.post(
            f"{self.hub.url}/hub/lti11/launch", data=form, allow_redirects=False, timeout=120
        )
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            self.failures += 1
        return elapsed

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            self.times.append((started, self.launch_once()))
            time.sleep(0.05)


def summary(values: list[float]) -> str:
    if not values:
        return "no launches"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{len(values)} launches: median {statistics.median(values) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


def run_size(n: int) -> dict:
    print(f"\n== {n} learners", flush=True)
    state = Path(tempfile.mkdtemp(prefix=f"retention-bench-{n}-"))
    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    extra = {
        "spawner": {"backend": "local"},
        "culler": {"enabled": False},
        # The benchmark runs the sweep by hand; the service must not start one of its own.
        "privacy": {"retention": {"enabled": False, "service_port": free_port()}},
    }
    from learnhub.settings import SCHEMA

    if "courses" in SCHEMA["properties"]:
        extra["courses"] = {"port": free_port()}
    write_settings(config, url, **extra)
    hub = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    added = hub.cli("lti", "add-consumer", CONSUMER, f"--secret={SECRET}")
    assert added.returncode == 0, added.stderr
    try:
        hub.start()
        hub.stop()
        inactive = fill(hub, n)
        started = time.monotonic()
        hub.start()
        print(f"  hub start with {n} users: {time.monotonic() - started:.1f}s", flush=True)
        loop = LaunchLoop(hub)
        loop.launch_once()  # the first launch starts the learner's server
        loop.start()
        time.sleep(5)
        sweep_started = time.monotonic()
        now = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
        result = subprocess.run(
            [str(Path(sys.executable).with_name("learnhub")), "retention", "run", "--now", now],
            env=hub.env(), capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        sweep_ended = time.monotonic()
        time.sleep(3)
        loop.stop.set()
        loop.join(130)
        seconds = sweep_ended - sweep_started
        remaining = hub.query(
            "select count(*) from users where name glob 'la[a-j]*' and length(name) = 20"
        )[0][0]
        before = [s for t, s in loop.times if t < sweep_started]
        during = [s for t, s in loop.times if sweep_started <= t < sweep_ended]
        print(f"  sweep: {seconds:.1f}s, exit {result.returncode}; deleted "
              f"{n - remaining} of {inactive} inactive learners", flush=True)  # fmt: skip
        for line in result.stdout.splitlines():
            if not line.startswith(("delete\t", "scrub\t", "delete-course\t")):
                print("    " + line)
        if result.returncode:
            print(result.stderr[-2000:])
        print(f"  launch latency before the sweep: {summary(before)}")
        print(f"  launch latency during the sweep: {summary(during)}")
        print(f"  failed launches: {loop.failures}", flush=True)
        return {"n": n, "sweep_seconds": seconds, "deleted": n - remaining}
    finally:
        stop(hub)


def stop(hub: Hub) -> None:
    """Stop the hub, the learner server and the proxy (Hub.shutdown_everything would also
    ask Docker about each of the N learners, which takes hours at 100,000)."""
    pids = hub.server_pids() if hub.db_path.exists() else []
    hub.stop()
    proxy = hub.state_dir / "proxy.pid"
    if proxy.exists():
        pids.append(int(proxy.read_text().strip() or 0))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    args = parser.parse_args(argv)
    results = [run_size(n) for n in args.sizes]
    print("\nlearners\tsweep seconds\tdeleted\tper deleted learner")
    for r in results:
        per = r["sweep_seconds"] / max(1, r["deleted"]) * 1000
        print(f"{r['n']}\t{r['sweep_seconds']:.1f}\t{r['deleted']}\t{per:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
