"""LTI Dynamic Registration 1.0: the platform's OpenID configuration checked, the tool's
client registration built, the platform's answer read. Pure: the handler does the I/O
(learnhub.lti13.registration_handler)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from . import constants as c

# Where an LMS administrator's "register by URL" opens LearnHub.
REGISTER_PATH = "lti13/register"
# The argument of that URL holding the one-time key `learnhub lti registration-url` made.
KEY_ARGUMENT = "registration_key"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
# What the registration page posts to the LMS's window when it is done (the spec's 3.7).
CLOSE_SUBJECT = "org.imsglobal.lti.close"
# Deep-linking placements LearnHub is useful in, by the names Canvas and Moodle give them.
DEEP_LINKING_PLACEMENTS = (
    "assignment_selection",
    "link_selection",
    "editor_button",
    "ContentArea",
    "RichTextEditorPlugin",
)
PRIVATE_KEY_JWT = "private_key_jwt"
# What each scope LearnHub asks for lets it do, in the administrator's words.
SCOPE_PURPOSES = {
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem": "make gradebook columns",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly": "read back the grades it sent",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score": "send autograded scores",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly": (
        "read a course's roster (pseudonyms and roles)"
    ),
}


class RegistrationRefused(Exception):
    """A registration that cannot go on; the message names the problem for the
    administrator."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def web_url(value, what: str) -> str:
    """`value` if it is an https URL (http only on this machine's loopback, for a demo LMS),
    without a fragment."""
    if not isinstance(value, str) or not value:
        raise RegistrationRefused(f"{what} is missing")
    parts = urlsplit(value)
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))
    if secure and host and not parts.fragment:
        return value
    raise RegistrationRefused(
        f"{what} {value!r} is not an https URL (http is accepted for loopback addresses only)"
    )


def _site(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}[parts.scheme]
    return parts.scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class PlatformConfiguration:
    """What LearnHub needs of a platform's OpenID configuration, checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    # The platform's name and version as it gives them ("moodle 4.3"), for the page.
    product: str
    # The LTI messages it says it supports, and the placements it offers deep linking in;
    # empty when it does not say.
    messages: frozenset[str]
    deep_linking_placements: tuple[str, ...]
    # The scopes it offers; None when it does not say.
    scopes: frozenset[str] | None


def _string_list(document: dict, name: str) -> list[str] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistrationRefused(f"the platform's {name} is not a list of strings")
    return value


def platform_configuration(document, url: str) -> PlatformConfiguration:
    """The platform's OpenID configuration fetched from `url`, checked as the spec asks: its
    issuer must be at the address the configuration came from, and it must offer what an
    LTI 1.3 launch and LearnHub's signed service requests need."""
    if not isinstance(document, dict):
        raise RegistrationRefused("the platform's OpenID configuration is not a JSON object")
    issuer = web_url(document.get("issuer"), "the platform's issuer")
    parts = urlsplit(issuer)
    if parts.query or parts.fragment:
        raise RegistrationRefused(f"the platform's issuer {issuer!r} has a query or fragment")
    if _site(issuer) != _site(url):
        raise RegistrationRefused(
            f"the platform's issuer {issuer} is not at the address its configuration came "
            f"from ({url}): refused, a configuration may only speak for its own site"
        )
    endpoints = {
        name: web_url(document.get(name), f"the platform's {name}")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
    }
    registration = web_url(
        document.get("registration_endpoint"), "the platform's registration_endpoint"
    )
    methods = _string_list(document, "token_endpoint_auth_methods_supported")
    if methods is not None and PRIVATE_KEY_JWT not in methods:
        raise RegistrationRefused(
            "the platform does not accept private_key_jwt at its token endpoint, which "
            "LearnHub's grade passback and roster use"
        )
    algorithms = _string_list(document, "id_token_signing_alg_values_supported")
    if algorithms is not None and c.ALGORITHM not in algorithms:
        raise RegistrationRefused(f"the platform does not sign id_tokens with {c.ALGORITHM}")
    scopes = _string_list(document, "scopes_supported")
    lti = document.get(PLATFORM_CONFIGURATION)
    lti = lti if isinstance(lti, dict) else {}
    messages, placements = set(), []
    for message in lti.get("messages_supported") or []:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            continue
        messages.add(message["type"])
        if message["type"] == c.DEEP_LINKING_REQUEST:
            offered = message.get("placements")
            if isinstance(offered, list):
                placements = [p for p in DEEP_LINKING_PLACEMENTS if p in offered]
    product = " ".join(
        str(lti[k]) for k in ("product_family_code", "version") if isinstance(lti.get(k), str)
    )
    return PlatformConfiguration(
        issuer=issuer,
        **endpoints,
        registration_endpoint=registration,
        product=product or "an LTI 1.3 platform",
        messages=frozenset(messages),
        deep_linking_placements=tuple(placements),
        scopes=frozenset(scopes) if scopes is not None else None,
    )


@dataclass(frozen=True)
class ToolUrls:
    """LearnHub's own addresses, as an LMS must call them."""

    login: str
    launch: str
    jwks: str


def requested_scopes(platform: PlatformConfiguration) -> list[str]:
    """LearnHub's scopes that the platform offers (all of them when it does not say)."""
    return [s for s in c.SCOPES if platform.scopes is None or s in platform.scopes]


def offers_deep_linking(platform: PlatformConfiguration) -> bool:
    return not platform.messages or c.DEEP_LINKING_REQUEST in platform.messages


def client_registration(platform: PlatformConfiguration, tool: ToolUrls) -> dict:
    """The OpenID client registration LearnHub posts to the platform (the spec's 3.5)."""
    messages = [
        {"type": c.RESOURCE_LINK_REQUEST, "target_link_uri": tool.launch, "label": c.TOOL_NAME}
    ]
    if offers_deep_linking(platform):
        deep_linking = {
            "type": c.DEEP_LINKING_REQUEST,
            "target_link_uri": tool.launch,
            "label": f"{c.TOOL_NAME} assignments",
        }
        if platform.deep_linking_placements:
            deep_linking["placements"] = list(platform.deep_linking_placements)
        messages.append(deep_linking)
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": tool.login,
        "redirect_uris": [tool.launch],
        "client_name": c.TOOL_NAME,
        "jwks_uri": tool.jwks,
        "token_endpoint_auth_method": PRIVATE_KEY_JWT,
        "scope": " ".join(requested_scopes(platform)),
        TOOL_CONFIGURATION: {
            "domain": urlsplit(tool.launch).netloc,
            "description": c.TOOL_DESCRIPTION,
            "target_link_uri": tool.launch,
            "claims": list(c.TOOL_CLAIMS),
            "messages": messages,
        },
    }


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    # The deployment the platform made for LearnHub, when it says (Moodle and Canvas do).
    deployment_id: str | None


def registered_client(answer) -> RegisteredClient:
    """The platform's answer to the registration: the client id it gave LearnHub."""
    if not isinstance(answer, dict):
        raise RegistrationRefused("the platform's answer to the registration is not a JSON object")
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        raise RegistrationRefused("the platform's answer to the registration has no client_id")
    tool = answer.get(TOOL_CONFIGURATION)
    deployment = tool.get("deployment_id") if isinstance(tool, dict) else None
    if deployment is not None and (not isinstance(deployment, str) or not deployment.strip()):
        raise RegistrationRefused("the platform's answer has a deployment_id that is not a string")
    return RegisteredClient(client_id=client_id, deployment_id=deployment)
