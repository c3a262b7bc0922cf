"""Pages of a learner's own server that JupyterLab opens in a new tab (My Data, My
Submissions) or an assignment's link lands on, and the hub services they ask as this
server's user.

Inside an LMS frame without cookies the session's token is all the browser has, and it
must not go in an address: JupyterLab posts it in a form whose target is the new tab
(labextension-src/src/links.ts). A page answers that POST only when a page of this site
sent it and the token is this server's user's own, and answers GET as any request of
this server (a token header, a direct login's cookie).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .cookieless import request_token
from .headers import sent_from_this_site
from .upstream import no_xsrf_cookie

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 16384
TEMPLATE_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
)


class HubService:
    """One of the hub's services, asked as this server's user (its JUPYTERHUB_API_TOKEN
    carries access:services!service=<name>; the hub's spawner sets the URL variable)."""

    def __init__(self, url: str, token: str, username: str, what: str = "service"):
        self.url = url.rstrip("/") + "/"
        self.token = token
        self.username = username
        self.what = what  # for the learner: "the <what> cannot be reached"

    @classmethod
    def from_environment(cls, url_variable: str, what: str):
        url = os.environ.get(url_variable)
        if not url:
            raise web.HTTPError(503, "this server was not started by a LearnHub hub")
        return cls(url, os.environ["JUPYTERHUB_API_TOKEN"], os.environ["JUPYTERHUB_USER"], what)

    async def fetch(
        self, path: str, method: str = "GET", body: Any = None, timeout: float = 300
    ) -> bytes:
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            raise web.HTTPError(
                502, f"the {self.what} answered {e.code}; please try again later"
            ) from None
        except OSError:
            raise web.HTTPError(503, f"the {self.what} cannot be reached right now") from None
        return response.body


class LearnerHandler(JupyterHandler):
    """Base: token sessions need no XSRF cookie; answers are never cached."""

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    async def prepare(self):
        # Reading xsrf_token (an error page does) would set an _xsrf cookie; requests here
        # carry the session's token, which skips XSRF checks, so none is needed.
        no_xsrf_cookie(self)
        result = super().prepare()
        if inspect.isawaitable(result):
            await result

    def finish_template(self, name: str, **values) -> None:
        page = TEMPLATE_ENVIRONMENT.get_template(name).render(**values)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)


class LearnerPage(LearnerHandler):
    """A page opened from JupyterLab: GET as usual, or POST with the session's token."""

    # What the page is and where the learner opens it, for the refusal of a POST that no
    # page of this site sent.
    title = "this page"
    opened_from = "JupyterLab"

    def check_xsrf_cookie(self):
        # The POST is authenticated by the token in its body and must come from a page of
        # this site; no cookie is involved.
        if self.request.method != "POST":
            super().check_xsrf_cookie()

    @web.authenticated
    async def get(self):
        await self.render_page(request_token(self))

    @allow_unauthenticated
    async def post(self):
        if len(self.request.body) > MAX_FORM_BYTES:
            raise web.HTTPError(413, "This request is too large.")
        if not sent_from_this_site(self.request.headers, self.request.host):
            raise web.HTTPError(403, f"Open {self.title} from {self.opened_from} on this site.")
        token = self.get_body_argument("token", "")
        hub_auth = getattr(self.identity_provider, "hub_auth", None)
        user = None
        if token and hub_auth is not None:
            user = await hub_auth.user_for_token(token, use_cache=False, sync=False)
        if (
            not user
            or user.get("name") != os.environ.get("JUPYTERHUB_USER")
            or not hub_auth.check_scopes(hub_auth.access_scopes, user)
        ):
            raise web.HTTPError(403, "Your session has expired: open the activity again.")
        await self.render_page(token)

    async def render_page(self, token: str) -> None:
        raise NotImplementedError


def script_json(value) -> str:
    """`value` as JSON that is safe inside a <script> element of a template."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
