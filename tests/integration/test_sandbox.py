"""Hostile notebooks in both grading sandboxes: each is stopped within its limits and said so,
and the next, ordinary notebook runs fine.

Network traffic stays on this machine: the "outside" the notebooks try to reach is a TCP and a
UDP server that this test runs on 127.0.0.1 and on the Docker bridge's gateway address.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from learnhub.grading import DockerSandbox, Limits, ProcessSandbox
from learnhub.grading.runner import NOT_RUN_ENAME
from learnhub.images import grader_tags

pytestmark = pytest.mark.integration

LIMITS = Limits(
    cell_timeout_s=3, notebook_timeout_s=40, memory_mb=256, pids=64, output_bytes=100_000
)
SECRET = "another learner's answer: 42"
RUN_ID = uuid.uuid4().hex


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the sandbox tests may not skip")
    pytest.skip(reason)


def docker_problem(image: str) -> str | None:
    if shutil.which("docker") is None:
        return "no docker command: run scripts/provision-docker.sh (as root)"
    if subprocess.run(["docker", "version"], capture_output=True, check=False).returncode:
        return "no Docker engine answers: run scripts/provision-docker.sh (as root)"
    inspected = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    if inspected.returncode:
        return f"{image} is not built: run `learnhub images build --no-pull`"
    return None


def bridge_gateway() -> str | None:
    done = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format",
         "{{range .IPAM.Config}}{{.Gateway}}{{end}}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or None


@pytest.fixture(params=["docker", "process"])
async def sandbox(request):
    if request.param == "process":
        yield ProcessSandbox(LIMITS)
        return
    image = grader_tags()[0]
    problem = docker_problem(image)
    if problem:
        unavailable(problem)
    # Other graders may share this engine: this test's containers carry a label of their own.
    docker = DockerSandbox(image, LIMITS, labels={"org.learnhub.test": RUN_ID})
    yield docker
    await docker.close()


def containers(label: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip


def notebook(*sources: str) -> dict:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def text(cell: dict) -> str:
    return "".join(
        o.get("text", "") + (json.dumps(o["data"]) if "data" in o else "") + o.get("evalue", "")
        for o in cell["outputs"]
    )


def errors(cell: dict) -> list[str]:
    return [o["ename"] for o in cell["outputs"] if o["output_type"] == "error"]


async def still_works(sandbox) -> None:
    """An ordinary notebook right after: the sandbox was not left broken."""
    done = await sandbox.execute(notebook("print(6 * 7)", "x = sum(range(10))\nx"), None)
    assert done.events == [] and done.reason is None
    assert text(done.notebook["cells"][0]) == "42\n"
    assert '"45"' in text(done.notebook["cells"][1])


async def test_infinite_loop_is_stopped_and_the_next_cells_run(sandbox):
    done = await sandbox.execute(notebook("while True:\n    pass", "print('after')"), None)
    assert done.reason == "timeout_cell"
    assert done.events[0].cell == 0
    assert "KeyboardInterrupt" in errors(done.notebook["cells"][0])
    assert text(done.notebook["cells"][1]) == "after\n"
    assert done.messages(LIMITS) == ["Cell 1 ran longer than 3 s and was stopped"]
    await still_works(sandbox)


async def test_fork_bomb_hits_the_process_limit(sandbox):
    done = await sandbox.execute(notebook("import os\nwhile True:\n    os.fork()", "1"), None)
    assert "processes" in {e.reason for e in done.events}
    assert "The notebook tried to run more than 64 processes (in cell 1)" in done.messages(LIMITS)
    assert errors(done.notebook["cells"][0])  # no points for that cell
    await still_works(sandbox)


async def test_unbounded_allocation_hits_the_memory_limit(sandbox):
    done = await sandbox.execute(
        notebook("x = []\nwhile True:\n    x.append(bytearray(10**7))", "print('after')"), None
    )
    assert done.reason == "memory"
    assert done.messages(LIMITS)[0] == "The notebook used more than 256 MB of memory (in cell 1)"
    first, second = done.notebook["cells"]
    if sandbox.weaker:  # per process: Python gets a MemoryError and the kernel lives on
        assert errors(first) == ["MemoryError"] and text(second) == "after\n"
    else:  # the container's limit: the kernel is killed, what follows is not run
        assert errors(first) == [NOT_RUN_ENAME] and errors(second) == [NOT_RUN_ENAME]
    await still_works(sandbox)


async def test_printing_gigabytes_is_cut_at_the_cap(sandbox):
    done = await sandbox.execute(
        notebook("for i in range(10**9):\n    print('x' * 100, i)", "print('after')"), None
    )
    reasons = {e.reason for e in done.events}
    # Stopped by the cell's time limit, or (in the process sandbox, where the kernel's own
    # buffers count in its address space) by its memory limit.
    assert "output_truncated" in reasons and reasons - {"output_truncated"} in (
        {"timeout_cell"},
        {"memory"},
    )
    assert "Cell 1 printed more than 100 kB of output; the rest was dropped" in done.messages(
        LIMITS
    )
    first = done.notebook["cells"][0]
    printed = sum(len(o.get("text", "")) for o in first["outputs"])
    assert LIMITS.output_bytes / 2 < printed < LIMITS.output_bytes + 1000
    assert "output truncated by the grading sandbox" in text(first)
    assert text(done.notebook["cells"][1]) == "after\n"
    await still_works(sandbox)


@pytest.fixture
def listeners():
    """A TCP and a UDP server on each address of this machine a sandbox might try."""
    hosts = ["127.0.0.1"]
    if shutil.which("docker") and (gateway := bridge_gateway()):
        hosts.append(gateway)
    heard: list[str] = []
    servers = []
    for host in hosts:
        tcp = socket.create_server((host, 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        servers += [tcp, udp]

        def accept(tcp=tcp):
            while True:
                try:
                    conn, peer = tcp.accept()
                except OSError:
                    return
                heard.append(f"tcp from {peer}")
                conn.close()

        def receive(udp=udp):
            while True:
                try:
                    _, peer = udp.recvfrom(512)
                except OSError:
                    return
                heard.append(f"udp from {peer}")

        threading.Thread(target=accept, daemon=True).start()
        threading.Thread(target=receive, daemon=True).start()
    targets = [(s.getsockname(), s.type == socket.SOCK_STREAM) for s in servers]
    yield targets, heard
    for server in servers:
        server.close()


async def test_no_network_at_all(sandbox, listeners):
    targets, heard = listeners
    probe = (
        "import socket\n"
        "results = {}\n"
        f"for (host, port), tcp in {targets!r}:\n"
        "    try:\n"
        "        if tcp:\n"
        "            socket.create_connection((host, port), timeout=3).close()\n"
        "        else:  # a DNS-style query to a resolver on this machine\n"
        "            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "            u.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01', (host, port))\n"
        "        results[f'{host}:{port}'] = 'sent' if not tcp else 'connected'\n"
        "    except OSError as e:\n"
        "        results[f'{host}:{port}'] = type(e).__name__\n"
        "print(sorted(name for _, name in socket.if_nameindex()))\n"
        "print(results)\n"
    )
    done = await sandbox.execute(notebook(probe), None)
    assert done.events == []
    out = text(done.notebook["cells"][0])
    assert out.splitlines()[0] == "['lo']"  # no interface but loopback
    assert "connected" not in out
    assert heard == []  # nothing reached this machine's servers, not even a datagram
    await still_works(sandbox)


@pytest.fixture
def host_files():
    """Another learner's private file, and a directory of this machine, both outside."""
    base = Path(tempfile.mkdtemp(prefix="learnhub-other-learner-"))
    base.chmod(0o755)
    private = base / "submission.txt"
    private.write_text(SECRET)
    private.chmod(0o600)
    yield base, private
    shutil.rmtree(base)


