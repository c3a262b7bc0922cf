"""Spawners for learner servers: Docker containers for a class, local processes for a demo."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from dockerspawner import DockerSpawner
from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado import web
from traitlets import Bool, HasTraits, Integer, TraitError, Unicode, default, validate

from learnhub_singleuser.headers import FRAME_ANCESTORS_ENV

from .courses.coursedir import course_of_grader
from .docker_engine import docker_client
from .kubernetes import kubernetes_findings
from .settings import LOOPBACK_HOSTS, Settings, SettingsError, trait_arguments

# Labels on every Docker object made for a learner, so erasure finds them all.
USER_LABEL = "org.learnhub.user"
ROLE_LABEL = "org.learnhub.role"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
# How long delete_forever waits for a container the engine is still removing.
REMOVAL_TIMEOUT = 30


class LearnerServersUnavailable(SettingsError):
    """The settings ask for Docker containers and the engine cannot give them; says the fix."""


# Pure builders


@dataclass(frozen=True)
class EngineStatus:
    """What a Docker engine said when asked: its version and which images it lacks."""

    version: str | None
    missing_images: tuple[str, ...] = ()
    error: str | None = None

    @property
    def answers(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class SpawnerBackend:
    """How learner servers will run ("docker", "kubernetes" or "local"), and why."""

    name: str
    reason: str

    @property
    def isolated(self) -> bool:
        return self.name in ("docker", "kubernetes")


NOT_ISOLATED = (
    "learner servers run as local processes of the hub's user: learners are NOT isolated "
    "from each other"
)
TO_ISOLATE = (
    "start a Docker engine (scripts/provision-docker.sh) and build the learner image "
    "(`learnhub images build`), then restart the hub"
)


# Backends that need no Docker engine on the hub's machine.
NO_ENGINE = ("local", "kubernetes")


def choose_backend(
    requested: str, default_image: str, engine: EngineStatus | None
) -> SpawnerBackend:
    """Where learner servers run, given spawner.backend and what the Docker engine said.

    `auto` takes Docker when an engine answers and the default learner image is there, else
    local processes; `docker` with no engine or no image is an error, not a silent fallback.
    """
    if requested == "local":
        return SpawnerBackend("local", f"spawner.backend is local: {NOT_ISOLATED}")
    if requested == "kubernetes":
        return SpawnerBackend(
            "kubernetes", "spawner.backend is kubernetes: a pod per learner (KubeSpawner)"
        )
    if engine is None or not engine.answers:
        why = f"no Docker engine answers ({engine.error if engine else 'not asked'})"
    elif default_image in engine.missing_images:
        why = f"the learner image {default_image} is not on this machine"
    else:
        return SpawnerBackend(
            "docker",
            f"spawner.backend is {requested}; Docker engine {engine.version} answers and "
            f"{default_image} is here",
        )
    if requested == "docker":
        raise LearnerServersUnavailable(
            f"spawner.backend is docker but {why}: {TO_ISOLATE}, or set spawner.backend "
            "to auto or local"
        )
    return SpawnerBackend(
        "local", f"spawner.backend is auto and {why}: {NOT_ISOLATED}; {TO_ISOLATE}"
    )


@dataclass(frozen=True)
class LearnerNetwork:
    """The Docker network of learner containers, as the hub needs to know it."""

    name: str
    gateway: str
    internal: bool


def network_spec(name: str, egress: bool) -> dict[str, Any]:
    """docker-py create_network arguments for the learners' network.

    Inter-container traffic is off, so no learner reaches another's server; without egress the
    network is `internal` (no route out), and the host still answers on its gateway address.
    """
    return {
        "name": name,
        "driver": "bridge",
        "internal": not egress,
        "check_duplicate": True,
        "options": {ICC_OPTION: "false"},
        "labels": {ROLE_LABEL: "learner-network"},
    }


def network_problems(inspected: Mapping[str, Any], egress: bool) -> list[str]:
    """Why an existing network cannot hold learner containers (empty when it can)."""
    name = inspected.get("Name", "?")
    problems = []
    if inspected.get("Driver") != "bridge":
        problems.append(f"network {name} uses the {inspected.get('Driver')} driver, not bridge")
    if (inspected.get("Options") or {}).get(ICC_OPTION) != "false":
        problems.append(
            f"network {name} lets containers reach each other ({ICC_OPTION} is not false)"
        )
    if bool(inspected.get("Internal")) == egress:
        want = "with egress (not internal)" if egress else "internal (spawner.egress is false)"
        problems.append(f"network {name} must be {want}")
    if not network_gateway(inspected):
        problems.append(f"network {name} has no IPv4 gateway address")
    return problems


def network_gateway(inspected: Mapping[str, Any]) -> str | None:
    for config in (inspected.get("IPAM") or {}).get("Config") or []:
        gateway = config.get("Gateway")
        if gateway and ":" not in gateway:
            return gateway
    return None


def hub_listen_ip(api_ip: str, gateway: str) -> str:
    """Where the hub API listens when learners are in containers.

    Loopback is unreachable from a container, so the default becomes the learner network's
    gateway (an address of this machine, reachable from that network only); an address the
    operator chose on purpose (0.0.0.0, say) is kept.
    """
    return gateway if api_ip in LOOPBACK_HOSTS else api_ip


def learner_labels(username: str, role: str) -> dict[str, str]:
    return {USER_LABEL: username, ROLE_LABEL: role}


def learner_host_config(
    *,
    pids_limit: int,
    mem_limit: int | None,
    tmp_size: str,
    read_only: bool,
    log_max_size: str = "10m",
) -> dict[str, Any]:
    """docker-py host-config arguments that confine a learner's container.

    DockerSpawner adds the CPU and memory limits, the home volume and the published port.
    """
    config: dict[str, Any] = {
        "pids_limit": pids_limit,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        # An init as PID 1 reaps orphaned processes (a fork bomb's, a crashed kernel's).
        "init": True,
        "read_only": read_only,
        # /tmp in memory, charged to the container's memory limit; exec kept for pip builds.
        "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={tmp_size}"},  # noqa: S108 (its own /tmp)
        # The server's stdout is also every kernel's fd 1: cap what it can write to the disk.
        "log_config": {"type": "json-file", "config": {"max-size": log_max_size, "max-file": "2"}},
    }
    if mem_limit:
        # No swap on top of the memory limit.
        config["memswap_limit"] = mem_limit
    return config


@dataclass(frozen=True)
class Isolation:
    """What a learner's container must look like before it may run."""

    images: Sequence[str]
    volume: str
    home: str
    network: str
    pids_limit: int
    mem_limit: int | None = None
    cpu_limit: float | None = None
    read_only: bool = True
    allowed_port_ips: frozenset[str] = field(default_factory=lambda: frozenset(LOOPBACK_HOSTS))
    # Set for a course's grader server, whose home is a bind of the course directory.
    course_dir: str | None = None


