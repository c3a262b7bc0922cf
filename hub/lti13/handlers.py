"""LTI 1.3 endpoints: OIDC login initiation, launch, deep linking, the tool's JWKS and
registration JSON."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlencode

from ..addresses import origin_of
from ..assignment_picker import check_return_url
from ..identity import Course, Identity, LinkError, course_roles, link_assignment
from ..picker_pages import PickerPage
from ..session import LaunchHandler, script_json
from . import constants as c
from . import deep_linking as dl
from .validator import validate_id_token

LOGIN_PATH = "lti13/login"
LAUNCH_PATH = c.LAUNCH_PATH
JWKS_PATH = "lti13/jwks"
CONFIG_PATH = "lti13/config"
STATE_COOKIE_PREFIX = "lh_lti13_"


def state_cookie_name(state: str) -> str:
    # One cookie per login, so two launches racing in one browser do not clobber each other.
    return STATE_COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


def identity_from_claims(claims: dict, course_id_for) -> Identity:
    """What a validated id_token says about the person and the course."""
    platform = f"lti13:{claims['iss']}"
    course = None
    context = claims.get(c.CONTEXT)
    if isinstance(context, dict) and context.get("id"):
        context_id = str(context["id"])
        course = Course(
            id=course_id_for(platform, context_id),
            platform=platform,
            context_id=context_id,
            title=context.get("title") or context.get("label") or context_id,
        )
    name = claims.get("name") or " ".join(
        v for v in (claims.get("given_name"), claims.get("family_name")) if v
    )
    audience = claims["aud"]
    launch = {
        # Grade passback signs its token request as this client of this issuer.
        "issuer": claims["iss"],
        "client_id": claims.get("azp") or (audience if isinstance(audience, str) else audience[0]),
        "sub": claims["sub"],
        "deployment_id": claims[c.DEPLOYMENT_ID],
    }
    # A deep-linking request comes from no link: it has none to keep.
    if isinstance(claims.get(c.RESOURCE_LINK), dict):
        launch["resource_link"] = claims[c.RESOURCE_LINK]
    for key, claim in (("ags", c.AGS_ENDPOINT), ("nrps", c.NRPS)):
        if isinstance(claims.get(claim), dict):
            launch[key] = claims[claim]
    custom = claims.get(c.CUSTOM)
    assignment = link_assignment(custom.get("assignment") if isinstance(custom, dict) else None)
    return Identity(
        platform=platform,
        lms_user_id=claims["sub"],
        roles=course_roles(claims[c.ROLES]),
        course=course,
        name=name or None,
        email=claims.get("email") or None,
        lti_version="1.3",
        launch_claims=launch,
        assignment=assignment,
    )


class LTI13LoginHandler(LaunchHandler):
    """GET|POST /hub/lti13/login: third-party initiated login, answered with the auth request."""

    async def get(self):
        await self.initiate()

    async def post(self):
        await self.initiate()

    def required(self, name: str) -> str:
        value = self.get_argument(name, "")
        if not value:
            self.fail(400, f"LTI 1.3 login request is missing {name}")
        return value

    async def initiate(self):
        learnhub = self.authenticator
        issuer = self.required("iss")
        login_hint = self.required("login_hint")
        target_link_uri = self.required("target_link_uri")
        client_id = self.get_argument("client_id", "") or None
        platforms = learnhub.store.find_platforms(issuer, client_id)
        if not platforms:
            self.fail(401, "Unknown LTI 1.3 platform issuer")
        if len(platforms) > 1:
            self.fail(
                400, "This issuer has several registrations: the login request needs client_id"
            )
        platform = platforms[0]
        deployment_id = self.get_argument("lti_deployment_id", "")
        if deployment_id and deployment_id not in platform.deployment_ids:
            self.fail(403, f"Deployment {deployment_id!r} is not registered for this platform")
        if origin_of(target_link_uri) != origin_of(learnhub.public_url):
            self.fail(400, "target_link_uri does not point at this LearnHub")
        storage_target = self.get_argument("lti_storage_target", "") or None

        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        learnhub.store.save_login_state(
            state,
            platform_id=platform.id,
            nonce=nonce,
            target_link_uri=target_link_uri,
            storage_target=storage_target,
            lifetime=learnhub.login_state_lifetime,
        )
        # Kept by browsers that allow third-party cookies; the launch works without it.
        self.set_cookie(
            state_cookie_name(state),
            state,
            path=self.hub.base_url + "lti13/",
            secure=True,
            httponly=True,
            samesite="None",
            max_age=learnhub.login_state_lifetime,
        )
        params = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": platform.client_id,
            "redirect_uri": self.public_url_for(LAUNCH_PATH),
            "login_hint": login_hint,
            "state": state,
            "nonce": nonce,
        }
        if self.get_argument("lti_message_hint", ""):
            params["lti_message_hint"] = self.get_argument("lti_message_hint")
        auth_request = (
            platform.auth_url + ("&" if "?" in platform.auth_url else "?") + urlencode(params)
        )
        if storage_target is None:
            self.redirect(auth_request)
            return
        self.finish(
            self.render_page(
                "learnhub-lti-storage.html",
                config_json=script_json(
                    {
                        "mode": "put",
                        "target": storage_target,
                        "origin": origin_of(platform.auth_url),
                        "items": {f"state_{state}": state, f"nonce_{nonce}": nonce},
                        "next": auth_request,
                    }
                ),
            )
        )


class LTI13LaunchHandler(PickerPage):
    """POST /hub/lti13/launch: the platform's id_token, checked and turned into a session."""

    async def post(self):
        learnhub = self.authenticator
        id_token = self.get_argument("id_token", "")
        state = self.get_argument("state", "")
        if not id_token or not state:
            error = self.get_argument("error", "")
            if error:
                description = self.get_argument("error_description", "")
                self.fail(400, f"The LMS refused the login: {error} {description}".strip())
            self.fail(400, "LTI 1.3 launch is missing id_token or state")

        record = learnhub.store.peek_login_state(state)
        if record is None:
            self.fail(401, "Unknown or expired login state: open the activity again from your LMS")
        cookie = self.get_cookie(state_cookie_name(state))
        if cookie is not None:
            if cookie != state:
                self.fail(401, "The login state cookie does not match this launch")
            binding = "cookie"
        elif record.storage_target:
            stored = self.get_argument("lti_storage_state", None)
            if stored is None:
                self.render_storage_check(record, id_token, state)
                return
            if stored and stored != state:
                self.fail(401, "The login state in your LMS's storage does not match this launch")
            binding = "platform storage" if stored else "server state only"
        else:
            binding = "server state only"

        record = learnhub.store.consume_login_state(state)
        if record is None:
            self.fail(401, "Login state already used: open the activity again from your LMS")
        if cookie is not None:
            # Same attributes as when it was set, or the browser keeps the cookie.
            self.clear_cookie(
                state_cookie_name(state),
                path=self.hub.base_url + "lti13/",
                secure=True,
                httponly=True,
                samesite="None",
            )
        self.log.info("LTI 1.3 login state checked by %s", binding)
        platform = learnhub.store.get_platform(record.platform_id)
        if platform is None:
            self.fail(401, "Unknown LTI 1.3 platform issuer")
        claims = await validate_id_token(
            id_token,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_ids=platform.deployment_ids,
            nonce=record.nonce,
            target_link_uri=record.target_link_uri,
            public_key=lambda kid: learnhub.platform_keys.key(platform.jwks_url, kid),
            leeway=learnhub.clock_skew,
        )
        try:
            identity = identity_from_claims(claims, learnhub.course_id_for)
        except LinkError as e:
            self.fail(400, str(e))
        if claims[c.MESSAGE_TYPE] == c.DEEP_LINKING_REQUEST:
            await self.open_picker(claims, platform, identity)
            return
        await self.start_session(identity)

    async def open_picker(self, claims: dict, platform, identity: Identity) -> None:
        """A deep-linking request: the course's staff pick assignments to link. The answer
        goes only to the platform that signed the request (checked before anything is
        stored)."""
        check_return_url(
            claims[c.DL_SETTINGS]["deep_link_return_url"], dl.platform_origins(platform)
        )
        await super().open_picker(
            identity,
            lambda username, catalog: dl.picker_state(
                claims, platform=platform, course=identity.course, username=username,
                catalog=catalog,
            ),
        )  # fmt: skip

    def render_storage_check(self, record, id_token: str, state: str) -> None:
        """Ask the LMS frame for the state stored at login, then post the launch again.

        When the platform cannot answer (an old LMS, a closed frame), the page posts an
        empty value and the launch relies on the server-side one-time state alone.
        """
        platform = self.authenticator.store.get_platform(record.platform_id)
        self.finish(
            self.render_page(
                "learnhub-lti-storage.html",
                config_json=script_json(
                    {
                        "mode": "get",
                        "target": record.storage_target,
                        "origin": origin_of(platform.auth_url) if platform else "",
                        "key": f"state_{state}",
                        "action": self.public_url_for(LAUNCH_PATH),
                        "fields": {"id_token": id_token, "state": state},
                    }
                ),
            )
        )


