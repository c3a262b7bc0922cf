"""Runs inside the grading sandbox: executes one notebook as nbgrader's Execute would."""

# This file is a script first: the grader image runs it with its own Python, and the process
# sandbox with the hub's venv (`python -I runner.py`). So it imports only the standard library
# at the top, and nbgrader/nbclient (which learners have too) inside `main`.
#
# Protocol. Standard input: a tar stream holding `request.json` ({"notebook": ..., "limits":
# ...}) and the assignment's files under `files/`. Standard output: one frame,
# FRAME_MAGIC + length + "\n" + JSON ({"notebook": ..., "events": [...], "warnings": [...]}).
# Student code cannot write into that frame: before the kernel starts, the runner keeps its
# real stdout on a private descriptor, points fds 1 and 2 at /dev/null (the kernel inherits
# those; ipykernel forwards what it writes to them into the notebook anyway), and marks
# itself non-dumpable so that a process of the same user cannot open /proc/<runner>/fd/*.

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
import tarfile
import time
from pathlib import Path, PurePosixPath

FRAME_MAGIC = b"LEARNHUB-RESULT/1 "
REQUEST_NAME = "request.json"
FILES_PREFIX = "files/"
DEFAULT_WORKDIR = "/srv/submission"
# Said in the error output of the cells the sandbox did not run (after a kernel death or the
# notebook's deadline): an error output gives a test cell no points, as a failed test would.
NOT_RUN_ENAME = "SandboxStopped"
TRUNCATED_NOTE = "\n... output truncated by the grading sandbox after {limit} bytes ...\n"
# What is kept of one error/execute_result output once a cell's output is over its cap.
KEPT_OUTPUT_BYTES = 16_384
PR_SET_DUMPABLE = 4

# Frames


def encode_frame(payload: bytes) -> bytes:
    return FRAME_MAGIC + str(len(payload)).encode() + b"\n" + payload


def decode_frame(data: bytes) -> bytes | None:
    """The payload of the frame that starts `data`, or None when there is no whole frame."""
    if not data.startswith(FRAME_MAGIC):
        return None
    header, newline, rest = data[len(FRAME_MAGIC) :].partition(b"\n")
    if not newline or not header.isdigit() or len(header) > 12:
        return None
    length = int(header)
    if len(rest) < length:
        return None
    return rest[:length]


# Pure helpers


def safe_relative(name: str) -> PurePosixPath | None:
    """A tar member's path below `files/`, or None when it would leave the work directory."""
    if not name.startswith(FILES_PREFIX):
        return None
    path = PurePosixPath(name[len(FILES_PREFIX) :])
    if not path.parts or path.is_absolute() or ".." in path.parts:
        return None
    return path


def text_size(value) -> int:
    """About how many bytes an output's content holds (strings counted, structure not)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_size(v) for v in value.values())
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    return 8


def shorten(value, limit: int):
    """`value` (an output's data or traceback) with its strings cut to `limit` characters."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    if isinstance(value, dict):
        return {k: shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v, limit) for v in value[:100]]
    return value


def not_run_output(why: str) -> dict:
    return {
        "output_type": "error",
        "ename": NOT_RUN_ENAME,
        "evalue": f"not run: {why}",
        "traceback": [f"{NOT_RUN_ENAME}: not run: {why}"],
    }


def mark_not_run(cells: list, start: int, why: str) -> None:
    """Give every code cell from `start` on an error output saying why it was not run."""
    for cell in cells[start:]:
        if cell.get("cell_type") == "code" and cell.get("source", "").strip():
            cell["outputs"] = [*cell.get("outputs", []), not_run_output(why)]


def events_from_outputs(cells: list) -> list[dict]:
    """Limits that show only in the outputs: Python's MemoryError (an address-space limit),
    and fork's EAGAIN (a process limit)."""
    events = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "MemoryError":
                events.append({"reason": "memory", "cell": index})
                break
            if output.get("ename") == "BlockingIOError" and "temporarily unavailable" in str(
                output.get("evalue", "")
            ):
                events.append({"reason": "processes", "cell": index})
                break
    return events