def isolation_problems(container: Mapping[str, Any], expected: Isolation) -> list[str]:
    """What is wrong with a learner's container (from `docker inspect`); empty when nothing."""
    host = container.get("HostConfig") or {}
    config = container.get("Config") or {}
    problems = []
    if config.get("Image") not in expected.images:
        problems.append(f"image {config.get('Image')} is not one of {', '.join(expected.images)}")
    if str(config.get("User") or "0").split(":")[0] in {"0", "root"}:
        problems.append("runs as root")
    if host.get("Privileged"):
        problems.append("is privileged")
    if "ALL" not in [c.upper() for c in host.get("CapDrop") or []] or host.get("CapAdd"):
        problems.append("keeps Linux capabilities (needs cap_drop ALL and no cap_add)")
    options = [o.split(":")[0].split("=")[0] for o in host.get("SecurityOpt") or []]
    if "no-new-privileges" not in options:
        problems.append("may gain privileges (no-new-privileges is not set)")
    if not host.get("Init"):
        problems.append("has no init process")
    if bool(host.get("ReadonlyRootfs")) != expected.read_only:
        problems.append(f"read-only root filesystem is {bool(host.get('ReadonlyRootfs'))}")
    if host.get("PidsLimit") != expected.pids_limit:
        problems.append(f"pids limit is {host.get('PidsLimit')}, not {expected.pids_limit}")
    if expected.mem_limit and host.get("Memory") != expected.mem_limit:
        problems.append(f"memory limit is {host.get('Memory')}, not {expected.mem_limit}")
    if expected.cpu_limit:
        period = host.get("CpuPeriod") or 100_000
        cpus = (host.get("NanoCpus") or 0) / 1e9 or (host.get("CpuQuota") or 0) / period
        if abs(cpus - expected.cpu_limit) > 1e-6:
            problems.append(f"CPU limit is {cpus}, not {expected.cpu_limit}")
    mounts = container.get("Mounts") or []
    home = expected.home
    if expected.course_dir:
        # A course's grader server: its home is that course's directory, and nothing else.
        homes = [m for m in mounts if (m.get("Type"), m.get("Destination")) == ("bind", home)]
        if [(m.get("Source"), bool(m.get("RW"))) for m in homes] != [(expected.course_dir, True)]:
            problems.append(f"{expected.home} is not the course directory {expected.course_dir}")
        if len(mounts) != 1:
            problems.append("mounts more than the course directory")
    else:
        homes = [m for m in mounts if (m.get("Type"), m.get("Destination")) == ("volume", home)]
        if [(m.get("Name"), bool(m.get("RW"))) for m in homes] != [(expected.volume, True)]:
            problems.append(f"{expected.home} is not the learner's own volume {expected.volume}")
    if host.get("NetworkMode") != expected.network:
        problems.append(f"is on network {host.get('NetworkMode')}, not {expected.network}")
    for port, bindings in (host.get("PortBindings") or {}).items():
        for binding in bindings or []:
            if binding.get("HostIp") not in expected.allowed_port_ips:
                problems.append(f"publishes {port} on {binding.get('HostIp') or 'every address'}")
    return problems