async def test_other_files_are_out_of_reach(sandbox, host_files, tmp_path):
    base, private = host_files
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    reading = (
        f"for path in [{str(private)!r}, '/root/.bashrc', '/etc/shadow']:\n"
        "    try:\n"
        "        print(path, open(path).read()[:80])\n"
        "    except OSError as e:\n"
        "        print(path, type(e).__name__)\n"
    )
    writing = (
        "import os, sys\n"
        "for path in [{!r}, os.path.join(sys.prefix, 'planted.py'), '/etc/planted',\n"
        "             '/var/tmp/learnhub-planted', '/dev/shm/learnhub-planted']:\n"
        "    try:\n"
        "        open(path, 'w').write('planted')\n"
        "        print(path, 'written')\n"
        "    except OSError as e:\n"
        "        print(path, type(e).__name__)\n".format(str(base / "planted.txt"))
    )
    own = "print(open('data.csv').read())\nopen('mine.txt', 'w').write('ok')\nprint('own ok')"
    done = await sandbox.execute(notebook(reading, writing, own), tmp_path)
    assert done.events == []
    read, wrote, mine = (text(c) for c in done.notebook["cells"])
    assert SECRET not in read and "root:" not in read
    for line in read.splitlines():
        assert line.endswith(("PermissionError", "FileNotFoundError")), line
    # A container's /dev/shm is its own (and goes with it); the process sandbox has none.
    own_shm = set() if sandbox.weaker else {"/dev/shm/learnhub-planted"}
    for line in wrote.splitlines():
        path, _, outcome = line.rpartition(" ")
        if path not in own_shm:
            assert outcome in ("PermissionError", "OSError", "FileNotFoundError"), line
    assert not (base / "planted.txt").exists()
    assert not any(Path(d, "learnhub-planted").exists() for d in ("/var/tmp", "/dev/shm"))
    assert mine == "a,b\n1,2\n\nown ok\n"
    await still_works(sandbox)


