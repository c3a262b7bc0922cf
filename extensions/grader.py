"""A course's grader server: the staff handoff from the hub, and sandboxed autograding.

The hub hands staff over with a token for this server alone, posted to learnhub/session,
which keeps it in this server's own cookie for browsers that allow one, and in the pages
for every browser (formgrader_session): formgrader works with every cookie blocked.

nbgrader's own autograde handler runs the learner's code in this server's kernel, with the
course's gradebook and every submission within reach. SandboxedAutogradeHandler, registered
before nbgrader's, asks LearnHub's grading service to grade the learner's latest submission
in a sandbox instead.

Formgrader gets a Grading Queue tab (learnhub/grading): the grading service's page of the
course's queue, asked with this server's token, so staff see in their formgrader tab which
submissions could not be graded and why, and what reached the LMS.
"""

from __future__ import annotations

import json
import os
import re

import requests
from jinja2 import BaseLoader
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .formgrader_session import SCRIPT_PATH, handoff_page, session_markup
from .headers import CSP, sent_from_this_site
from .learner_pages import TEMPLATES, HubService

GRADING_URL_ENV = "LEARNHUB_GRADING_URL"
SESSION_SCRIPT = TEMPLATES / "learnhub-formgrader-session.js"
SESSION_PATH = "learnhub/session"
QUEUE_PATH = "learnhub/grading"
# Where the handoff may send the browser on: formgrader, or one assignment's submissions
# (an assignment link's; learnhub.courses.hub.formgrader_page), nowhere else.
GRADER_NEXT_PAGE = re.compile(r"formgrader/(manage_submissions/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?")
# The relayed queue page: markup and inline styles of its own, nothing else, never framed.
QUEUE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# The longest a handoff's cookie may say it lives (the hub's longest launch session); the
# token inside it is what the hub checks, and it expires with the launch token.
MAX_SESSION_LIFETIME = 86400
MAX_FORM_BYTES = 16384
# How long this server trusts the hub's word on a token (HubAuth caches it for 300 s by
# default): a handed-over session must end soon after its token expires.
AUTH_CACHE_SECONDS = 10


def shorten_token_cache(hub_auth) -> None:
    """Make `hub_auth` ask the hub about a token again after AUTH_CACHE_SECONDS."""
    hub_auth.cache_max_age = AUTH_CACHE_SECONDS
    # The cache was built with the old lifetime; an empty one of the same kind replaces it.
    hub_auth.cache = type(hub_auth.cache)(AUTH_CACHE_SECONDS)


class FormgraderSessionHandler(JupyterHandler):
    """POST learnhub/session (token, lifetime, next): the hub's staff handoff.

    The token is checked with the hub: it must grant access to this server (the hub mints
    it with that one scope, for the course's staff only). It then goes into this server's
    cookie, path /user/grader-<course>/, expiring when the token does, and the browser
    goes on to formgrader by a POST navigation carrying the token (formgrader_session), so
    a browser that refused the cookie is let in too. Nothing else is set.
    """

    def check_xsrf_cookie(self):
        # Authenticated by the token in the body, which a forged form cannot know, and
        # refused unless a page of this site sent it (login CSRF).
        return

    @allow_unauthenticated
    async def post(self):
        if len(self.request.body) > MAX_FORM_BYTES:
            raise web.HTTPError(413, "This request is too large.")
        if not sent_from_this_site(self.request.headers, self.request.host):
            raise web.HTTPError(403, "Open formgrader from JupyterLab on this site.")
        hub_auth = self.identity_provider.hub_auth
        token = self.get_body_argument("token", "")
        user = await hub_auth.user_for_token(token, use_cache=False, sync=False) if token else None
        if not user or not hub_auth.check_scopes(hub_auth.access_scopes, user):
            raise web.HTTPError(
                403, "Your session has expired: open formgrader again from JupyterLab."
            )
        try:
            lifetime = int(self.get_body_argument("lifetime", "0"))
        except ValueError:
            lifetime = 0
        lifetime = min(max(lifetime, 1), MAX_SESSION_LIFETIME)
        # HubOAuth's own cookie (and its XSRF cookie) as after an OAuth login, then the same
        # cookie again with a lifetime of the token's instead of 30 days.
        hub_auth.set_cookie(self, token)
        self.set_secure_cookie(
            hub_auth.cookie_name,
            token,
            expires_days=None,
            max_age=lifetime,
            path=hub_auth.cookie_path,
            httponly=True,
            secure=self.request.protocol == "https",
            samesite="Strict",
        )
        self.log.info("Formgrader session handed over to %s", user["name"])
        page = self.get_body_argument("next", "")
        if not GRADER_NEXT_PAGE.fullmatch(page) or ".." in page:
            page = "formgrader/"
        # On to formgrader with the token in the page, whether the browser kept the cookie
        # or not (formgrader_session).
        next_url = url_path_join(self.base_url, page)
        markup = session_markup(token, base_url=self.base_url, next_url=next_url)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(handoff_page(markup, "Opening formgrader…"))


