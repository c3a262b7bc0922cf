"""Start of a class: N concurrent LTI launches to a kernel answering 1+1, LearnHub vs stock."""

from __future__ import annotations

import argparse
import collections
import contextlib
import html
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import docker
import pytest
import requests
import websocket
from docker.errors import DockerException, NotFound
from requests.cookies import get_cookie_header

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from learnhub.demo.lti11 import lti11_launch_params, sign_lti11_launch  # noqa: E402
from learnhub.settings import SCHEMA  # noqa: E402
from tests.support import (  # noqa: E402
    CookielessClient,
    Hub,
    execute_request,
    free_port,
    page_config,
    session_config,
    write_settings,
)

IMAGE = "learnhub/learner:latest"
# LearnHub's defaults, so both systems give every learner the same container.
SPAWNER_DEFAULTS = {
    k: v.get("default") for k, v in SCHEMA["properties"]["spawner"]["properties"].items()
}
CPU_LIMIT = SPAWNER_DEFAULTS["cpu_limit"]
MEM_LIMIT = SPAWNER_DEFAULTS["mem_limit"]
START_TIMEOUT = SPAWNER_DEFAULTS["start_timeout"]
HOME = "/home/learner"

STOCK_VENV = REPO / ".venv" / "bench-stock"
STOCK_PACKAGES = {
    "jupyterhub": "6.1.1",
    "jupyterhub-ltiauthenticator": "1.6.3",
    "dockerspawner": "14.0.0",
}
STOCK_CONFIG = Path(__file__).with_name("stock_jupyterhub_config.py")
PROXY = REPO / ".venv" / "node_modules" / ".bin" / "configurable-http-proxy"

# On every Docker object the benchmark makes, so cleanup finds them all.
LABEL = "org.learnhub.bench"
CONSUMER_KEY = "launch-herd"
HUB_START_TIMEOUT = 90
CONNECT_TIMEOUT = 10
# Before each herd, wait up to SETTLE_TIMEOUT seconds for the CPU to be at most QUIET busy.
SETTLE_TIMEOUT = 90
QUIET = 0.25
DOCKERD_PID = Path("/var/run/docker.pid")
# Set when the run is interrupted: every learner's next wait ends at once.
STOPPING = threading.Event()
START_LOG = re.compile(r"User (\S+) took ([0-9.]+) seconds to start")

PHASES = {
    "learnhub": {
        "launch": "launch POST answered with the waiting page (user made, spawn requested)",
        "ready": "progress stream (launch token in a header) says the server is ready",
        "lab": "JupyterLab page with the launch token",
        "kernel": "kernel started through the REST API",
        "answer": "1+1 answered over the kernel websocket",
    },
    "stock": {
        "login": "launch POST answered with the login redirect (cookie set)",
        "launch": "/hub/spawn and its redirects to the spawn-pending page",
        "ready": "progress stream (cookie + _xsrf) says the server is ready",
        "lab": "page reload, the server's OAuth redirects, JupyterLab page",
        "kernel": "kernel started through the REST API (cookie + XSRF header)",
        "answer": "1+1 answered over the kernel websocket (cookies)",
    },
}


class BenchError(Exception):
    """A learner's launch went wrong: the message says at which step and what came back."""


@dataclass
class Trial:
    """One learner's launch: seconds from the launch POST to the end of each phase reached."""

    learner: int
    round: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    failed_in: str | None = None
    error: str | None = None

    @property
    def total(self) -> float | None:
        return None if self.error else self.marks.get("answer")


@dataclass
class CpuUse:
    """CPU seconds spent while one herd ran: where the machine's time went."""

    wall: float
    learner_containers: float
    hub: float
    proxy: float
    dockerd: float


@dataclass
class Result:
    """One system's herds (one per round): trials, the hub's own start times, CPU use."""

    system: str
    trials: list[Trial] = field(default_factory=list)
    server_starts: list[float] = field(default_factory=list)
    cpu: list[CpuUse] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    setup_errors: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    n: int = 0

    @property
    def successes(self) -> list[float]:
        return sorted(t.total for t in self.trials if t.total is not None)

    @property
    def failures(self) -> int:
        return self.n - len(self.successes)