def cgroup_counters(root: Path = Path("/sys/fs/cgroup")) -> dict[str, int]:
    """The container's OOM kills and refused forks so far (cgroup v2 or v1; {} outside one)."""
    counters = {}
    candidates = {
        "oom_kill": [root / "memory.events", root / "memory" / "memory.oom_control"],
        "pids_max": [root / "pids.events", root / "pids" / "pids.events"],
    }
    for name, paths in candidates.items():
        key = "oom_kill" if name == "oom_kill" else "max"
        for path in paths:
            with contextlib.suppress(OSError, ValueError):
                for line in path.read_text().splitlines():
                    field, _, value = line.partition(" ")
                    if field == key:
                        counters[name] = int(value)
                break
    return counters


def own_tasks(uid: int, proc: Path = Path("/proc")) -> int:
    """How many tasks (threads included, as RLIMIT_NPROC counts them) `uid` runs."""
    count = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"].strip())
    return count


# I/O


def read_request(stream, workdir: Path) -> dict:
    """Unpack the request from a tar stream: files into `workdir` (read-only), the rest returned."""
    request = None
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if member.name == REQUEST_NAME and member.isfile():
                request = json.load(archive.extractfile(member))
                continue
            relative = safe_relative(member.name)
            if relative is None or not (member.isfile() or member.isdir()):
                continue
            target = workdir / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as source, target.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            target.chmod(0o444)
    if request is None:
        raise ValueError(f"the request has no {REQUEST_NAME}")
    return request


# nbgrader's Execute preprocessor is nbclient's NotebookClient with a few settings and one
# hook (on_cell_executed, below). The service sends the course's values of those settings
# with each request (learnhub.grading.sandbox.execute_settings: nbgrader's own Execute, read
# with the course's configuration), and the runner sets them on nbclient itself: importing
# nbgrader (SQLAlchemy, Jupyter Server handlers) would cost a second of CPU in every
# container. These are the settings it applies; the cell timeout comes capped in the limits,
# and the kernel starts before the request, so kernel arguments cannot apply.
EXECUTE_TRAITS = (
    "interrupt_on_timeout",
    "raise_on_iopub_timeout",
    "error_on_timeout",
    "iopub_timeout",
)
# The kernel a runner starts before its request comes (the image's only one); a notebook that
# asks for another gets that one started when it comes.
DEFAULT_KERNEL = "python3"


def kernel_wanted(nb) -> str:
    """The kernel nbclient would start for `nb` (its kernelspec's name)."""
    return (nb.get("metadata", {}).get("kernelspec") or {}).get("name") or DEFAULT_KERNEL