class SessionScript(JupyterHandler):
    """GET learnhub/formgrader-session.js: the script of staff sessions kept in the page.
    It holds no data, and a <script> request carries no token."""

    @allow_unauthenticated
    def get(self):
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.finish(SESSION_SCRIPT.read_text())


class SandboxedAutogradeHandler(APIHandler):
    """POST formgrader/api/submission/<assignment>/<student>/autograde."""

    @web.authenticated
    async def post(self, assignment_id: str, student_id: str):
        base = os.environ.get(GRADING_URL_ENV, "")
        course = os.environ.get("LEARNHUB_COURSE", "")
        if not base or not course:
            self.finish(json.dumps({"success": False, "error": "No grading service here."}))
            return
        try:
            response = await self._post(
                base.rstrip("/") + f"/api/courses/{course}/regrade",
                {"assignment_id": assignment_id, "student_id": student_id},
            )
        except requests.RequestException:
            self.finish(
                json.dumps({"success": False, "error": "The grading service is not answering."})
            )
            return
        if response.status_code != 202:
            message = response.json().get("message", f"grading service: {response.status_code}")
            self.finish(json.dumps({"success": False, "error": message}))
            return
        self.finish(
            json.dumps(
                {
                    "success": True,
                    "log": "Queued for autograding in the sandbox; the score appears here "
                    "when it is graded.",
                }
            )
        )

    async def _post(self, url: str, body: dict) -> requests.Response:
        from asyncio import to_thread

        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        return await to_thread(
            requests.post,
            url,
            json=body,
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )


class GradingQueuePage(JupyterHandler):
    """GET learnhub/grading: the course's grading queue, for the staff in formgrader's tab."""

    @web.authenticated
    async def get(self):
        course = os.environ.get("LEARNHUB_COURSE", "")
        if not course:
            raise web.HTTPError(404, "This server grades no course.")
        service = HubService.from_environment(GRADING_URL_ENV, "grading service")
        page = await service.fetch(f"api/courses/{course}/grading?format=html", timeout=30)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header(CSP, QUEUE_CSP)
        self.finish(page)


# Formgrader's tab bar, in each of its page templates: the queue goes after Manage Students.
_STUDENTS_TAB = re.compile(
    r'(<li role="presentation"[^>]*><a href="\{\{ base_url \}\}/formgrader/manage_students">'
    r"Manage Students</a></li>)"
)
QUEUE_TAB = (
    f'<li role="presentation"><a href="{{{{ base_url }}}}/{QUEUE_PATH}">Grading Queue</a></li>'
)


class QueueTabLoader(BaseLoader):
    """Formgrader's templates, with a Grading Queue tab beside Manage Students."""

    def __init__(self, loader: BaseLoader):
        self.loader = loader

    def get_source(self, environment, template):
        source, filename, uptodate = self.loader.get_source(environment, template)
        return _STUDENTS_TAB.sub(lambda m: m.group(1) + QUEUE_TAB, source), filename, uptodate

    def list_templates(self):
        return self.loader.list_templates()


def add_queue_tab(web_app) -> None:
    """Once nbgrader's formgrader is loaded: its pages get the Grading Queue tab."""
    environment = web_app.settings.get("nbgrader_jinja2_env")
    if environment is not None:
        environment.loader = QueueTabLoader(environment.loader)


def grader_handlers(base_url: str) -> list[tuple[str, type]]:
    return [
        (url_path_join(base_url, SESSION_PATH), FormgraderSessionHandler),
        (url_path_join(base_url, SCRIPT_PATH), SessionScript),
        (url_path_join(base_url, QUEUE_PATH), GradingQueuePage),
        (
            url_path_join(base_url, r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde"),
            SandboxedAutogradeHandler,
        ),
    ]
