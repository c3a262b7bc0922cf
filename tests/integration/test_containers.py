"""Learner servers in real Docker containers: limits, isolation, persistence, deletion, restarts.

Every packet stays on this machine: the hub and the proxy reach containers on 127.0.0.1 or at
their bridge addresses, containers reach the hub at their network's gateway, and the "outside"
that egress is tested against is a network namespace of this machine behind a veth pair.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest
import requests
import websocket
import yaml
from docker.errors import DockerException, NotFound

from learnhub.demo.lms import tool_urls
from learnhub.spawners import Isolation, isolation_problems
from tests.support import (
    NOTEBOOK,
    Hub,
    admin_headers,
    execute,
    free_port,
    launch_from,
    lti11_launch,
    page_config,
    stop_server,
    wait_until_ready,
    write_settings,
)

pytestmark = pytest.mark.integration

IMAGE = "learnhub/learner:latest"
# A second allow-listed image: the learner image with one more layer, built here in a second.
UPGRADE = "learnhub/learner:test-upgrade"
LIMITS = {"cpu_limit": 1, "mem_limit": "512M", "pids_limit": 128}
MEM_BYTES = 512 * 2**20
HOME = "/home/learner"
# TEST-NET-2: an address no real host has; the test routes it to a namespace on this machine.
OUTSIDE_HOST, OUTSIDE_SUBNET = "198.51.100.2", "198.51.100.1/30"
BOMB_SECONDS = 8

launched: set[str] = set()


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the container tests may not skip")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine():
    try:
        client = docker.APIClient(version="auto", timeout=60)
    except DockerException as e:
        unavailable(f"no Docker engine answers ({e}): run scripts/provision-docker.sh (as root)")
    try:
        client.inspect_image(IMAGE)
    except NotFound:
        unavailable(f"{IMAGE} is not built: run `learnhub images build --no-pull`")
    built = client.build(
        fileobj=io.BytesIO(f"FROM {IMAGE}\nLABEL org.learnhub.test=upgrade\n".encode()),
        tag=UPGRADE,
        rm=True,
        pull=False,
        decode=True,
    )
    errors = [step["error"] for step in built if "error" in step]
    assert not errors, errors
    assert client.inspect_image(UPGRADE)["Id"] != client.inspect_image(IMAGE)["Id"]
    yield client
    with contextlib.suppress(DockerException):
        client.remove_image(UPGRADE)
    client.close()


@contextlib.contextmanager
def running_hub(engine, tmp_path_factory, lms, network: str, **spawner):
    """A hub with Docker learner servers; afterwards nothing of it is left on the engine."""
    state = tmp_path_factory.mktemp("docker-hub")
    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    write_settings(config, url, spawner={"backend": "docker", "network": network, **spawner})
    instance = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    # --secret=...: a generated secret may begin with "-".
    added = instance.cli(
        "lti", "add-consumer", lms.consumer_key, f"--secret={lms.consumer_secret}",
        f"--frame-origin={lms.url}",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    try:
        instance.start()
        yield instance
    finally:
        remove_everything(engine, instance, network)


def remove_everything(engine, instance: Hub, network: str) -> None:
    """Stop the hub and its proxy, then remove the containers, volumes and network it made."""
    users = set(launched)
    with contextlib.suppress(Exception):
        users |= {name for (name,) in instance.query("select name from users")}
    instance.shutdown_everything()
    leftovers = engine.containers(all=True, filters={"network": network})
    for user in users:
        leftovers += engine.containers(all=True, filters={"label": f"org.learnhub.user={user}"})
    for container in leftovers:
        with contextlib.suppress(NotFound):
            engine.remove_container(container["Id"], force=True)
    for user in users:
        with contextlib.suppress(NotFound):
            engine.remove_volume(f"learnhub-home-{user}", force=True)
    with contextlib.suppress(NotFound):
        engine.remove_network(network)


@pytest.fixture(scope="module")
def network() -> str:
    return f"lh-test-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def hub(engine, lms, tmp_path_factory, network):
    """The module's hub: Docker containers with egress; named `hub` so failures print its log."""
    with running_hub(
        engine, tmp_path_factory, lms, network, images=[IMAGE, UPGRADE], **LIMITS
    ) as instance:
        yield instance


@pytest.fixture(scope="module")
def internal_hub(engine, lms, tmp_path_factory, network):
    with running_hub(
        engine, tmp_path_factory, lms, f"{network}-int", egress=False, **LIMITS
    ) as instance:
        yield instance


