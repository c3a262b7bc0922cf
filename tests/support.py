"""Helpers for tests that run the real hub, proxy and learner servers against a real LTI peer."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path

import pytest
import requests
import websocket

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HUB_START_TIMEOUT = 90
SERVER_START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopThread:
    """An asyncio loop in a thread, so session fixtures can run async peers for sync tests."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Hub:
    """A running hub subprocess and what a test needs to look into it."""

    url: str
    state_dir: Path
    config_file: Path
    log_path: Path
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        # What an operator's `learnhub init` makes: the state directory and its keys.
        from learnhub.settings import init_state, load_settings

        if self.config_file.exists():
            init_state(load_settings(self.config_file, environ=self.env()))

    @property
    def db_path(self) -> Path:
        return self.state_dir / "learnhub.sqlite"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LEARNHUB_CONFIG": str(self.config_file),
            "LEARNHUB_STATE_DIR": str(self.state_dir),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "learnhub"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def jupyterhub(self, *args: str) -> subprocess.CompletedProcess:
        """`jupyterhub *args` with LearnHub's configuration, run to the end (a command such
        as `token`, or a start that is expected to fail)."""
        return subprocess.run(
            [str(BIN / "jupyterhub"), *args, "-f", str(REPO / "jupyterhub_config.py")],
            env=self.env(),
            cwd=self.state_dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [str(BIN / "jupyterhub"), "-f", str(REPO / "jupyterhub_config.py")],
            env=self.env(),
            cwd=self.state_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + HUB_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{self.url}/hub/api", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        pytest.fail(f"hub did not answer within {HUB_START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                # The hub stops its managed services (the idle culler) before it exits,
                # and the culler needs SIGTERM after a 10 s SIGINT grace: allow for that.
                self.proc.wait(45)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def query(self, sql: str, *params):
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as db:
            return db.execute(sql, params).fetchall()

    def execute(self, sql: str, *params) -> int:
        """Change the hub's database behind its back (a test's time travel); rows changed."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as db, db:
            return db.execute(sql, params).rowcount

    def counts(self) -> dict[str, int]:
        """How many users, tokens and running servers the hub has: bad launches add none."""
        return {
            "users": self.query("select count(*) from users")[0][0],
            "tokens": self.query("select count(*) from api_tokens")[0][0],
            "servers": self.query("select count(*) from servers")[0][0],
        }

    def server_pids(self) -> list[int]:
        pids = []
        for (state,) in self.query("select state from spawners where state is not null"):
            with contextlib.suppress(ValueError, TypeError):
                pid = json.loads(state).get("pid")
                if pid:
                    pids.append(int(pid))
        return pids

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no hub log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def usernames(self) -> list[str]:
        return [name for (name,) in self.query("select name from users")]

    def shutdown_everything(self) -> None:
        """Stop the hub, then the servers, containers and proxy it deliberately leaves running."""
        has_db = self.db_path.exists()
        pids = self.server_pids() if has_db else []
        users = self.usernames() if has_db else []
        self.stop()
        proxy_pid = self.state_dir / "proxy.pid"
        if proxy_pid.exists():
            pids.append(int(proxy_pid.read_text().strip() or 0))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        remove_learner_containers(users)


def analytics_totals(hub: Hub) -> dict[tuple[str, str], int]:
    """Everything the analytics tables hold, summed over days: (metric, key) -> count.

    Today's learner hashes count as today's active learners, as the hub's roll-over turns them
    into a count at the first request of the next day; so a test that spans midnight UTC sees
    the same totals before and after the roll-over, and any new row still changes them.
    """
    totals: dict[tuple[str, str], int] = {}
    for _day, metric, key, count in hub.query(
        "select day, metric, key, count from learnhub_analytics_daily_counts"
    ):
        totals[(metric, key)] = totals.get((metric, key), 0) + count
    ((hashes,),) = hub.query("select count(*) from learnhub_analytics_active_learners")
    if hashes:
        totals[("active_learners", "")] = totals.get(("active_learners", ""), 0) + hashes
    return totals


def registered_hub(state: Path, lms, **settings) -> Hub:
    """A hub (not started) whose settings are `settings` and that knows `lms` as a peer.

    The demo LMS learns the hub's URLs; the hub gets the LMS as an LTI 1.1 consumer and an
    LTI 1.3 platform through its own CLI, as an operator would register them.
    """
    from learnhub.demo.lms import tool_urls

    url = f"http://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    write_settings(config, url, **settings)
    instance = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    for name, value in tool_urls(url).items():
        setattr(lms, name, value)
    registration = lms.registration()
    added = instance.cli(
        "lti",
        "add-consumer",
        lms.consumer_key,
        # One argument: a generated secret may begin with "-".
        f"--secret={lms.consumer_secret}",
        "--frame-origin",
        lms.url,
    )
    assert added.returncode == 0, added.stderr
    added = instance.cli(
        "lti", "add-platform",
        "--issuer", registration["issuer"],
        "--client-id", registration["client_id"],
        "--deployment-id", registration["deployment_id"],
        "--auth-url", registration["auth_url"],
        "--jwks-url", registration["jwks_url"],
        "--token-url", f"{lms.url}/token",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return instance


def registration_url(hub: Hub, by: str = "test-admin") -> str:
    """A one-time registration URL, as `learnhub lti registration-url` prints it."""
    made = hub.cli("lti", "registration-url", "--by", by, "--lifetime", "10")
    assert made.returncode == 0, made.stderr
    urls = re.findall(r"^http\S+$", made.stdout, re.M)
    assert len(urls) == 1, made.stdout
    assert urls[0].startswith(f"{hub.url}/hub/lti13/register?registration_key=")
    return urls[0]


def remove_learner_containers(usernames: list[str]) -> None:
    """Remove the learners' containers and home volumes that a test hub left behind."""
    from learnhub.spawners import USER_LABEL

    if not usernames or shutil.which("docker") is None:
        return
    for name in usernames:
        label = f"label={USER_LABEL}={name}"
        for kind, listing in (("rm", ["ps", "-aq"]), ("volume", ["volume", "ls", "-q"])):
            found = subprocess.run(
                ["docker", *listing, "--filter", label],
                capture_output=True, text=True, timeout=60, check=False,
            ).stdout.split()  # fmt: skip
            if found:
                command = ["rm", "-f"] if kind == "rm" else ["volume", "rm", "-f"]
                subprocess.run(
                    ["docker", *command, *found], capture_output=True, timeout=120, check=False
                )


def write_settings(path: Path, url: str, **extra) -> None:
    from learnhub.service_names import PORT_SETTINGS

    settings = {"public_url": url, "hub": {"api_port": free_port()}}
    settings["proxy"] = {"api_port": free_port()}
    # Every test hub runs its own services: each a port of its own, from bind(0) like the
    # rest. Not the defaults next to the hub API's port: bind(0) gives odd ports and Linux
    # gives outgoing connections even ones, so api_port + 1 or + 3 may be the local port of
    # a client's connection (or of its TIME_WAIT, for a minute) and the service's bind fails.
    for *sections, key in PORT_SETTINGS.values():
        place = settings
        for section in sections:
            place = place.setdefault(section, {})
        place[key] = free_port()
    for key, value in extra.items():
        settings[key] = merged(settings.get(key), value)
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))