# ---------------------------------------------------------------- one learner


class Clock:
    """Marks phases of one trial and bounds every wait by the trial's deadline."""

    def __init__(self, trial: Trial, timeout: float):
        self.trial = trial
        self.t0 = time.monotonic()
        self.deadline = self.t0 + timeout

    def left(self) -> float:
        if STOPPING.is_set():
            raise BenchError("the benchmark was interrupted")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"timed out after {self.deadline - self.t0:.0f}s")
        return remaining

    def timeout(self) -> tuple[float, float]:
        left = self.left()
        return (min(CONNECT_TIMEOUT, left), left)

    def mark(self, phase: str) -> None:
        self.trial.marks[phase] = time.monotonic() - self.t0


def launch_params(learner: int, run_id: str, extra: dict[str, str] | None = None):
    return lti11_launch_params(
        user_id=f"herd-{run_id}-{learner:03d}",
        roles="Learner",
        context_id=f"herd-{run_id}",
        context_title="Launch herd benchmark",
        resource_link_id=f"herd-{run_id}-notebook",
        extra=extra,
    )


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def snippet(response: requests.Response) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text or "")).strip()
    return f"{response.status_code} from {urlsplit(response.url).path}: {text[:160]}"


def follow_progress(client: requests.Session, url: str, clock: Clock, headers=None) -> None:
    """Read the hub's progress event stream until the server is ready, as a waiting page does."""
    last: dict = {}
    while True:
        with client.get(url, headers=headers, stream=True, timeout=clock.timeout()) as response:
            expect(response.status_code == 200, f"progress stream: {snippet(response)}")
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    last = json.loads(line[5:])
                    if last.get("ready"):
                        return
                    if last.get("failed"):
                        raise BenchError(f"server failed to start: {last.get('message')}")
        clock.left()
        time.sleep(0.5)


def one_plus_one(
    client: requests.Session,
    server_url: str,
    clock: Clock,
    *,
    headers: dict[str, str],
    ws_query: str = "",
    ws_cookie: str | None = None,
) -> None:
    """Start a kernel through the REST API, then run 1+1 over its websocket; marks both."""
    kernel = client.post(
        server_url + "api/kernels", headers=headers, json={}, timeout=clock.timeout()
    )
    expect(kernel.status_code == 201, f"kernel start: {snippet(kernel)}")
    clock.mark("kernel")
    ws_url = (
        server_url.replace("http://", "ws://", 1) + f"api/kernels/{kernel.json()['id']}/channels"
    )
    ws = websocket.create_connection(
        f"{ws_url}?{ws_query}" if ws_query else ws_url,
        timeout=min(CONNECT_TIMEOUT, clock.left()),
        cookie=ws_cookie,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps(execute_request(msg_id, "1+1")))
        while True:
            ws.settimeout(clock.left())
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "execute_result":
                answer = message["content"]["data"]["text/plain"]
                expect(answer == "2", f"1+1 answered {answer!r}")
                clock.mark("answer")
                return
            if message["msg_type"] == "error":
                raise BenchError(f"kernel error: {message['content'].get('ename')}")
    finally:
        ws.close()


def learnhub_learner(learner: int, clock: Clock, *, hub_url: str, secret: str, run_id: str):
    """A cookieless browser launched from the LMS into LearnHub."""
    client = CookielessClient()
    launch_url = f"{hub_url}/hub/lti11/launch"
    form = sign_lti11_launch(launch_url, CONSUMER_KEY, secret, launch_params(learner, run_id))
    page = client.post(launch_url, data=form, allow_redirects=False, timeout=clock.timeout())
    expect(page.status_code == 200, f"launch: {snippet(page)}")
    session = session_config(page.text)
    token = session["token"]
    headers = {"Authorization": f"token {token}"}
    clock.mark("launch")

    follow_progress(client, hub_url + session["progressUrl"], clock, headers=headers)
    clock.mark("ready")

    lab = client.get(
        f"{hub_url}{session['labUrl']}?token={token}",
        allow_redirects=False,
        timeout=clock.timeout(),
    )
    expect(lab.status_code == 200, f"JupyterLab page: {snippet(lab)}")
    expect(page_config(lab.text).get("token") == token, "JupyterLab page lacks the launch token")
    clock.mark("lab")

    server_url = hub_url + session["labUrl"].removesuffix("lab")
    one_plus_one(client, server_url, clock, headers=headers, ws_query=f"token={token}")
    expect(client.cookie_headers_sent == [], "a Cookie header was sent")