def make_executor(workdir: str):
    """nbgrader's Execute, with a notebook deadline and an output cap, and a kernel that can be
    started before the notebook is known."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat import NotebookNode
    from nbformat.v4 import new_notebook, output_from_msg

    class SandboxedExecute(NotebookClient):
        # Changes of nbgrader's Execute, through nbclient's public hooks: the timeout of a
        # cell is cut to what is left of the notebook's time (timeout_func), timeouts are
        # recorded (on_cell_executed), a cell's output stops growing at a cap (output), and
        # the kernel may be started (start_kernel) before the notebook comes (run).
        cell_index = 0
        cell_bytes: dict
        truncated: set
        limits: dict
        events: list
        started: float
        # What stops the running cell when its time is up: its own limit or the notebook's.
        deadline = "timeout_cell"

        def remaining(self) -> float:
            return self.limits["notebook_timeout_s"] - (time.monotonic() - self.started)

        def cell_timeout(self, cell) -> int:
            """nbclient's timeout_func: the cell's limit, or what is left of the notebook's."""
            left = max(1, int(self.remaining() + 0.999))
            limit = self.limits["cell_timeout_s"]
            self.deadline = "timeout_cell" if limit < left else "timeout_notebook"
            return min(limit, left)

        def on_cell_executed(self, **kwargs):
            # nbgrader's hook (it replaces nbclient's trait of that name): an error reply
            # without a matching error output (a timeout) gets one, so the cell scores zero.
            cell, reply = kwargs["cell"], kwargs["execute_reply"]
            if reply["content"]["status"] != "error":
                return
            if self.timed_out(reply):
                seconds = self.limits["cell_timeout_s"] if self.deadline == "timeout_cell" else None
                self.events.append(
                    {"reason": self.deadline, "cell": self.cell_index, "seconds": seconds}
                )
            ename = reply["content"]["ename"]
            if any(o.output_type == "error" and o.ename == ename for o in cell.outputs):
                return
            error = NotebookNode(output_type="error", ename=ename)
            error.evalue = reply["content"]["evalue"]
            error.traceback = reply["content"]["traceback"] or [
                "ERROR: An error occurred while showtraceback was disabled"
            ]
            cell.outputs.append(error)

        def output(self, outs, msg, display_id, cell_index):
            limit = self.limits["output_bytes"]
            used = self.cell_bytes.get(cell_index, 0) + text_size(msg.get("content"))
            self.cell_bytes[cell_index] = used
            if used <= limit:
                return super().output(outs, msg, display_id, cell_index)
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                self.events.append({"reason": "output_truncated", "cell": cell_index})
                note = TRUNCATED_NOTE.format(limit=limit)
                content = msg["content"]
                if msg["msg_type"] == "stream":
                    # The head of the stream that crossed the cap, then the note.
                    room = max(0, limit - (used - text_size(content)))
                    note = str(content.get("text", ""))[:room] + note
                    outs.append(output_from_msg(_stream(content.get("name", "stdout"), note)))
                    return None
                outs.append(output_from_msg(_stream("stdout", note)))
            # Past the cap, keep what nbgrader grades on: errors and stderr give no points,
            # and an execute_result may give partial credit. The rest is dropped.
            msg_type = msg["msg_type"]
            name = msg["content"].get("name")
            if msg_type == "stream" and name == "stderr" and not self.stderr_kept(outs):
                outs.append(output_from_msg(_stream("stderr", TRUNCATED_NOTE.format(limit=limit))))
            elif msg_type in {"error", "execute_result"}:
                msg = {**msg, "content": shorten(msg["content"], KEPT_OUTPUT_BYTES)}
                return super().output(outs, msg, display_id, cell_index)
            return None

        def timed_out(self, reply) -> bool:
            # nbclient answers a cell it interrupted at its timeout with error_on_timeout, as
            # a reply of its own: a kernel's replies have a header, that one has none.
            timeout_error = self.error_on_timeout or {}
            return "header" not in reply and reply["content"].get("ename") == timeout_error.get(
                "ename"
            )

        @staticmethod
        def stderr_kept(outs) -> bool:
            return any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs)

        def record(self, reason: str, index: int) -> None:
            """Record a limit once: what a fork bomb leaves running is not news at every cell."""
            if all(e["reason"] != reason for e in self.events):
                self.events.append({"reason": reason, "cell": index})

        def kernel_first_to_go(self) -> None:
            # When memory runs out, the kernel (and what it forked) is killed, not the runner,
            # which then reports it. Raising one's own oom_score_adj needs no privilege.
            with contextlib.suppress(AttributeError, OSError, TypeError):
                pid = self.km.provisioner.process.pid
                Path(f"/proc/{pid}/oom_score_adj").write_text("1000")

        def start_kernel(self, kernel_name: str = DEFAULT_KERNEL) -> None:
            """Start the kernel (in the work directory) and wait until it answers."""
            self.kernel_name = kernel_name
            self.km = self.create_kernel_manager()
            self.start_new_kernel()
            self.start_new_kernel_client()
            self.kernel_first_to_go()

        def kernel_ready_for(self, nb) -> bool:
            """Whether the kernel started ahead is the one `nb` wants, and still alive."""
            from jupyter_core.utils import run_sync

            if self.kernel_name != kernel_wanted(nb) or self.kc is None:
                return False
            try:
                return bool(run_sync(self.km.is_alive)())
            except Exception:
                return False

        def drop_kernel(self) -> None:
            """Stop the kernel now, through jupyter_client's own client and manager."""
            from jupyter_core.utils import ensure_async, run_sync

            async def stop():
                if self.kc is not None:
                    self.kc.stop_channels()
                if self.km is not None and await ensure_async(self.km.is_alive()):
                    await ensure_async(self.km.shutdown_kernel(now=True))

            with contextlib.suppress(Exception):
                run_sync(stop)()
            self.km = self.kc = None

        def run(self, nb, limits: dict, events: list, started: float) -> None:
            """Execute `nb` in place like nbgrader's Execute, one cell at a time, and go on to
            record (not raise) what stopped it; `started` is when the notebook's time began."""
            self.limits, self.events, self.started = limits, events, started
            self.cell_bytes, self.truncated = {}, set()
            for name, value in limits["execute"].items():
                if name in EXECUTE_TRAITS:
                    setattr(self, name, value)
            self.timeout_func = self.cell_timeout
            if self.km is not None and not self.kernel_ready_for(nb):
                self.drop_kernel()
            self.nb = nb
            if self.km is None:
                self.start_kernel(kernel_wanted(nb))
            self.reset_execution_trackers()
            # Not nbclient's setup_kernel: the kernel is shut down after the result is out
            # (drop_kernel), which is what the caller waits for.
            info = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info["content"]["language_info"]
            for index, cell in enumerate(self.nb.cells):
                self.cell_index = index
                if self.remaining() <= 0:
                    events.append({"reason": "timeout_notebook", "cell": index})
                    mark_not_run(self.nb.cells, index, "the notebook ran out of time")
                    break
                before = cgroup_counters()
                try:
                    self.execute_cell(cell, index, store_history=True)
                except DeadKernelError:
                    after = cgroup_counters()
                    if after.get("pids_max", 0) > before.get("pids_max", 0):
                        self.record("processes", index)
                    oom = after.get("oom_kill", 0) > before.get("oom_kill", 0)
                    self.record("memory" if oom else "killed", index)
                    mark_not_run(self.nb.cells, index, "the kernel died")
                    break
                except CellTimeoutError:
                    # The kernel did not answer even after an interrupt.
                    events.append({"reason": self.deadline, "cell": index, "stuck": True})
                    mark_not_run(self.nb.cells, index, "the kernel stopped answering")
                    break
                after = cgroup_counters()
                refused = after.get("pids_max", 0) > before.get("pids_max", 0)
                if refused or own_tasks(os.getuid()) >= limits["pids"] - 1:
                    self.record("processes", index)
                if after.get("oom_kill", 0) > before.get("oom_kill", 0):
                    self.record("memory", index)
            self.set_widgets_metadata()

    # The notebook comes with the request (run); start_kernel names the kernel itself.
    return SandboxedExecute(
        new_notebook(),
        resources={"metadata": {"path": workdir}},
        kernel_manager_class=AsyncKernelManager,
        # The sandbox is thrown away after one notebook: no graceful shutdown to wait for.
        shutdown_kernel="immediate",
        # As nbgrader's Execute: every cell runs, whatever the ones before it raised.
        allow_errors=True,
        extra_arguments=[],
    )


