"""The hub on PostgreSQL, as deploy/compose runs it: a cookieless LTI launch to a kernel, LTI
1.1 nonces that outlive a restart, JupyterHub's and LearnHub's tables in one database, and the
hub image itself starting learner containers.

PostgreSQL is Debian's, started by scripts/provision-postgres.sh on 127.0.0.1; the hub is this
repository's jupyterhub_config.py with `database.url` naming that server and no password in
the settings file: the password comes from the environment (PGPASSWORD), as in deploy/compose.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from types import SimpleNamespace

import psycopg
import pytest

from learnhub.db import VERSION_TABLE, head_revision
from learnhub.db.migrate import POSTGRES_LOCK
from learnhub.demo.lms import DemoLMS, tool_urls
from tests.integration.test_db_migrations import (
    LEARNHUB,
    assert_migrated_intact,
    make_pre_alembic_database,
)
from tests.support import (
    REPO,
    Hub,
    execute,
    free_port,
    launch_from,
    lti11_launch,
    page_config,
    wait_until_ready,
    write_settings,
)

pytestmark = pytest.mark.integration

PROVISION = REPO / "scripts" / "provision-postgres.sh"
PROVISION_TIMEOUT = 900  # an apt install of postgresql on a slow mirror


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the PostgreSQL tests may not skip")
    pytest.skip(reason)


@dataclass(frozen=True)
class Database:
    """A database and its owner role on the provisioned server, with a random password."""

    host: str
    port: int
    name: str
    user: str
    password: str

    @property
    def url(self) -> str:
        """The settings' database.url: no password in it, libpq reads PGPASSWORD. The driver is
        named, as in deploy/compose, so SQLAlchemy 2.0 and 2.1 (different defaults) agree."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.name}"

    def connect(self):
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.name,
            user=self.user,
            password=self.password,
            connect_timeout=10,
        )

    def query(self, sql: str, *params):
        with self.connect() as db:
            return db.execute(sql, params).fetchall()


def run_as_postgres(port: int, sql: str) -> None:
    """SQL through the server's socket as its superuser (peer login), on standard input so no
    password shows in a process list."""
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", str(port),
         "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "-"],
        input=sql, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"psql failed:\n{done.stderr}"


@pytest.fixture(scope="session")
def postgres_server() -> tuple[str, int]:
    """(host, port) of a PostgreSQL server on 127.0.0.1, installed and started when missing."""
    if os.geteuid() != 0:
        unavailable("PostgreSQL tests need root to install and start Debian's postgresql")
    if shutil.which("pg_ctlcluster") is None and shutil.which("apt-get") is None:
        unavailable("PostgreSQL tests need Debian's postgresql or apt-get to install it")
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(PROVISION)], capture_output=True, text=True, timeout=PROVISION_TIMEOUT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{PROVISION.name} failed:\n{done.stdout}{done.stderr}"
    fields = dict(item.split("=", 1) for item in done.stdout.strip().splitlines()[-1].split())
    assert fields["PGHOST"] == "127.0.0.1", done.stdout
    print(f"PostgreSQL {fields['CLUSTER']} ready in {time.monotonic() - started:.1f}s")
    return fields["PGHOST"], int(fields["PGPORT"])


@contextlib.contextmanager
def new_database(server: tuple[str, int]):
    """A database owned by a new role with a random password; both dropped afterwards."""
    host, port = server
    name = f"learnhub_test_{secrets.token_hex(4)}"
    # URL-safe characters only, so the password also fits inside an SQL string literal.
    database = Database(host, port, name, name, secrets.token_urlsafe(24))
    run_as_postgres(
        port,
        f"CREATE ROLE {name} LOGIN PASSWORD '{database.password}';\n"
        f"CREATE DATABASE {name} OWNER {name};\n",
    )
    try:
        yield database
    finally:
        run_as_postgres(port, f"DROP DATABASE IF EXISTS {name} WITH (FORCE);\nDROP ROLE {name};\n")


@pytest.fixture(scope="session")
def postgres_database(postgres_server):
    with new_database(postgres_server) as database:
        yield database


# `lms` and `hub` override the session's fixtures of tests/conftest.py for this module, so its
# log-on-failure hook and `client` (no cookie jar, no Cookie header sent) apply here too.