@pytest.fixture(scope="module")
def admin(hub) -> dict[str, str]:
    """Headers with an API token of the hub's administrator."""
    headers = admin_headers(hub)
    who = requests.get(f"{hub.url}/hub/api/user", headers=headers, timeout=30).json()
    assert who["name"] == "admin" and who["admin"] is True
    return headers


@pytest.fixture(scope="module")
def outside():
    """A web server "beyond this machine" for egress tests: in a network namespace, behind a
    veth pair whose host end holds TEST-NET-2, so the traffic never leaves this machine."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("the egress tests make a network namespace: they need root and iproute2")
    suffix = secrets.token_hex(2)
    namespace, host_end, peer_end = f"lh-out-{suffix}", f"lhout{suffix}", f"lhpeer{suffix}"

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    server = None
    try:
        ip("netns", "add", namespace)
        ip("link", "add", host_end, "type", "veth", "peer", "name", peer_end)
        ip("link", "set", peer_end, "netns", namespace)
        ip("addr", "add", OUTSIDE_SUBNET, "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("-n", namespace, "addr", "add", f"{OUTSIDE_HOST}/30", "dev", peer_end)
        ip("-n", namespace, "link", "set", peer_end, "up")
        route = subprocess.run(
            ["ip", "route", "get", OUTSIDE_HOST], capture_output=True, text=True, check=True
        ).stdout
        # Never aim at TEST-NET-2 unless it is ours: the route must be the veth.
        assert f"dev {host_end}" in route, route
        port = 8080
        server = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "python3", "-m", "http.server", str(port),
             "--bind", OUTSIDE_HOST],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"http://{OUTSIDE_HOST}:{port}/", timeout=1)
                break
            time.sleep(0.2)
        yield OUTSIDE_HOST, port
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def launch(client, hub: Hub, lms, user_id: str):
    """An LTI 1.1 launch from the session's LMS, signed for this module's hub."""
    saved = {name: getattr(lms, name) for name in tool_urls(hub.url)}
    for name, value in tool_urls(hub.url).items():
        setattr(lms, name, value)
    try:
        session = launch_from(hub.url, lti11_launch(client, hub, lms, user_id=user_id))
    finally:
        for name, value in saved.items():
            setattr(lms, name, value)
    launched.add(session.username)
    return session


def ready(client, hub, lms, user_id: str):
    session = launch(client, hub, lms, user_id)
    wait_until_ready(client, session)
    return session


def container_of(engine, session) -> dict:
    return engine.inspect_container(f"learnhub-{session.username}")


def settings_of(hub: Hub) -> dict:
    return yaml.safe_load(hub.config_file.read_text())


def gateway_of(engine, network: str) -> str:
    return engine.inspect_network(network)["IPAM"]["Config"][0]["Gateway"]


def gone(inspect, name: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            inspect(name)
        except NotFound:
            return True
        time.sleep(0.3)
    return False


def put_file(session, path: str, text: str) -> None:
    saved = requests.put(
        session.server_url + f"api/contents/{path}",
        headers=session.headers,
        json={"type": "file", "format": "text", "content": text},
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text


def get_file(session, path: str) -> requests.Response:
    return requests.get(
        session.server_url + f"api/contents/{path}", headers=session.headers, timeout=30
    )


def use_jupyterlab(client, session, engine, hub):
    """The cookieless flow of test_lti_launch against a container: the Lab page with the
    launch token in its page config, the contents API, a kernel over the websocket."""
    wait_until_ready(client, session)
    lab = client.get(f"{hub.url}{session.lab_url}?token={session.token}", allow_redirects=False)
    assert lab.status_code == 200, lab.text[:2000]
    assert lab.headers["Referrer-Policy"] == "no-referrer"
    config = page_config(lab.text)
    assert config["token"] == session.token
    assert config["appendToken"] == "true"

    listing = client.get(session.server_url + "api/contents", headers=session.headers)
    assert listing.status_code == 200
    assert listing.json()["type"] == "directory"
    saved = client.put(
        session.server_url + "api/contents/work.ipynb", headers=session.headers, json=NOTEBOOK
    )
    assert saved.status_code in (200, 201), saved.text
    again = client.get(session.server_url + "api/contents/work.ipynb", headers=session.headers)
    assert again.json()["content"]["cells"][0]["source"] == "answer = 6 * 7"
    assert execute(session, "1+1") == "2"

    # Neither the hub's log nor the learner server's (the container's) shows the token.
    logs = engine.logs(f"learnhub-{session.username}").decode(errors="replace")
    assert "GET /user/" in logs
    assert session.token not in logs
    assert session.token not in hub.log_path.read_text()
    assert client.cookie_headers_sent == []


PROBE = """
import socket
def probe(host, port):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "open"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
{name: probe(host, port) for name, (host, port) in %r.items()}
"""


def probe_from(session, targets: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Try a TCP connection to each target from inside the learner's kernel."""
    return ast.literal_eval(execute(session, PROBE % targets))


