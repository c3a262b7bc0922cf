"""The learner-server extension, run in a real jupyter server with JupyterLab."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jupyterhub
import pytest
import requests
from jupyterhub.services.auth import HubOAuth
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler
from traitlets.config import Config

import learnhub_singleuser
from learnhub_singleuser import labextension_path
from learnhub_singleuser.cookieless import keep_url_token_out_of_cookies
from learnhub_singleuser.extension import LearnHubSingleUser
from learnhub_singleuser.headers import frame_ancestors_csp

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PACKAGE_DIR = Path(learnhub_singleuser.__file__).parent
SHIPPED_CONFIG = PACKAGE_DIR / "jupyter_server_config.d" / "learnhub_singleuser.json"
LAB_EXTENSION = Path(labextension_path(), "@learnhub", "lab")
# Built from extensions/labextension-src by JupyterLab's builder, which names the remote entry
# after its content and records that name in the built package.json.
REMOTE_ENTRY = json.loads((LAB_EXTENSION / "package.json").read_text())["jupyterlab"]["_build"][
    "load"
]

ORIGINS = "https://canvas.example.edu http://127.0.0.1:8001"
FRAME_ANCESTORS = "frame-ancestors 'self' https://canvas.example.edu http://127.0.0.1:8001"
HSTS = "max-age=31536000"


def directives(csp: str) -> dict[str, str]:
    """Split a Content-Security-Policy into {directive: sources}."""
    parts = (d.strip().partition(" ") for d in csp.split(";") if d.strip())
    return {name: sources for name, _, sources in parts}


def page_config(html: str) -> dict:
    """The page config JupyterLab reads from the page's jupyter-config-data script."""
    m = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html)
    assert m, html[:300]
    return json.loads(m.group(1))


def set_cookie_names(headers) -> list[str]:
    return [c.split("=", 1)[0] for c in headers.get_list("Set-Cookie")]


# --- configuration and the pure header builder -------------------------------------------


@pytest.mark.parametrize(
    ("existing", "origins", "expected"),
    [
        ("", ["https://lms.example"], "frame-ancestors 'self' https://lms.example"),
        ("", [], "frame-ancestors 'self'"),
        (
            "frame-ancestors 'none'",
            ["https://lms.example", "http://127.0.0.1:8001"],
            "frame-ancestors 'self' https://lms.example http://127.0.0.1:8001",
        ),
        (
            "default-src 'self'; Frame-Ancestors 'none'; report-uri /csp",
            ["https://lms.example"],
            "default-src 'self'; report-uri /csp; frame-ancestors 'self' https://lms.example",
        ),
    ],
    ids=["no-policy", "same-origin-only", "replaces-jupyterhub-none", "keeps-other-directives"],
)
def test_frame_ancestors_csp(existing, origins, expected):
    assert frame_ancestors_csp(existing, origins) == expected


def test_frame_ancestors_default_comes_from_the_spawner_env(monkeypatch):
    monkeypatch.setenv(
        "LEARNHUB_FRAME_ANCESTORS", " https://canvas.example.edu\thttp://[::1]:8001 "
    )
    assert LearnHubSingleUser().frame_ancestors == [
        "https://canvas.example.edu",
        "http://[::1]:8001",
    ]


def test_frame_ancestors_config_beats_env(monkeypatch):
    monkeypatch.setenv("LEARNHUB_FRAME_ANCESTORS", "https://from-env.example")
    config = Config({"LearnHubSingleUser": {"frame_ancestors": ["https://*.lms.example"]}})
    assert LearnHubSingleUser(config=config).frame_ancestors == ["https://*.lms.example"]