@pytest.fixture(scope="module")
def lms(loop_thread):
    """An LTI peer of this module's own, so the session's LMS keeps pointing at its own hub."""
    peer = DemoLMS(consumer_key="pg-consumer", client_id="learnhub-pg", deployment_id="dep-pg")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@dataclass
class PostgresHub(Hub):
    """The hub of tests.support with its database in PostgreSQL instead of SQLite."""

    database: Database | None = None

    def env(self) -> dict[str, str]:
        # The password reaches libpq through its own variable, never through the settings file.
        return {**super().env(), "PGPASSWORD": self.database.password}

    def query(self, sql: str, *params):
        return self.database.query(sql, *params)

    def server_pids(self) -> list[int]:
        pids = []
        for (state,) in self.query("select state from spawners where state is not null"):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                state = json.loads(state) if isinstance(state, str) else state
                if state.get("pid"):
                    pids.append(int(state["pid"]))
        return pids

    def shutdown_everything(self) -> None:
        """Stop the hub, then the learner servers and the proxy it leaves running."""
        pids = []
        with contextlib.suppress(psycopg.Error):
            pids = self.server_pids()
        self.stop()
        proxy_pid = self.state_dir / "proxy.pid"
        if proxy_pid.exists():
            pids.append(int(proxy_pid.read_text().strip() or 0))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def hub(lms, postgres_database, tmp_path_factory):
    state = tmp_path_factory.mktemp("pg-hub-state")
    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    # Local learner servers: this module is about the database, not the container engine.
    write_settings(
        config, url, database={"url": postgres_database.url}, spawner={"backend": "local"}
    )
    assert postgres_database.password not in config.read_text()
    instance = PostgresHub(
        url=url,
        state_dir=state,
        config_file=config,
        log_path=state / "hub.log",
        database=postgres_database,
    )
    for name, value in tool_urls(url).items():
        setattr(lms, name, value)
    # --secret=...: a generated secret may begin with "-".
    added = instance.cli(
        "lti", "add-consumer", lms.consumer_key, f"--secret={lms.consumer_secret}",
        f"--frame-origin={lms.url}",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    instance.start()
    yield instance
    instance.shutdown_everything()


def test_lti11_launch_to_a_kernel_on_postgresql(client, hub, lms):
    before = hub.counts()
    launch = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="pg-ada"))
    assert hub.counts()["users"] == before["users"] + 1

    wait_until_ready(client, launch)
    lab = client.get(
        f"{launch.hub_url}{launch.lab_url}?token={launch.token}", allow_redirects=False
    )
    assert lab.status_code == 200, lab.text[:2000]
    assert page_config(lab.text)["token"] == launch.token
    listing = client.get(launch.server_url + "api/contents", headers=launch.headers)
    assert listing.status_code == 200, listing.text
    assert listing.json()["type"] == "directory"
    assert execute(launch, "1+1") == "2"

    # The launch's user, server and token are JupyterHub's rows in PostgreSQL.
    assert hub.query("select count(*) from users where name = %s", launch.username) == [(1,)]
    assert hub.counts()["servers"] >= 1
    assert launch.token not in hub.log_path.read_text()


def test_lti11_nonce_replay_refused_across_a_restart(client, hub, lms):
    from learnhub.demo.lti11 import lti11_launch_params

    form = lms.sign_lti11(
        lti11_launch_params(
            user_id="pg-replayer",
            roles="Learner",
            context_id="pg-course",
            context_title="Course pg",
            resource_link_id="pg-link",
        )
    )
    first = client.post(f"{hub.url}/hub/lti11/launch", data=form, allow_redirects=False)
    assert first.status_code == 200, first.text[:2000]
    stored = hub.query(
        "select count(*) from learnhub_lti11_nonces where consumer_key = %s and nonce = %s",
        lms.consumer_key,
        form["oauth_nonce"],
    )
    assert stored == [(1,)]

    # A new hub process knows only what PostgreSQL kept.
    hub.stop()
    assert hub.proc.poll() is not None
    hub.start()
    before = hub.counts()
    again = client.post(f"{hub.url}/hub/lti11/launch", data=form, allow_redirects=False)
    assert again.status_code == 401, again.text[:2000]
    assert "OAuth nonce already used: this launch was replayed" in again.text
    assert hub.counts() == before

    # The hub still takes a fresh launch after its restart.
    fresh = lti11_launch(client, hub, lms, user_id="pg-replayer")
    assert launch_from(hub.url, fresh).token


