"""LTI Dynamic Registration: the tool's checks of a platform's configuration, its client
registration, the demo LMS's checks of that registration, and the one-time keys."""

import time

import pytest

from learnhub.demo import registration as lms_side
from learnhub.lti13 import constants as c
from learnhub.lti13 import registration as dr
from learnhub.store import Store

CONFIG_URL = "https://moodle.example.edu/mod/lti/openid-configuration.php"
TOOL = dr.ToolUrls(
    login="https://hub.example.edu/hub/lti13/login",
    launch="https://hub.example.edu/hub/lti13/launch",
    jwks="https://hub.example.edu/hub/lti13/jwks",
)


def moodle_configuration(**changes) -> dict:
    document = {
        "issuer": "https://moodle.example.edu",
        "authorization_endpoint": "https://moodle.example.edu/mod/lti/auth.php",
        "token_endpoint": "https://moodle.example.edu/mod/lti/token.php",
        "jwks_uri": "https://moodle.example.edu/mod/lti/certs.php",
        "registration_endpoint": "https://moodle.example.edu/mod/lti/openid-registration.php",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": [
            "openid",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        ],
        dr.PLATFORM_CONFIGURATION: {
            "product_family_code": "moodle",
            "version": "4.3",
            "messages_supported": [
                {"type": c.RESOURCE_LINK_REQUEST},
                {"type": c.DEEP_LINKING_REQUEST, "placements": ["ContentArea", "unknown"]},
            ],
        },
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def test_a_platform_configuration_is_read():
    platform = dr.platform_configuration(moodle_configuration(), CONFIG_URL)
    assert platform.issuer == "https://moodle.example.edu"
    assert platform.registration_endpoint.endswith("/openid-registration.php")
    assert platform.product == "moodle 4.3"
    assert platform.messages == {c.RESOURCE_LINK_REQUEST, c.DEEP_LINKING_REQUEST}
    assert platform.deep_linking_placements == ("ContentArea",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": "https://evil.example"}, "is not at the address its configuration came"),
        ({"issuer": "https://moodle.example.edu:8443"}, "is not at the address"),
        ({"issuer": "http://moodle.example.edu"}, "is not an https URL"),
        ({"issuer": None}, "issuer is missing"),
        ({"issuer": "https://moodle.example.edu?x=1"}, "has a query or fragment"),
        ({"jwks_uri": None}, "jwks_uri is missing"),
        ({"registration_endpoint": "ftp://moodle.example.edu/r"}, "is not an https URL"),
        ({"token_endpoint_auth_methods_supported": ["client_secret_basic"]}, "private_key_jwt"),
        ({"id_token_signing_alg_values_supported": ["HS256"]}, "RS256"),
        ({"scopes_supported": "openid"}, "is not a list of strings"),
    ],
)
def test_a_bad_platform_configuration_is_refused(changes, message):
    with pytest.raises(dr.RegistrationRefused, match=message):
        dr.platform_configuration(moodle_configuration(**changes), CONFIG_URL)


def test_a_configuration_that_is_not_an_object_is_refused():
    with pytest.raises(dr.RegistrationRefused, match="not a JSON object"):
        dr.platform_configuration(["issuer"], CONFIG_URL)


def test_the_issuer_check_ignores_case_and_default_ports():
    document = moodle_configuration(issuer="https://Moodle.Example.edu:443")
    assert dr.platform_configuration(document, CONFIG_URL).issuer == document["issuer"]


def test_http_is_accepted_on_loopback_only():
    assert dr.web_url("http://127.0.0.1:8090/x", "u") == "http://127.0.0.1:8090/x"
    assert dr.web_url("http://[::1]:8090/x", "u")
    assert dr.web_url("http://localhost/x", "u")
    for url in ("http://10.0.0.1/x", "http://lms.example.edu/x", "https://lms.example.edu/#f"):
        with pytest.raises(dr.RegistrationRefused):
            dr.web_url(url, "u")


