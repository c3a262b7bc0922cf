"""deploy/compose: the structure that matters (secrets, database, socket, volumes, one config
path), its learnhub.yaml against the settings schema, and the hub image's build context."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from learnhub.hub_image import HUB_REPOSITORY, hub_context_layout, hub_tags, stage_hub_context
from learnhub.settings import validate

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
HUB_DOCKERFILE = REPO / "images" / "hub" / "Dockerfile"
DOCKER_SOCKET = "/var/run/docker.sock"
SECRET_NAME = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN)", re.IGNORECASE)
INTERPOLATION = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)(:?[-?][^}]*)?\}$")
SECRET_VARIABLES = ["LEARNHUB_CRYPT_KEY", "LEARNHUB_PSEUDONYM_KEY", "POSTGRES_PASSWORD"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def settings() -> dict:
    return validate(yaml.safe_load((COMPOSE_DIR / "learnhub.yaml").read_text()))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, mode) of a service's volumes, short syntax."""
    result = []
    for volume in service.get("volumes") or []:
        parts = volume.split(":")
        result.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return result


def mount_at(service: dict, target: str) -> tuple[str, str, str]:
    found = [m for m in mounts(service) if m[1] == target]
    assert len(found) == 1, f"nothing (or more than one thing) mounted at {target}"
    return found[0]


