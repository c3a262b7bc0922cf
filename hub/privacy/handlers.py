"""Hub pages about privacy: /hub/privacy, the DNT statement, and LearnHub's static files."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from jupyterhub.handlers import BaseHandler
from tornado import web

from learnhub_singleuser.headers import CSP, with_directive

from .policy import DNT_POLICY_PATH, PRIVACY_PATH, PolicyFacts, PrivacyPages

STATIC = Path(__file__).resolve().parents[1] / "static"
STATIC_PATH = "learnhub/static"
SETTINGS_KEY = "learnhub_privacy"


@functools.lru_cache(maxsize=4)
def privacy_pages(facts: PolicyFacts, templates: str, template_file: str | None) -> PrivacyPages:
    """The pages of these settings, made once per hub process (their Jinja environment)."""
    return PrivacyPages(facts, Path(templates), template_file)


def own_page_csp(headers: dict[str, str]) -> str:
    """The CSP of pages LearnHub renders itself: only this origin, framed as the hub allows."""
    return with_directive(headers.get(CSP, ""), "default-src", "'self'")


class OwnPageHandler(BaseHandler):
    """A hub page of LearnHub's own: no cookie set, default-src 'self'."""

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header(CSP, own_page_csp(self.settings.get("headers", {})))

    @property
    def privacy(self) -> PrivacyPages:
        pages = self.settings.get(SETTINGS_KEY)
        if pages is None:
            raise web.HTTPError(404)
        return privacy_pages(
            PolicyFacts(**pages["facts"]), pages["templates"], pages["template_file"]
        )


class PrivacyPolicyHandler(OwnPageHandler):
    """GET /hub/privacy: the privacy policy, without login, cookies or other origins."""

    def get(self):
        # Not render_template: its namespace reads xsrf_token, which sets a cookie, and
        # this page must work in an LMS frame whose browser refuses cookies.
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.privacy.policy_page(self.hub.base_url))


class DNTPolicyHandler(OwnPageHandler):
    """GET /.well-known/dnt-policy.txt (the proxy routes it to /hub/.well-known/...)."""

    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(self.privacy.dnt_policy(self.hub.base_url))


def privacy_handlers() -> list[tuple]:
    """Handlers under the hub's prefix (/hub/), for the authenticator's get_handlers."""
    return [
        (rf"/{PRIVACY_PATH}", PrivacyPolicyHandler),
        ("/" + re.escape(DNT_POLICY_PATH), DNTPolicyHandler),
        (rf"/{STATIC_PATH}/(.*)", web.StaticFileHandler, {"path": str(STATIC)}),
    ]
