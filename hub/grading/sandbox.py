"""Sandboxes that execute a learner's notebook: a fresh container, or a confined subprocess."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import io
import json
import logging
import os
import random
import shutil
import signal
import socket
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..images import grader_tags
from .runner import (
    EXECUTE_TRAITS,
    FILES_PREFIX,
    FRAME_MAGIC,
    REQUEST_NAME,
    decode_frame,
    mark_not_run,
)

log = logging.getLogger(__name__)

RUNNER = Path(__file__).resolve().parent / "runner.py"
# The grader image of this LearnHub version (`learnhub images build` makes it).
DEFAULT_IMAGE = grader_tags()[0]
SANDBOX_LABEL = "org.learnhub.role"
SANDBOX_ROLE = "grading-sandbox"
# Which process on which machine started a sandbox container: a restarted service removes
# those whose process is gone (a worker killed with its service cannot clean up after itself).
OWNER_LABEL = "org.learnhub.grading-owner"
# How long a container started ahead of demand waits for a submission before it is replaced
# (a rebuilt image is then picked up): seconds.
SPARE_MAX_AGE_S = 600
# Inside the grader image (images/grader/Dockerfile puts the runner there).
CONTAINER_WORKDIR = "/srv/submission"
CONTAINER_USER = "1000:1000"
# Time a sandbox is given beyond the notebook's limit to start (a container, a kernel) and
# report, before it is killed from outside.
START_GRACE_S = 30
# The most of a runner's stderr kept for the logs (its tail).
STDERR_BYTES = 16_384
# Where a process sandbox's uids come from: a fresh one per execution, so RLIMIT_NPROC counts
# only that execution's processes and the notebook can read nothing private of anyone else.
PROCESS_UID_BASE = 1_500_000_000
PROCESS_UID_SPAN = 1_000_000
# Directories a process sandbox hides behind an empty, read-only-for-it tmpfs: root's files,
# learners' homes, and the places anyone may write (so it writes nowhere but its own directory).
HIDDEN_DIRECTORIES = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm")  # noqa: S108

# What went wrong, most important first: Execution.reason is the first of these it has.
REASONS = (
    "error",
    "timeout_notebook",
    "memory",
    "processes",
    "killed",
    "timeout_cell",
    "output_truncated",
)


class SandboxError(Exception):
    """The sandbox itself could not run (no engine, no image): retry later, do not grade."""


def execute_settings(config=None) -> tuple[tuple[str, Any], ...]:
    """What nbgrader's Execute preprocessor, read with `config` (a course's nbgrader
    configuration), sets on nbclient, for the runner (which does not import nbgrader)."""
    from nbgrader.preprocessors import Execute

    execute = Execute(config=config) if config is not None else Execute()
    return tuple((name, getattr(execute, name)) for name in EXECUTE_TRAITS)


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times in seconds, sizes in MB unless named otherwise."""

    cpus: float = 1.0
    memory_mb: int = 512
    pids: int = 128
    cell_timeout_s: int = 30
    notebook_timeout_s: int = 300
    # Per cell, counted in characters of the outputs' text.
    output_bytes: int = 1_000_000
    # Each of /tmp and the work directory (in memory, counted in memory_mb in a container).
    scratch_mb: int = 64
    open_files: int = 256
    # nbgrader's Execute settings the runner applies (runner.EXECUTE_TRAITS), as (name,
    # value) pairs: the course's (autograde.course_limits), else nbgrader's defaults.
    execute: tuple[tuple[str, Any], ...] | None = field(default=None, compare=False)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if name == "execute":
                continue
            if not value or value <= 0:
                raise ValueError(f"Limits.{name} must be positive, not {value!r}")
        if self.cell_timeout_s > self.notebook_timeout_s:
            raise ValueError("Limits.cell_timeout_s must not exceed Limits.notebook_timeout_s")

    def for_runner(self) -> dict[str, Any]:
        """The limits the runner enforces itself (the rest are the sandbox's)."""
        return {
            "cell_timeout_s": self.cell_timeout_s,
            "notebook_timeout_s": self.notebook_timeout_s,
            "output_bytes": self.output_bytes,
            "pids": self.pids,
            "execute": dict(self.execute if self.execute is not None else execute_settings()),
        }

    @property
    def wall_clock_s(self) -> float:
        """When the sandbox is killed from outside, however the notebook behaves."""
        return self.notebook_timeout_s + START_GRACE_S