class JWKSHandler(LaunchHandler):
    """GET /hub/lti13/jwks: the tool's public keys, for platforms verifying its assertions."""

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(self.authenticator.tool_keys.jwks())


class ToolConfigHandler(LaunchHandler):
    """GET /hub/lti13/config: the registration an LMS administrator enters for LearnHub."""

    def get(self):
        login = self.public_url_for(LOGIN_PATH)
        launch = self.public_url_for(LAUNCH_PATH)
        jwks = self.public_url_for(JWKS_PATH)
        # A course's navigation opens JupyterLab; the others open the assignment picker.
        placements = {
            "course_navigation": c.RESOURCE_LINK_REQUEST,
            "link_selection": c.DEEP_LINKING_REQUEST,
            "assignment_selection": c.DEEP_LINKING_REQUEST,
            "editor_button": c.DEEP_LINKING_REQUEST,
        }
        config = {
            "title": c.TOOL_NAME,
            "description": c.TOOL_DESCRIPTION,
            "oidc_initiation_url": login,
            "target_link_uri": launch,
            "redirect_uris": [launch],
            "public_jwk_url": jwks,
            "scopes": c.SCOPES,
            "claims": ["iss", "sub", "name", "email"],
            "placements": list(placements),
            "messages": [
                {"type": c.RESOURCE_LINK_REQUEST, "target_link_uri": launch},
                {"type": c.DEEP_LINKING_REQUEST, "target_link_uri": launch},
            ],
            "urls": {
                "login_initiation": login,
                "launch": launch,
                "redirect": launch,
                "jwks": jwks,
                "lti11_launch": self.public_url_for("lti11/launch"),
            },
            "extensions": [
                {
                    "platform": "canvas.instructure.com",
                    "privacy_level": "public",
                    "settings": {
                        "placements": [
                            {"placement": p, "message_type": message_type}
                            for p, message_type in placements.items()
                        ]
                    },
                }
            ],
        }
        self.set_header("Content-Type", "application/json")
        self.finish(config)
