"""The processes of `learnhub run`: the hub and the demo LMS, stopped together on one signal.

Ctrl-C reaches every process of the terminal's foreground process group, and the hub's
services, the proxy and learners' servers each run in a session of their own. So the
children of `learnhub run` run in sessions of their own too and hear of a stop from this
command only, once; the hub stops its services; what the hub leaves (the proxy,
which it does not stop so that a hub restart does not cut learners off, and any service
it could not stop) is stopped here. Learners' servers keep running, as when the hub
restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# How long the hub may take to stop (its services first) before it is killed.
HUB_STOP_S = 6.0
# How long the proxy and the demo LMS get after SIGTERM, and services the hub left (the
# grading service cancels its gradings first, learnhub.grading.service.WORKER_STOP_S).
STRAGGLER_STOP_S = 2.0
ORPHAN_STOP_S = 3.5
# The signal each child gets for the one this command got (JupyterHub ignores SIGHUP).
FORWARDED = {
    signal.SIGINT: signal.SIGINT,
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGHUP: signal.SIGTERM,
}
# Set by JupyterHub in the environment of each managed service (and so of its children).
SERVICE_MARK = b"JUPYTERHUB_SERVICE_NAME="

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int] | None:
    """Linux's prctl, looked up before any fork (a child between fork and exec must not)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


class _StopRequested(Exception):
    """Raised out of the wait for the hub at the first stop signal."""


class RunProcesses:
    """The children of one `learnhub run`, and the stop they get."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []
        self.stop_requested = False
        self._waiting = False
        self._prctl = _prctl()
        if self._prctl is not None:
            # Services whose hub died become this command's children, not init's, so
            # they can be found and stopped (stop_orphaned_services).
            self._prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        # Before any child starts: a child starts with SIGINT at its default action (exec
        # resets caught signals) even where this command inherited it ignored, as a
        # background job of a script does; otherwise every service ignored the hub's SIGINT
        # and the hub waited out its 30 s interrupt timeout for each.
        for signum in FORWARDED:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        if self.stop_requested:
            return
        self.stop_requested = True
        os.write(2, b"\nlearnhub run: stopping the hub, its services and the demo LMS\n")
        forwarded = FORWARDED[signal.Signals(signum)]
        for child in self.children:
            if child.poll() is None:
                child.send_signal(forwarded)
        if self._waiting:
            raise _StopRequested

    def start(self, command: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start a child in a session of its own, sent SIGTERM if this command dies."""
        prctl = self._prctl

        def end_with_this_command() -> None:
            if prctl is not None:
                prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

        # A session of its own, not only a process group: no terminal signal reaches it,
        # and it may write to the terminal whatever the terminal's `tostop` says.
        child = subprocess.Popen(
            command, start_new_session=True, preexec_fn=end_with_this_command, **kwargs
        )
        self.children.append(child)
        if self.stop_requested:
            child.terminate()
        return child

    def wait_for(self, hub: subprocess.Popen) -> int:
        """The hub's exit code, once it ended by itself or stopped after a stop signal
        (killed if it takes longer than HUB_STOP_S)."""
        if not self.stop_requested:
            self._waiting = True
            try:
                return hub.wait()
            except _StopRequested:
                pass
            finally:
                self._waiting = False
        try:
            return hub.wait(HUB_STOP_S)
        except subprocess.TimeoutExpired:
            os.write(2, f"learnhub run: the hub did not stop in {HUB_STOP_S:g} s\n".encode())
            hub.kill()
            return hub.wait()

    def stop_the_rest(self, proxy_pid_file: Path) -> None:
        """After the hub: stop the other children, the proxy and services the hub left."""
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        stop_proxy(proxy_pid_file)
        stop_orphaned_services()
        for child in self.children:
            try:
                child.wait(STRAGGLER_STOP_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not exited. A zombie (exited, not yet reaped)
    has; one that is a child of this process is reaped here."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait until none of `pids` runs, at most `timeout` seconds; those still running."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if running(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if running(pid)]
    return left


def stop_proxy(pid_file: Path) -> None:
    """Stop the proxy the hub left running (cleanup_proxy is off so that a hub restart does
    not cut learners off); when `learnhub run` ends, the person expects all of it to stop."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        # Return only once it is gone, so nothing of this run still holds its ports.
        if _wait_gone([pid], STRAGGLER_STOP_S):
            os.kill(pid, signal.SIGKILL)
            _wait_gone([pid], STRAGGLER_STOP_S)
    pid_file.unlink(missing_ok=True)


def orphaned_services() -> list[int]:
    """Processes of hub services that outlived their hub and are now this command's
    children (it is their child subreaper); Linux only, else none."""
    me, found = os.getpid(), []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                if parent == me and SERVICE_MARK in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def stop_orphaned_services() -> None:
    """Stop, with their process groups (a service's workers), the services the hub left:
    it was killed, or stopped while still starting them."""
    groups = set()
    for pid in orphaned_services():
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(pid))
    if not groups:
        return
    os.write(2, f"learnhub run: stopping {len(groups)} services the hub left\n".encode())
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
    if _wait_gone(orphaned_services(), ORPHAN_STOP_S):
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        _wait_gone(orphaned_services(), STRAGGLER_STOP_S)
