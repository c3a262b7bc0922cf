"""Hub pages of LearnHub's own: rendered without setting a cookie, errors a person can act on."""

from __future__ import annotations

import re

from jupyterhub.handlers import BaseHandler
from tornado import web

from .errors import LaunchError
from .privacy.handlers import own_page_csp

# Query arguments whose values are secrets or one-time values (registration keys and tokens,
# LTI message hints, states): never written to a log, as JupyterHub's access log does too.
SECRET_ARGUMENT = re.compile(r"token|key|secret|state|hint|nonce|code", re.IGNORECASE)


def scrubbed_uri(uri: str) -> str:
    """`uri` with the values of SECRET_ARGUMENT query arguments replaced by [secret]."""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}=[secret]" if equals and SECRET_ARGUMENT.search(name) else part)
    return path + "?" + "&".join(parts)


class CookielessPage(BaseHandler):
    """Base of handlers whose pages must work in an LMS frame that refuses cookies.

    Answers are never cached and send no Referer; pages load only files of this origin;
    errors are shown on LearnHub's error page, never JupyterHub's (which sets an _xsrf
    cookie).
    """

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        # Pages rendered from LearnHub's templates load only files of this origin.
        self.set_header("Content-Security-Policy", own_page_csp(self.settings.get("headers", {})))

    def _request_summary(self) -> str:
        # Tornado's warning for a refused request names it: without the secrets in its URL.
        return f"{self.request.method} {scrubbed_uri(self.request.uri)} ({self.request.remote_ip})"

    def render_page(self, name: str, **ns) -> str:
        """Render one of LearnHub's standalone templates.

        Not BaseHandler.render_template: its namespace reads xsrf_token, which sets an
        _xsrf cookie, and LMS launches must work without setting any cookie.
        """
        return self.get_template(name, sync=True).render(base_url=self.hub.base_url, **ns)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LaunchError):
            message = exc.message
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            message = "Something went wrong on our side while opening your workspace."
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            self.render_page("learnhub-error.html", status_code=status_code, message=message)
        )