# The container


def test_a_launch_starts_a_confined_container(client, hub, lms, engine, network):
    session = launch(client, hub, lms, "ada")
    use_jupyterlab(client, session, engine, hub)

    container = container_of(engine, session)
    host = container["HostConfig"]
    assert container["State"]["Running"]
    assert container["Config"]["Image"] == IMAGE
    assert container["Config"]["User"] == "1000:1000"
    assert host["Memory"] == MEM_BYTES
    assert host["CpuQuota"] / host["CpuPeriod"] == LIMITS["cpu_limit"]
    assert host["PidsLimit"] == LIMITS["pids_limit"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["Init"] is True
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": "rw,exec,nosuid,nodev,size=256m"}
    assert host["NetworkMode"] == network
    assert host["PortBindings"] == {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    volume = f"learnhub-home-{session.username}"
    assert [(m["Type"], m["Name"], m["Destination"], m["RW"]) for m in container["Mounts"]] == [
        ("volume", volume, HOME, True)
    ]
    assert engine.inspect_volume(volume)["Labels"]["org.learnhub.user"] == session.username
    assert container["Config"]["Labels"]["org.learnhub.user"] == session.username
    expected = Isolation(
        images=[IMAGE, UPGRADE],
        volume=volume,
        home=HOME,
        network=network,
        pids_limit=LIMITS["pids_limit"],
        mem_limit=MEM_BYTES,
        cpu_limit=LIMITS["cpu_limit"],
    )
    assert isolation_problems(container, expected) == []

    # From inside: the learner's uid, no capabilities, no new privileges, and only the home
    # volume and /tmp writable.
    inside = ast.literal_eval(
        execute(
            session,
            "import os\n"
            "status = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines()"
            " if ':\\t' in l)\n"
            "def writable(path):\n"
            "    try:\n"
            "        open(os.path.join(path, 'probe'), 'w').close()\n"
            "        return True\n"
            "    except OSError as e:\n"
            "        return e.strerror\n"
            "(os.getuid(), os.environ['HOME'], status['CapEff'], status['NoNewPrivs'],"
            " writable('/home/learner'), writable('/tmp'), writable('/opt/venv'), writable('/'))",
        )
    )
    assert inside == (
        1000,
        HOME,
        "0000000000000000",
        "1",
        True,
        True,
        "Read-only file system",
        "Read-only file system",
    )


def test_the_hub_api_is_on_the_learner_networks_gateway(client, hub, lms, engine, network):
    session = ready(client, hub, lms, "hub-api-check")
    gateway = gateway_of(engine, network)
    env = dict(e.split("=", 1) for e in container_of(engine, session)["Config"]["Env"])
    port = settings_of(hub)["hub"]["api_port"]
    assert env["JUPYTERHUB_API_URL"] == f"http://{gateway}:{port}/hub/api"
    assert env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"
    assert "JUPYTERHUB_API_TOKEN" in env
    # The API port listens on the gateway, not on loopback (the proxy keeps 127.0.0.1).
    assert requests.get(f"http://{gateway}:{port}/hub/api", timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/hub/api", timeout=10)


def test_doctor_says_docker_and_why(hub, engine, network):
    checked = hub.cli("doctor")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    prefix = "[ok] learner servers: Docker containers (spawner.backend is docker; Docker engine "
    assert any(line.startswith(prefix) and f"{IMAGE} is here" in line for line in lines), lines
    gateway = gateway_of(engine, network)
    port = settings_of(hub)["hub"]["api_port"]
    assert (
        f"[ok] learner network {network}: containers isolated from each other, with egress; "
        f"hub API on {gateway}:{port}; 1 CPU, 512M memory, 128 processes per learner"
    ) in lines, checked.stdout


# Persistence


def test_work_survives_stop_start_and_a_new_image(client, hub, lms, engine, admin):
    first = ready(client, hub, lms, "noether")
    put_file(first, "rings.txt", "ideals")
    old = container_of(engine, first)["Id"]

    stopped = requests.delete(
        f"{hub.url}/hub/api/users/{first.username}/server", headers=admin, timeout=60
    )
    assert stopped.status_code in (202, 204), stopped.text
    assert gone(engine.inspect_container, old), "the stopped container is still there"
    assert engine.inspect_volume(f"learnhub-home-{first.username}")

    second = ready(client, hub, lms, "noether")
    assert second.username == first.username
    assert container_of(engine, second)["Id"] != old
    assert get_file(second, "rings.txt").json()["content"] == "ideals"

    # A new image (as after `learnhub images build`): a new container, the same files.
    requests.delete(f"{hub.url}/hub/api/users/{first.username}/server", headers=admin, timeout=60)
    assert gone(engine.inspect_container, f"learnhub-{first.username}")
    started = requests.post(
        f"{hub.url}/hub/api/users/{first.username}/server",
        headers=admin,
        json={"image": UPGRADE},
        timeout=60,
    )
    assert started.status_code in (201, 202), started.text
    wait_until_ready(client, second)
    upgraded = container_of(engine, second)
    assert upgraded["Config"]["Image"] == UPGRADE
    assert upgraded["Config"]["Labels"]["org.learnhub.test"] == "upgrade"
    assert get_file(second, "rings.txt").json()["content"] == "ideals"


def test_only_allow_listed_images_start(hub, engine, admin):
    name = "image-shopper"
    created = requests.post(f"{hub.url}/hub/api/users/{name}", headers=admin, timeout=30)
    assert created.status_code == 201, created.text
    try:
        refused = requests.post(
            f"{hub.url}/hub/api/users/{name}/server",
            headers=admin,
            json={"image": "learnhub/base:bookworm"},
            timeout=60,
        )
        assert refused.status_code == 400, refused.text
        assert "Image learnhub/base:bookworm is not allowed" in refused.json()["message"]
        assert f"{IMAGE}, {UPGRADE}" in refused.json()["message"]
        with pytest.raises(NotFound):
            engine.inspect_container(f"learnhub-{name}")
    finally:
        requests.delete(f"{hub.url}/hub/api/users/{name}", headers=admin, timeout=60)


# Isolation between learners


def test_learners_cannot_read_or_reach_each_other(client, hub, lms, engine, network):
    alice = ready(client, hub, lms, "alice")
    bob = ready(client, hub, lms, "bob")
    marker = f"bob-only-{uuid.uuid4().hex}"
    put_file(bob, "diary.txt", marker)

    bob_container = container_of(engine, bob)
    bob_ip = bob_container["NetworkSettings"]["Networks"][network]["IPAddress"]
    bob_port = int(bob_container["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"])
    gateway = gateway_of(engine, network)
    settings = settings_of(hub)

    # Bob's server answers this machine at both addresses, so a refusal below is isolation.
    for url in (f"http://{bob_ip}:8888", f"http://127.0.0.1:{bob_port}"):
        answer = requests.get(
            f"{url}/user/{bob.username}/api/status", headers=bob.headers, timeout=30
        )
        assert answer.status_code == 200

    reached = probe_from(
        alice,
        {
            "bob's server": (bob_ip, 8888),
            "bob's published port": (gateway, bob_port),
            "proxy API": (gateway, settings["proxy"]["api_port"]),
            "proxy": (gateway, urlsplit(hub.url).port),
            "hub API": (gateway, settings["hub"]["api_port"]),
        },
    )
    assert reached.pop("hub API") == "open"
    assert reached["bob's server"] == "TimeoutError"  # dropped: inter-container traffic is off
    assert all(result != "open" for result in reached.values()), reached

    # Alice's container mounts her volume only; nothing of Bob's is in it.
    mounts = {m["Name"] for m in container_of(engine, alice)["Mounts"]}
    assert mounts == {f"learnhub-home-{alice.username}"}
    found = execute(
        alice,
        "import os\n"
        "hits = []\n"
        "for top in ('/home', '/tmp', '/mnt', '/srv', '/media'):\n"
        "    for root, dirs, files in os.walk(top):\n"
        "        for f in files:\n"
        "            try:\n"
        "                with open(os.path.join(root, f), 'rb') as file:\n"
        f"                    hits += [f] if {marker.encode()!r} in file.read() else []\n"
        "            except OSError:\n"
        "                pass\n"
        "(sorted(os.listdir('/home')), hits)",
    )
    assert ast.literal_eval(found) == (["learner"], [])
    assert get_file(bob, "diary.txt").json()["content"] == marker


def test_with_egress_learners_reach_beyond_this_machine(client, hub, lms, outside):
    session = ready(client, hub, lms, "web-fetcher")
    assert probe_from(session, {"outside": outside}) == {"outside": "open"}


def test_without_egress_learners_reach_the_hub_and_nothing_beyond(
    client, internal_hub, lms, engine, network, outside
):
    session = launch(client, internal_hub, lms, "offline")
    use_jupyterlab(client, session, engine, internal_hub)
    container = container_of(engine, session)
    assert engine.inspect_network(f"{network}-int")["Internal"] is True
    assert engine.inspect_network(f"{network}-int")["Options"] == {
        "com.docker.network.bridge.enable_icc": "false"
    }
    # No published port: the proxy reaches the container at its address on the network.
    assert not container["HostConfig"]["PortBindings"]
    assert not any(container["NetworkSettings"]["Ports"].values())
    gateway = gateway_of(engine, f"{network}-int")
    reached = probe_from(
        session,
        {"outside": outside, "hub API": (gateway, settings_of(internal_hub)["hub"]["api_port"])},
    )
    assert reached == {"outside": "TimeoutError", "hub API": "open"}


# Deletion and restarts


def test_deleting_the_user_removes_container_and_volume(client, hub, lms, engine, admin):
    session = ready(client, hub, lms, "leaver")
    put_file(session, "personal.txt", "mine")
    container = container_of(engine, session)["Id"]
    volume = f"learnhub-home-{session.username}"
    assert engine.inspect_volume(volume)

    deleted = requests.delete(
        f"{hub.url}/hub/api/users/{session.username}", headers=admin, timeout=120
    )
    assert deleted.status_code == 204, deleted.text
    with pytest.raises(NotFound):
        engine.inspect_container(container)
    with pytest.raises(NotFound):
        engine.inspect_volume(volume)
    assert engine.volumes(filters={"label": f"org.learnhub.user={session.username}"})[
        "Volumes"
    ] in (None, [])
    assert hub.query("select count(*) from users where name = ?", session.username) == [(0,)]
    assert f"Deleted home volume {volume}" in hub.log_path.read_text()


def test_bulk_erasure_removes_stopped_learners_volumes_only(client, hub, lms, engine, admin):
    """The retention sweep's path (privacy.bulk, delete_forever_many): one listing, the
    volumes of the learners in the batch removed, a running learner's kept."""
    from learnhub.privacy.bulk import ERASE_USERS_PATH
    from learnhub.privacy.service import service_token

    gone = ready(client, hub, lms, "bulk-leaver")
    put_file(gone, "personal.txt", "mine")
    stays = ready(client, hub, lms, "bulk-stayer")
    stop_server(hub, admin, gone.username)

    erased = requests.post(
        f"{hub.url}/hub/{ERASE_USERS_PATH}",
        headers={"Authorization": f"token {service_token(hub.state_dir)}"},
        json={"users": [gone.username, stays.username]},
        timeout=120,
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["deleted"] == [gone.username]
    assert erased.json()["busy"] == [stays.username]
    with pytest.raises(NotFound):
        engine.inspect_volume(f"learnhub-home-{gone.username}")
    assert (
        engine.containers(all=True, filters={"label": f"org.learnhub.user={gone.username}"}) == []
    )
    assert engine.inspect_volume(f"learnhub-home-{stays.username}")
    assert container_of(engine, stays)["State"]["Running"]
    assert hub.query("select count(*) from users where name = ?", gone.username) == [(0,)]


def test_restarting_the_hub_keeps_servers_and_launch_tokens(client, hub, lms, engine, admin):
    session = ready(client, hub, lms, "hopper")
    before = container_of(engine, session)["Id"]

    hub.stop()
    assert container_of(engine, session)["State"]["Running"]
    hub.start()

    assert container_of(engine, session)["Id"] == before
    model = requests.get(
        f"{hub.url}/hub/api/users/{session.username}", headers=admin, timeout=30
    ).json()
    assert model["servers"][""]["ready"] is True
    status = requests.get(session.server_url + "api/status", headers=session.headers, timeout=30)
    assert status.status_code == 200, status.text
    assert execute(session, "1+1") == "2"


# Bombs


FORK_BOMB = f"""
import os, time
root = os.getpid()
deadline = time.monotonic() + {BOMB_SECONDS}
forks = refused = 0
while time.monotonic() < deadline:
    try:
        if os.fork() == 0:
            continue  # every child forks too
        forks += 1
    except OSError:
        refused += 1
if os.getpid() != root:
    os._exit(0)
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
(forks, refused)
"""

MEMORY_BOMB = """
hog = []
while True:
    hog.append(b"x" * (32 * 2**20))
"""


def run_until_done(session, code: str, timeout: float) -> dict:
    """Run code in a new kernel; how it ended: its result, its error, or the kernel's death."""
    kernel = requests.post(
        session.server_url + "api/kernels", headers=session.headers, json={}, timeout=30
    )
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws_url = session.server_url.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(f"{ws_url}?token={session.token}", timeout=timeout)
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "",
              "session": uuid.uuid4().hex, "version": "5.3", "date": ""}  # fmt: skip
    content = {"code": code, "silent": False, "store_history": False,
               "user_expressions": {}, "allow_stdin": False}  # fmt: skip
    ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                        "channel": "shell", "content": content}))  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = json.loads(ws.recv())
            state = message["content"].get("execution_state")
            if message["msg_type"] == "status" and state in ("restarting", "dead"):
                return {"kernel": state}
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "execute_result":
                return {"result": message["content"]["data"]["text/plain"]}
            if message["msg_type"] == "error":
                return {"error": message["content"]["ename"]}
        return {"timeout": timeout}
    finally:
        ws.close()
        with contextlib.suppress(requests.RequestException):
            requests.delete(
                session.server_url + f"api/kernels/{kernel_id}",
                headers=session.headers,
                timeout=30,
            )


