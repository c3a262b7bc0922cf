"""update_privacy and update_tls against a bare traitlets Config, and the tls settings."""

import copy
from dataclasses import asdict
from types import SimpleNamespace

import pytest
import yaml
from jupyterhub.log import log_request
from traitlets.config import Config

from learnhub.cli import main
from learnhub.config import Facts, apply_config, update_security
from learnhub.privacy.analytics import (
    Analytics,
    PageViewCounter,
    ServerStartCounter,
    hub_analytics,
)
from learnhub.privacy.config import hub_url_for_proxy, update_privacy, update_tls
from learnhub.privacy.handlers import privacy_pages
from learnhub.privacy.policy import PolicyFacts, PrivacyPages, facts_from_settings
from learnhub.privacy.tls import tls_findings
from learnhub.settings import SettingsError, init_state, load_settings, validate
from learnhub.spawners import SpawnerBackend
from learnhub_singleuser.tracking import DO_NOT_TRACK_SCOPE, TrackingStatus

HSTS = "max-age=31536000"
LOCAL_FACTS = Facts((), SpawnerBackend("local", "test"), None, "t")


@pytest.fixture
def make_settings(tmp_path):
    def make(**values):
        path = tmp_path / "learnhub.yaml"
        path.write_text(yaml.safe_dump(values))
        settings = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "state")})
        init_state(settings)
        return settings

    return make


@pytest.fixture
def pem_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return str(cert), str(key)


def test_update_privacy_keeps_what_other_areas_set(make_settings):
    settings = make_settings()
    c = Config()
    update_security(c, settings, ["https://lms.example.edu"])
    previous_hook = object()
    c.Spawner.pre_spawn_hook = previous_hook
    c.JupyterHub.hub_port = 8123
    update_privacy(c, settings)

    tornado = c.JupyterHub.tornado_settings
    # update_security's headers and slow_spawn_timeout survive.
    assert tornado["headers"]["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://lms.example.edu"
    )
    assert tornado["slow_spawn_timeout"] == 1
    assert tornado["transforms"] == [TrackingStatus]
    pages = tornado["learnhub_privacy"]
    assert pages["facts"] == asdict(facts_from_settings(settings.values))
    assert isinstance(
        privacy_pages(PolicyFacts(**pages["facts"]), pages["templates"], None), PrivacyPages
    )
    assert tornado["learnhub_analytics"] is True
    counter = tornado["log_function"]
    assert isinstance(counter, PageViewCounter)
    assert counter.log_function is log_request
    hook = c.Spawner.pre_spawn_hook
    assert isinstance(hook, ServerStartCounter) and hook.previous is previous_hook

    assert DO_NOT_TRACK_SCOPE in c.JupyterHub.custom_scopes
    assert c.JupyterHub.extra_user_scopes == {DO_NOT_TRACK_SCOPE}
    assert c.Proxy.extra_routes == {"/.well-known/": "http://127.0.0.1:8123/hub/"}


def test_update_privacy_without_analytics_records_nothing(make_settings):
    c = Config()
    update_privacy(c, make_settings(privacy={"analytics": False}))
    tornado = c.JupyterHub.tornado_settings
    assert "learnhub_analytics" not in tornado
    assert "log_function" not in tornado
    assert "pre_spawn_hook" not in c.Spawner
    # The DNT machinery stays: Tk: N is still owed to DNT requests.
    assert tornado["transforms"] == [TrackingStatus]


def test_update_privacy_twice_adds_the_transform_once(make_settings):
    c = Config()
    settings = make_settings()
    update_privacy(c, settings)
    update_privacy(c, settings)
    assert c.JupyterHub.tornado_settings["transforms"] == [TrackingStatus]


