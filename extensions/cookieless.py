"""Token-only learner sessions: the token rides in page config, never in a cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyterhub.services.auth import HubAuth

from .upstream import no_xsrf_cookie, replace_url_token_persistence

PageConfigHook = Callable[[JupyterHandler, dict[str, Any]], dict[str, Any]]


def request_token(handler: JupyterHandler) -> str:
    """Return the token that authenticated this request (?token= or header), or ""."""
    if not handler.token_authenticated:
        return ""
    hub_auth = getattr(handler.identity_provider, "hub_auth", None)
    if hub_auth is not None:
        # HubAuth authenticates with get_token(in_cookie=False), which honours
        # allow_token_in_url; the base IdentityProvider.get_token would not.
        return hub_auth.get_token(handler, in_cookie=False) or ""
    return handler.identity_provider.get_token(handler) or ""


def _skip_xsrf_cookie(handler: JupyterHandler) -> None:
    # Rendering a page reads handler.xsrf_token, and both tornado's property and the one
    # HubOAuth patches in set an _xsrf cookie on a navigation unless handler._xsrf_token
    # is already there. A token-authenticated request skips xsrf checks, and so do the
    # later ones JupyterLab makes with the token, so that cookie would serve nothing.
    no_xsrf_cookie(handler)


# Plugins of JupyterLab that reach another origin by themselves: the news announcements
# fetch from jupyter.org and ask the learner about it. LearnHub sends nobody anywhere.
THIRD_PARTY_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)


def without_third_party_plugins(
    page_config: dict[str, Any], plugins: tuple[str, ...] = THIRD_PARTY_PLUGINS
) -> dict[str, Any]:
    disabled = list(page_config.get("disabledExtensions") or [])
    missing = [p for p in plugins if p not in disabled]
    if not missing:
        return page_config
    return {**page_config, "disabledExtensions": disabled + missing}


def token_page_config_hook(
    previous: PageConfigHook | None, disabled_plugins: tuple[str, ...] = ()
) -> PageConfigHook:
    """Wrap `previous` (JupyterHub's hook, usually) so Lab reuses a request's token.

    JupyterLab sends page config `token` in an Authorization header on API calls, and on
    websocket URLs only when `appendToken` is "true": with both, a session started by
    /lab?token=... needs no cookie.
    """

    def page_config_hook(handler: JupyterHandler, page_config: dict[str, Any]) -> dict[str, Any]:
        if previous is not None:
            page_config = previous(handler, page_config)
        page_config = without_third_party_plugins(
            page_config, (*THIRD_PARTY_PLUGINS, *disabled_plugins)
        )
        token = request_token(handler)
        if not token:
            return page_config
        _skip_xsrf_cookie(handler)
        # LabHandler passes the server-wide page_config_data dict; a copy keeps this
        # request's token and appendToken out of every later page.
        return {**page_config, "token": token, "appendToken": "true"}

    return page_config_hook


def _keep_url_token_out_of_cookie(handler: JupyterHandler) -> None:
    return None


def keep_url_token_out_of_cookies(hub_auth: HubAuth) -> None:
    """Make `hub_auth` accept ?token= without copying the token into its cookie."""
    # Overrides HubAuth._persist_url_token_if_set on this instance only. The base method
    # stores a ?token= that authenticated a navigate request in the OAuth cookie
    # (jupyterhub-user-<name>) so that later requests need no token. LMS-launched sessions
    # must not set cookies, and JupyterLab already carries the token from page config.
    # HubOAuth.set_cookie is left alone: the OAuth callback of a direct login still uses it.
    replace_url_token_persistence(hub_auth, _keep_url_token_out_of_cookie)