def latencies(url: str, headers: dict, until: threading.Event) -> list[float]:
    """Seconds each GET took, every 0.1 s until `until` is set; inf for a failed one."""
    taken = []
    with requests.Session() as http:
        while not until.is_set():
            started = time.monotonic()
            try:
                ok = http.get(url, headers=headers, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            taken.append(time.monotonic() - started if ok else float("inf"))
            time.sleep(0.1)
    return taken


def during(work, probes: dict[str, tuple[str, dict]], *, at_least: float) -> tuple:
    """Run `work()` while timing GETs of the probes; (its return value, latencies by name)."""
    until = threading.Event()
    with ThreadPoolExecutor(len(probes) + 1) as pool:
        timed = {name: pool.submit(latencies, url, h, until) for name, (url, h) in probes.items()}
        started = time.monotonic()
        result = pool.submit(work).result()
        time.sleep(max(0.0, at_least - (time.monotonic() - started)))
        until.set()
        return result, {name: future.result() for name, future in timed.items()}


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"n={len(ms)} median={statistics.median(ms):.1f}ms p95={p95:.1f}ms max={ms[-1]:.1f}ms"


def cgroup_value(pid: int, controller: str, filename: str, key: str | None = None) -> int:
    """A counter of the container's cgroup (v1 or v2), read on this machine."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller not in controllers.split(",") and controllers:
            continue
        for base in (Path("/sys/fs/cgroup", controller), Path("/sys/fs/cgroup")):
            file = base / path.lstrip("/") / filename
            if file.exists():
                text = file.read_text()
                if key is None:
                    return int(text.strip())
                return int(dict(line.split() for line in text.splitlines())[key])
    raise LookupError(f"no {controller}/{filename} for pid {pid}")


def memory_limit_hits(pid: int) -> int:
    """Times the container's memory use reached its limit: refused charges plus OOM kills.

    (Some kernels' cgroup v1 leave memory.failcnt at 0 and count only the OOM kills.)
    """
    try:
        return cgroup_value(pid, "memory", "memory.failcnt") + cgroup_value(
            pid, "memory", "memory.oom_control", "oom_kill"
        )  # cgroup v1
    except LookupError:
        return cgroup_value(pid, "memory", "memory.events", "max") + cgroup_value(
            pid, "memory", "memory.events", "oom_kill"
        )  # cgroup v2


def test_bombs_in_one_container_leave_the_hub_and_others_responsive(client, hub, lms, engine):
    bomber = ready(client, hub, lms, "bomber")
    bystander = ready(client, hub, lms, "bystander")
    assert execute(bomber, "1+1") == "2"
    pid = container_of(engine, bomber)["State"]["Pid"]
    probes = {
        "bystander api/status": (bystander.server_url + "api/status", bystander.headers),
        "hub API": (f"{hub.url}/hub/api/", {}),
    }
    _, calm = during(lambda: None, probes, at_least=3)

    refused_before = cgroup_value(pid, "pids", "pids.events", "max")
    forked, under_fork_bomb = during(
        lambda: run_until_done(bomber, FORK_BOMB, timeout=BOMB_SECONDS + 60),
        probes,
        at_least=BOMB_SECONDS,
    )
    hits_before = memory_limit_hits(pid)
    ate, under_memory_bomb = during(
        lambda: run_until_done(bomber, MEMORY_BOMB, timeout=60), probes, at_least=BOMB_SECONDS
    )

    report = {
        phase: {name: summary(samples) for name, samples in timings.items()}
        for phase, timings in [
            ("calm", calm),
            ("fork bomb", under_fork_bomb),
            ("memory bomb", under_memory_bomb),
        ]
    }
    print("\nlatency while learner A misbehaves:", json.dumps(report, indent=2))
    refused_forks = cgroup_value(pid, "pids", "pids.events", "max") - refused_before
    memory_hits = memory_limit_hits(pid) - hits_before
    print(f"fork bomb: {forked}, forks refused by the pids limit: {refused_forks}")
    print(f"memory bomb: {ate}, times the memory limit was hit: {memory_hits}")

    # The bombs went off and hit the limits...
    forks, refused = ast.literal_eval(forked["result"])
    assert forks > 0 and refused > 0
    assert refused_forks > 0
    assert ate in ({"kernel": "restarting"}, {"kernel": "dead"}, {"error": "MemoryError"})
    assert memory_hits > 0
    # ...while the hub and the other learner answered every time, and fast.
    for timings in (under_fork_bomb, under_memory_bomb):
        for name, samples in timings.items():
            assert all(s != float("inf") for s in samples), f"{name} failed during a bomb"
            assert statistics.median(samples) < 0.25, (name, summary(samples))
            assert max(samples) < 2.0, (name, summary(samples))
    # The bomber's own server survived both.
    status = requests.get(bomber.server_url + "api/status", headers=bomber.headers, timeout=30)
    assert status.status_code == 200
    assert execute(bomber, "1+1") == "2"


# Choosing the backend


MISSING = "learnhub/learner:never-built"


def hub_without_image(tmp_path_factory, **spawner) -> Hub:
    state = tmp_path_factory.mktemp("no-image-hub")
    config = state / "learnhub.yaml"
    url = f"http://127.0.0.1:{free_port()}"
    write_settings(config, url, spawner={"images": [MISSING], **spawner})
    return Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")


def test_auto_without_the_learner_image_runs_local_processes_and_warns(engine, tmp_path_factory):
    instance = hub_without_image(tmp_path_factory)
    why = f"spawner.backend is auto and the learner image {MISSING} is not on this machine"
    doctor = instance.cli("doctor")
    assert (
        f"[warning] learner servers: local processes ({why}: learner servers run as local "
        "processes of the hub's user: learners are NOT isolated" in doctor.stdout
    ), doctor.stdout
    try:
        instance.start()
        log = instance.log_path.read_text()
        assert f"LearnHub: {why}" in log
        assert "learners are NOT isolated from each other; start a Docker engine" in log
        assert "Using Spawner: learnhub.spawners.LocalLearnerSpawner" in log
    finally:
        instance.shutdown_everything()


def test_docker_without_the_learner_image_stops_the_hub_with_the_fix(engine, tmp_path_factory):
    instance = hub_without_image(tmp_path_factory, backend="docker")
    doctor = instance.cli("doctor")
    assert doctor.returncode == 1
    assert (
        f"[error] learner servers: spawner.backend is docker but the learner image {MISSING}"
        in doctor.stdout
    ), doctor.stdout
    started = instance.jupyterhub()
    assert started.returncode != 0
    assert (
        "LearnHub cannot start, invalid settings: spawner.backend is docker but the learner "
        f"image {MISSING} is not on this machine: start a Docker engine"
    ) in started.stderr, started.stderr
    assert "`learnhub images build`" in started.stderr