@pytest.mark.parametrize(
    "value",
    [
        "https://lms.example/",
        "https://lms.example/course/1",
        "'unsafe-inline'",
        "https://lms.example;script-src",
        "javascript:alert(1)",
        "*",
    ],
    ids=["trailing-slash", "path", "keyword", "directive-injection", "scheme", "wildcard"],
)
def test_frame_ancestors_rejects_what_is_not_an_origin(monkeypatch, value):
    monkeypatch.setenv("LEARNHUB_FRAME_ANCESTORS", f"https://ok.example {value}")
    with pytest.raises(ValueError, match=r"^\$LEARNHUB_FRAME_ANCESTORS .*is not an origin"):
        LearnHubSingleUser().frame_ancestors  # noqa: B018

    config = Config({"LearnHubSingleUser": {"frame_ancestors": ["https://ok.example", value]}})
    with pytest.raises(ValueError, match=r"^LearnHubSingleUser\.frame_ancestors: .*is not an"):
        LearnHubSingleUser(config=config)


# --- a jupyter server with JupyterLab and the extension ------------------------------------


def blank_token_hook(handler, page_config):
    """Stands in for JupyterHub's page_config_hook, which sets its own token and hubUser."""
    page_config["token"] = ""
    page_config["hubUser"] = "learner"
    return page_config


@pytest.fixture
def jp_server_config(monkeypatch):
    monkeypatch.setenv("LEARNHUB_FRAME_ANCESTORS", ORIGINS)
    monkeypatch.setenv("LEARNHUB_STRICT_TRANSPORT_SECURITY", HSTS)
    # The file the package ships is what enables the extension here.
    config = Config(json.loads(SHIPPED_CONFIG.read_text()))
    config.ServerApp.jpserver_extensions["jupyterlab"] = True
    config.ServerApp.tornado_settings = {"page_config_hook": blank_token_hook}
    return config


@pytest.fixture
def run(jp_asyncio_loop):
    """Run a coroutine on the loop that jp_serverapp serves from.

    Tests stay synchronous: pytest-asyncio would run `async def` tests on a loop of its own.
    """
    return jp_asyncio_loop.run_until_complete


@pytest.fixture
def token(jp_serverapp):
    return jp_serverapp.identity_provider.token


@pytest.fixture
def fetch(jp_fetch, run):
    """jp_fetch without its default Authorization header: a browser sends none."""

    def fetch(*parts, headers=None, **kwargs):
        return run(jp_fetch(*parts, headers={"Authorization": "", **(headers or {})}, **kwargs))

    return fetch


def test_lab_page_headers(fetch, token):
    r = fetch("lab", params={"token": token})
    assert r.headers["Content-Security-Policy"] == FRAME_ANCESTORS
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Strict-Transport-Security"] == HSTS
    assert "Tk" not in r.headers


@pytest.mark.parametrize(
    ("headers", "tk"),
    [
        ({"DNT": "1"}, "N"),
        ({"Sec-GPC": "1"}, "N"),
        ({"DNT": "0"}, None),
        ({}, None),
    ],
    ids=["dnt", "gpc", "dnt-0", "none"],
)
@pytest.mark.parametrize(
    "parts", [("lab",), ("api", "contents"), ("api", "nonexistent")], ids=["page", "api", "404"]
)
def test_tracking_status_follows_the_request(fetch, token, headers, tk, parts):
    r = fetch(
        *parts,
        params={"token": token},
        headers={"Authorization": f"token {token}", **headers},
        raise_error=False,
    )
    assert r.headers.get("Tk") == tk


def test_privacy_link_schema_puts_the_command_in_the_help_menu(fetch, token):
    r = fetch("lab", "api", "settings", "@learnhub/lab:privacy-link", params={"token": token})
    schema = json.loads(r.body)["schema"]
    help_menu = [m for m in schema["jupyter.lab.menus"]["main"] if m["id"] == "jp-mainmenu-help"]
    assert help_menu
    assert {"command": "learnhub:open-privacy-policy", "rank": 0.5} in help_menu[0]["items"]


