"""`learnhub run --demo`, the README's run command: hub, proxy and demo LMS start, and one
signal (Ctrl-C, or SIGTERM) stops all of it within seconds, a grading under way included."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import pytest
import requests

from learnhub.grading.queue import JobState
from tests.support import free_port, tarball, write_settings

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
# From the signal to the last process of the run gone: the hub, its services and their
# workers and sandboxes, the proxy, the demo LMS (learners' servers may stay, see README).
STOP_WITHIN_S = 10
COURSE, ASSIGNMENT = "cstoppingrun", "ps1"
SERVICES = (
    "jupyterhub_config.py",
    "learnhub.demo.lms",
    "learnhub.courses.service",
    "learnhub.grading.service",
    "learnhub.privacy.service",
    "jupyterhub_idle_culler",
)


def wait_for(url: str, timeout: float = 90, run: "Run | None" = None) -> requests.Response:
    """The first 200 answer of `url`; fails with the run's log if `run` ends or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run is not None and run.proc.poll() is not None:
            pytest.fail(f"learnhub run exited with {run.proc.returncode}:\n{run.log[-5000:]}")
        with contextlib.suppress(requests.ConnectionError):
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return response
        time.sleep(0.5)
    log = f":\n{run.log[-5000:]}" if run else ""
    pytest.fail(f"{url} did not answer within {timeout}s{log}")