def merged(default, given):
    """`given` over `default`, section by section."""
    if isinstance(default, dict) and isinstance(given, dict):
        return {**default, **{k: merged(default.get(k), v) for k, v in given.items()}}
    return given


class CookielessClient(requests.Session):
    """An HTTP client with no cookie jar at all, that records any Cookie header it sends."""

    def __init__(self):
        super().__init__()
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.cookie_headers_sent: list[str] = []
        self.set_cookie_headers_received: list[str] = []
        self.hooks["response"].append(self._record)

    def _record(self, response, **_kwargs):
        for r in [*response.history, response]:
            if "Cookie" in r.request.headers:
                self.cookie_headers_sent.append(r.request.headers["Cookie"])
            if "Set-Cookie" in r.headers:
                self.set_cookie_headers_received.append(r.headers["Set-Cookie"])


class FormParser(HTMLParser):
    """The first form of a page: its action and its named input values."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action")
            self._in_form = True
        elif tag == "input" and self._in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


def parse_form(html: str) -> tuple[str, dict[str, str]]:
    parser = FormParser()
    parser.feed(html)
    assert parser.action, f"no form in page:\n{html[:2000]}"
    return parser.action, parser.fields


# What a browser says of a request a page of the same origin sends.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def open_formgrader(
    session: requests.Session, hub_url: str, token: str, course_id: str | None = None
) -> requests.Response:
    """Formgrader as JupyterLab's Course menu opens it in a new tab: the launch token posted
    to the hub from a page of this site, then the hub's handoff form (the grader server's
    own token) posted to the grader server, which keeps it in its cookie and in the page it
    goes on to. The last answer."""
    path = f"learnhub/courses/{course_id}/formgrader" if course_id else "learnhub/formgrader"
    answer = session.post(
        f"{hub_url}/hub/{path}", data={"token": token}, headers=SAME_ORIGIN, timeout=180
    )
    if answer.status_code != 200 or 'id="learnhub-handoff"' not in answer.text:
        return answer
    action, fields = parse_form(answer.text)
    answer = session.post(
        requests.compat.urljoin(answer.url, action), data=fields, headers=SAME_ORIGIN, timeout=180
    )
    return follow_staff_session(session, answer)


def staff_session(html: str) -> dict | None:
    """The staff session a grader server's page keeps (formgrader_session), if any."""
    match = re.search(
        r'<script type="application/json" id="learnhub-session">(.*?)</script>', html, re.S
    )
    return json.loads(match.group(1)) if match else None