async def test_a_kernel_that_dies_is_reported_and_nothing_after_it_counts(sandbox):
    done = await sandbox.execute(notebook("import os\nos._exit(0)", "assert True"), None)
    assert done.reason == "killed"
    assert done.messages(LIMITS) == [
        "The notebook's kernel died (in cell 1); the cells after that were not run"
    ]
    # A test cell the sandbox did not run has an error: it gets no points.
    assert errors(done.notebook["cells"][1]) == [NOT_RUN_ENAME]
    await still_works(sandbox)


async def test_no_container_is_left_behind(sandbox):
    await still_works(sandbox)
    if isinstance(sandbox, DockerSandbox):
        # The one started for the next submission waits; closing the sandbox removes it.
        await sandbox.removed()
        waiting = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=org.learnhub.test={RUN_ID}",
             "--format", "{{.Names}} {{.Status}}"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        # At least the spare; its replacement may be starting (a busy machine is slow).
        assert waiting, "no container waits for the next submission"
        await sandbox.close()
        assert containers(f"org.learnhub.test={RUN_ID}") == []
    else:
        # This process's executions (other graders may share the machine's /tmp).
        assert not list(Path(tempfile.gettempdir()).glob(f"learnhub-grade-{os.getpid()}-*"))


def running(command: str) -> bool:
    return subprocess.run(["pgrep", "-xf", command], capture_output=True).returncode == 0


async def test_a_cancelled_execution_leaves_no_process_and_no_folder(sandbox):
    """The grading service stopping mid-notebook: nothing of the execution outlives it."""
    folders = set(Path(tempfile.gettempdir()).glob("learnhub-grade-*"))
    marker = f"sleep 299.{uuid.uuid4().int % 10**6:06d}"
    execution = asyncio.create_task(
        sandbox.execute(
            notebook(f"import subprocess\nsubprocess.Popen({marker.split()!r})\nwhile True: pass"),
            None,
        )
    )
    for _ in range(600):
        if running(marker) or execution.done():
            break
        await asyncio.sleep(0.1)
    assert running(marker), "the notebook did not start"
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution
    if isinstance(sandbox, DockerSandbox):
        await sandbox.close()
        assert containers(f"org.learnhub.test={RUN_ID}") == []
    for _ in range(300):
        left = set(Path(tempfile.gettempdir()).glob("learnhub-grade-*")) - folders
        if not running(marker) and not left:
            break
        await asyncio.sleep(0.1)
    assert not running(marker)
    assert not left


async def test_each_submission_gets_a_container_of_its_own(sandbox):
    """The container started ahead serves the next submission only: nothing one notebook
    leaves (a file, a module's state, a process) is there for the next."""
    leave = notebook(
        "import os, socket, subprocess, sys\n"
        "open('/tmp/left-by-one', 'w').write('x')\n"
        "sys.modules['json'].left_by_one = True\n"
        "subprocess.Popen(['sleep', '299.25'])\n"
        "print(socket.gethostname(), os.getpid())"
    )
    look = notebook(
        "import os, sys, json\n"
        "print(os.path.exists('/tmp/left-by-one'), hasattr(json, 'left_by_one'))\n"
        "print(sum(1 for p in os.listdir('/proc') if p.isdigit() and "
        "open(f'/proc/{p}/cmdline').read() == 'sleep\\x00299.25\\x00'))"
    )
    first = await sandbox.execute(leave, None)
    assert first.reason is None, first.events
    second = await sandbox.execute(look, None)
    assert second.reason is None, second.events
    assert text(second.notebook["cells"][0]) == "False False\n0\n"


def test_containers_of_a_worker_that_died_are_removed_by_the_next():
    image = grader_tags()[0]
    problem = docker_problem(image)
    if problem:
        unavailable(problem)
    label = f"org.learnhub.test={RUN_ID}-worker"
    worker = (
        "import asyncio, sys\n"
        "from learnhub.grading import DockerSandbox, Limits\n"
        "from nbformat.v4 import new_code_cell, new_notebook\n"
        f"box = DockerSandbox({image!r}, Limits(cell_timeout_s=3, notebook_timeout_s=40), "
        f"labels={{'org.learnhub.test': '{RUN_ID}-worker'}})\n"
        "nb = new_notebook(cells=[new_code_cell('1 + 1')])\n"
        "asyncio.run(box.execute(nb, None))\n"
        "print('graded', flush=True)\n"
        "if sys.argv[1] == 'die':\n"
        "    import os, signal\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    # A worker that exits removes its waiting container (atexit).
    done = subprocess.run(
        [sys.executable, "-c", worker, "exit"], capture_output=True, text=True, timeout=180
    )
    assert "graded" in done.stdout, done.stderr[-2000:]
    assert containers(label) == []
    # One killed cannot: its container stays until a sandbox of this machine sweeps it.
    done = subprocess.run(
        [sys.executable, "-c", worker, "die"], capture_output=True, text=True, timeout=180
    )
    assert "graded" in done.stdout, done.stderr[-2000:]
    # Its spare at least (the used one's removal may not have reached the engine yet).
    assert len(containers(label)) >= 1
    swept = asyncio.run(DockerSandbox(image, LIMITS).sweep())
    assert len(swept) >= 1
    assert containers(label) == []