# I/O: the Docker engine


def engine_status(images: Iterable[str]) -> EngineStatus:
    """Ask the Docker engine for its version and which of `images` it lacks."""
    try:
        client = docker_client()
    except DockerException as e:
        return EngineStatus(None, error=_first_line(e))
    try:
        version = client.version().get("Version", "unknown")
        missing = []
        for image in images:
            try:
                client.inspect_image(image)
            except NotFound:
                missing.append(image)
        return EngineStatus(version, tuple(missing))
    except DockerException as e:
        return EngineStatus(None, error=_first_line(e))
    finally:
        client.close()


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def resolve_backend(
    settings: Settings,
    status: Callable[[Iterable[str]], EngineStatus] = engine_status,
    log=None,
) -> SpawnerBackend:
    """Choose the backend for these settings, asking the engine unless backend is local.

    When `auto` falls back to local processes, `log` (the hub's, at start-up) gets a warning.
    """
    spawner = settings["spawner"]
    images = spawner["images"]
    engine = None if spawner["backend"] in NO_ENGINE else status(images)
    backend = choose_backend(spawner["backend"], images[0], engine)
    if log is not None and not backend.isolated and spawner["backend"] == "auto":
        log.warning("LearnHub: %s", backend.reason)
    return backend


def ensure_learner_network(client: docker.APIClient, name: str, egress: bool) -> LearnerNetwork:
    """The learners' network, created when missing (idempotent, safe against a racing creator).

    A network left from other settings (egress changed, say) is replaced when no container
    uses it; otherwise the error says what to do.
    """
    for _attempt in range(3):
        try:
            inspected = client.inspect_network(name)
        except NotFound:
            try:
                client.create_network(**network_spec(name, egress))
            except APIError as e:
                if e.status_code != 409:  # someone else created it a moment ago
                    raise
            continue
        problems = network_problems(inspected, egress)
        if not problems:
            return LearnerNetwork(name, network_gateway(inspected), bool(inspected["Internal"]))
        if inspected.get("Containers"):
            raise LearnerServersUnavailable(
                f"{'; '.join(problems)}, and containers use it: stop the learner servers, "
                f"remove it (`docker network rm {name}`) or set spawner.network to another name"
            )
        client.remove_network(name)
    raise LearnerServersUnavailable(f"could not create the Docker network {name}")