def stock_learner(learner: int, clock: Clock, *, hub_url: str, secret: str, run_id: str):
    """A browser with cookies launched from the LMS into stock JupyterHub + ltiauthenticator."""
    client = requests.Session()
    launch_url = f"{hub_url}/hub/lti/launch"
    # ltiauthenticator sends the learner to the LTI custom parameter `next` after login; without
    # it JupyterHub's default is the /hub/home control panel, a click away from a server.
    params = launch_params(learner, run_id, extra={"custom_next": "/hub/spawn"})
    form = sign_lti11_launch(launch_url, CONSUMER_KEY, secret, params)
    login = client.post(launch_url, data=form, allow_redirects=False, timeout=clock.timeout())
    expect(login.status_code == 302, f"launch: {snippet(login)}")
    clock.mark("login")

    page = client.get(urljoin(launch_url, login.headers["Location"]), timeout=clock.timeout())
    expect(page.status_code == 200, f"spawn: {snippet(page)}")
    clock.mark("launch")
    if "/hub/spawn-pending/" in urlsplit(page.url).path:
        found = re.search(r'new EventSource\("([^"]+)"\)', page.text)
        expect(found is not None, f"no progress stream in {snippet(page)}")
        follow_progress(client, urljoin(page.url, html.unescape(found.group(1))), clock)
        clock.mark("ready")
        # What the spawn-pending page's script does once ready: reload, and follow redirects.
        page = client.get(page.url, timeout=clock.timeout())
    else:
        # The server came up within slow_spawn_timeout: the redirects went straight to it.
        clock.mark("ready")
    expect(page.status_code == 200, f"JupyterLab page: {snippet(page)}")
    page_config(page.text)
    path = urlsplit(page.url).path
    expect(path.startswith("/user/"), f"landed on {path}, not a server")
    server_url = hub_url + "/user/" + path.split("/")[2] + "/"
    clock.mark("lab")

    xsrf = [c.value for c in client.cookies if c.name == "_xsrf" and c.path.startswith("/user/")]
    expect(bool(xsrf), "the server set no _xsrf cookie")
    cookie = get_cookie_header(
        client.cookies, requests.Request("GET", server_url + "api/kernels").prepare()
    )
    one_plus_one(client, server_url, clock, headers={"X-XSRFToken": xsrf[0]}, ws_cookie=cookie)


def run_learner(system: str, learner: int, start: threading.Barrier, timeout: float, **kwargs):
    """One learner's trial; an error ends it and says in which phase."""
    learner_fn = learnhub_learner if system == "learnhub" else stock_learner
    trial = Trial(learner)
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(60)
    clock = Clock(trial, timeout)
    try:
        learner_fn(learner, clock, **kwargs)
    except Exception as e:
        phases = list(PHASES[system])
        trial.failed_in = phases[len(trial.marks)] if len(trial.marks) < len(phases) else "end"
        trial.error = f"{type(e).__name__}: {first_line(e)}"
    return trial


def herd(system: str, n: int, timeout: float, **kwargs) -> list[Trial]:
    """N learners launching at the same instant, each in a thread of its own."""
    start = threading.Barrier(n)
    pool = ThreadPoolExecutor(max_workers=n)
    finished = False
    try:
        futures = [
            pool.submit(run_learner, system, learner, start, timeout, **kwargs)
            for learner in range(n)
        ]
        trials = [f.result() for f in futures]
        finished = True
        return trials
    finally:
        if not finished:
            # Interrupted: end every learner's waits and go on to the cleanup, which stops the
            # hubs they wait on, instead of waiting here for their deadlines.
            STOPPING.set()
            start.abort()
        pool.shutdown(wait=finished, cancel_futures=True)


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