@pytest.mark.parametrize(
    ("hub", "expected"),
    [
        ({}, "http://127.0.0.1:8081"),
        ({"hub_ip": "0.0.0.0", "hub_port": 9000}, "http://127.0.0.1:9000"),  # noqa: S104
        ({"hub_ip": "172.18.0.1", "hub_connect_ip": "172.18.0.1"}, "http://172.18.0.1:8081"),
        ({"hub_connect_url": "http://hub.internal:8081/"}, "http://hub.internal:8081"),
    ],
    ids=["default", "all-interfaces", "docker-gateway", "connect-url"],
)
def test_hub_url_for_proxy(hub, expected):
    c = Config()
    for key, value in hub.items():
        setattr(c.JupyterHub, key, value)
    assert hub_url_for_proxy(c) == expected


def test_missing_policy_template_stops_the_hub(make_settings):
    with pytest.raises(SettingsError, match=r"'privacy\.policy_template' is '/no/such\.html'"):
        update_privacy(Config(), make_settings(privacy={"policy_template": "/no/such.html"}))


def test_https_with_certificate(make_settings, pem_files):
    cert, key = pem_files
    settings = make_settings(
        public_url="https://learnhub.example.edu",
        bind_url="http://0.0.0.0:443",
        tls={"cert_file": cert, "key_file": key},
    )
    c = Config()
    c.Spawner.environment = {"JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1"}
    update_tls(c, settings)
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == (cert, key)
    assert c.JupyterHub.bind_url == "https://0.0.0.0:443"
    assert c.JupyterHub.tornado_settings["headers"]["Strict-Transport-Security"] == HSTS
    assert c.Spawner.environment == {
        "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1",
        "LEARNHUB_STRICT_TRANSPORT_SECURITY": HSTS,
    }


def test_https_terminated_by_a_proxy(make_settings):
    settings = make_settings(
        public_url="https://learnhub.example.edu",
        bind_url="http://127.0.0.1:8000",
        tls={"terminated_by_proxy": True},
    )
    c = Config()
    update_tls(c, settings)
    assert "ssl_cert" not in c.JupyterHub
    assert c.JupyterHub.tornado_settings["headers"]["Strict-Transport-Security"] == HSTS
    assert c.Spawner.environment["LEARNHUB_STRICT_TRANSPORT_SECURITY"] == HSTS


def test_plain_http_sends_no_hsts(make_settings):
    c = Config()
    update_tls(c, make_settings())
    assert "tornado_settings" not in c.JupyterHub
    assert "environment" not in c.Spawner


def test_apply_config_runs_tls_and_privacy_after_the_spawner(make_settings):
    settings = make_settings(
        public_url="https://learnhub.example.edu",
        bind_url="http://127.0.0.1:8000",
        tls={"terminated_by_proxy": True},
        spawner={"backend": "local"},
    )
    c = Config()
    apply_config(c, settings, LOCAL_FACTS)
    environment = c.Spawner.environment
    assert environment["LEARNHUB_STRICT_TRANSPORT_SECURITY"] == HSTS
    assert environment["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"  # update_spawner's, kept
    headers = c.JupyterHub.tornado_settings["headers"]
    assert headers["Strict-Transport-Security"] == HSTS
    assert headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert c.Proxy.extra_routes["/.well-known/"] == (
        f"http://127.0.0.1:{settings['hub']['api_port']}/hub/"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls": {"cert_file": "/c.pem"}}, "'tls.key_file' is not set"),
        ({"tls": {"key_file": "/k.pem"}}, "'tls.cert_file' is not set"),
        (
            {"public_url": "https://x.edu", "tls": {"cert_file": "/c", "key_file": "/k",
                                                     "terminated_by_proxy": True}},
            "'tls.terminated_by_proxy' is true while tls.cert_file is set",
        ),
        ({"tls": {"terminated_by_proxy": True}}, "'public_url' is 'http://127.0.0.1:8000'"),
        ({"tls": {"cert_file": "/c", "key_file": "/k"}}, "set it to the https:// address"),
    ],
    ids=["cert-without-key", "key-without-cert", "both-ways", "proxy-on-http", "cert-on-http"],
)  # fmt: skip
def test_tls_settings_that_contradict_each_other(values, message):
    """Refused when the settings are read: every command, not only the hub's start."""
    with pytest.raises(SettingsError, match=message):
        validate(values)