@pytest.mark.parametrize(
    "parts",
    [("api", "contents"), ("api", "status"), ("lab", "api", "settings")],
    ids=["contents", "status", "lab-settings"],
)
def test_api_headers(fetch, token, parts):
    r = fetch(*parts, headers={"Authorization": f"token {token}"})
    # API handlers append their own "default-src 'none'"; frame-ancestors is ours alone.
    assert directives(r.headers["Content-Security-Policy"])["frame-ancestors"] == (
        FRAME_ANCESTORS.removeprefix("frame-ancestors ")
    )
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_lab_page_config_carries_the_url_token(fetch, token):
    r = fetch("lab", params={"token": token})
    config = page_config(r.body.decode())
    assert config["token"] == token
    assert config["appendToken"] == "true"
    # The hook that was there first still ran.
    assert config["hubUser"] == "learner"
    assert "_xsrf" not in set_cookie_names(r.headers)


def test_cookie_session_page_config_gets_no_token(fetch, token):
    # jupyter-server's own login cookie (the hub's identity provider sets none).
    first = fetch("lab", params={"token": token})
    cookie = "; ".join(c.split(";", 1)[0] for c in first.headers.get_list("Set-Cookie"))
    assert cookie

    config = page_config(fetch("lab", headers={"Cookie": cookie}).body.decode())
    # Nothing from the token request leaked into the server-wide page config.
    assert config["token"] == ""
    assert "appendToken" not in config


def test_labextension_is_listed_and_served(fetch, token):
    config = page_config(fetch("lab", params={"token": token}).body.decode())
    ours = [e for e in config["federated_extensions"] if e["name"] == "@learnhub/lab"]
    assert ours == [
        {
            "name": "@learnhub/lab",
            "load": REMOTE_ENTRY,
            "extension": "./extension",
            "entrypoints": None,
        }
    ]

    # Served without credentials, as the browser's <script> tags ask for them: the remote
    # entry and the chunk it loads, which holds the extension's code.
    assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", REMOTE_ENTRY)
    js = fetch("lab", "extensions", "@learnhub", "lab", *REMOTE_ENTRY.split("/")).body.decode()
    assert js == (LAB_EXTENSION / REMOTE_ENTRY).read_text()
    # The container registers itself where JupyterLab's bootstrap looks for it.
    assert '(_JUPYTERLAB=void 0===_JUPYTERLAB?{}:_JUPYTERLAB)["@learnhub/lab"]=' in js
    chunks = [
        p for p in (LAB_EXTENSION / "static").glob("*.js") if p.name != Path(REMOTE_ENTRY).name
    ]
    served = [
        fetch("lab", "extensions", "@learnhub", "lab", "static", p.name).body.decode()
        for p in chunks
    ]
    assert served == [p.read_text() for p in chunks]
    code = "".join(served)
    assert "window.history.replaceState(" in code
    assert ".getDownloadUrl=" in code


def test_token_is_not_logged(fetch, token, caplog):
    caplog.set_level("DEBUG")
    fetch("lab", params={"token": token})
    assert "/lab?token=[secret]" in caplog.text
    assert token not in caplog.text


# --- the labextension's code, run in Node.js ------------------------------------------------

# What a browser does with the built extension's scripts: the remote entry runs at the top
# level (JupyterLab's bootstrap adds its <script>), and the chunks it asks for by adding a
# <script> to document.head run when "fetched" from the static folder, then fire onload.
SCRIPT_LOADER = r"""
const fs = require('fs');
const path = require('path');
const vm = require('vm');
globalThis.self = globalThis;
const STATIC_URL = 'http://127.0.0.1:8888/user/learner/lab/extensions/@learnhub/lab/static/';
function runScript(file) {
  vm.runInThisContext(fs.readFileSync(file, 'utf8'), { filename: file });
}
function scriptElement() {
  const attributes = {};
  return {
    tagName: 'SCRIPT',
    setAttribute: (name, value) => { attributes[name] = value; },
    getAttribute(name) { return name === 'src' ? this.src : attributes[name]; },
  };
}
const scriptDom = {
  currentScript: null,
  getElementsByTagName: () => [],
  createElement: scriptElement,
  head: {
    appendChild: element => setTimeout(() => {
      const name = new URL(element.src).pathname.split('/').pop();
      runScript(path.join(staticDir, name));
      element.onload({ type: 'load', target: element });
    }),
  },
};
let staticDir = null;
function loadRemoteEntry(entry) {
  staticDir = path.dirname(entry);
  document.currentScript = { ...scriptElement(), src: STATIC_URL + path.basename(entry) };
  runScript(entry);
  document.currentScript = null;
  return globalThis._JUPYTERLAB['@learnhub/lab'];
}
"""