def test_both_schemas_live_in_postgresql(hub, postgres_database):
    tables = {
        name
        for (name,) in postgres_database.query(
            "select tablename from pg_tables where schemaname = 'public'"
        )
    }
    # JupyterHub's own tables,
    assert {"users", "servers", "spawners", "api_tokens", "groups"} <= tables
    # and LearnHub's.
    assert {
        "learnhub_lti11_consumers",
        "learnhub_lti11_nonces",
        "learnhub_lti13_platforms",
        "learnhub_lti13_deployments",
        "learnhub_lti13_login_states",
        "learnhub_tool_keys",
    } <= tables
    keys = postgres_database.query("select key from learnhub_lti11_consumers")
    assert keys == [("pg-consumer",)]
    # Nothing fell back to SQLite in the state directory.
    assert sorted(p.name for p in hub.state_dir.glob("*.sqlite*")) == []
    assert postgres_database.password not in hub.log_path.read_text()


def test_upgrade_db_keeps_every_row_of_a_database_made_before_migrations(postgres_server, tmp_path):
    """tests/fixtures/pre_alembic on PostgreSQL, upgraded by `learnhub upgrade-db` while
    another upgrade holds LearnHub's migration lock: it waits, then keeps every row."""
    with new_database(postgres_server) as database:
        user = f"{database.user}:{database.password}"
        url = f"postgresql+psycopg://{user}@{database.host}:{database.port}/{database.name}"
        hub_revision = make_pre_alembic_database(url)
        config = tmp_path / "learnhub.yaml"
        write_settings(config, "http://127.0.0.1:8000", database={"url": database.url})
        env = {
            **os.environ,
            "LEARNHUB_CONFIG": str(config),
            "LEARNHUB_STATE_DIR": str(tmp_path),
            "PGPASSWORD": database.password,
        }
        with database.connect() as holder:
            holder.execute("select pg_advisory_xact_lock(%s)", (POSTGRES_LOCK,))
            upgrading = subprocess.Popen(
                [LEARNHUB, "upgrade-db"], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
            deadline = time.monotonic() + 60
            while database.query(waiting) != [(1,)]:
                assert upgrading.poll() is None, upgrading.communicate()
                assert time.monotonic() < deadline, "learnhub upgrade-db never asked for the lock"
                time.sleep(0.2)
            assert database.query("select to_regclass(%s)", VERSION_TABLE) == [(None,)]
        # Leaving the block commits, which releases the lock.
        stdout, stderr = upgrading.communicate(timeout=60)
        assert upgrading.returncode == 0, stderr
        assert f"now at revision {head_revision()}" in stdout
        assert database.password not in stdout + stderr
        assert_migrated_intact(url, hub_revision)


# The hub image, run as deploy/compose runs it: in the host's network namespace, with the
# Docker socket, secrets in its environment, learnhub.yaml mounted, learners in containers.

HUB_IMAGE = "learnhub/hub:latest"
LEARNER_IMAGE = "learnhub/learner:latest"
HUB_READY_TIMEOUT = 90


@pytest.fixture(scope="module")
def hub_image():
    """The hub image of this checkout, built once per run (docker's cache makes a rebuild of
    unchanged sources take seconds; the first build, on the local Debian base, minutes)."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    from learnhub.hub_image import build_hub_image
    from learnhub.images import ImageBuildError

    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except DockerException as e:
        unavailable(f"no Docker engine answers ({e}): run scripts/provision-docker.sh (as root)")
    try:
        engine.images.get(LEARNER_IMAGE)
    except ImageNotFound:
        unavailable(f"{LEARNER_IMAGE} is not built: run `learnhub images build --no-pull`")
    started = time.monotonic()
    try:
        build = build_hub_image(pull=False, progress=lambda _line: None)
    except ImageBuildError as e:
        pytest.fail(f"the hub image did not build: {e}")
    print(f"hub image {build.image_id[:19]} built in {time.monotonic() - started:.0f}s")
    yield engine
    engine.close()


def wait_for_hub(url: str, container) -> None:
    import requests

    deadline = time.monotonic() + HUB_READY_TIMEOUT
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            pytest.fail(f"the hub container exited:\n{container.logs().decode()[-5000:]}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{url}/hub/api", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"the hub container did not answer:\n{container.logs().decode()[-5000:]}")


def test_hub_image_on_postgresql_with_learner_containers(
    hub_image, postgres_server, tmp_path, client
):
    from docker.errors import NotFound

    engine = hub_image
    tag = secrets.token_hex(4)
    network = f"learnhub-pgtest-{tag}"
    state_volume = f"learnhub-pgtest-state-{tag}"
    # The container shares the host's network: write_settings' free ports are free there too.
    url = f"http://127.0.0.1:{free_port()}"
    with new_database(postgres_server) as database:
        settings = tmp_path / "learnhub.yaml"
        write_settings(settings, url, database={"url": database.url},
                       spawner={"backend": "docker", "network": network,
                                "images": [LEARNER_IMAGE]})  # fmt: skip
        secrets_env = {
            "LEARNHUB_CRYPT_KEY": secrets.token_hex(32),
            "LEARNHUB_PSEUDONYM_KEY": secrets.token_hex(32),
            "PGPASSWORD": database.password,
        }
        container = engine.containers.run(
            HUB_IMAGE,
            ["jupyterhub", "-f", "/srv/learnhub/jupyterhub_config.py"],
            name=f"learnhub-pgtest-hub-{tag}",
            detach=True,
            init=True,
            network_mode="host",
            environment=secrets_env,
            volumes={
                str(settings): {"bind": "/srv/learnhub/learnhub.yaml", "mode": "ro"},
                state_volume: {"bind": "/srv/learnhub/state", "mode": "rw"},
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            },
        )
        try:
            wait_for_hub(url, container)
            # The image runs the package's own jupyterhub_config.py, as the embedded default.
            shown = container.exec_run(["cat", "/srv/learnhub/jupyterhub_config.py"])
            assert shown.output.decode() == (REPO / "hub" / "jupyterhub_config.py").read_text()

            peer = DemoLMS(consumer_key=f"compose-{tag}", **tool_urls(url))
            added = container.exec_run(
                ["learnhub", "lti", "add-consumer", peer.consumer_key,
                 f"--secret={peer.consumer_secret}"]
            )  # fmt: skip
            assert added.exit_code == 0, added.output.decode()

            # lti11_launch needs only the hub's URL.
            target = SimpleNamespace(url=url)
            launch = launch_from(url, lti11_launch(client, target, peer, user_id="compose-ada"))
            wait_until_ready(client, launch)
            lab = client.get(f"{url}{launch.lab_url}?token={launch.token}", allow_redirects=False)
            assert lab.status_code == 200, lab.text[:2000]
            assert page_config(lab.text)["token"] == launch.token
            assert execute(launch, "1+1") == "2"
            learners = engine.containers.list(filters={"network": network})
            assert [c.attrs["Config"]["Image"] for c in learners] == [LEARNER_IMAGE]
            assert (launch.username,) in database.query("select name from users")

            # A new hub container (an upgrade, a crash) finds the learner's server again,
            # through the proxy it starts afresh.
            container.restart(timeout=20)
            wait_for_hub(url, container)
            listing = client.get(launch.server_url + "api/contents", headers=launch.headers)
            assert listing.status_code == 200, listing.text[:2000]
            logs = container.logs().decode()
            assert "Found proxy pid file" not in logs
            assert launch.token not in logs and database.password not in logs
        finally:
            users = [name for (name,) in database.query("select name from users")]
            container.remove(force=True)
            for learner in engine.containers.list(all=True, filters={"network": network}):
                learner.remove(force=True)
            for name in [state_volume, *(f"learnhub-home-{user}" for user in users)]:
                with contextlib.suppress(NotFound):
                    engine.volumes.get(name).remove(force=True)
            with contextlib.suppress(NotFound):
                engine.networks.get(network).remove()
