"""The private parts of JupyterHub, jupyter_server, tornado and the standard library that
LearnHub relies on: each still there in the installed versions, and used nowhere but in
learnhub.upstream and learnhub_singleuser.upstream. An upgrade that changes one fails here."""

from __future__ import annotations

import ast
import inspect
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from jupyterhub.apihandlers import auth as hub_oauth_handlers
from jupyterhub.app import JupyterHub
from jupyterhub.crypto import CryptKeeper
from jupyterhub.services.auth import HubAuth
from jupyterhub.spawner import Spawner
from tornado import web

from learnhub import upstream as hub_side
from learnhub_singleuser import upstream as server_side

REPO = Path(__file__).resolve().parents[2]
OWN = {REPO / "hub" / "upstream.py", REPO / "extensions" / "upstream.py"}


def _source_mentions(obj, name: str) -> bool:
    return name in inspect.getsource(obj)


# How each private name is seen upstream: a check that fails when an upgrade removes it.
CONTRACT = {
    "_spawn_pending": lambda: hasattr(Spawner, "_spawn_pending"),
    "_stop_pending": lambda: hasattr(Spawner, "_stop_pending"),
    "_spawn_future": lambda: hasattr(Spawner, "_spawn_future"),
    # JupyterHub's OAuth authorize handler reads it from the tornado settings.
    "oauth_no_confirm_list": lambda: _source_mentions(
        hub_oauth_handlers, "self.settings.get('oauth_no_confirm_list'"
    ),
    # Set in RequestHandler.clear(), read by every header method.
    "_headers": lambda: _source_mentions(web.RequestHandler.clear, "self._headers ="),
    "_periodic_callbacks": lambda: _source_mentions(JupyterHub, "self._periodic_callbacks["),
    "_service_map": lambda: "_service_map" in JupyterHub.class_traits(),
    "_processes": lambda: _source_mentions(ProcessPoolExecutor, "self._processes ="),
    "_xsrf_token": lambda: _source_mentions(web.RequestHandler, "self._xsrf_token"),
    "_persist_url_token_if_set": lambda: callable(
        getattr(HubAuth, "_persist_url_token_if_set", None)
    ),
}


def test_every_private_name_is_in_the_contract():
    assert set(CONTRACT) == set(hub_side.PRIVATE_NAMES) | set(server_side.PRIVATE_NAMES)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_the_installed_versions_still_have_it(name):
    where = {**hub_side.PRIVATE_NAMES, **server_side.PRIVATE_NAMES}[name]
    assert CONTRACT[name](), f"{name} is gone or changed upstream: {where}"


def test_the_crypt_keeper_singleton_takes_keys():
    keeper = CryptKeeper.instance()
    before = keeper.keys
    try:
        hub_side.use_auth_state_key(b"k" * 32)
        assert keeper.keys == [b"k" * 32]
    finally:
        keeper.keys = before


def _private_uses(path: Path, names: set[str]) -> list[str]:
    """Attribute reads/writes and string keys of `names` in one module, but `self.<name>` of
    a class's own attribute of that name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in names:
            found.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in names:
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    return found


def test_no_other_module_uses_them():
    names = set(CONTRACT)
    uses = []
    for folder in ("hub", "extensions"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path not in OWN:
                uses += _private_uses(path, names)
    assert uses == [], "use learnhub.upstream (or learnhub_singleuser.upstream) instead"