def test_doctor_refuses_tls_settings_that_contradict_each_other(tmp_path, capsys):
    settings = tmp_path / "learnhub.yaml"
    settings.write_text(yaml.safe_dump({"tls": {"terminated_by_proxy": True}}))
    assert main(["--config", str(settings), "doctor"]) == 2
    assert "'public_url' is 'http://127.0.0.1:8000' while TLS is configured" in (
        capsys.readouterr().err
    )


def test_tls_settings_in_the_schema():
    with pytest.raises(SettingsError, match=r"unknown key 'tls\.cert': did you mean 'cert_file'"):
        validate({"tls": {"cert": "/c.pem"}})
    with pytest.raises(SettingsError, match=r"'tls\.terminated_by_proxy' must be of type boolean"):
        validate({"tls": {"terminated_by_proxy": "yes"}})


def test_missing_certificate_file_stops_the_hub(make_settings, pem_files):
    settings = make_settings(
        public_url="https://x.edu", tls={"cert_file": "/nonexistent.pem", "key_file": pem_files[1]}
    )
    with pytest.raises(SettingsError, match=r"'tls\.cert_file' is '/nonexistent\.pem'"):
        update_tls(Config(), settings)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, []),
        ({"bind_url": "http://0.0.0.0:8000"}, [("warning", "without TLS")]),
        ({"public_url": "https://x.edu", "bind_url": "http://127.0.0.1:8000"},
         [("warning", "no TLS is configured"), ("ok", "HSTS")]),
        ({"public_url": "https://x.edu", "bind_url": "http://127.0.0.1:8000",
          "tls": {"terminated_by_proxy": True}},
         [("ok", "terminated by the proxy"), ("ok", "HSTS")]),
        ({"public_url": "https://x.edu", "bind_url": "http://0.0.0.0:8000",
          "tls": {"terminated_by_proxy": True}},
         [("ok", "terminated by the proxy"), ("warning", "can be reached from other machines"),
          ("ok", "HSTS")]),
        ({"public_url": "https://x.edu", "tls": {"cert_file": "/none/c", "key_file": "/none/k"}},
         [("error", "cannot read tls.cert_file (/none/c), tls.key_file (/none/k)"),
          ("ok", "HSTS")]),
    ],
    ids=["loopback-http", "open-http", "https-nothing", "proxy", "proxy-open", "unreadable"],
)  # fmt: skip
def test_doctor_considers_the_tls_settings(values, expected):
    findings = tls_findings(validate(values))
    assert [level for level, _ in findings] == [level for level, _ in expected]
    assert all(part in message for (_, message), (_, part) in zip(findings, expected, strict=True))


def test_doctor_finds_a_readable_certificate(pem_files):
    cert, key = pem_files
    values = validate(
        {"public_url": "https://x.edu", "bind_url": "https://0.0.0.0:443",
         "tls": {"cert_file": cert, "key_file": key}}
    )  # fmt: skip
    assert tls_findings(values)[0] == ("ok", f"TLS: the proxy serves {cert} on https://0.0.0.0:443")


def test_configured_objects_survive_traitlets_deep_copy(make_settings):
    """JupyterHub loads config with deepcopy: plain values copy whole, and the hub process
    has one analytics handle whatever the copies."""
    c = Config()
    settings = make_settings()
    update_privacy(c, settings)
    tornado = copy.deepcopy(c.JupyterHub.tornado_settings)
    hook = copy.deepcopy(c.Spawner.pre_spawn_hook)
    assert tornado["learnhub_privacy"] == c.JupyterHub.tornado_settings["learnhub_privacy"]
    assert tornado["learnhub_analytics"] is True
    assert tornado["log_function"].analytics is None and hook.analytics is None
    authenticator = SimpleNamespace(
        database_url=settings.database_url, crypt_key=settings.crypt_key
    )
    assert isinstance(hub_analytics(authenticator), Analytics)
    assert hub_analytics(authenticator) is hub_analytics(authenticator)