def follow_staff_session(session: requests.Session, answer: requests.Response, *,
                         hops: int = 5) -> requests.Response:  # fmt: skip
    """What learnhub-formgrader-session.js does with a page whose session says `next`: post
    the token there (a redirect of formgrader's, the handoff's first page)."""
    for _ in range(hops):
        found = staff_session(answer.text) if answer.status_code == 200 else None
        if not found or "next" not in found:
            return answer
        answer = session.post(
            requests.compat.urljoin(answer.url, found["next"]),
            data={found["field"]: found["token"]},
            headers=SAME_ORIGIN,
            timeout=180,
        )
    return answer


def session_config(html: str) -> dict:
    """The waiting page's launch session: token, progress URL, JupyterLab URL."""
    match = re.search(
        r'<script id="learnhub-session" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"not a waiting page:\n{html[:2000]}"
    return json.loads(match.group(1))


def page_config(html: str) -> dict:
    match = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                      html, re.S)  # fmt: skip
    assert match, f"not a JupyterLab page:\n{html[:2000]}"
    return json.loads(match.group(1))


@dataclass
class Launch:
    """What a launch handed the browser, nothing more."""

    hub_url: str
    token: str
    progress_url: str
    lab_url: str

    @property
    def username(self) -> str:
        return self.lab_url.split("/user/", 1)[1].split("/", 1)[0]

    @property
    def server_url(self) -> str:
        return f"{self.hub_url}/user/{self.username}/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


def launch_from(hub_url: str, waiting_page: requests.Response) -> Launch:
    assert waiting_page.status_code == 200, waiting_page.text[:2000]
    config = session_config(waiting_page.text)
    return Launch(hub_url, config["token"], config["progressUrl"], config["labUrl"])


def lti11_launch(client, hub, lms, *, user_id="learner-1", roles="Learner", context="course-1",
                 **extra) -> requests.Response:  # fmt: skip
    from learnhub.demo.lti11 import lti11_launch_params

    params = lti11_launch_params(
        user_id=user_id,
        roles=roles,
        context_id=context,
        context_title=f"Course {context}",
        resource_link_id=f"{context}-link",
        **extra,
    )
    form = lms.sign_lti11(params)
    return client.post(f"{hub.url}/hub/lti11/launch", data=form, allow_redirects=False)