NODE_HARNESS = (
    SCRIPT_LOADER
    + r"""
const [entry, href, token] = process.argv.slice(2);
const replaced = [];
const opened = [];
globalThis.document = {
  ...scriptDom,
  getElementById: id => (id === 'jupyter-config-data'
    ? { textContent: JSON.stringify({ hubPrefix: '/hub/', hubHost: '' }) } : null),
};
globalThis.window = {
  location: new URL(href),
  history: { state: { lab: 1 }, replaceState: (state, _, url) => replaced.push({ state, url }) },
  open: (url, target, features) => opened.push([url, target, features]),
  // As in a frame whose browser blocks cookies: reading web storage throws.
  get localStorage() { throw new Error('SecurityError: Access is denied for this document.'); },
  get sessionStorage() { throw new Error('SecurityError: Access is denied for this document.'); },
};
const container = loadRemoteEntry(entry);
const base = 'http://127.0.0.1:8888/user/learner/files/';
const drive = {
  serverSettings: { token },
  getDownloadUrl: path => Promise.resolve(base + encodeURI(path) + '?_xsrf=x'),
};
(async () => {
  // JupyterLab shares its @jupyterlab/application; the module takes the Router from it.
  class Router { navigate() {} reload() {} }
  await container.init({
    '@jupyterlab/application': {
      '4.6.6': { get: () => Promise.resolve(() => ({ Router })), from: 'jupyterlab' },
    },
  });
  // As JupyterLab's index.js: the module is evaluated before any plugin is activated.
  const module = (await container.get('./extension'))();
  window.localStorage.setItem('kept', 'in memory');
  class KernelSpecManager {
    get specs() {
      return { default: 'python3', kernelspecs: { python3: { name: 'python3', resources: {
        'logo-64x64': '/user/learner/kernelspecs/python3/logo-64x64.png' } } } };
    }
  }
  const kernelspecs = new KernelSpecManager();
  const commands = new Map();
  for (const plugin of module.default) {
    plugin.activate({
      commands: { addCommand: (id, options) => commands.set(id, options) },
      serviceManager: { contents: { defaultDrive: drive }, kernelspecs, serverSettings: { token } },
    });
  }
  const privacy = commands.get('learnhub:open-privacy-policy');
  privacy.execute();
  const missing = await container.get('./mimeExtension').catch(e => e.message);
  console.log(JSON.stringify({
    esModule: module.__esModule,
    plugins: module.default.map(p => [p.id, p.autoStart]),
    replaced,
    download: await drive.getDownloadUrl('images/cat 1.png'),
    logo: kernelspecs.specs.kernelspecs.python3.resources['logo-64x64'],
    storage: window.localStorage.getItem('kept'),
    missing,
    commands: [...commands.keys()],
    privacyLabel: privacy.label,
    opened,
  }));
})().catch(e => { console.error(e); process.exit(1); });
"""
)

LAB_URL = "http://127.0.0.1:8888/user/learner/lab/tree/a.ipynb"
FILES_URL = "http://127.0.0.1:8888/user/learner/files/images/cat%201.png?_xsrf=x"


