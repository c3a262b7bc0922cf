"""The hub's authenticator: LTI 1.1 and 1.3 launches, plus direct login for staff."""

from __future__ import annotations

from functools import cached_property

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from sqlalchemy import delete
from traitlets import Bool, Bytes, Integer, List, Unicode, default

from . import identity
from .courses.hub import course_handlers
from .keys import auth_state_key
from .lti11.handlers import LAUNCH_PATH as LTI11_LAUNCH
from .lti11.handlers import LTI11LaunchHandler
from .lti13 import handlers as lti13
from .lti13.jwks import PlatformKeys
from .lti13.keys import ToolKeys
from .lti13.registration import REGISTER_PATH
from .lti13.registration_handler import RegistrationHandler
from .picker_pages import PICKER_PATH, PickerHandler
from .privacy.bulk import bulk_handlers
from .privacy.handlers import privacy_handlers
from .settings import trait_arguments
from .store import Store
from .upstream import use_auth_state_key


class LearnHubAuthenticator(NativeAuthenticator):
    """LMS launches over LTI 1.1 and 1.3, and direct login with NativeAuthenticator.

    Direct login (NativeAuthenticator's username and password, with admin approval) is
    for operators and instructors; learners arrive from their LMS and never get a
    password. LTI launches are handled by LearnHub's own handlers, which call
    `auth_to_user` with an auth model this class builds.
    """

    database_url = Unicode(
        config=True,
        help="SQLAlchemy URL of the database holding LTI registrations, nonces and keys "
        "(normally the hub's own database). Required.",
    )
    crypt_key = Bytes(
        config=True,
        help="Secret (at least 32 bytes) from which the keys encrypting LTI secrets, tool "
        "keys and auth state are derived. Required.",
    )
    pseudonym_key = Bytes(
        config=True,
        help="Secret (at least 32 bytes) keying learners' pseudonymous usernames. Changing "
        "it gives every learner a new account. Required.",
    )
    public_url = Unicode(**trait_arguments("public_url"))
    session_lifetime = Integer(**trait_arguments("lti.session_lifetime"))
    timestamp_window = Integer(**trait_arguments("lti.timestamp_window"))
    login_state_lifetime = Integer(**trait_arguments("lti.login_state_lifetime"))
    deep_linking_lifetime = Integer(**trait_arguments("lti.deep_linking_lifetime"))
    jwks_cache_lifetime = Integer(**trait_arguments("lti.jwks_cache_lifetime"))
    clock_skew = Integer(**trait_arguments("lti.clock_skew"))
    frame_origins = List(Unicode(), **trait_arguments("lti.frame_origins"))
    direct_login = Bool(**trait_arguments("login.direct"))

    @default("manage_groups")
    def _manage_groups(self):
        return True

    @default("enable_auth_state")
    def _enable_auth_state(self):
        return True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("crypt_key", "pseudonym_key"):
            if len(getattr(self, name)) < 32:
                raise ValueError(f"LearnHubAuthenticator.{name} must hold at least 32 bytes")
        if not self.database_url:
            raise ValueError("LearnHubAuthenticator.database_url is required")
        # JupyterHub reads auth-state keys from JUPYTERHUB_CRYPT_KEY through a CryptKeeper
        # singleton built without config; give it our derived key instead of an env var.
        use_auth_state_key(auth_state_key(self.crypt_key))

    @cached_property
    def store(self) -> Store:
        return Store(self.database_url, self.crypt_key)

    @cached_property
    def tool_keys(self) -> ToolKeys:
        keys = ToolKeys(self.store)
        keys.ensure()
        return keys

    @cached_property
    def platform_keys(self) -> PlatformKeys:
        return PlatformKeys(lifetime=self.jwks_cache_lifetime)

    def current_frame_origins(self) -> list[str]:
        """The origins that may frame LearnHub now: every registered LMS's, read from the
        database (so a platform registered by URL, or with `learnhub lti`, counts at once),
        and the configured ones."""
        return sorted(set(self.store.frame_origins()) | set(self.frame_origins))

    def username_for(self, who: identity.Identity) -> str:
        return identity.username_for(who.platform, who.lms_user_id, self.pseudonym_key)

    def course_id_for(self, platform: str, context_id: str) -> str:
        return identity.course_id_for(platform, context_id, self.pseudonym_key)

    async def authenticate(self, handler, data):
        if not self.direct_login:
            return None
        username = await super().authenticate(handler, data)
        if not username:
            return None
        # groups=None: a direct login leaves group membership as it is (course groups come
        # from LMS launches or an administrator), while manage_groups stays on for launches.
        return {"name": username, "groups": None}

    def check_allowed(self, username, authentication=None):
        # LTI launches reach auth_to_user only after their signature was verified, and
        # every learner of a registered platform is allowed; direct logins still need
        # NativeAuthenticator's approval.
        if authentication and "lms_user_id" in (authentication.get("auth_state") or {}):
            return True
        return super().check_allowed(username, authentication)

    async def delete_users(self, usernames: list[str]) -> None:
        """delete_user for many users at once (the hub's bulk erasure): their direct-login
        rows in one statement, and their names out of allowed_users."""
        self.db.execute(
            delete(UserInfo).where(UserInfo.username.in_(usernames)),
            execution_options={"synchronize_session": False},
        )
        self.db.commit()
        for username in usernames:
            self.allowed_users.discard(username)

    def get_handlers(self, app):
        # NativeAuthenticator's own /login handler uses APIs JupyterHub 6 removed (statsd);
        # JupyterHub's LoginHandler renders our login.html and calls authenticate() itself.
        native = [(path, h) for path, h in super().get_handlers(app) if path != r"/login"]
        return [
            *native,
            (rf"/{LTI11_LAUNCH}", LTI11LaunchHandler),
            (rf"/{lti13.LOGIN_PATH}", lti13.LTI13LoginHandler),
            (rf"/{lti13.LAUNCH_PATH}", lti13.LTI13LaunchHandler),
            (rf"/{PICKER_PATH}", PickerHandler),
            (rf"/{lti13.JWKS_PATH}", lti13.JWKSHandler),
            (rf"/{lti13.CONFIG_PATH}", lti13.ToolConfigHandler),
            (rf"/{REGISTER_PATH}", RegistrationHandler),
            *privacy_handlers(),
            *bulk_handlers(),
            *course_handlers(),
        ]