def learner_network(settings: Settings) -> LearnerNetwork:
    """Make sure the learners' network exists as the settings describe it; how to reach it."""
    spawner = settings["spawner"]
    try:
        client = docker_client()
        try:
            return ensure_learner_network(client, spawner["network"], spawner["egress"])
        finally:
            client.close()
    except DockerException as e:
        raise LearnerServersUnavailable(
            f"the Docker network {spawner['network']} could not be set up: {_first_line(e)}"
        ) from None


def learner_server_findings(
    settings: Settings, status: Callable[[Iterable[str]], EngineStatus] = engine_status
) -> list[tuple[str, str]]:
    """`learnhub doctor` lines about learner servers: which mode the hub would use, and why."""
    spawner = settings["spawner"]
    engine = None if spawner["backend"] in NO_ENGINE else status(spawner["images"])
    try:
        backend = resolve_backend(settings, lambda _images: engine)
    except LearnerServersUnavailable as e:
        return [("error", f"learner servers: {e}")]
    if not backend.isolated:
        return [("warning", f"learner servers: local processes ({backend.reason})")]
    if backend.name == "kubernetes":
        return kubernetes_findings(settings)
    findings = [("ok", f"learner servers: Docker containers ({backend.reason})")]
    if engine.missing_images:
        findings.append(
            (
                "warning",
                f"allowed images not on this machine: {', '.join(engine.missing_images)} "
                "(spawns asking for them fail)",
            )
        )
    limits = (
        f"{spawner['cpu_limit']} CPU, {spawner['mem_limit']} memory, "
        f"{spawner['pids_limit']} processes per learner"
    )
    egress = "with egress" if spawner["egress"] else "without egress (internal)"
    try:
        client = docker_client()
        try:
            inspected = client.inspect_network(spawner["network"])
        finally:
            client.close()
    except NotFound:
        findings.append(
            ("ok", f"learner network {spawner['network']}: made at hub start, {egress}; {limits}")
        )
        return findings
    except DockerException as e:
        return [*findings, ("error", f"learner network {spawner['network']}: {_first_line(e)}")]
    problems = network_problems(inspected, spawner["egress"])
    if problems:
        in_use = " (in use: stop the learner servers first)" if inspected.get("Containers") else ""
        findings.append(("warning", f"{'; '.join(problems)}: the hub replaces it at start{in_use}"))
    else:
        api = hub_listen_ip(settings["hub"]["api_ip"], network_gateway(inspected))
        findings.append(
            (
                "ok",
                f"learner network {spawner['network']}: containers isolated from each other, "
                f"{egress}; hub API on {api}:{settings['hub']['api_port']}; {limits}",
            )
        )
    return findings


# Spawners

# nbgrader's parts: learners list, fetch and submit; a course's grader server grades.
GRADER_ONLY_EXTENSIONS = ("formgrader",)
LEARNER_ONLY_EXTENSIONS = ("assignment_list",)
# The course list looks for one hub service per course, which LearnHub does not run.
NO_ONES_EXTENSIONS = ("course_list",)


def nbgrader_extension_args(grader: bool) -> list[str]:
    """jupyter-server arguments giving each kind of server its nbgrader extensions only.

    The learner image turns formgrader off for everyone; a grader server turns it on.
    """
    on, off = (
        (GRADER_ONLY_EXTENSIONS, LEARNER_ONLY_EXTENSIONS)
        if grader
        else (LEARNER_ONLY_EXTENSIONS, GRADER_ONLY_EXTENSIONS)
    )
    prefix = "--ServerApp.jpserver_extensions=nbgrader.server_extensions."
    return [f"{prefix}{n}=True" for n in on] + [
        f"{prefix}{n}=False" for n in (*off, *NO_ONES_EXTENSIONS)
    ]


