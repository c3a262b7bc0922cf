"""The demo LMS's side of LTI Dynamic Registration 1.0: its OpenID configuration, the
registration endpoint (a one-time registration token, the tool's client registration
checked as Moodle checks it), and the administrator's "register a tool by URL" page.

Written from the specification, not from LearnHub's code: the peer must not share the
tool's checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import tornado.template

from .handlers import LMSHandler, ServiceHandler
from .services import TOKEN_SCOPES, GradeRefused

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
# What this LMS grants a tool: the scopes its token endpoint issues.
SCOPES = tuple(sorted(TOKEN_SCOPES))
DEEP_LINKING_PLACEMENTS = ("assignment_selection", "link_selection")


class RegistrationRefused(GradeRefused):
    """A registration this LMS does not accept: (status, OAuth error code, description)."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(status, description, error)


@dataclass(frozen=True)
class ToolRegistration:
    """A tool this LMS registered: the client it gave it and where the tool lives."""

    client_id: str
    deployment_id: str
    login_url: str
    launch_url: str
    jwks_url: str
    scopes: tuple[str, ...]
    messages: tuple[str, ...]
    # The client registration as the tool posted it.
    request: dict


def openid_configuration(lms_url: str, issuer: str) -> dict:
    """The platform configuration a tool fetches (OpenID Connect Discovery, plus LTI's)."""
    return {
        "issuer": issuer,
        "authorization_endpoint": lms_url + "/auth",
        "token_endpoint": lms_url + "/token",
        "jwks_uri": lms_url + "/jwks",
        "registration_endpoint": lms_url + "/register",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", *SCOPES],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public", "pairwise"],
        "claims_supported": ["iss", "sub", "aud", "name", "given_name", "family_name", "email"],
        PLATFORM_CONFIGURATION: {
            "product_family_code": "learnhub-demo-lms",
            "version": "1.0",
            "messages_supported": [
                {"type": RESOURCE_LINK_REQUEST},
                {"type": DEEP_LINKING_REQUEST, "placements": list(DEEP_LINKING_PLACEMENTS)},
            ],
            "variables": [],
        },
    }


def _tool_url(value, name: str, domain: str) -> str:
    if not isinstance(value, str) or not value:
        raise RegistrationRefused(400, "invalid_client_metadata", f"{name} is missing")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise RegistrationRefused(400, "invalid_client_metadata", f"{name} is not an http(s) URL")
    if parts.netloc != domain:
        raise RegistrationRefused(
            400, "invalid_client_metadata", f"{name} {value} is not on the tool's domain {domain}"
        )
    return value


def check_registration(body, *, client_id: str, deployment_id: str) -> ToolRegistration:
    """The tool's client registration, checked; RegistrationRefused names what is wrong."""

    def refuse(description: str):
        raise RegistrationRefused(400, "invalid_client_metadata", description)

    if not isinstance(body, dict):
        refuse("the registration is not a JSON object")
    if body.get("application_type") != "web":
        refuse("application_type must be web")
    if "id_token" not in (body.get("response_types") or []):
        refuse("response_types must include id_token")
    if not {"implicit", "client_credentials"} <= set(body.get("grant_types") or []):
        refuse("grant_types must include implicit and client_credentials")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        refuse("token_endpoint_auth_method must be private_key_jwt")
    tool = body.get(TOOL_CONFIGURATION)
    if not isinstance(tool, dict) or not isinstance(tool.get("domain"), str):
        refuse(f"{TOOL_CONFIGURATION} with a domain is required")
    domain = tool["domain"]
    redirect_uris = body.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        refuse("redirect_uris is missing")
    for uri in redirect_uris:
        _tool_url(uri, "a redirect_uri", domain)
    launch_url = _tool_url(tool.get("target_link_uri"), "target_link_uri", domain)
    if launch_url not in redirect_uris:
        refuse("target_link_uri is not one of the redirect_uris")
    messages = tool.get("messages") or [{"type": RESOURCE_LINK_REQUEST}]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        refuse("messages must be a list of objects")
    types = tuple(str(m.get("type")) for m in messages)
    unknown = set(types) - {RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST}
    if unknown:
        refuse(f"unsupported message type {sorted(unknown)[0]}")
    for message in messages:
        if "target_link_uri" in message:
            _tool_url(message["target_link_uri"], "a message's target_link_uri", domain)
    scope = body.get("scope", "")
    if not isinstance(scope, str):
        refuse("scope must be a space-separated string")
    return ToolRegistration(
        client_id=client_id,
        deployment_id=deployment_id,
        login_url=_tool_url(body.get("initiate_login_uri"), "initiate_login_uri", domain),
        launch_url=launch_url,
        jwks_url=_tool_url(body.get("jwks_uri"), "jwks_uri", domain),
        # Only what this LMS offers is granted; the rest is left out, not refused.
        scopes=tuple(s for s in scope.split() if s in SCOPES),
        messages=types,
        request=body,
    )