@pytest.mark.parametrize(
    ("href", "token", "replaced_url", "download"),
    [
        (
            LAB_URL + "?reset&path=a%2Fb&token=T1&x=1#cell-3",
            "T1",
            "/user/learner/lab/tree/a.ipynb?reset&path=a%2Fb&x=1#cell-3",
            FILES_URL + "&token=T1",
        ),
        (LAB_URL + "?token=T1", "T1", "/user/learner/lab/tree/a.ipynb", FILES_URL + "&token=T1"),
        (LAB_URL + "?x=1", "", None, FILES_URL),
    ],
    ids=["keeps-other-params-and-hash", "only-token", "cookie-session"],
)
def test_labextension_in_node(tmp_path, href, token, replaced_url, download):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    out = subprocess.run(
        [node, str(harness), str(LAB_EXTENSION / REMOTE_ENTRY), href, token],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["esModule"] is True
    assert result["plugins"] == [
        ["@learnhub/lab:cookieless-session", True],
        ["@learnhub/lab:privacy-link", True],
        ["@learnhub/lab:my-data-link", True],
        ["@learnhub/lab:my-submissions-link", True],
        ["@learnhub/lab:formgrader-link", True],
    ]
    # The Help menu's item runs this command, which opens the hub's policy in a new tab.
    assert result["commands"] == [
        "learnhub:open-privacy-policy",
        "learnhub:open-my-data",
        "learnhub:open-my-submissions",
        "learnhub:open-formgrader",
    ]
    assert result["privacyLabel"] == "Privacy Policy"
    assert result["opened"] == [["/hub/privacy", "_blank", "noopener"]]
    expected = [{"state": {"lab": 1}, "url": replaced_url}] if replaced_url else []
    assert result["replaced"] == expected
    assert result["download"] == download
    logo = "/user/learner/kernelspecs/python3/logo-64x64.png"
    assert result["logo"] == (f"http://127.0.0.1:8888{logo}?token={token}" if token else logo)
    assert result["storage"] == "in memory"
    assert "./mimeExtension" in result["missing"]


# JupyterLab's Router (packages/application/src/router.ts) as far as the extension relies on
# it: a hard navigation pushes the URL and reloads the page; reload() reloads it.
ROUTER_HARNESS = (
    SCRIPT_LOADER
    + r"""
const [entry, configJson, href, actionsJson] = process.argv.slice(2);
const calls = [];
globalThis.document = {
  ...scriptDom,
  getElementById: id => (id === 'jupyter-config-data' ? { textContent: configJson } : null),
};
const location = new URL(href);
location.replace = url => calls.push(['replace', url]);
globalThis.window = {
  location,
  history: {
    state: null,
    replaceState: () => {},
    pushState: (state, title, url) => {
      calls.push(['push', url]);
      location.href = new URL(url, location.href).href;
    },
  },
  localStorage: { setItem: () => {}, removeItem: () => {} },
  sessionStorage: { setItem: () => {}, removeItem: () => {} },
};
class Router {
  constructor(base) { this.base = base; }
  navigate(path, options = {}) {
    const url = path.indexOf(this.base) === 0 ? path : this.base + path.replace(/^\//, '');
    window.history.pushState({}, '', url);
    if (options.hard) { this.reload(); } else { calls.push(['route']); }
  }
  reload() { calls.push(['reload']); }
}
class OlderRouter {
  navigate() { calls.push(['older']); }
  reload() { calls.push(['older']); }
}
const olderNavigate = OlderRouter.prototype.navigate;
const container = loadRemoteEntry(entry);
(async () => {
  // Two versions shared: JupyterLab's singletons are the newest.
  await container.init({
    '@jupyterlab/application': {
      '4.6.10': { get: () => Promise.resolve(() => ({ Router })), from: 'jupyterlab' },
      '4.6.9': { get: () => Promise.resolve(() => ({ Router: OlderRouter })), from: 'other' },
    },
  });
  // As JupyterLab's index.js: get the module's factory, then evaluate it.
  (await container.get('./extension'))();
  const router = new Router('/user/learner/');
  for (const [method, ...args] of JSON.parse(actionsJson)) {
    router[method](...args);
  }
  console.log(JSON.stringify({
    calls,
    olderUntouched: OlderRouter.prototype.navigate === olderNavigate,
  }));
})().catch(e => { console.error(e); process.exit(1); });
"""
)

ORIGIN = "http://127.0.0.1:8888"
TOKEN_SESSION = {"token": "T1", "appendToken": "true", "baseUrl": "/user/learner/"}
# jupyterhub-singleuser puts a direct login's cookie token in page config too.
COOKIE_SESSION = {"token": "C1", "baseUrl": "/user/learner/"}
AUTO = "/user/learner/lab/workspaces/auto-b"


@pytest.mark.parametrize(
    ("config", "actions", "calls"),
    [
        # The window resolver, when another tab holds the workspace: the token goes along.
        (
            TOKEN_SESSION,
            [["navigate", AUTO + "?reset=1", {"hard": True}]],
            [["replace", f"{ORIGIN}{AUTO}?reset=1&token=T1"]],
        ),
        (
            TOKEN_SESSION,
            [["navigate", "lab/workspaces/w-1/tree/a%20b.ipynb", {"hard": True}]],
            [["replace", f"{ORIGIN}/user/learner/lab/workspaces/w-1/tree/a%20b.ipynb?token=T1"]],
        ),
        # Reset Application State: the same page again, with the token.
        (TOKEN_SESSION, [["reload"]], [["replace", f"{ORIGIN}/user/learner/lab?x=1&token=T1"]]),
        # Inside the page: no load, no token in the address.
        (
            TOKEN_SESSION,
            [["navigate", "/user/learner/lab/tree/a.ipynb", {}]],
            [["push", "/user/learner/lab/tree/a.ipynb"], ["route"]],
        ),
        # Not a page of JupyterLab: as JupyterLab does it, without the token.
        (
            TOKEN_SESSION,
            [["navigate", "/logout", {"hard": True}]],
            [["push", "/user/learner/logout"], ["reload"]],
        ),
        (
            TOKEN_SESSION,
            [["navigate", "/user/learner/lab/api/workspaces", {"hard": True}]],
            [["push", "/user/learner/lab/api/workspaces"], ["reload"]],
        ),
        # A session with a cookie needs nothing: JupyterLab's own behaviour.
        (
            COOKIE_SESSION,
            [["navigate", AUTO + "?reset=1", {"hard": True}], ["reload"]],
            [["push", AUTO + "?reset=1"], ["reload"], ["reload"]],
        ),
    ],
    ids=[
        "resolver-redirect",
        "relative-workspace-tree",
        "reload",
        "soft-navigation",
        "logout",
        "not-a-lab-page",
        "cookie-session",
    ],
)
def test_labextension_keeps_token_on_page_loads(tmp_path, config, actions, calls):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    harness = tmp_path / "router.js"
    harness.write_text(ROUTER_HARNESS)
    out = subprocess.run(
        [
            node,
            str(harness),
            str(LAB_EXTENSION / REMOTE_ENTRY),
            json.dumps(config),
            f"{ORIGIN}/user/learner/lab?x=1",
            json.dumps(actions),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["calls"] == calls
    # The newest shared version is the one changed, not the older one.
    assert result["olderUntouched"] is True


# --- HubOAuth: a ?token= stays out of the cookie, OAuth logins still get theirs ------------


class HubOAuthPage(RequestHandler):
    def initialize(self, hub_auth):
        self.hub_auth = hub_auth

    @property
    def _xsrf_token_id(self):
        # What HubOAuth._patch_xsrf installs on jupyter-server's handler classes; patching
        # tornado's RequestHandler for the whole test session instead would leak.
        return self.hub_auth._get_xsrf_token_id(self)


class LearnerPage(HubOAuthPage):
    """A page that HubAuth has just authenticated with the ?token= in its URL."""

    def get(self):
        # What HubAuth._get_user records once the hub has accepted the URL's token.
        self._token_authenticated = True
        self.hub_auth._persist_url_token_if_set(self)


class OAuthCallback(HubOAuthPage):
    """The last step of a direct login, where HubOAuthCallbackHandler stores the token."""

    def get(self):
        self.hub_auth.set_cookie(self, "token-from-oauth")


@pytest.fixture
def hub_auth():
    return HubOAuth(
        api_token="server-api-token",
        oauth_client_id="jupyterhub-user-learner",
        base_url="/user/learner/",
    )


@pytest.fixture
def learner_server(hub_auth, run):
    """A tornado app on loopback with the two places HubOAuth sets its cookie."""
    app = Application(
        [
            ("/user/learner/lab", LearnerPage, {"hub_auth": hub_auth}),
            ("/user/learner/oauth_callback", OAuthCallback, {"hub_auth": hub_auth}),
        ],
        cookie_secret="not-a-secret",
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}/user/learner/"
    server.stop()
    run(server.close_all_connections())


@pytest.fixture
def get(run):
    client = AsyncHTTPClient(force_instance=True)

    def get(url):
        return run(client.fetch(url, headers={"Sec-Fetch-Mode": "navigate"}))

    yield get
    client.close()


@pytest.mark.parametrize(("overridden", "cookies"), [(False, 1), (True, 0)], ids=["base", "ours"])
def test_url_token_is_not_persisted_in_a_cookie(hub_auth, learner_server, get, overridden, cookies):
    if overridden:
        keep_url_token_out_of_cookies(hub_auth)
    r = get(learner_server + "lab?token=learner-token")
    assert set_cookie_names(r.headers).count(hub_auth.cookie_name) == cookies


def test_oauth_login_still_sets_its_cookie(hub_auth, learner_server, get):
    keep_url_token_out_of_cookies(hub_auth)
    r = get(learner_server + "oauth_callback")
    assert set_cookie_names(r.headers) == [hub_auth.cookie_name, "_xsrf"]


# --- jupyterhub-singleuser as the hub spawns it, against a stand-in hub API ----------------

LEARNER_TOKEN = "learner-token-0123456789"
# A launch token of a session that asked not to be tracked: the hub gives it this scope.
DNT_TOKEN = "learner-token-do-not-track"


class HubAPI(BaseHTTPRequestHandler):
    """The hub API calls a learner server makes: version, token lookup, OAuth code exchange."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.rstrip("/") == "/hub/api":
            self.reply(200, {}, {"X-JupyterHub-Version": jupyterhub.__version__})
        elif self.path.startswith("/hub/api/user"):
            user = {"kind": "user", "name": "learner", "session_id": None}
            if self.headers.get("Authorization") == f"token {LEARNER_TOKEN}":
                self.reply(200, {**user, "scopes": ["access:servers!user=learner"]})
            elif self.headers.get("Authorization") == f"token {DNT_TOKEN}":
                scopes = ["access:servers!user=learner", "custom:learnhub:do-not-track"]
                self.reply(200, {**user, "scopes": scopes})
            else:
                self.reply(403, {})
        else:
            self.reply(404, {})

    def do_POST(self):
        if self.path == "/hub/api/oauth2/token":
            self.rfile.read(int(self.headers["Content-Length"]))
            self.reply(200, {"access_token": LEARNER_TOKEN, "token_type": "Bearer"})
        else:
            self.reply(404, {})

    def reply(self, status, body, headers=None):
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())


@pytest.fixture
def hub_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyterhub-singleuser exited with {proc.returncode}")
        try:
            r = requests.get(url + "api", allow_redirects=False, timeout=1)
        except requests.ConnectionError:
            time.sleep(0.2)
            continue
        # Only our server's log has our URL in it; some other process may hold the port.
        if r.status_code == 200 and url in log.read_text():
            return
        time.sleep(0.2)
    pytest.fail(f"jupyterhub-singleuser did not serve {url} within {timeout}s")


@pytest.fixture
def singleuser(hub_api, tmp_path):
    """A learner server started like the hub's spawner does, with the extension on the CLI."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/user/learner/"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "JUPYTERHUB_API_TOKEN": "server-api-token",
        "JUPYTERHUB_API_URL": hub_api,
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-learner",
        "JUPYTERHUB_USER": "learner",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/learner/",
        "JUPYTERHUB_SERVICE_URL": url,
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:servers!user=learner"]),
        "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1",
        "LEARNHUB_FRAME_ANCESTORS": ORIGINS,
    }
    log = tmp_path / "singleuser.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("jupyterhub-singleuser")),
                "--allow-root",
                "--debug",
                # Traitlets parses key=value here; '{"learnhub_singleuser": true}' (JSON) fails.
                "--ServerApp.jpserver_extensions=learnhub_singleuser=True",
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(proc, url, log)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Shown by pytest only when the test failed.
        print(log.read_text())


@pytest.mark.integration
def test_lms_session_in_jupyterhub_singleuser(singleuser):
    url, log = singleuser
    navigate = {"Sec-Fetch-Mode": "navigate"}
    lab = requests.get(
        url + "lab?" + urlencode({"token": LEARNER_TOKEN}), headers=navigate, timeout=10
    )
    assert lab.status_code == 200
    # JupyterHub's own frame-ancestors 'none' is replaced.
    assert lab.headers["Content-Security-Policy"] == FRAME_ANCESTORS
    assert lab.headers["Referrer-Policy"] == "no-referrer"
    # Neither the jupyterhub-user-learner cookie nor an _xsrf one.
    assert "Set-Cookie" not in lab.headers
    config = page_config(lab.text)
    assert (config["token"], config["appendToken"], config["hubUser"]) == (
        LEARNER_TOKEN,
        "true",
        "learner",
    )
    assert "@learnhub/lab" in [e["name"] for e in config["federated_extensions"]]

    api = requests.get(
        url + "api/contents", headers={"Authorization": f"token {LEARNER_TOKEN}"}, timeout=10
    )
    assert api.status_code == 200
    assert "Set-Cookie" not in api.headers

    assert "/lab?token=[secret]" in log.read_text()
    assert LEARNER_TOKEN not in log.read_text()
    # Served over plain HTTP here: the spawner sets no HSTS, and this session allows tracking.
    assert "Strict-Transport-Security" not in lab.headers
    assert "Tk" not in lab.headers and "Tk" not in api.headers


@pytest.mark.integration
def test_do_not_track_session_gets_tk_without_repeating_dnt(singleuser):
    url, _ = singleuser
    lab = requests.get(
        url + "lab?" + urlencode({"token": DNT_TOKEN}),
        headers={"Sec-Fetch-Mode": "navigate"},
        timeout=10,
    )
    assert lab.status_code == 200
    assert lab.headers["Tk"] == "N"
    # Later requests of the session carry the token, not necessarily the DNT header.
    api = requests.get(
        url + "api/contents", headers={"Authorization": f"token {DNT_TOKEN}"}, timeout=10
    )
    assert api.status_code == 200
    assert api.headers["Tk"] == "N"
    other = requests.get(
        url + "api/contents", headers={"Authorization": f"token {LEARNER_TOKEN}"}, timeout=10
    )
    assert "Tk" not in other.headers


@pytest.mark.integration
def test_direct_login_still_uses_the_oauth_cookie(singleuser):
    url, _ = singleuser
    navigate = {"Sec-Fetch-Mode": "navigate"}
    browser = requests.Session()

    login = browser.get(url + "lab", headers=navigate, allow_redirects=False, timeout=10)
    assert login.status_code == 302
    authorize = urlsplit(login.headers["Location"])
    assert authorize.path == "/hub/api/oauth2/authorize"

    # The hub would send the browser back here with a code once the person has logged in.
    state = parse_qs(authorize.query)["state"][0]
    callback = browser.get(
        url + "oauth_callback",
        params={"code": "code-from-the-hub", "state": state},
        headers=navigate,
        allow_redirects=False,
        timeout=10,
    )
    assert callback.status_code == 302
    assert browser.cookies.get("jupyterhub-user-learner")

    lab = browser.get(url + "lab", headers=navigate, timeout=10)
    assert lab.status_code == 200
    config = page_config(lab.text)
    # JupyterHub's hook takes the token from the cookie; ours adds nothing to such a page.
    assert config["token"] == LEARNER_TOKEN
    assert "appendToken" not in config


def test_plugins_that_reach_other_origins_are_disabled():
    from learnhub_singleuser.cookieless import without_third_party_plugins

    config = {"disabledExtensions": ["a:b"]}
    changed = without_third_party_plugins(config)
    assert changed["disabledExtensions"] == ["a:b", "@jupyterlab/apputils-extension:announcements"]
    assert config == {"disabledExtensions": ["a:b"]}  # the shared dict is left alone
    assert without_third_party_plugins(changed) is changed