@dataclass(frozen=True)
class LimitEvent:
    """A limit a notebook hit: `reason` (one of REASONS), at `cell` (0-based index) if known."""

    reason: str
    cell: int | None = None
    detail: str = ""


@dataclass
class Execution:
    """What a sandbox gives back: the executed notebook, and what limits it hit."""

    notebook: dict
    events: list[LimitEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sandbox: str = ""

    @property
    def reason(self) -> str | None:
        """The most important limit hit, or None when the notebook ran within its limits."""
        reasons = {event.reason for event in self.events}
        return next((r for r in REASONS if r in reasons), None)

    def messages(self, limits: Limits) -> list[str]:
        """One plain-English sentence per limit hit, for the instructor."""
        seen, messages = set(), []
        for event in self.events:
            message = instructor_message(event, limits, self.notebook)
            if message not in seen:
                seen.add(message)
                messages.append(message)
        return messages


class Sandbox(Protocol):
    limits: Limits
    weaker: bool

    async def execute(
        self, notebook_json: dict, files: Path, *, limits: Limits | None = None
    ) -> Execution: ...


# Pure builders


def _cell_name(index: int | None, notebook: dict | None) -> str:
    if index is None:
        return "a cell"
    name = f"cell {index + 1}"
    cells = (notebook or {}).get("cells") or []
    if 0 <= index < len(cells):
        grade_id = ((cells[index].get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if grade_id:
            name += f" ({grade_id})"
    return name


def _megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1e3:g} kB"


def instructor_message(event: LimitEvent, limits: Limits, notebook: dict | None = None) -> str:
    """What an instructor reads about one limit a submission hit."""
    cell = _cell_name(event.cell, notebook)
    at = f" (in {cell})" if event.cell is not None else ""
    match event.reason:
        case "timeout_cell":
            return f"{cell.capitalize()} ran longer than {limits.cell_timeout_s} s and was stopped"
        case "timeout_notebook":
            return (
                f"The notebook ran longer than {limits.notebook_timeout_s} s in all and was "
                f"stopped{at}; the cells after that were not run"
            )
        case "memory":
            return f"The notebook used more than {limits.memory_mb} MB of memory{at}"
        case "processes":
            return f"The notebook tried to run more than {limits.pids} processes{at}"
        case "killed":
            return f"The notebook's kernel died{at}; the cells after that were not run"
        case "output_truncated":
            return (
                f"{cell.capitalize()} printed more than {_megabytes(limits.output_bytes)} of "
                "output; the rest was dropped"
            )
        case _:
            detail = f": {event.detail}" if event.detail else ""
            return f"The sandbox could not run the notebook{detail}"


def container_create_command(
    image: str,
    limits: Limits,
    name: str,
    docker: str = "docker",
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """The `docker create` of one submission's sandbox, started by `container_start_command`;
    the request goes to its standard input.

    Created first, then started: once the container exists under its name, `docker rm --force`
    of that name always finds it (a `docker run` client killed mid-create can leave the daemon
    creating a container after the removal looked for it).

    `labels` are added to the role label (the service's submission id, say): they name the
    container, they do not reach the notebook."""
    scratch = f"rw,nosuid,nodev,noexec,size={limits.scratch_mb}m"
    extra = [arg for key, value in (labels or {}).items() for arg in ("--label", f"{key}={value}")]
    return [
        docker, "create", "--interactive", "--name", name,
        "--pull", "never",
        "--label", f"{SANDBOX_LABEL}={SANDBOX_ROLE}", *extra,
        "--network", "none",
        "--read-only",
        "--user", CONTAINER_USER,
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        # An init as PID 1 reaps what a fork bomb leaves behind.
        "--init",
        "--cpus", f"{limits.cpus:g}",
        "--memory", f"{limits.memory_mb}m",
        # No swap on top of the memory limit.
        "--memory-swap", f"{limits.memory_mb}m",
        "--pids-limit", str(limits.pids),
        "--ulimit", f"nofile={limits.open_files}:{limits.open_files}",
        "--ulimit", "core=0",
        "--tmpfs", f"/tmp:{scratch}",  # noqa: S108 (the container's own /tmp)
        "--tmpfs", f"{CONTAINER_WORKDIR}:{scratch},uid=1000,gid=1000,mode=0700",
        "--workdir", CONTAINER_WORKDIR,
        # Nothing the notebook prints reaches the engine's disk; stdout is attached, not logged.
        "--log-driver", "none",
        "--hostname", "sandbox",
        image,
    ]  # fmt: skip


def container_start_command(name: str, docker: str = "docker") -> list[str]:
    """Start a created sandbox with its standard streams attached; exits with the container."""
    return [docker, "start", "--attach", "--interactive", name]


def request_archive(notebook_json: dict, files: Path | None, limits: Limits) -> bytes:
    """The tar stream a runner reads: request.json, then the assignment's files under files/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        request = json.dumps({"notebook": notebook_json, "limits": limits.for_runner()}).encode()
        info = tarfile.TarInfo(REQUEST_NAME)
        info.size = len(request)
        archive.addfile(info, io.BytesIO(request))
        if files is not None and files.is_dir():
            for path in sorted(files.rglob("*")):
                # Regular files only: a link could point anywhere on this machine.
                if path.is_symlink() or not (path.is_file() or path.is_dir()):
                    continue
                relative = path.relative_to(files).as_posix()
                info = tarfile.TarInfo(FILES_PREFIX + relative)
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    archive.addfile(info)
                    continue
                info.size, info.mode = path.stat().st_size, 0o444
                with path.open("rb") as f:
                    archive.addfile(info, f)
    return buffer.getvalue()


def result_cap(notebook_json: dict, limits: Limits) -> int:
    """The most a runner's answer may hold: the notebook plus every cell's capped output."""
    cells = len(notebook_json.get("cells") or [])
    # JSON escaping can double text; what is kept past a cap adds a little per cell.
    return 16_000_000 + len(json.dumps(notebook_json)) + cells * (2 * limits.output_bytes + 65_536)


def parse_result(stdout: bytes, submitted: dict) -> tuple[dict, list[LimitEvent], list[str]] | None:
    """The runner's answer (notebook, events, warnings), or None when it gave none whole.

    The executed notebook must be the submitted one with outputs: the same number of cells
    with the same sources, so nothing but outputs can come back changed.
    """
    payload = decode_frame(stdout)
    if payload is None:
        return None
    try:
        answer = json.loads(payload)
        notebook = answer["notebook"]
        cells, sent = notebook["cells"], submitted.get("cells") or []
        if len(cells) != len(sent) or any(
            c.get("source") != s.get("source") for c, s in zip(cells, sent, strict=True)
        ):
            return None
        events = [
            LimitEvent(e["reason"], e.get("cell"), str(e.get("detail") or ""))
            for e in answer.get("events", [])
        ]
        return notebook, events, [str(w) for w in answer.get("warnings", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def stopped_notebook(submitted: dict, why: str) -> dict:
    """The submitted notebook with every code cell marked as not run (no answer came back)."""
    notebook = copy.deepcopy(submitted)
    for cell in notebook.get("cells") or []:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
    mark_not_run(notebook.get("cells") or [], 0, why)
    return notebook


def isolation_plan(limits: Limits, uid: int, own: Path, hide=HIDDEN_DIRECTORIES) -> dict[str, Any]:
    """What the runner of a process sandbox does to itself before it reads the request; `own`
    is the directory of its work directory and home, which stays writable."""
    mb = 1024 * 1024
    return {
        "uid": uid,
        "gid": uid,
        "hide": list(hide),
        "writable": [str(own)],
        "rlimits": {
            "RLIMIT_AS": limits.memory_mb * mb,
            "RLIMIT_NPROC": limits.pids,
            # CPU seconds of each process: the wall clock stops the notebook before that.
            "RLIMIT_CPU": int(limits.wall_clock_s) + 5,
            "RLIMIT_FSIZE": limits.scratch_mb * mb,
            "RLIMIT_NOFILE": limits.open_files,
            "RLIMIT_CORE": 0,
        },
    }


def process_environment(home: Path, python: str = sys.executable) -> dict[str, str]:
    """The whole environment of a process sandbox: no hub token, no secret, nothing inherited."""
    venv_bin = str(Path(python).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLCONFIGDIR": str(home / "matplotlib"),
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Fewer malloc arenas: each reserves address space that RLIMIT_AS counts.
        "MALLOC_ARENA_MAX": "2",
    }


# I/O


def frame_end(data: bytes | bytearray) -> int | None:
    """Where the runner's frame that starts `data` ends, once its header is whole."""
    if not data.startswith(FRAME_MAGIC):
        return None
    newline = data.find(b"\n", len(FRAME_MAGIC), len(FRAME_MAGIC) + 14)
    header = bytes(data[len(FRAME_MAGIC) : newline])
    if newline < 0 or not header.isdigit():
        return None
    return newline + 1 + int(header)


async def _exchange(
    proc: asyncio.subprocess.Process, data: bytes, out_cap: int, *, until_frame: bool = False
) -> tuple[bytes, bytes]:
    """Feed `data` to the process, read its stdout (up to out_cap) and stderr's tail.

    With `until_frame`, return as soon as stdout holds a whole frame, without waiting for the
    process to end (it is killed and removed next): its tidying up is nobody's business."""

    async def feed():
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(data)
            await proc.stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.close()

    async def collect(stream, cap: int, tail: bool, frame: bool = False) -> bytes:
        kept, end = bytearray(), None
        while chunk := await stream.read(1 << 16):
            kept += chunk
            if len(kept) > cap:
                kept = kept[-cap:] if tail else kept[:cap]
            if frame:
                end = end or frame_end(kept)
                if end is not None and len(kept) >= end:
                    break
        return bytes(kept)

    feeding = asyncio.ensure_future(feed())
    errors = asyncio.ensure_future(collect(proc.stderr, STDERR_BYTES, True))
    try:
        out = await collect(proc.stdout, out_cap, False, until_frame)
        await feeding
        if until_frame and decode_frame(out) is not None:
            return out, b""
        err = await errors
        await proc.wait()
        return out, err
    finally:
        feeding.cancel()
        errors.cancel()


def _finish(
    submitted: dict,
    stdout: bytes,
    stderr: bytes,
    *,
    timed_out: bool,
    limits: Limits,
    started: float,
    sandbox: str,
    killed_why: str | None = None,
    warnings: list[str] | None = None,
) -> Execution:
    seconds = time.monotonic() - started
    warnings = list(warnings or [])
    parsed = None if timed_out else parse_result(stdout, submitted)
    if parsed is not None:
        notebook, events, more = parsed
        return Execution(notebook, events, warnings + more, seconds, sandbox)
    if timed_out:
        why = f"the notebook ran longer than {limits.notebook_timeout_s} s"
        event = LimitEvent("timeout_notebook")
    elif killed_why:
        why, event = killed_why, LimitEvent("memory" if "memory" in killed_why else "killed")
    else:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no answer"]
        why = "the sandbox gave no readable result"
        event = LimitEvent("error", detail=f"{why} ({tail[0][:300]})")
    log.warning("grading sandbox (%s): %s; stderr: %s", sandbox, why, stderr[-2000:])
    return Execution(stopped_notebook(submitted, why), [event], warnings, seconds, sandbox)


def owner_label(host: str | None = None, pid: int | None = None) -> str:
    """The OWNER_LABEL value of the containers this process starts."""
    return f"{host or socket.gethostname()}:{pid or os.getpid()}"


def stale_containers(listing: str, host: str, alive: Callable[[int], bool]) -> list[str]:
    """The names, in `docker ps --format '{{.Names}} {{.Label ...}}'` output, of the sandbox
    containers that a process of `host` started and that process is gone."""
    stale = []
    for line in listing.splitlines():
        name, _, owner = line.strip().partition(" ")
        owner_host, _, pid = owner.rpartition(":")
        if name and owner_host == host and pid.isdigit() and not alive(int(pid)):
            stale.append(name)
    return stale


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Containers of this process not yet removed, for the atexit sweep.
_LIVE_CONTAINERS: dict[str, str] = {}  # name -> docker command


def _remove_live_containers() -> None:
    import subprocess

    by_docker: dict[str, list[str]] = {}
    for name, docker in list(_LIVE_CONTAINERS.items()):
        by_docker.setdefault(docker, []).append(name)
    for docker, names in by_docker.items():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [docker, "rm", "--force", *names], capture_output=True, timeout=30, check=False
            )
    _LIVE_CONTAINERS.clear()


atexit.register(_remove_live_containers)


@dataclass
class _Container:
    """A started container of the grader image (`docker start --attach --interactive`), waiting
    for its one request."""

    name: str
    proc: asyncio.subprocess.Process
    started: float

    @property
    def usable(self) -> bool:
        """Waiting still, and young enough. (Its pipes belong to the running event loop: a
        spare of another loop is removed by name in _settle.)"""
        return self.proc.returncode is None and time.monotonic() - self.started < SPARE_MAX_AGE_S


@dataclass
class _Spare:
    """The next submission's container, being started in the background."""

    name: str
    task: asyncio.Task[_Container]


class DockerSandbox:
    """A fresh container of the grader image per submission, through the Docker CLI.

    No network, no capabilities, a read-only root, memory/CPU/process limits, /tmp and the work
    directory in memory, nothing mounted from this machine: the request (notebook and the
    assignment's files) goes in on standard input, the executed notebook comes out on standard
    output. The container is killed at the wall-clock limit and always removed.

    With `spare` (the default), one more container is started while a submission is graded,
    and it waits, runner imported and kernel started, for the next submission only: a
    container is never given two. `close()` removes it; so does an atexit hook, and a sandbox
    of a later process removes those whose process died without either (OWNER_LABEL).
    """

    weaker = False
    name = "docker"

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        limits: Limits | None = None,
        docker: str = "docker",
        labels: Mapping[str, str] | None = None,
        spare: bool = True,
    ):
        self.image = image
        self.limits = limits or Limits()
        self.docker = docker
        self.labels = dict(labels or {})
        self.spare = spare
        self._spare: _Spare | None = None
        self._removals: dict[str, asyncio.subprocess.Process] = {}
        self._swept = False

    async def _start(self, name: str | None = None) -> _Container:
        """Create a container and start it; it imports and starts its kernel, then waits for
        its request."""
        name = name or self._new_name()
        labels = {**self.labels, OWNER_LABEL: owner_label()}
        _LIVE_CONTAINERS[name] = self.docker
        try:
            code, said = await self._docker(
                *container_create_command(self.image, self.limits, name, self.docker, labels)[1:]
            )
        except OSError as e:
            _LIVE_CONTAINERS.pop(name, None)
            raise SandboxError(f"cannot run {self.docker}: {e}") from e
        if code != 0:
            await self._remove(name)
            raise SandboxError(
                f"docker could not create the grading sandbox from {self.image}: {said[-500:]} "
                "(build it with `learnhub images build`)"
            )
        try:
            proc = await asyncio.create_subprocess_exec(
                *container_start_command(name, self.docker),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            await self._remove(name)
            raise SandboxError(f"cannot run {self.docker}: {e}") from e
        return _Container(name, proc, time.monotonic())

    @staticmethod
    def _new_name() -> str:
        return f"learnhub-grade-{uuid.uuid4().hex[:16]}"

    def _start_spare(self) -> None:
        """Start the next submission's container in the background, off this one's path."""
        name = self._new_name()
        self._spare = _Spare(name, asyncio.create_task(self._start(name)))

    async def _take(self) -> _Container:
        """The spare if it is still waiting, else a container started now."""
        spare, self._spare = self._spare, None
        if spare is not None:
            container = await self._settle(spare)
            if container is not None and container.usable:
                return container
            if container is not None:
                await self._discard(container)
        return await self._start()

    async def _settle(self, spare: _Spare) -> _Container | None:
        """The spare's container once started, or None (its start failed, or it belongs to
        an event loop that is not this one: then it is removed by name)."""
        if spare.task.get_loop() is not asyncio.get_running_loop():
            await self._remove(spare.name)
            return None
        try:
            return await spare.task
        except SandboxError as e:
            log.warning("the spare grading container did not start: %s", e)
            return None

    async def _discard(self, container: _Container) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(container.proc.pid, signal.SIGKILL)
        await self._remove(container.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(container.proc.wait(), 10)

    async def _start_removal(self, name: str) -> None:
        """Start `docker rm --force`; it runs on even if this event loop stops meanwhile."""
        try:
            self._removals[name] = await asyncio.create_subprocess_exec(
                self.docker, "rm", "--force", name,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as e:
            log.error("could not remove grading container %s: %s", name, e)

    async def removed(self, *, wait: bool = True) -> None:
        """Check the removals of finished executions' containers (waiting for them with
        `wait`) and retry those that failed."""
        for name, proc in list(self._removals.items()):
            if not wait and proc.returncode is None:
                continue
            del self._removals[name]
            try:
                code = await asyncio.wait_for(proc.wait(), 60)
            except (TimeoutError, RuntimeError):  # RuntimeError: of an event loop now closed
                code = None
            if code == 0:
                _LIVE_CONTAINERS.pop(name, None)
            else:
                await self._remove(name)

    async def close(self) -> None:
        """Remove the container waiting for the next submission, if any, and wait until
        those of finished executions are gone."""
        spare, self._spare = self._spare, None
        if spare is not None:
            container = await self._settle(spare)
            if container is not None:
                await self._discard(container)
        await self.removed()

    async def sweep(self) -> list[str]:
        """Remove sandbox containers of this machine whose process is gone; their names."""
        code, listing = await self._docker(
            "ps", "--all", "--filter", f"label={SANDBOX_LABEL}={SANDBOX_ROLE}",
            "--filter", f"label={OWNER_LABEL}",
            "--format", f'{{{{.Names}}}} {{{{.Label "{OWNER_LABEL}"}}}}',
        )  # fmt: skip
        if code != 0:
            return []
        stale = stale_containers(listing, socket.gethostname(), _process_alive)
        for name in stale:
            await self._remove(name)
        if stale:
            log.warning("removed %d grading containers left by stopped workers", len(stale))
        return stale

    async def _docker(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            self.docker, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, f"docker {args[0]} did not answer within {timeout} s"
        return proc.returncode, out.decode(errors="replace").strip()

    async def _remove(self, name: str) -> None:
        """Remove the container; the engine may refuse while it is still taking it down."""
        said = ""
        for attempt in range(5):
            code, said = await self._docker("rm", "--force", name)
            if code == 0 or "No such container" in said:
                _LIVE_CONTAINERS.pop(name, None)
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        log.error("could not remove grading container %s: %s", name, said)

    async def execute(
        self, notebook_json: dict, files: Path | None, *, limits: Limits | None = None
    ) -> Execution:
        """Run the notebook; `limits` (the course's, no looser than the sandbox's) replace
        what the runner enforces, the container's own (memory, CPUs, processes) stay."""
        started = time.monotonic()
        limits = limits or self.limits
        if not self._swept:
            self._swept = True
            await self.sweep()
        await self.removed(wait=False)
        data = await asyncio.to_thread(request_archive, notebook_json, files, limits)
        container = await self._take()
        if self.spare:
            # The next submission's container warms up while this one is graded.
            self._start_spare()
        name, proc = container.name, container.proc
        timed_out = False
        killed_why = None
        try:
            cap = result_cap(notebook_json, limits)
            exchange = _exchange(proc, data, cap, until_frame=True)
            try:
                stdout, stderr = await asyncio.wait_for(exchange, limits.wall_clock_s)
            except TimeoutError:
                timed_out, stdout, stderr = True, b"", b""
                await self._docker("kill", name)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            if not timed_out and proc.returncode == 125:
                await self.close()
                raise SandboxError(
                    f"docker could not start the grading sandbox from {self.image}: "
                    f"{stderr.decode(errors='replace').strip()[-500:]}"
                )
            if not timed_out and decode_frame(stdout) is None:
                code, oom = await self._docker("inspect", "--format", "{{.State.OOMKilled}}", name)
                if code == 0 and oom == "true":
                    killed_why = f"the sandbox used more than {self.limits.memory_mb} MB of memory"
                elif proc.returncode in (137, -9):
                    killed_why = "the sandbox was killed"
        finally:
            # Removed while nbgrader goes on with the result (close() waits for it).
            await self._start_removal(name)
        return _finish(
            notebook_json,
            stdout,
            stderr,
            timed_out=timed_out,
            limits=limits,
            started=started,
            sandbox=self.name,
            killed_why=killed_why,
        )


class ProcessSandbox:
    """A subprocess of the hub's Python, for machines without Docker. Weaker than a container.

    As root: a fresh uid per execution (so the process limit counts only this notebook and it
    can read no one's private files), new mount and network namespaces (no network; /root,
    /home, /tmp, /var/tmp and /dev/shm hidden behind empty tmpfs but for its own directory),
    rlimits on address space, processes, CPU time, file size and open files, a minimal
    environment in a fresh temporary directory, and every process of that uid killed at the
    end. Not root: rlimits and a minimal environment only (and a network namespace where
    unprivileged user namespaces are allowed), with a warning per missing part. Weaker all
    the same: it shares the hub's kernel, the rest of its filesystem (world-readable files
    stay readable), and its process table; memory is limited per process, not in total.
    """

    weaker = True
    name = "process"

    def __init__(self, limits: Limits | None = None, python: str = sys.executable):
        self.limits = limits or Limits()
        self.python = python
        remove_abandoned_folders()

    async def execute(
        self, notebook_json: dict, files: Path | None, *, limits: Limits | None = None
    ) -> Execution:
        """Run the notebook within `limits` (the course's, no looser than the sandbox's), or
        the sandbox's own."""
        started = time.monotonic()
        limits = limits or self.limits
        root = os.geteuid() == 0
        uid = PROCESS_UID_BASE + random.randrange(PROCESS_UID_SPAN) if root else os.getuid()  # noqa: S311
        # Named after this process, so that what a killed grader leaves can be found.
        tmp = Path(tempfile.mkdtemp(prefix=f"{PROCESS_FOLDER_PREFIX}{os.getpid()}-"))
        proc = None
        try:
            work, home = tmp / "work", tmp / "home"
            for directory in (work, home):
                directory.mkdir(mode=0o700)
                if root:
                    os.chown(directory, uid, uid)
            tmp.chmod(0o711)
            data = await asyncio.to_thread(request_archive, notebook_json, files, limits)
            plan = isolation_plan(limits, uid, tmp)
            command = [self.python, "-I", str(RUNNER), "--workdir", str(work)]
            command += ["--isolate", json.dumps(plan)]
            timed_out = False
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=tmp,
                env=process_environment(home, self.python),
                start_new_session=True,
            )
            try:
                cap = result_cap(notebook_json, limits)
                stdout, stderr = await asyncio.wait_for(
                    _exchange(proc, data, cap, until_frame=True), limits.wall_clock_s
                )
            except TimeoutError:
                timed_out, stdout, stderr = True, b"", b""
            exited = proc.returncode
        finally:
            # Cancelled too (the service stopping): no process or file of it outlives it.
            await asyncio.shield(
                asyncio.to_thread(_clean_up, proc.pid if proc else None, uid if root else None, tmp)
            )
        await proc.wait()
        killed_why = None
        if not timed_out and exited and exited < 0:
            killed_why = f"the runner was killed by signal {-exited}"
        return _finish(
            notebook_json,
            stdout,
            stderr,
            timed_out=timed_out,
            limits=limits,
            started=started,
            sandbox=self.name,
            killed_why=killed_why,
        )


PROCESS_FOLDER_PREFIX = "learnhub-grade-"


def remove_abandoned_folders(temp: Path | None = None) -> list[Path]:
    """Remove the folders (and, as root, the processes of their uid) of executions whose
    grading process is gone: it was killed before it could clean up (SIGKILL, the OOM
    killer). The folders removed."""
    removed = []
    for folder in Path(temp or tempfile.gettempdir()).glob(f"{PROCESS_FOLDER_PREFIX}*-*"):
        owner = folder.name[len(PROCESS_FOLDER_PREFIX) :].partition("-")[0]
        if not owner.isdigit() or _process_alive(int(owner)):
            continue
        uid = None
        with contextlib.suppress(OSError):
            found = (folder / "work").stat().st_uid
            if os.geteuid() == 0 and found >= PROCESS_UID_BASE:
                uid = found
        _clean_up(None, uid, folder)
        log.warning("removed %s, left by a grading process that was killed", folder)
        removed.append(folder)
    return removed


def _clean_up(group: int | None, uid: int | None, tmp: Path) -> None:
    """Kill the runner's process group and, as root, every process of its uid; remove its
    folder."""
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    if uid is not None:
        _kill_uid(uid)
    shutil.rmtree(tmp, ignore_errors=True)


def _kill_uid(uid: int) -> None:
    """Kill every process of `uid`, those that left the process group included."""
    import subprocess

    script = (
        f"import os, signal; os.setgroups([]); os.setgid({uid}); os.setuid({uid}); "
        "os.kill(-1, signal.SIGKILL)"
    )
    for _ in range(3):  # a fork bomb may fork between two sweeps
        subprocess.run([sys.executable, "-I", "-c", script], check=False, capture_output=True)