def test_services_present(services):
    assert {"hub", "db"} <= set(services)
    # TLS is optional (the operator's own terminator may do it): behind a profile.
    assert services["tls"]["profiles"] == ["tls"]
    assert all("profiles" not in services[name] for name in ("hub", "db"))
    assert services["hub"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in services["db"]["healthcheck"]["test"]


def test_no_secret_inline(services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.match(value), f"{name}: {key} is inline, not from .env"
    # Required secrets stop `docker compose` with a message instead of starting with none.
    for key in ("LEARNHUB_CRYPT_KEY", "LEARNHUB_PSEUDONYM_KEY", "PGPASSWORD"):
        assert ":?" in environment(services["hub"])[key]
    assert ":?" in environment(services["db"])["POSTGRES_PASSWORD"]
    text = COMPOSE_FILE.read_text() + (COMPOSE_DIR / "learnhub.yaml").read_text()
    assert not re.search(r"[0-9a-f]{32,}", text), "something like a key is written out"


def test_env_example_names_every_variable_and_holds_no_secret(compose):
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    example = (COMPOSE_DIR / ".env.example").read_text()
    named = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    assert referenced <= named, f"not in .env.example: {sorted(referenced - named)}"
    values = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", example, re.MULTILINE))
    for key in [*SECRET_VARIABLES, "LEARNHUB_SMTP_PASSWORD"]:
        assert values[key] == "", f"{key} has a value in .env.example"


def test_learnhub_yaml_is_valid_and_has_no_password(settings):
    assert settings["spawner"]["backend"] == "docker"
    assert settings["public_url"].startswith("https://")
    assert urlsplit(settings["bind_url"]).hostname == "127.0.0.1"
    url = urlsplit(settings["database"]["url"])
    assert url.scheme.startswith("postgresql")
    assert url.password is None
    assert settings["smtp"]["password"] is None


def test_hub_runs_the_repositorys_jupyterhub_config(services):
    hub = services["hub"]
    assert hub["command"] == ["jupyterhub", "-f", "/srv/learnhub/jupyterhub_config.py"]
    # That path is the installed package's own file (the one the embedded default runs),
    # linked there by the Dockerfile; nothing of the checkout's root is staged.
    assert all("jupyterhub_config" not in staged for _, staged in hub_context_layout(REPO))
    assert re.search(
        r"ln -s \"\$\(python -c 'import learnhub; print\(learnhub\.HUB_CONFIG\)'\)\" \\\n"
        r"\s+/srv/learnhub/jupyterhub_config\.py",
        HUB_DOCKERFILE.read_text(),
    )
    # The settings it reads are the mounted learnhub.yaml.
    env = environment(hub)
    assert mount_at(hub, env["LEARNHUB_CONFIG"]) == (
        "./learnhub.yaml",
        env["LEARNHUB_CONFIG"],
        "ro",
    )


def test_postgresql_is_not_published(services, settings):
    db = services["db"]
    assert "ports" not in db and "expose" not in db
    assert db["network_mode"] == "none"
    assert db["command"] == ["postgres", "-c", "listen_addresses="]
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert "5432" not in str(port), f"{name} publishes PostgreSQL"
    # The hub reaches it through the socket volume both mount.
    socket_dir = parse_qs(urlsplit(settings["database"]["url"]).query)["host"][0]
    hub_socket = mount_at(services["hub"], socket_dir)
    db_socket = mount_at(db, "/var/run/postgresql")
    assert hub_socket[0] == db_socket[0] == "db-socket"


def test_docker_socket_only_where_needed(services):
    holders = {
        name: mode
        for name, service in services.items()
        for source, _target, mode in mounts(service)
        if source == DOCKER_SOCKET
    }
    # The hub starts learner containers: it needs the whole API, which a `:ro` mount of the
    # socket would not restrict anyway. Anything else that ever needs it may only read.
    assert "hub" in holders
    assert all(mode == "ro" for name, mode in holders.items() if name != "hub")
    assert mount_at(services["hub"], DOCKER_SOCKET)[0] == DOCKER_SOCKET


def test_volumes_for_state_and_database(compose, services):
    named = set(compose["volumes"])
    hub = services["hub"]
    state = mount_at(hub, environment(hub)["LEARNHUB_STATE_DIR"])
    database = mount_at(services["db"], "/var/lib/postgresql/data")
    assert state[0] in named and state[2] == "rw"
    assert database[0] in named and database[2] == "rw"
    assert state[0] != database[0]


def test_tls_terminator_forwards_to_the_hubs_bind_url(services, settings):
    caddyfile = (COMPOSE_DIR / "Caddyfile").read_text()
    bind = urlsplit(settings["bind_url"])
    assert f"reverse_proxy {bind.hostname}:{bind.port}" in caddyfile
    assert not re.search(r"^\s*log\b", caddyfile, re.MULTILINE), "access logs hold tokens"
    assert services["tls"]["network_mode"] == "host"
    assert mount_at(services["tls"], "/etc/caddy/Caddyfile")[2] == "ro"


# The hub image


def test_hub_image_context(tmp_path):
    wheel = tmp_path / "learnhub-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    authority = tmp_path / "proxy-ca.crt"
    authority.write_text("-----BEGIN CERTIFICATE-----\n")
    context = tmp_path / "context"
    stage_hub_context(REPO, context, wheel, [authority])
    staged = sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())
    assert staged == [
        "Dockerfile",
        "build-ca/00-proxy-ca.crt",
        "entrypoint.sh",
        "learnhub/dist/learnhub-0.1.0-py3-none-any.whl",
        "proxy/package-lock.json",
        "proxy/package.json",
        "requirements.txt",
    ]
    assert os.access(context / "entrypoint.sh", os.X_OK)
    # Every COPY source of the Dockerfile is in the context.
    for source, _target in re.findall(r"^COPY (\S+) (\S+)$", HUB_DOCKERFILE.read_text(), re.M):
        assert (context / source).exists(), source


@pytest.mark.parametrize(
    ("version", "tags"),
    [
        ("0.1.0", ["0.1.0", "latest"]),
        ("0.1.0.dev0+g1234", ["0.1.0.dev0-g1234", "latest"]),
    ],
    ids=["release", "local-version"],
)
def test_hub_tags(version, tags):
    assert hub_tags(version) == [f"{HUB_REPOSITORY}:{tag}" for tag in tags]


def test_hub_image_requirements_are_pinned_with_hashes():
    requirements = (REPO / "images" / "hub" / "requirements.txt").read_text()
    pins = re.findall(r"^([a-z0-9._-]+)==(\S+) \\$", requirements, re.MULTILINE)
    names = {name for name, _version in pins}
    assert {"jupyterhub", "psycopg", "psycopg-binary", "dockerspawner", "sqlalchemy"} <= names
    assert dict(pins)["jupyterhub"] == "6.1.1"
    assert requirements.count("--hash=sha256:") >= len(pins)
    lock = (REPO / "images" / "hub" / "proxy" / "package-lock.json").read_text()
    assert '"node_modules/configurable-http-proxy"' in lock and '"integrity"' in lock


# `docker compose config`, when a Compose is installed


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        found = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if found.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def docker_compose():
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    return command


def run_compose(command: list[str], env_file: Path, *args: str) -> subprocess.CompletedProcess:
    # Only PATH from this environment: a variable set here must not fill in for .env.
    return subprocess.run(
        [*command, "--project-name", "learnhub-test", "--env-file", str(env_file),
         "--file", str(COMPOSE_FILE), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=COMPOSE_DIR,
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip


def test_docker_compose_config_takes_secrets_from_the_env_file(docker_compose, tmp_path):
    values = {
        "LEARNHUB_CRYPT_KEY": secrets.token_hex(32),
        "LEARNHUB_PSEUDONYM_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(24),
    }
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    done = run_compose(docker_compose, env_file, "config")
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    hub = environment(rendered["services"]["hub"])
    assert hub["LEARNHUB_CRYPT_KEY"] == values["LEARNHUB_CRYPT_KEY"]
    assert hub["PGPASSWORD"] == values["POSTGRES_PASSWORD"]
    assert (
        environment(rendered["services"]["db"])["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]
    )
    assert rendered["services"]["hub"]["network_mode"] == "host"


def test_docker_compose_refuses_to_start_without_secrets(docker_compose, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text((COMPOSE_DIR / ".env.example").read_text())
    done = run_compose(docker_compose, env_file, "config")
    assert done.returncode != 0
    assert "set LEARNHUB_CRYPT_KEY in .env" in done.stderr + done.stdout
