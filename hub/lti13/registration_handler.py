"""GET|POST /hub/lti13/register: LTI Dynamic Registration, started by an LMS administrator's
"register by URL" with a registration URL of `learnhub lti registration-url`.

1. The LMS opens the URL (in a frame or a window) with `openid_configuration` and
   `registration_token`. LearnHub checks the one-time registration key first, so nobody
   without one makes the hub fetch anything; then fetches the platform's configuration,
   checks it, and shows who is registering what.
2. The administrator confirms (a form post). LearnHub spends the key, fetches and checks the
   configuration again, posts its client registration with the registration token, and
   stores the platform and its deployment. A refusal stores nothing and gives the key back.
3. The page tells the LMS it is done (`org.imsglobal.lti.close`, registration-close.js).
"""

from __future__ import annotations

import json
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from learnhub_singleuser.headers import CSP, frame_ancestors_csp

from ..addresses import origin_of
from ..privacy.handlers import own_page_csp
from ..session import LaunchHandler
from . import handlers as lti13
from . import registration as dr

# Seconds LearnHub waits for the LMS's configuration or registration endpoint.
TIMEOUT = 15
# The largest answer read from the LMS: a configuration is a few kilobytes.
MAX_ANSWER = 256 * 1024
UNKNOWN_KEY = (
    "This registration URL is unknown, expired or already used: make a new one with "
    "`learnhub lti registration-url` and paste it into the LMS again."
)


async def _exchange(request: HTTPRequest, what: str):
    """The JSON answer to `request`; RegistrationRefused naming `what` when there is none."""
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except OSError as e:
        raise dr.RegistrationRefused(f"{what} cannot be reached at {request.url}: {e}") from None
    if response.code == 599:
        raise dr.RegistrationRefused(f"{what} cannot be reached at {request.url}: {response.error}")
    body = response.body or b""
    if response.code >= 300:
        detail = body[:300].decode("utf-8", "replace").strip()
        raise dr.RegistrationRefused(
            f"{what} answered {response.code} at {request.url}" + (f": {detail}" if detail else "")
        )
    if len(body) > MAX_ANSWER:
        raise dr.RegistrationRefused(f"{what}'s answer is larger than {MAX_ANSWER} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise dr.RegistrationRefused(f"{what}'s answer at {request.url} is not JSON") from None


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def fetch_configuration(url: str, token: str) -> dr.PlatformConfiguration:
    """The platform's OpenID configuration, checked (Canvas wants the registration token
    here too)."""
    dr.web_url(url, "openid_configuration")
    request = HTTPRequest(
        url,
        headers={"Accept": "application/json", **_bearer(token)},
        connect_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
        follow_redirects=False,
    )
    document = await _exchange(request, "The platform's OpenID configuration")
    return dr.platform_configuration(document, url)


async def post_registration(
    platform: dr.PlatformConfiguration, body: dict, token: str
) -> dr.RegisteredClient:
    request = HTTPRequest(
        platform.registration_endpoint,
        method="POST",
        body=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            **_bearer(token),
        },
        connect_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
        follow_redirects=False,
    )
    answer = await _exchange(request, "The platform's registration endpoint")
    return dr.registered_client(answer)