def test_run_demo_starts_and_stops_everything(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    lms_port = free_port()
    config = tmp_path / "learnhub.yaml"
    write_settings(config, url, demo={"lms_port": lms_port}, spawner={"backend": "local"})
    env = {**os.environ, "LEARNHUB_CONFIG": str(config), "LEARNHUB_STATE_DIR": str(tmp_path)}
    log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen(
        [str(Path(sys.executable).with_name("learnhub")), "run", "--demo"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        course = wait_for(f"http://127.0.0.1:{lms_port}/course")
        assert "Launch as learner (LTI 1.3)" in course.text
        assert wait_for(f"{url}/hub/login").status_code == 200
        output = (tmp_path / "run.log").read_text()
        assert f"Try a launch: open http://127.0.0.1:{lms_port}/course" in output
        # The demo LMS was registered as a consumer and a platform.
        listed = subprocess.run(
            [str(Path(sys.executable).with_name("learnhub")), "lti", "list-platforms"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert f"issuer=http://127.0.0.1:{lms_port}" in listed
        proxy_pid = int((tmp_path / "proxy.pid").read_text())
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    # Nothing keeps listening: not the hub, not the demo LMS, not the proxy.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/hub/login", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{lms_port}/course", timeout=5)
    with pytest.raises(ProcessLookupError):
        os.kill(proxy_pid, 0)


# One signal stops the whole run.


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the run command's tests may not skip")
    pytest.skip(reason)


def docker_unready(image: str) -> str | None:
    """Why Docker sandboxes cannot run here, or None when they can."""
    if shutil.which("docker") is None:
        return "no docker command: run scripts/provision-docker.sh (as root)"
    for command in (["version"], ["image", "inspect", image]):
        done = subprocess.run(["docker", *command], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            return f"`docker {' '.join(command)}` failed: {done.stderr.decode()[-300:]}"
    return None


def looping_submission(state: Path, template: Path) -> None:
    """A course with ps1 released and one learner's submission queued whose answer never
    ends, so that its grading is under way whenever the run is stopped."""
    from learnhub.courses.coursedir import CourseDirectories
    from learnhub.courses.exchange import ExchangeStore
    from learnhub.grading.queue import GradingQueue
    from learnhub.settings import init_state, load_settings
    from learnhub.store import Store

    nbgrader = {"schema_version": 3, "locked": False, "task": False}
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            metadata={"nbgrader": {**nbgrader, "grade": False, "solution": True,
                                   "grade_id": "double"}},
        ),
        nbformat.v4.new_code_cell(
            "assert double(2) == 4",
            metadata={"nbgrader": {**nbgrader, "grade": True, "solution": False,
                                   "locked": True, "grade_id": "test_double", "points": 1}},
        ),
    ]  # fmt: skip
    (template / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(notebook, template / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    settings = load_settings(
        os.environ["LEARNHUB_CONFIG"], environ={"LEARNHUB_STATE_DIR": str(state)}
    )
    init_state(settings)
    store = Store(settings.database_url, settings.crypt_key)
    store.record_launch(
        username="teacher", course_id=COURSE, platform="lti13:x", context_id="ctx",
        title="Stopping", role="instructor", lti_version="1.3", launch={}, name=None, email=None,
    )  # fmt: skip
    courses = CourseDirectories(root=state / "courses", template=template)
    courses.ensure(COURSE)
    generated = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--create"],
        cwd=courses.path(COURSE), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    released = courses.path(COURSE) / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    exchange = ExchangeStore(state / "exchange")
    exchange.release(COURSE, ASSIGNMENT, tarball({f"{ASSIGNMENT}.ipynb": released.read_bytes()}))
    answer = nbformat.read(released, as_version=4)
    answer.cells[0].source = "def double(x):\n    while True:\n        pass"
    kept = exchange.submit(
        COURSE, ASSIGNMENT, "learner",
        tarball({f"{ASSIGNMENT}.ipynb": nbformat.writes(answer).encode()}),
    )  # fmt: skip
    GradingQueue(store).enqueue(COURSE, ASSIGNMENT, "learner", kept.id, kept.timestamp)


@dataclass
class Run:
    proc: subprocess.Popen
    state: Path
    known: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return (self.state / "run.log").read_text(errors="replace")

    def processes(self) -> dict[int, psutil.Process]:
        """Every process of the run: learnhub run and its descendants, the proxy, and every
        member of their process groups (each service leads a group of its own)."""
        found = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            found[self.proc.pid] = psutil.Process(self.proc.pid)
            for child in found[self.proc.pid].children(recursive=True):
                found[child.pid] = child
        with contextlib.suppress(OSError, ValueError, psutil.NoSuchProcess):
            proxy = psutil.Process(int((self.state / "proxy.pid").read_text()))
            found[proxy.pid] = proxy
        groups = set()
        for process in found.values():
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(process.pid))
        for process in psutil.process_iter():
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                if os.getpgid(process.pid) in groups:
                    found[process.pid] = process
        self.known.update(found)
        return found


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def describe(processes) -> list[str]:
    return [f"{p.pid} {command_line(p)[:150]}" for p in processes]


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def is_runner(process: psutil.Process) -> bool:
    """Whether `process` is the process sandbox's runner of a notebook."""
    from learnhub.grading.sandbox import RUNNER

    try:
        return alive(process) and str(RUNNER) in process.cmdline()
    except psutil.Error:
        return False


def sandbox_containers(owner_pids: set[int]) -> list[str]:
    """Grading containers (running or not) started by one of `owner_pids`."""
    from learnhub.grading.sandbox import OWNER_LABEL

    listing = subprocess.run(
        ["docker", "ps", "--all", "--filter", f"label={OWNER_LABEL}",
         "--format", f'{{{{.Names}}}} {{{{.Label "{OWNER_LABEL}"}}}}'],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    found = []
    for line in listing.splitlines():
        name, _, owner = line.partition(" ")
        with contextlib.suppress(ValueError):
            if int(owner.rpartition(":")[2]) in owner_pids:
                found.append(name)
    return found


@pytest.fixture
def started(tmp_path, monkeypatch):
    """Start `learnhub run --demo` with a grading under way; yields a function of the
    sandbox kind and how SIGINT is inherited ('ignored' as by a background job of a
    script, 'default' as by a terminal's foreground job)."""
    runs: list[Run] = []

    def start(sandbox: str, sigint: str) -> Run:
        url = f"http://127.0.0.1:{free_port()}"
        lms_port = free_port()
        config = tmp_path / "learnhub.yaml"
        template = tmp_path / "template"
        write_settings(
            config, url, demo={"lms_port": lms_port}, spawner={"backend": "local"},
            courses={"template": str(template)},
            grading={"workers": 1, "sandbox": sandbox, "cell_timeout": 600,
                     "notebook_timeout": 900},
        )  # fmt: skip
        state = tmp_path / "state"
        state.mkdir()
        monkeypatch.setenv("LEARNHUB_CONFIG", str(config))
        monkeypatch.setenv("LEARNHUB_STATE_DIR", str(state))
        # nbgrader's Gradebook runs `alembic` from PATH (the services get the same PATH).
        monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        looping_submission(state, template)
        disposition = signal.SIG_IGN if sigint == "ignored" else signal.SIG_DFL
        run = Run(
            subprocess.Popen(
                [str(BIN / "learnhub"), "run", "--demo"],
                stdout=(state / "run.log").open("w"), stderr=subprocess.STDOUT,
                # A process group of its own, as a job of a shell: signalled alone here.
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
            ),
            state,
        )  # fmt: skip
        runs.append(run)
        wait_for(f"{url}/hub/login", run=run)
        wait_for(f"http://127.0.0.1:{lms_port}/course", run=run)
        return run

    yield start
    for run in runs:
        # Whatever a failed test left of its own run, and nothing else.
        run.processes()
        for process in run.known.values():
            if alive(process):
                process.kill()
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            for name in sandbox_containers(set(run.known)):
                subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def job_states() -> dict[str, int]:
    from learnhub.grading.queue import GradingQueue
    from learnhub.settings import load_settings
    from learnhub.store import Store

    settings = load_settings(os.environ["LEARNHUB_CONFIG"])
    return GradingQueue(Store(settings.database_url, settings.crypt_key)).counts()


def grading_under_way(run: Run, sandbox: str, timeout: float = 180) -> dict[int, psutil.Process]:
    """The run's processes once its grading sandbox runs the learner's code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.proc.poll() is None, run.log[-3000:]
        processes = run.processes()
        if job_states().get(JobState.RUNNING) == 1:
            if sandbox == "process" and any(is_runner(p) for p in processes.values()):
                return processes
            if sandbox == "docker" and sandbox_containers(set(processes)):
                return processes
        time.sleep(0.5)
    pytest.fail(f"no grading under way after {timeout}s:\n{run.log[-3000:]}")


def outlived(run: Run, processes, since: float) -> tuple[list[psutil.Process], float]:
    """Those of `processes` still running STOP_WITHIN_S after `since`, and the seconds
    until the last was gone (or until then)."""
    left = list(processes)
    while left and time.monotonic() - since < STOP_WITHIN_S:
        run.proc.poll()  # reaps learnhub run itself
        left = [p for p in left if alive(p)]
        time.sleep(0.05)
    return left, time.monotonic() - since


@pytest.mark.parametrize(
    ("sandbox", "sigint", "signum", "to_group"),
    [
        pytest.param("process", "ignored", signal.SIGINT, False, id="SIGINT-to-learnhub-run"),
        pytest.param("process", "ignored", signal.SIGTERM, False, id="SIGTERM-to-learnhub-run"),
        pytest.param("process", "default", signal.SIGINT, True, id="Ctrl-C-to-its-group"),
        pytest.param("docker", "ignored", signal.SIGTERM, False, id="SIGTERM-docker-sandbox"),
    ],
)
def test_one_signal_stops_everything_within_seconds(started, sandbox, sigint, signum, to_group):
    if sandbox == "docker":
        from learnhub.grading.sandbox import DEFAULT_IMAGE

        reason = docker_unready(DEFAULT_IMAGE)
        if reason:
            unavailable(reason)
    run = started(sandbox, sigint)
    processes = grading_under_way(run, sandbox)
    commands = " ".join(command_line(p) for p in processes.values())
    for part in SERVICES:
        assert part in commands, f"{part} is not running: {describe(processes.values())}"
    runner_folders = [Path(p.cwd()) for p in processes.values() if is_runner(p)]

    signalled = time.monotonic()
    if to_group:
        os.killpg(run.proc.pid, signum)
    else:
        run.proc.send_signal(signum)
    left, took = outlived(run, processes.values(), signalled)
    print(f"{signum.name} ({'group' if to_group else 'learnhub run'}, {sandbox} sandbox): "
          f"last process gone after {took:.1f}s")  # fmt: skip

    assert left == [], f"still running {took:.1f}s after {signum.name}: {describe(left)}"
    assert run.proc.wait(1) == 0, run.log[-3000:]
    log = run.log
    assert "Traceback" not in log, log[-5000:]
    assert "'NoneType' object has no attribute 'proto'" not in log, log[-5000:]
    assert "leaked semaphore" not in log, log[-3000:]
    # The hub heard of the stop once (not from the terminal and again from learnhub run).
    assert log.count("Received signal") == 1, log[-3000:]
    # The cancelled grading left nothing behind.
    for folder in runner_folders:
        assert not folder.exists(), f"{folder} of the process sandbox is left"
    if sandbox == "docker":
        assert sandbox_containers(set(processes)) == []
    # Cancelled, neither scored nor failed: the next start takes it again (recover).
    assert job_states() == {JobState.RUNNING: 1}


def test_services_the_hub_left_are_stopped(started):
    """The hub killed (by the OOM killer, say) cannot stop its services: learnhub run does,
    with their workers, and the proxy and the demo LMS."""
    run = started("process", "default")
    processes = grading_under_way(run, "process")
    [hub] = [p for p in processes.values() if "jupyterhub_config.py" in command_line(p)]
    runner_folders = [Path(p.cwd()) for p in processes.values() if is_runner(p)]

    killed = time.monotonic()
    hub.kill()
    left, took = outlived(run, processes.values(), killed)

    assert left == [], f"still running {took:.1f}s after the hub was killed: {describe(left)}"
    assert run.proc.wait(1) == 128 + signal.SIGKILL, run.log[-3000:]
    assert "stopping 4 services the hub left" in run.log, run.log[-3000:]
    assert "Traceback" not in run.log, run.log[-5000:]
    for folder in runner_folders:
        assert not folder.exists(), f"{folder} of the process sandbox is left"
    assert job_states() == {JobState.RUNNING: 1}