# Isolation of the process sandbox (the container needs none of this: Docker did it)

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """Bring `lo` up in a new network namespace: the kernel talks to the runner over it."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    if libc.mount(source, target, fstype, flags, data) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {target.decode()}: {os.strerror(error)}")


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def isolate(plan: dict) -> list[str]:
    """Cut the network, hide private directories, set rlimits, drop to the sandbox's uid.

    `plan` comes from learnhub.grading.sandbox.isolation_plan. Returns warnings for what could
    not be done (the process sandbox reports them to the instructor)."""
    import resource

    warnings = []
    libc = ctypes.CDLL(None, use_errno=True)
    root = os.geteuid() == 0
    if root:
        # The interpreter and its packages may live below a hidden directory (a venv made
        # from a Python in /root): keep handles on them to bind them back, read-only.
        keep = sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.abspath(__file__))})
        # The sandbox's own directory (work and home) stays writable, wherever it is.
        writable = plan.get("writable", [])
        handles = {}
        if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
            why = os.strerror(ctypes.get_errno())
            warnings.append(
                f"could not make new mount and network namespaces ({why}): the notebook "
                "shares this machine's network and sees all its files"
            )
        else:
            _mount(libc, b"none", b"/", None, MS_REC | MS_PRIVATE)
            # Opened in the new namespace (a bind from another one is refused) before the
            # tmpfs covers them.
            handles = {
                path: os.open(path, os.O_PATH)
                for path in [*keep, *writable]
                if any(_under(path, hidden) for hidden in plan["hide"])
            }
            for hidden in plan["hide"]:
                if os.path.isdir(hidden):
                    _mount(libc, b"tmpfs", hidden.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                           b"mode=0755,size=1m")  # fmt: skip
            for path, handle in handles.items():
                os.makedirs(path, exist_ok=True)
                source = f"/proc/self/fd/{handle}".encode()
                _mount(libc, source, path.encode(), None, MS_BIND | MS_REC)
                if path not in writable:
                    _mount(libc, b"none", path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY)
            _loopback_up()
        for handle in handles.values():
            os.close(handle)
    else:
        warnings.append(
            "the hub does not run as root: the notebook runs as the hub's own user and can read "
            "what that user can"
        )
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
            uid, gid = os.getuid(), os.getgid()
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
            try:
                _loopback_up()
            except OSError as e:
                warnings.append(f"could not bring up loopback in the new network namespace: {e}")
        else:
            warnings.append(
                "could not make a network namespace "
                f"({os.strerror(ctypes.get_errno())}): the notebook can reach the network"
            )
    for name, value in plan["rlimits"].items():
        limit = getattr(resource, name)
        if name == "RLIMIT_NPROC" and not root:
            continue  # counts every process of the hub's own user: it would starve the hub
        resource.setrlimit(limit, (value, value))
    if root:
        os.setgroups([])
        os.setgid(plan["gid"])
        os.setuid(plan["uid"])
    return warnings


def _stream(name: str, text: str) -> dict:
    return {
        "msg_type": "stream",
        "header": {"msg_type": "stream"},
        "content": {"name": name, "text": text},
    }


def _set_nondumpable() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    workdir = Path(argv[argv.index("--workdir") + 1] if "--workdir" in argv else DEFAULT_WORKDIR)
    warnings = []
    if "--isolate" in argv:
        warnings += isolate(json.loads(argv[argv.index("--isolate") + 1]))
    # The request and the result go through private descriptors; the kernel inherits
    # /dev/null for 0, 1 and 2, so nothing it runs can read the request stream or write a frame.
    request_fd, result_fd = os.dup(0), os.dup(1)
    log = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if not _set_nondumpable():
        warnings.append("the runner could not make itself non-dumpable")
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # as `nbgrader autograde` sets it
    os.chdir(workdir)
    # jsonschema's optional IRI format checker compiles a grammar on import (~0.8 s, every
    # submission); notebook schemas have no IRI fields. This is the runner's process only:
    # the kernel imports what it likes.
    sys.modules.setdefault("rfc3987_syntax", None)

    import nbformat

    # Imports and the kernel's start come before the request: a sandbox started ahead of
    # demand (DockerSandbox's spare) is ready when a submission comes. No learner code runs
    # before the request is read, and this process and its kernel serve that one request.
    executor, early_failure = None, None
    try:
        executor = make_executor(str(workdir))
        executor.start_kernel()
    except Exception as e:  # tried again, and reported, once the notebook is here
        early_failure = e
        if executor is not None:
            executor.drop_kernel()
    with os.fdopen(request_fd, "rb") as stream:
        try:
            request = read_request(stream, workdir)
        except (tarfile.ReadError, ValueError) as e:
            # No request: a spare sandbox that was never used (its caller went away).
            print(f"runner: no request ({e})", file=log)
            return 3
    started = time.monotonic()
    if early_failure is not None:
        print(f"runner: the kernel did not start ahead: {early_failure!r}", file=log)
    limits = request["limits"]
    nb = nbformat.from_dict(request["notebook"])
    events: list[dict] = []
    try:
        if executor is None:
            executor = make_executor(str(workdir))
        executor.run(nb, limits, events, started)
    except Exception as e:  # a kernel that would not start, a broken notebook: say so
        print(f"runner: {type(e).__name__}: {e}", file=log)
        events.append({"reason": "error", "cell": None, "detail": f"{type(e).__name__}: {e}"})
    seen = {(e["reason"], e.get("cell")) for e in events}
    events += [e for e in events_from_outputs(nb.cells) if (e["reason"], e["cell"]) not in seen]
    payload = json.dumps({"notebook": nb, "events": events, "warnings": warnings}).encode()
    with os.fdopen(result_fd, "wb") as out:
        out.write(encode_frame(payload))
    if executor is not None:
        executor.drop_kernel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