def registration_answer(registration: ToolRegistration) -> dict:
    """What the registration endpoint answers: the registration with its client id and the
    deployment made for it (the spec's 3.6)."""
    body = registration.request
    return {
        **body,
        "client_id": registration.client_id,
        "scope": " ".join(registration.scopes),
        TOOL_CONFIGURATION: {
            **body[TOOL_CONFIGURATION],
            "deployment_id": registration.deployment_id,
        },
    }


def registration_launch_url(tool_url: str, *, openid_configuration_url: str, token: str) -> str:
    """The administrator's registration URL with the LMS's two parameters added."""
    query = urlencode(
        {"openid_configuration": openid_configuration_url, "registration_token": token}
    )
    return tool_url + ("&" if urlsplit(tool_url).query else "?") + query


_REGISTER_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Register a tool · LearnHub demo LMS</title>
<style>body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }
iframe { width: 100%; height: 34rem; border: 1px solid #888; } label { display: block; }
input[type=url] { width: 40rem; max-width: 100%; }</style></head>
<body>
<h1>Register an LTI 1.3 tool by URL</h1>
{% if registrations %}<h2>Registered tools</h2><ul id="registrations">
{% for r in registrations %}<li data-client-id="{{ r.client_id }}">client {{ r.client_id }},
deployment {{ r.deployment_id }}: {{ r.launch_url }}</li>{% end %}</ul>{% end %}
{% if frame_url %}
<p id="registering">The tool's registration page, as the LMS frames it:</p>
<iframe id="tool" title="Tool registration" src="{{ frame_url }}"></iframe>
<script>
// LTI Dynamic Registration: the tool posts {subject: 'org.imsglobal.lti.close'} when done.
window.addEventListener("message", function (event) {
  var frame = document.getElementById("tool");
  if (event.source === frame.contentWindow && event.data
      && event.data.subject === "org.imsglobal.lti.close") {
    window.location = "/admin/register-tool?closed=1";
  }
});
</script>
{% else %}
{% if closed %}<p id="closed">The tool closed its registration.</p>{% end %}
<form method="post" action="/admin/register-tool">
<label for="url">The tool's registration URL</label>
<input type="url" id="url" name="url" required placeholder="http://127.0.0.1:8000/hub/lti13/register?registration_key=...">
<button type="submit">Register</button>
</form>
{% end %}
<p><a href="/course">Back to the course</a></p>
</body>
</html>
""",
    name="register-tool.html",
)


def register_page_html(registrations, *, frame_url: str | None = None, closed=False) -> str:
    return _REGISTER_PAGE.generate(
        registrations=list(registrations), frame_url=frame_url, closed=closed
    ).decode()


class OpenIDConfigurationHandler(LMSHandler):
    """GET /lti/openid-configuration: what a tool registering itself reads first."""

    def get(self) -> None:
        self.lms.configuration_requests.append(self.request.headers.get("Authorization", ""))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(openid_configuration(self.lms.url, self.lms.platform.issuer)))


class RegistrationEndpointHandler(ServiceHandler):
    """POST /register: a tool's client registration, with the registration token as bearer
    (refused as the LMS's other services refuse, in OAuth's JSON error)."""

    def post(self) -> None:
        kind, _, token = self.request.headers.get("Authorization", "").partition(" ")
        try:
            if kind.lower() != "bearer" or not token.strip():
                raise RegistrationRefused(401, "invalid_token", "a registration token is required")
            self.lms.redeem_registration_token(token.strip())
            if self.request.headers.get("Content-Type", "").split(";")[0] != "application/json":
                raise RegistrationRefused(
                    400, "invalid_client_metadata", "Content-Type must be application/json"
                )
            try:
                body = json.loads(self.request.body)
            except ValueError:
                raise RegistrationRefused(
                    400, "invalid_client_metadata", "the body is not JSON"
                ) from None
            registration = self.lms.register_tool(body)
        except RegistrationRefused as refused:
            self.refuse_json(refused)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(registration_answer(registration)))


class RegisterToolPageHandler(LMSHandler):
    """GET|POST /admin/register-tool: the administrator pastes a tool's registration URL;
    the LMS opens it in a frame with its configuration URL and a new registration token."""

    def get(self) -> None:
        self.finish(
            register_page_html(
                self.lms.tool_registrations, closed=bool(self.get_argument("closed", ""))
            )
        )

    def post(self) -> None:
        url = self.get_argument("url", "").strip()
        if urlsplit(url).scheme not in {"http", "https"}:
            self.refuse(400, "the registration URL must be an http(s) URL")
            return
        frame_url = registration_launch_url(
            url,
            openid_configuration_url=self.lms.openid_configuration_url,
            token=self.lms.new_registration_token(),
        )
        self.finish(register_page_html(self.lms.tool_registrations, frame_url=frame_url))


def registration_handlers(args: dict) -> list:
    return [
        (r"/lti/openid-configuration", OpenIDConfigurationHandler, args),
        (r"/register", RegistrationEndpointHandler, args),
        (r"/admin/register-tool", RegisterToolPageHandler, args),
    ]