class CourseServers(HasTraits):
    """What learner and grader servers share: which is which, and the grader's course."""

    courses_dir = Unicode(
        "learnhub-state/courses",
        config=True,
        help="Folder holding one nbgrader course directory per course (the course service "
        "makes them); a course's grader server works in its own. Default "
        "learnhub-state/courses.",
    )

    @property
    def grader_course(self) -> str | None:
        return course_of_grader(self.user.name)

    @property
    def course_dir(self) -> str | None:
        course = self.grader_course
        return str(Path(self.courses_dir).resolve() / course) if course else None

    def role_args(self) -> list[str]:
        return nbgrader_extension_args(self.grader_course is not None)

    def role_environment(self) -> dict[str, str]:
        course = self.grader_course
        role = (
            {"LEARNHUB_SERVER_ROLE": "grader", "LEARNHUB_COURSE": course}
            if course
            else {"LEARNHUB_SERVER_ROLE": "learner"}
        )
        return {**role, **self.frame_environment()}

    def frame_environment(self) -> dict[str, str]:
        """The origins that may frame this server, as the hub knows them at its start (an
        LMS registered since the hub started included); Spawner.environment's otherwise."""
        # LearnHub's authenticator knows them; another one (a test's) leaves the config's.
        current = getattr(self.authenticator, "current_frame_origins", None)
        return {FRAME_ANCESTORS_ENV: " ".join(current())} if current else {}


class LocalLearnerSpawner(CourseServers, SimpleLocalProcessSpawner):
    """Learner servers as local processes of the hub's user: for a demo, never for a class.

    Every learner runs with the hub's privileges and can read every other learner's
    files; the hub says so in its log at each start.
    """

    home_dir_template = Unicode(
        "learnhub-state/homes/{username}",
        config=True,
        help="Folder holding each learner's files; {username} is the hub username. "
        "Default learnhub-state/homes/{username}.",
    )

    @default("home_dir")
    def _default_home_dir(self):
        # A grader server works in its course's directory.
        return self.course_dir or self.home_dir_template.format(username=self.user.name)

    def get_env(self):
        return {**super().get_env(), **self.role_environment()}

    def get_args(self):
        args = [*super().get_args(), *self.role_args()]
        if os.geteuid() == 0:
            # jupyter-server refuses root without it; this spawner is a demo mode anyway.
            args.append("--allow-root")
        return args

    async def start(self):
        self.log.warning(
            "Learner server for %s runs as a local process: learners are NOT isolated "
            "from each other. Use the Docker spawner for real classes.",
            self.user.name,
        )
        return await super().start()