def lti13_launch(client, lms, *, user_id="learner-13", roles=None, context="course-13",
                 **extra) -> requests.Response:  # fmt: skip
    """Login initiation, the platform's auth response, and the id_token form post."""
    from learnhub.demo.constants import Role

    login_url, params = lms.initiate_lti13(
        user_id=user_id,
        roles=roles or [Role.LEARNER],
        context_id=context,
        **extra,
    )
    redirect = client.get(login_url, params=params, allow_redirects=False)
    assert redirect.status_code == 302, redirect.text[:2000]
    auth_page = client.get(redirect.headers["Location"], allow_redirects=False)
    assert auth_page.status_code == 200, auth_page.text
    action, fields = parse_form(auth_page.text)
    return client.post(action, data=fields, allow_redirects=False)


def wait_until_ready(client, launch: Launch, timeout=SERVER_START_TIMEOUT) -> dict:
    """Follow the progress stream with the launch token, as the waiting page does."""
    deadline = time.monotonic() + timeout
    last = {}
    while time.monotonic() < deadline:
        with client.get(
            launch.hub_url + launch.progress_url,
            headers=launch.headers,
            stream=True,
            timeout=timeout,
        ) as response:
            assert response.status_code == 200, response.text
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    last = json.loads(line[5:])
                    if last.get("ready"):
                        return last
                    if last.get("failed"):
                        pytest.fail(f"server failed to start: {last}")
        time.sleep(0.5)
    pytest.fail(f"server not ready after {timeout}s: {last}")


def until(find, timeout: float = 180.0, every: float = 1.0):
    """The first truthy value of find(), polled until timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"nothing after {timeout:g}s: {find.__name__}")


def execute_request(msg_id: str, code: str) -> dict:
    """A Jupyter messaging execute_request, as JupyterLab sends it on the kernel websocket."""
    return {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "",
            "session": uuid.uuid4().hex,
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
        },
    }


def execute(launch: Launch, code: str, timeout=60) -> str:
    """Start a kernel through the REST API and run code over the websocket; return text/plain."""
    kernel = requests.post(
        launch.server_url + "api/kernels", headers=launch.headers, json={}, timeout=30
    )
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws_url = launch.server_url.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(f"{ws_url}?token={launch.token}", timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps(execute_request(msg_id, code)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "execute_result":
                return message["content"]["data"]["text/plain"]
            if message["msg_type"] == "error":
                pytest.fail(f"kernel error: {message['content']}")
        pytest.fail("no execute_result")
    finally:
        ws.close()
        requests.delete(
            launch.server_url + f"api/kernels/{kernel_id}", headers=launch.headers, timeout=30
        )


# A notebook a learner saves through the contents API.
NOTEBOOK = {
    "type": "notebook",
    "content": {
        "cells": [
            {
                "cell_type": "code",
                "source": "answer = 6 * 7",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    },
}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost, usable as its own CA.

    Returns (certificate, private key) PEM paths; the key file is mode 0600.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "learnhub test server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def tarball(files: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    """A gzipped tar of these files (and symbolic links), as the exchange receives uploads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def admin_headers(hub: Hub) -> dict[str, str]:
    """Headers with an API token of the hub's administrator, made by `jupyterhub token`."""
    made = hub.jupyterhub("token", "admin")
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"token {made.stdout.strip().splitlines()[-1]}"}


def stop_server(hub: Hub, admin: dict[str, str], username: str, timeout: float = 120) -> None:
    """Stop a learner's server through the hub's API and wait until the hub says it is gone."""
    url = f"{hub.url}/hub/api/users/{username}"
    stopped = requests.delete(url + "/server", headers=admin, timeout=60)
    assert stopped.status_code in (202, 204), stopped.text
    deadline = time.monotonic() + timeout
    while requests.get(url, headers=admin, timeout=30).json()["servers"]:
        assert time.monotonic() < deadline, f"{username}'s server did not stop"
        time.sleep(0.5)
