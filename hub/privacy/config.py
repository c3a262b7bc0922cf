"""JupyterHub configuration for the privacy promises: analytics, DNT, the policy pages, HTTPS."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from jupyterhub.log import log_request
from traitlets.config import LazyConfigValue

from learnhub_singleuser.tracking import (
    DO_NOT_TRACK_SCOPE,
    DO_NOT_TRACK_SCOPE_DEFINITION,
    TrackingStatus,
)

from ..addresses import connect_address
from ..settings import Settings, SettingsError
from . import analytics as stats
from . import handlers
from .policy import DNT_POLICY_PATH, facts_from_settings
from .tls import HSTS, HSTS_ENV, HSTS_VALUE, serves_https

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
WELL_KNOWN = "/" + DNT_POLICY_PATH.split("/", 1)[0] + "/"


def configured(section, key: str, empty):
    """A copy of the value other code configured for `key`, or `empty`.

    Each area adds to shared values (tornado_settings, Spawner.environment) instead of
    replacing them, so the order of the update functions decides nothing but who wins a
    conflict.
    """
    value = section.get(key)
    if isinstance(value, LazyConfigValue):
        value = value.get_value(empty)
    return type(empty)(value or empty)


def hub_url_for_proxy(c) -> str:
    """Where the proxy reaches the hub, as JupyterHub computes it for its own route."""
    hub = c.JupyterHub
    if hub.get("hub_connect_url"):
        return hub.get("hub_connect_url").rstrip("/")
    ip = connect_address(hub.get("hub_connect_ip") or hub.get("hub_ip"))
    return f"http://{ip}:{hub.get('hub_port', 8081)}"


def update_privacy(c, settings: Settings) -> None:
    """Policy pages, the Tk header, Do Not Track sessions and first-party analytics.

    Runs after update_security, update_spawner and update_network: it adds to the tornado
    settings and spawner hooks they made, and reads where the hub listens.
    """
    privacy = settings["privacy"]
    template = privacy["policy_template"]
    if template and not Path(template).is_file():
        raise SettingsError(
            f"'privacy.policy_template' is {template!r}, which is not a file: give the path "
            "of a Jinja template, or remove the key for LearnHub's default policy"
        )
    tornado: dict[str, Any] = configured(c.JupyterHub, "tornado_settings", {})
    # Plain values: the handlers make their PrivacyPages from these (handlers.privacy_pages).
    tornado[handlers.SETTINGS_KEY] = {
        "facts": asdict(facts_from_settings(settings.values)),
        "templates": str(TEMPLATES),
        "template_file": template,
    }
    # tornado.web.Application takes `transforms` as a keyword, and JupyterHub passes its
    # tornado_settings as keywords: this is how a transform reaches every hub response.
    # JupyterHub enables no transform of its own (no compress_response).
    transforms = list(tornado.get("transforms") or [])
    if TrackingStatus not in transforms:
        transforms.append(TrackingStatus)
    tornado["transforms"] = transforms

    if privacy["analytics"]:
        # The counters reach the hub's Analytics through the authenticator's database and
        # key (analytics.hub_analytics); gather_facts has rolled the past days over.
        tornado[stats.SETTINGS_KEY] = True
        tornado["log_function"] = stats.PageViewCounter(tornado.get("log_function") or log_request)
        c.Spawner.pre_spawn_hook = stats.ServerStartCounter(c.Spawner.get("pre_spawn_hook"))
    c.JupyterHub.tornado_settings = tornado

    # A launch token carries DO_NOT_TRACK_SCOPE when the launch asked not to be tracked;
    # tokens may hold only scopes their owner holds, so every user holds it (it grants
    # nothing).
    c.JupyterHub.custom_scopes = {
        **configured(c.JupyterHub, "custom_scopes", {}),
        DO_NOT_TRACK_SCOPE: DO_NOT_TRACK_SCOPE_DEFINITION,
    }
    c.JupyterHub.extra_user_scopes = configured(c.JupyterHub, "extra_user_scopes", set()) | {
        DO_NOT_TRACK_SCOPE
    }

    # The proxy sends / to the hub, whose handlers all live under /hub/ (anything else is
    # redirected there). An extra proxy route takes /.well-known/ to the hub's /hub/ path
    # instead, so /.well-known/dnt-policy.txt is answered at the site's root, no redirect.
    c.Proxy.extra_routes = {
        **configured(c.Proxy, "extra_routes", {}),
        WELL_KNOWN: hub_url_for_proxy(c) + "/hub/",
    }


def update_tls(c, settings: Settings) -> None:
    """The certificate the proxy serves, and HSTS on hub and learner server responses.

    Runs after update_security and update_spawner: it adds to their tornado headers and
    Spawner.environment.
    """
    tls = settings["tls"]
    if tls["cert_file"]:
        for key in ("cert_file", "key_file"):
            if not Path(tls[key]).is_file():
                raise SettingsError(
                    f"'tls.{key}' is {tls[key]!r}, which is not a file: give the path of "
                    "the PEM file"
                )
        c.JupyterHub.ssl_cert = tls["cert_file"]
        c.JupyterHub.ssl_key = tls["key_file"]
        # JupyterHub corrects bind_url's scheme only when ssl_cert was set before it.
        c.JupyterHub.bind_url = "https://" + settings.bind_url.split("://", 1)[1]
    if not serves_https(settings.values):
        return
    tornado = configured(c.JupyterHub, "tornado_settings", {})
    tornado["headers"] = {**tornado.get("headers", {}), HSTS: HSTS_VALUE}
    c.JupyterHub.tornado_settings = tornado
    environment = configured(c.Spawner, "environment", {})
    environment[HSTS_ENV] = HSTS_VALUE
    c.Spawner.environment = environment