class RegistrationHandler(LaunchHandler):
    """LTI Dynamic Registration 1.0 for a holder of a one-time registration key."""

    # The LMS registering LearnHub, once the key is known good: it frames these pages
    # (Canvas and the demo LMS open them in an iframe), its error pages included.
    framed_by: str | None = None

    def set_default_headers(self):
        super().set_default_headers()
        if self.framed_by:
            origins = [*self.authenticator.current_frame_origins(), self.framed_by]
            policy = frame_ancestors_csp(self.settings.get("headers", {}).get(CSP, ""), origins)
            self.set_header(CSP, own_page_csp({CSP: policy}))

    def allow_framing_by(self, *urls: str) -> None:
        """Let the first of `urls` that is a web URL frame these pages (and be the platform's
        frame origin): the LMS page that opened the registration, else its configuration's."""
        for url in urls:
            try:
                self.framed_by = origin_of(dr.web_url(url, "the LMS's page"))
            except dr.RegistrationRefused:
                continue  # a bad configuration URL is refused by checked_configuration
            self.set_default_headers()
            return

    def tool_urls(self) -> dr.ToolUrls:
        return dr.ToolUrls(
            login=self.public_url_for(lti13.LOGIN_PATH),
            launch=self.public_url_for(lti13.LAUNCH_PATH),
            jwks=self.public_url_for(lti13.JWKS_PATH),
        )

    def registration_arguments(self) -> tuple[str, str, str]:
        key = self.get_argument(dr.KEY_ARGUMENT, "")
        config_url = self.get_argument("openid_configuration", "")
        token = self.get_argument("registration_token", "")
        if not key:
            self.fail(403, "This registration URL has no registration key: " + UNKNOWN_KEY)
        return key, config_url, token

    async def checked_configuration(self, config_url: str, token: str):
        if not config_url:
            self.fail(
                400,
                "The LMS did not send openid_configuration: paste this URL into your LMS's "
                "tool registration by URL, rather than opening it yourself.",
            )
        try:
            return await fetch_configuration(config_url, token)
        except dr.RegistrationRefused as e:
            self.fail(400, f"Registration refused: {e}.")

    async def get(self):
        key, config_url, token = self.registration_arguments()
        record = self.authenticator.store.peek_registration_key(key)
        if record is None:
            self.fail(403, UNKNOWN_KEY)
        # The LMS page that frames this one (Canvas's school domain is not its issuer's), as
        # its Referer says; LearnHub's own pages send none, so the form carries it on.
        self.allow_framing_by(self.request.headers.get("Referer", ""), config_url)
        platform = await self.checked_configuration(config_url, token)
        self.finish(
            self.render_page(
                "learnhub-registration.html",
                platform=platform,
                known=self.authenticator.store.find_platforms(platform.issuer),
                made_by=record.made_by,
                expires=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.expires)),
                scopes=dr.requested_scopes(platform),
                purposes=dr.SCOPE_PURPOSES,
                deep_linking=dr.offers_deep_linking(platform),
                tool=self.tool_urls(),
                action=self.public_url_for(dr.REGISTER_PATH),
                fields={
                    dr.KEY_ARGUMENT: key,
                    "openid_configuration": config_url,
                    "lms_origin": self.framed_by or "",
                    "registration_token": token,
                },
            )
        )

    async def post(self):
        key, config_url, token = self.registration_arguments()
        store = self.authenticator.store
        record = store.spend_registration_key(key)
        if record is None:
            self.fail(403, UNKNOWN_KEY)
        self.allow_framing_by(self.get_body_argument("lms_origin", ""), config_url)
        try:
            platform, client, stored = await self.register(config_url, token)
        except BaseException:
            # Nothing was stored: the same URL may be tried again until it expires.
            store.restore_registration_key(record)
            raise
        self.refresh_frame_origins()
        self.log.info(
            "LTI 1.3 platform %s registered by URL as client %s (registration key of %s)",
            platform.issuer, client.client_id, record.made_by,
        )  # fmt: skip
        self.finish(
            self.render_page(
                "learnhub-registration-done.html",
                platform=platform,
                client=client,
                platform_id=stored.id,
            )
        )

    async def register(self, config_url: str, token: str):
        platform = await self.checked_configuration(config_url, token)
        body = dr.client_registration(platform, self.tool_urls())
        try:
            client = await post_registration(platform, body, token)
        except dr.RegistrationRefused as e:
            self.fail(502, f"The LMS did not register LearnHub: {e}.")
        try:
            stored = self.authenticator.store.add_platform(
                issuer=platform.issuer,
                client_id=client.client_id,
                deployment_ids=[client.deployment_id] if client.deployment_id else [],
                auth_url=platform.authorization_endpoint,
                jwks_url=platform.jwks_uri,
                token_url=platform.token_endpoint,
                # The LMS site the administrator registers from: its pages frame LearnHub.
                frame_origin=self.framed_by or origin_of(config_url),
            )
        except ValueError as e:
            self.fail(409, f"Registration refused: {e}.")
        return platform, client, stored