def test_the_client_registration_asks_for_what_the_platform_offers():
    platform = dr.platform_configuration(moodle_configuration(), CONFIG_URL)
    body = dr.client_registration(platform, TOOL)
    assert body["application_type"] == "web"
    assert body["response_types"] == ["id_token"]
    assert body["grant_types"] == ["implicit", "client_credentials"]
    assert body["initiate_login_uri"] == TOOL.login
    assert body["redirect_uris"] == [TOOL.launch]
    assert body["jwks_uri"] == TOOL.jwks
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    # Only the scopes Moodle lists, in LearnHub's order.
    assert body["scope"] == (
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem "
        "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    )
    tool = body[dr.TOOL_CONFIGURATION]
    assert tool["domain"] == "hub.example.edu"
    assert tool["target_link_uri"] == TOOL.launch
    assert tool["claims"] == list(c.TOOL_CLAIMS)
    assert [m["type"] for m in tool["messages"]] == [
        c.RESOURCE_LINK_REQUEST,
        c.DEEP_LINKING_REQUEST,
    ]
    assert tool["messages"][1]["placements"] == ["ContentArea"]


def test_no_deep_linking_for_a_platform_without_it():
    document = moodle_configuration(
        **{dr.PLATFORM_CONFIGURATION: {"messages_supported": [{"type": c.RESOURCE_LINK_REQUEST}]}}
    )
    platform = dr.platform_configuration(document, CONFIG_URL)
    messages = dr.client_registration(platform, TOOL)[dr.TOOL_CONFIGURATION]["messages"]
    assert [m["type"] for m in messages] == [c.RESOURCE_LINK_REQUEST]
    assert platform.product == "an LTI 1.3 platform"


def test_every_scope_when_the_platform_does_not_list_them():
    platform = dr.platform_configuration(moodle_configuration(scopes_supported=None), CONFIG_URL)
    assert dr.requested_scopes(platform) == c.SCOPES


def test_the_platforms_answer_is_read():
    answer = {"client_id": "abc", dr.TOOL_CONFIGURATION: {"deployment_id": "7"}}
    assert dr.registered_client(answer) == dr.RegisteredClient("abc", "7")
    assert dr.registered_client({"client_id": "abc"}) == dr.RegisteredClient("abc", None)
    for bad, message in (
        ([], "not a JSON object"),
        ({}, "no client_id"),
        ({"client_id": " "}, "no client_id"),
        ({"client_id": "a", dr.TOOL_CONFIGURATION: {"deployment_id": 7}}, "not a string"),
    ):
        with pytest.raises(dr.RegistrationRefused, match=message):
            dr.registered_client(bad)


# The demo LMS's side: the peer checks what LearnHub sends, with its own code.


def learnhub_registration() -> dict:
    platform = dr.platform_configuration(moodle_configuration(scopes_supported=None), CONFIG_URL)
    return dr.client_registration(platform, TOOL)


def test_the_demo_lms_accepts_learnhubs_registration():
    registration = lms_side.check_registration(
        learnhub_registration(), client_id="client-1", deployment_id="dep-1"
    )
    assert registration.login_url == TOOL.login
    assert registration.launch_url == TOOL.launch
    assert registration.jwks_url == TOOL.jwks
    assert set(registration.scopes) == set(c.SCOPES)
    answer = lms_side.registration_answer(registration)
    assert dr.registered_client(answer) == dr.RegisteredClient("client-1", "dep-1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(application_type="native"), "application_type must be web"),
        (lambda b: b.update(grant_types=["implicit"]), "grant_types"),
        (lambda b: b.update(token_endpoint_auth_method="none"), "private_key_jwt"),
        (lambda b: b.update(jwks_uri="https://elsewhere.example/jwks"), "not on the tool's"),
        (lambda b: b.update(redirect_uris=[]), "redirect_uris is missing"),
        (lambda b: b.pop(dr.TOOL_CONFIGURATION), "with a domain is required"),
    ],
)
def test_the_demo_lms_refuses_a_bad_registration(change, message):
    body = learnhub_registration()
    change(body)
    with pytest.raises(lms_side.RegistrationRefused, match=message):
        lms_side.check_registration(body, client_id="c", deployment_id="d")


def test_the_demo_lms_adds_its_parameters_to_the_registration_url():
    url = lms_side.registration_launch_url(
        "https://hub.example.edu/hub/lti13/register?registration_key=k",
        openid_configuration_url="http://127.0.0.1:1/lti/openid-configuration",
        token="t",
    )
    assert url == (
        "https://hub.example.edu/hub/lti13/register?registration_key=k&openid_configuration="
        "http%3A%2F%2F127.0.0.1%3A1%2Flti%2Fopenid-configuration&registration_token=t"
    )


# One-time registration keys.


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'store.sqlite'}", b"k" * 32)


def test_a_registration_key_is_spent_once(store):
    expires = store.add_registration_key("secret-1", made_by="root@host", lifetime=60)
    assert expires == pytest.approx(time.time() + 60, abs=5)
    assert store.peek_registration_key("secret-1").made_by == "root@host"
    assert store.peek_registration_key("secret-1") is not None  # peeking spends nothing
    key = store.spend_registration_key("secret-1")
    assert key.made_by == "root@host"
    assert store.spend_registration_key("secret-1") is None
    assert store.peek_registration_key("secret-1") is None
    assert store.spend_registration_key("another") is None


def test_a_registration_key_given_back_works_again(store):
    store.add_registration_key("secret-2", made_by="me", lifetime=60)
    key = store.spend_registration_key("secret-2")
    store.restore_registration_key(key)
    assert store.spend_registration_key("secret-2").expires == key.expires


def test_an_expired_registration_key_is_refused(store):
    store.add_registration_key("old", made_by="me", lifetime=-1)
    assert store.peek_registration_key("old") is None
    assert store.spend_registration_key("old") is None


def test_keys_are_stored_hashed(store):
    store.add_registration_key("plain-secret", made_by="me", lifetime=60)
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT key_hash, made_by FROM learnhub_lti13_registration_keys"
        ).all()
    assert rows and all("plain-secret" not in " ".join(row) for row in rows)


def test_the_registration_page_explains_every_scope_asked_for():
    assert set(dr.SCOPE_PURPOSES) == set(c.SCOPES)


def test_secrets_in_a_refused_requests_url_are_not_logged():
    from learnhub.pages import scrubbed_uri

    uri = (
        "/hub/lti13/register?registration_key=k1&openid_configuration=https%3A%2F%2Flms"
        "&registration_token=t1&lti_message_hint=h&plain=1"
    )
    assert scrubbed_uri(uri) == (
        "/hub/lti13/register?registration_key=[secret]&openid_configuration=https%3A%2F%2Flms"
        "&registration_token=[secret]&lti_message_hint=[secret]&plain=1"
    )
    assert scrubbed_uri("/hub/lti13/jwks") == "/hub/lti13/jwks"


def test_a_value_is_spent_once_until_its_time(store):
    assert store.spend("picker-state", until=time.time() + 60)
    assert not store.spend("picker-state", until=time.time() + 60)
    assert store.spend("another", until=time.time() + 60)
    # Past its time, a value is dropped (its own check refuses it by then).
    assert store.spend("old", until=time.time() - 1)
    assert store.spend("old", until=time.time() + 60)