class DockerLearnerSpawner(CourseServers, DockerSpawner):
    """Each learner's server in a container of their own, from an allow-listed image.

    CPU, memory and process limits; no capabilities, no privilege escalation, an init
    process, a read-only root filesystem with /tmp in memory; the learner's files in a named
    volume of their own, which survives stops, restarts and new images and goes only when
    the hub deletes the learner (`delete_forever`). A container is checked against all of
    this before it starts, whatever the configuration merged into it.
    """

    # A fork bomb stops there.
    pids_limit = Integer(**trait_arguments("spawner.pids_limit"))
    tmp_size = Unicode(
        "256m",
        config=True,
        help="Size of the in-memory /tmp of a learner's container, in Docker's size syntax "
        "(counts towards mem_limit). Default 256m.",
    )
    read_only_root = Bool(
        True,
        config=True,
        help="Mount the container's root filesystem read-only; only the home volume and /tmp "
        "are writable. Default True.",
    )
    home_volume_template = Unicode(
        "learnhub-home-{username}",
        config=True,
        help="Name of each learner's home volume; {username} is the escaped hub username "
        "(a pseudonym). Default learnhub-home-{username}.",
    )
    home_dir = Unicode(
        "/home/learner",
        config=True,
        help="Where the home volume is mounted: the learner image's home, owned by uid 1000. "
        "Default /home/learner.",
    )

    @default("prefix")
    def _default_prefix(self):
        return "learnhub"

    @default("remove")
    def _default_remove(self):
        # A fresh container from the current image at every start: new images reach learners,
        # and nothing but the home volume (and /tmp) is ever written.
        return True

    @default("pull_policy")
    def _default_pull_policy(self):
        # Images are built on this machine (`learnhub images build`); no registry is asked.
        return "never"

    @default("volumes")
    def _default_volumes(self):
        return {self.home_volume_template: {"bind": self.home_dir, "mode": "rw"}}

    @property
    def volume_binds(self):
        # A grader server gets its course's directory as home, instead of a volume.
        if self.course_dir:
            return {self.course_dir: {"bind": self.home_dir, "mode": "rw"}}
        return super().volume_binds

    def get_env(self):
        return {**super().get_env(), **self.role_environment()}

    def get_args(self):
        return [*super().get_args(), *self.role_args()]

    @default("extra_host_config")
    def _default_extra_host_config(self):
        return learner_host_config(
            pids_limit=self.pids_limit,
            mem_limit=self.mem_limit,
            tmp_size=self.tmp_size,
            read_only=self.read_only_root,
        )

    @default("extra_create_kwargs")
    def _default_extra_create_kwargs(self):
        return {"labels": learner_labels("{raw_username}", "learner-server")}

    @validate("allowed_images")
    def _validate_allowed_images(self, proposal):
        # DockerSpawner takes "*" for any image on the machine: never for learners.
        if isinstance(proposal["value"], str) or callable(proposal["value"]):
            raise TraitError(
                "DockerLearnerSpawner.allowed_images must list the images (spawner.images), "
                f"not {proposal['value']!r}"
            )
        return super()._validate_allowed_images(proposal)

    @property
    def home_volume(self) -> str:
        return self._render_templates(self.home_volume_template)

    def _allowed(self) -> dict[str, str]:
        return self._get_allowed_images() or {self.image: self.image}

    async def check_allowed(self, image):
        # Same rule as DockerSpawner (only allow-listed images), with a message that says
        # where the list comes from.
        allowed = self._allowed()
        if image not in allowed:
            raise web.HTTPError(
                400,
                f"Image {image} is not allowed: learner servers run only "
                f"{', '.join(allowed)} (the operator's spawner.images).",
            )
        return allowed[image]

    def expected_isolation(self) -> Isolation:
        return Isolation(
            images=list(self._allowed().values()),
            volume=self.home_volume,
            home=self.home_dir,
            network=self.network_name,
            pids_limit=self.pids_limit,
            mem_limit=self.mem_limit,
            cpu_limit=self.cpu_limit,
            read_only=self.read_only_root,
            allowed_port_ips=frozenset({self.host_ip}),
            course_dir=self.course_dir,
        )

    async def pull_image(self, image):
        if self.pull_policy != "never":
            return await super().pull_image(image)
        # DockerSpawner would raise docker's bare 404; say how to get the image instead.
        try:
            await self.docker("inspect_image", image)
        except NotFound:
            raise RuntimeError(
                f"the learner image {image} is not on this machine: build it with "
                "`learnhub images build`"
            ) from None

    async def start(self):
        if not self.course_dir:
            await self._ensure_home_volume()
        return await super().start()

    async def _ensure_home_volume(self):
        # Created here, not implicitly by `docker create`, to carry the learner's label
        # (erasure and export find volumes by it). Docker fills a new volume from the
        # image's home at the first mount, owner included.
        try:
            await self.docker("inspect_volume", self.home_volume)
        except NotFound:
            await self.docker(
                "create_volume",
                name=self.home_volume,
                labels=learner_labels(self.user.name, "learner-home"),
            )
            self.log.info("Created home volume %s for %s", self.home_volume, self.user.name)

    async def start_object(self):
        # DockerSpawner starts whatever it created; check the created container first.
        container = await self.docker("inspect_container", self.container_id)
        problems = isolation_problems(container, self.expected_isolation())
        if problems:
            await self.remove_object()
            self.object_id = ""
            raise RuntimeError(
                f"refusing to start {self.object_name}: the container {'; '.join(problems)}"
            )
        await super().start_object()

    async def delete_forever(self):
        """Remove the learner's containers and home volume when the hub deletes the learner.

        JupyterHub calls this from User.delete_spawners once the server has stopped (hub API
        DELETE /users/<name>, the idle culler with --cull-users). DockerSpawner keeps the base
        no-op, which would leave a deleted learner's files behind in the named volume.
        """
        await self._remove_containers()
        if self.name or self.course_dir:
            # A grader server's files are the course's: they go when the course does.
            # A named server shares the user's home volume: it goes with the user.
            return
        volumes = {self.home_volume}
        listed = await self.docker("volumes", filters={"label": f"{USER_LABEL}={self.user.name}"})
        volumes |= {v["Name"] for v in (listed or {}).get("Volumes") or []}
        for name in sorted(volumes):
            await self._remove_volume(name)

    async def delete_forever_many(self, usernames: Iterable[str]) -> set[str]:
        """delete_forever of many learners whose servers are stopped (the hub's bulk erasure
        calls it on one spawner, for its engine connection): one listing of LearnHub's
        containers and one of its volumes, then the removal of those of `usernames`. Per
        learner, delete_forever would list both again. Returns the learners for whom a
        removal failed (logged): they must not be deleted yet."""
        wanted = set(usernames)
        containers = await self.docker("containers", all=True, filters={"label": USER_LABEL})
        listed = await self.docker("volumes", filters={"label": USER_LABEL})
        removals = [
            (self._remove_container, container["Id"], owner)
            for container in containers or []
            if (owner := (container.get("Labels") or {}).get(USER_LABEL)) in wanted
        ] + [
            (self._remove_volume, volume["Name"], owner)
            for volume in (listed or {}).get("Volumes") or []
            if (owner := (volume.get("Labels") or {}).get(USER_LABEL)) in wanted
        ]
        failed = set()
        for remove, name, owner in removals:
            if owner in failed:
                continue
            try:
                await remove(name, owner)
            except (APIError, DockerException) as e:
                self.log.error("Could not remove %s of deleted user %s: %s", name, owner, e)
                failed.add(owner)
        return failed

    async def _remove_containers(self):
        names = {self.object_name}
        if not self.name:
            found = await self.docker(
                "containers", all=True, filters={"label": f"{USER_LABEL}={self.user.name}"}
            )
            names |= {c["Id"] for c in found}
        for name in names:
            await self._remove_container(name, self.user.name)
        self.object_id = ""

    async def _remove_container(self, name: str, username: str):
        deadline = asyncio.get_running_loop().time() + REMOVAL_TIMEOUT
        while True:
            try:
                await self.docker("remove_container", name, force=True, v=True)
            except NotFound:
                return
            except APIError as e:
                # 409: the engine is already removing it (auto_remove after a stop).
                if e.status_code != 409 or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.log.info("Removed container %s of %s", name, username)
            return

    async def _remove_volume(self, name: str, username: str | None = None):
        username = username or self.user.name
        deadline = asyncio.get_running_loop().time() + REMOVAL_TIMEOUT
        while True:
            try:
                await self.docker("remove_volume", name)
            except NotFound:
                return
            except APIError as e:
                # 409: still mounted by a container the engine has not finished removing.
                if e.status_code != 409 or asyncio.get_running_loop().time() > deadline:
                    self.log.error(
                        "Could not remove home volume %s of deleted user %s: %s. Remove it "
                        "with `docker volume rm %s`.",
                        name,
                        username,
                        e,
                        name,
                    )
                    raise
                await asyncio.sleep(0.5)
                continue
            self.log.info("Deleted home volume %s of %s", name, username)
            return