# ---------------------------------------------------------------- the machine, Docker, processes


def engine() -> docker.APIClient:
    return docker.APIClient(version="auto", timeout=120)


def cpu_busy(seconds: float = 3.0) -> float:
    """Share of all cores busy over the next `seconds` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def settle(client: docker.APIClient) -> str:
    """Wait (bounded) for the machine to go quiet before a herd; say how quiet it was."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    busy = cpu_busy()
    while busy > QUIET and time.monotonic() < deadline:
        busy = cpu_busy()
    return f"CPU {busy:.0%} busy just before, {len(client.containers())} other containers running"


def warm_image(image: str) -> None:
    """Read the image's Python stack from disk once, so neither system pays a cold page cache."""
    subprocess.run(
        ["docker", "run", "--rm", "--network=none", "--entrypoint", "python", image, "-c",
         "import jupyterlab, jupyter_server, ipykernel, jupyterhub, nbgrader"],
        capture_output=True, timeout=300, check=False,
    )  # fmt: skip


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_in(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


def containers_cpu(client: docker.APIClient, network: str) -> float:
    """CPU seconds used so far by the containers on `network` (the learners' servers)."""
    total = 0.0
    for container in client.containers(filters={"network": network}):
        with contextlib.suppress(DockerException, KeyError):
            stats = client.stats(container["Id"], stream=False, one_shot=True)
            total += stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    return total


def remove_bench_objects(
    client: docker.APIClient, run_id: str, networks: list[str], volumes: list[str] = ()
) -> list[str]:
    """Remove the containers, volumes and networks of this run; say what could not be removed."""
    left = []
    containers = {}
    for query in [{"label": f"{LABEL}={run_id}"}, *({"network": n} for n in networks)]:
        with contextlib.suppress(DockerException):
            containers.update({c["Id"]: c for c in client.containers(all=True, filters=query)})

    def remove(container_id: str) -> None:
        try:
            client.remove_container(container_id, force=True, v=True)
        except NotFound:
            pass
        except DockerException as e:
            left.append(f"container {container_id[:12]}: {first_line(e)}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, containers))
    names = set(volumes)
    with contextlib.suppress(DockerException):
        listed = client.volumes().get("Volumes") or []
        names |= {v["Name"] for v in listed if v["Name"].startswith(f"lhbench-{run_id}-")}
    for name in sorted(names):
        try:
            client.remove_volume(name, force=True)
        except NotFound:
            pass
        except DockerException as e:
            left.append(f"volume {name}: {first_line(e)}")
    for name in networks:
        try:
            client.remove_network(name)
        except NotFound:
            pass
        except DockerException as e:
            left.append(f"network {name}: {first_line(e)}")
    return left


def free_port_on(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_for_api(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HUB_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"hub exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/hub/api", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise BenchError(f"hub did not answer within {HUB_START_TIMEOUT}s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def server_starts(log: Path) -> list[float]:
    """How long the hub says each server took to start (JupyterHub logs it for every spawn)."""
    if not log.exists():
        return []
    return [float(m.group(2)) for m in START_LOG.finditer(log.read_text(errors="replace"))]


def stop_process(proc: subprocess.Popen | None, pid_file: Path | None = None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    pid = pid_in(pid_file) if pid_file else None
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


def installed_versions(python: Path) -> dict[str, str]:
    """The versions of STOCK_PACKAGES that `python` has; {} when it does not exist yet."""
    if not python.exists():
        return {}
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    found = subprocess.run(
        [str(python), "-c", code, *STOCK_PACKAGES],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return json.loads(found.stdout) if found.returncode == 0 else {}


def stock_venv() -> Path:
    """The stock hub's own virtualenv, made (or repaired) with the pinned upstream packages."""
    python = STOCK_VENV / "bin" / "python"
    if installed_versions(python) == STOCK_PACKAGES:
        return STOCK_VENV
    print(f"Installing stock JupyterHub into {STOCK_VENV} ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(STOCK_VENV)], check=True, timeout=300)
    pins = [f"{name}=={version}" for name, version in STOCK_PACKAGES.items()]
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *pins],
        check=True, timeout=900, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return STOCK_VENV


# ---------------------------------------------------------------- the two systems


def measured_herd(
    system, args, client, network, hub_pid, proxy_pid_file, result, round_no, **kwargs
):
    """Run one herd against a started hub; add its trials and CPU use to `result`."""
    proxy_pid = pid_in(proxy_pid_file)
    dockerd_pid = pid_in(DOCKERD_PID)
    before = [process_cpu(p) for p in (hub_pid, proxy_pid, dockerd_pid)]
    began = time.monotonic()
    trials = herd(system, args.n, args.timeout, **kwargs)
    wall = time.monotonic() - began
    after = [process_cpu(p) for p in (hub_pid, proxy_pid, dockerd_pid)]
    hub, proxy, dockerd = (b - a for a, b in zip(before, after, strict=True))
    result.cpu.append(CpuUse(wall, containers_cpu(client, network), hub, proxy, dockerd))
    for trial in trials:
        trial.round = round_no
    result.trials += trials


def run_learnhub(args, state: Path, image: str, run_id: str, round_no: int, client, result):
    state.mkdir()
    url = f"http://127.0.0.1:{free_port()}"
    network = f"lhbench-{run_id}-learnhub"
    config = state / "learnhub.yaml"
    write_settings(
        config, url, spawner={"backend": "docker", "images": [image], "network": network}
    )
    hub = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    secret = secrets.token_urlsafe(24)
    result.versions = {"learnhub": version("learnhub")}
    users = []
    try:
        added = hub.cli("lti", "add-consumer", CONSUMER_KEY, f"--secret={secret}")
        if added.returncode != 0:
            raise BenchError(f"learnhub lti add-consumer failed: {added.stderr.strip()}")
        hub.start()
        measured_herd(
            "learnhub", args, client, network, hub.proc.pid, state / "proxy.pid", result,
            hub_url=url, secret=secret, run_id=run_id, round_no=round_no,
        )  # fmt: skip
        result.server_starts += server_starts(hub.log_path)
    except (Exception, pytest.fail.Exception) as e:
        result.setup_errors.append(str(e))
    finally:
        with contextlib.suppress(Exception):
            users = hub.usernames()
        hub.stop()
        left = remove_bench_objects(
            client, run_id, [network], [f"learnhub-home-{user}" for user in users]
        )
        # The proxy, and anything labelled for these learners that the above missed.
        with contextlib.suppress(Exception):
            hub.shutdown_everything()
        if left:
            print(f"Could not remove: {'; '.join(left)}", file=sys.stderr)


def run_stock(args, state: Path, image: str, run_id: str, round_no: int, client, result):
    state.mkdir()
    log = state / "hub.log"
    network = f"lhbench-{run_id}-stock"
    proc = None
    try:
        venv = stock_venv()
        result.versions = installed_versions(venv / "bin" / "python")
        client.create_network(network, driver="bridge", labels={LABEL: run_id})
        gateway = client.inspect_network(network)["IPAM"]["Config"][0]["Gateway"]
        url = f"http://127.0.0.1:{free_port()}"
        secret = secrets.token_urlsafe(24)
        bench = {
            "state_dir": str(state),
            "bind_url": url,
            "gateway": gateway,
            "hub_port": str(free_port_on(gateway)),
            "proxy_api_port": str(free_port()),
            "proxy_command": str(PROXY),
            "consumer_key": CONSUMER_KEY,
            "consumer_secret": secret,
            "image": image,
            "prefix": f"lhbench-{run_id}-stock",
            "network": network,
            "cpu_limit": str(CPU_LIMIT),
            "mem_limit": MEM_LIMIT,
            "volume_template": f"lhbench-{run_id}-home-{{username}}",
            "home_dir": HOME,
            "label": LABEL,
            "run_id": run_id,
            "start_timeout": str(START_TIMEOUT),
        }
        env = {**os.environ, **{f"BENCH_{k.upper()}": v for k, v in bench.items()}}
        with log.open("a") as out:
            proc = subprocess.Popen(
                [str(venv / "bin" / "jupyterhub"), "-f", str(STOCK_CONFIG)],
                cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_api(url, proc, log)
        measured_herd(
            "stock", args, client, network, proc.pid, state / "proxy.pid", result,
            hub_url=url, secret=secret, run_id=run_id, round_no=round_no,
        )  # fmt: skip
        result.server_starts += server_starts(log)
    except Exception as e:
        result.setup_errors.append(str(e))
    finally:
        stop_process(proc, state / "proxy.pid")
        left = remove_bench_objects(client, run_id, [network])
        if left:
            print(f"Could not remove: {'; '.join(left)}", file=sys.stderr)


# ---------------------------------------------------------------- report


def percentile(values: list[float], p: int) -> float:
    """Nearest-rank percentile: p95 of 30 values is the 29th smallest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def report(results: list[Result], rounds: int) -> str:
    lines = [
        f"{'system':<9} {'N':>3} {'herds':>5} {'p50':>7} {'p95':>7} {'max':>7} {'failures':>8}"
    ]
    for r in results:
        ok = r.successes
        p50, p95, top = (percentile(ok, 50), percentile(ok, 95), ok[-1]) if ok else (None,) * 3
        lines.append(
            f"{r.system:<9} {r.n // rounds:>3} {rounds:>5} {seconds(p50):>7} {seconds(p95):>7} "
            f"{seconds(top):>7} {r.failures:>8}"
        )
    by_name = {r.system: r.successes for r in results}
    if by_name.get("learnhub") and by_name.get("stock"):
        ours, theirs = by_name["learnhub"], by_name["stock"]
        lines.append(
            f"ratio stock/learnhub: p50 {percentile(theirs, 50) / percentile(ours, 50):.2f}, "
            f"p95 {percentile(theirs, 95) / percentile(ours, 95):.2f}"
        )
    lines.append("(seconds from launch POST to a kernel answering 1+1, successful learners only)")

    for r in results:
        versions = ", ".join(f"{k} {v}" for k, v in r.versions.items())
        lines += ["", f"{r.system} ({versions})"]
        for error in r.setup_errors:
            lines.append(f"  a herd did not run: {error}")
        kinds: dict[tuple[str, str], list[Trial]] = collections.defaultdict(list)
        for t in r.trials:
            if t.error:
                kinds[(t.failed_in, t.error.split(":", 1)[0])].append(t)
        for (phase, _kind), trials in kinds.items():
            lines.append(f"  {len(trials)} failed in {phase}; first: {trials[0].error}")
        done = [t for t in r.trials if t.total is not None]
        if done:
            lines.append(f"  {'phase':<7} {'p50':>7} {'p95':>7} {'share':>6}  what")
            mean_total = statistics.fmean(t.total for t in done)
            previous = None
            for phase, what in PHASES[r.system].items():
                spans = [t.marks[phase] - (t.marks[previous] if previous else 0.0) for t in done]
                share = statistics.fmean(spans) / mean_total
                lines.append(
                    f"  {phase:<7} {seconds(percentile(spans, 50)):>7} "
                    f"{seconds(percentile(spans, 95)):>7} {share:>6.0%}  {what}"
                )
                previous = phase
        if r.server_starts:
            starts = r.server_starts
            lines.append(
                "  hub log, spawn to server answering the hub: "
                f"p50 {seconds(percentile(starts, 50))}, p95 {seconds(percentile(starts, 95))}, "
                f"max {seconds(max(starts))} "
                f"({len(starts)} servers)"
            )
        cores = os.cpu_count() or 1
        for i, (cpu, context) in enumerate(zip(r.cpu, r.contexts, strict=False), 1):
            per = cpu.learner_containers / max(1, r.n // rounds)
            lines.append(
                f"  herd {i} ({context}): {cpu.wall:.1f}s wall = {cores * cpu.wall:.0f} "
                f"core-s; used: learner containers {cpu.learner_containers:.0f} CPU-s "
                f"({per:.1f} each), hub {cpu.hub:.1f}, proxy {cpu.proxy:.1f}, "
                f"dockerd {cpu.dockerd:.1f}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def pin_image(client: docker.APIClient, image: str, run_id: str) -> tuple[str, str]:
    """Tag the learner image for this run, so a rebuild meanwhile changes neither side."""
    image_id = client.inspect_image(image)["Id"]
    repository, tag = image.rsplit(":", 1)[0] if ":" in image else image, f"bench-{run_id}"
    client.tag(image_id, repository, tag)
    return f"{repository}:{tag}", image_id


def keep_logs(target: Path, workdir: Path, results: list[Result]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*/hub.log"):
        shutil.copy(log, target / f"{log.parent.name}-hub.log")
    for r in results:
        (target / f"{r.system}-trials.json").write_text(
            json.dumps([asdict(t) for t in r.trials], indent=1) + "\n"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="concurrent learners (default 30)")
    parser.add_argument(
        "--only", choices=["learnhub", "stock"], help="run one system only (default both)"
    )
    parser.add_argument(
        "--image", default=IMAGE, help=f"learner image, on this machine (default {IMAGE})"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="herds per system, alternating which system goes first (default 1: LearnHub first)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds one learner may take from launch POST to answer before it counts as "
        "failed (default 300)",
    )
    parser.add_argument(
        "--keep-logs", metavar="DIR", type=Path, help="copy hub logs and per-learner times to DIR"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be at least 1")
    # A SIGTERM unwinds like Ctrl-C, through every cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if not PROXY.exists():
        sys.exit(f"{PROXY} is missing: run `make run` or `make test` once to install it")
    try:
        client = engine()
        client.version()
    except DockerException as e:
        sys.exit(f"no Docker engine answers ({first_line(e)}): run scripts/provision-docker.sh")

    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix=f"launch-herd-{run_id}-"))
    systems = [args.only] if args.only else ["learnhub", "stock"]
    results = {system: Result(system) for system in systems}
    runners = {"learnhub": run_learnhub, "stock": run_stock}
    image = None
    try:
        image, image_id = pin_image(client, args.image, run_id)
        print(
            f"launch herd {run_id}: N={args.n}, {args.rounds} round(s), {os.cpu_count()} cores, "
            f"{args.image} ({image_id[7:19]}), {CPU_LIMIT} CPU and {MEM_LIMIT} per learner",
            flush=True,
        )
        warm_image(image)
        for round_no in range(1, args.rounds + 1):
            order = systems if round_no % 2 else systems[::-1]
            for system in order:
                result = results[system]
                context = settle(client)
                print(f"round {round_no}, {system}: {args.n} launches ({context}) ...", flush=True)
                before = len(result.successes)
                result.n += args.n
                result.contexts.append(context)
                state = workdir / f"{system}-r{round_no}"
                runners[system](args, state, image, run_id, round_no, client, result)
                print(
                    f"round {round_no}, {system}: {len(result.successes) - before}/{args.n} "
                    "answered"
                    + (
                        f"; {result.setup_errors[-1].splitlines()[0]}"
                        if result.setup_errors
                        else ""
                    ),
                    flush=True,
                )
    finally:
        if args.keep_logs:
            keep_logs(args.keep_logs, workdir, list(results.values()))
        left = remove_bench_objects(client, run_id, [])
        if image:
            with contextlib.suppress(DockerException):
                client.remove_image(image)
        shutil.rmtree(workdir, ignore_errors=True)
        if left:
            print(f"Could not remove: {'; '.join(left)}", file=sys.stderr)
    print()
    print(report(list(results.values()), args.rounds))
    failed = any(r.failures or r.setup_errors for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
