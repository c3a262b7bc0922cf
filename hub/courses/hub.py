"""The hub's side of courses: staff access to a course's grader server, and formgrader."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from jupyterhub import orm, roles
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from learnhub_singleuser.headers import sent_from_this_site

from ..identity import CourseRole, LinkError, group_name, link_assignment
from ..pages import CookielessPage
from ..request_body import LimitedBody
from ..tokens import FORMGRADER_TOKEN_NOTE, MIN_SESSION_LIFETIME, SESSION_TOKEN_NOTE
from ..upstream import skip_oauth_confirmation, wait_for_spawn
from .coursedir import COURSE_ID, grader_username

# Where handlers find the hub's CourseAccess: a key of JupyterHub.tornado_settings.
COURSES_SETTINGS_KEY = "learnhub_courses"

log = logging.getLogger("learnhub.courses")


def staff_role_name(course_id: str) -> str:
    return f"learnhub-staff-{course_id}"


def staff_role(course_id: str) -> dict:
    """May use the course's grader server (formgrader) and start it; nothing else."""
    grader = grader_username(course_id)
    return {
        "name": staff_role_name(course_id),
        "description": f"Instructors and TAs of course {course_id}: its formgrader",
        "scopes": [f"access:servers!user={grader}", f"servers!user={grader}"],
        # Kept across hub restarts: JupyterHub deletes roles it did not load from config
        # unless an authenticator manages them.
        "managed_by_auth": True,
    }


@dataclass
class CourseAccess:
    """What the hub process knows of the course service: where it is and how to call it."""

    service_url: str
    service_prefix: str
    service_token: str

    def grant_staff_access(self, db, course_id: str) -> None:
        """The course's staff role, held by its instructor and TA groups (idempotent)."""
        role = orm.Role.find(db, staff_role_name(course_id))
        if role is None:
            role = roles.create_role(db, staff_role(course_id))
        for course_role in (CourseRole.INSTRUCTOR, CourseRole.TA):
            group = orm.Group.find(db, group_name(course_id, course_role))
            if group is not None and role not in group.roles:
                roles.grant_role(db, group, role.name, managed=True)

    def _sync_request(self, course_id: str, username: str | None = None) -> HTTPRequest:
        url = url_path_join(self.service_url, self.service_prefix, "api/courses", course_id, "sync")
        return HTTPRequest(
            url + (f"?{urlencode({'student': username})}" if username else ""),
            method="POST",
            body=b"",
            headers={"Authorization": f"token {self.service_token}"},
            request_timeout=60,
        )

    async def ensure(self, course_id: str, username: str | None = None) -> None:
        """Have the course service make the course now (waits for it)."""
        await AsyncHTTPClient().fetch(self._sync_request(course_id, username))

    async def catalog(self, course_id: str) -> list[dict]:
        """The course's assignments with titles and points (catalog.CatalogEntry as JSON)."""
        url = url_path_join(
            self.service_url, self.service_prefix, "api/courses", course_id, "catalog"
        )
        response = await AsyncHTTPClient().fetch(
            url, headers={"Authorization": f"token {self.service_token}"}, request_timeout=60
        )
        return json.loads(response.body)["assignments"]

    def notify(self, course_id: str, username: str) -> None:
        """Tell the course service about a launch, without making the launch wait."""

        async def send():
            try:
                await self.ensure(course_id, username)
            except (HTTPClientError, OSError) as e:
                # The service makes the course on the first exchange call anyway.
                log.warning("Course service did not take course %s yet: %s", course_id, e)

        IOLoop.current().spawn_callback(send)


def course_access(tornado_settings) -> CourseAccess | None:
    """The hub's CourseAccess, from the plain values update_courses put in tornado_settings
    (None when the course service is not configured)."""
    values = tornado_settings.get(COURSES_SETTINGS_KEY)
    return CourseAccess(**values) if values is not None else None


# Where a grader server takes that token (extensions/grader.py).
GRADER_SESSION_PATH = "learnhub/session"


def formgrader_token_scopes(course_id: str) -> list[str]:
    """What the handoff's token may do: use this course's grader server. It cannot read
    the hub API, start servers or mint tokens."""
    return [f"access:servers!server={grader_username(course_id)}/"]


def formgrader_page(assignment: str | None) -> str:
    """Formgrader's page of `assignment` (its submissions), or its front page; relative to
    the grader server (GRADER_NEXT_PAGE in extensions/grader.py admits these only)."""
    return f"formgrader/manage_submissions/{assignment}" if assignment else "formgrader/"


class FormgraderHandler(LimitedBody, CookielessPage):
    """/hub/learnhub/courses/<id>/formgrader: open the course's formgrader, staff only.

    GET works with the hub's login cookie (staff who logged in directly). POST takes the
    LMS launch token in the form body (JupyterLab posts it into a new tab): an LMS session
    has no hub cookie, and a token must not travel in a URL. The POST sets nothing and
    grants nothing until the token's owner is known to be staff of the course; it then
    mints a token for that course's grader server only, expiring with the launch token,
    and hands it to the grader server in a form post (extensions/grader.py), which keeps it
    in its own cookie. The hub's login cookie is never set: a launch token stays a launch
    token.
    """

    def check_xsrf_cookie(self):
        # The POST is authenticated by the token in its body, which a forged cross-site
        # form cannot know, and must come from a page of this site (sent_from_this_site);
        # GET changes nothing but starting the grader server.
        return

    @property
    def courses(self) -> CourseAccess:
        return course_access(self.settings)

    async def get(self, course_id=None):
        user = self.current_user
        if user is None:
            raise web.HTTPError(
                403,
                "Open formgrader from JupyterLab (Course menu) after launching from your "
                "course, or log in first.",
            )
        course_id = self.staff_course(user.name, course_id)
        if course_id is None:
            self.render_choice(user.name, token=None)
            return
        grader = await self.ready_grader(course_id)
        # The grader server's own OAuth, on the hub cookie this person already has.
        self.redirect(url_path_join(grader.url, formgrader_page(self.assignment())))

    async def post(self, course_id=None):
        # Only JupyterLab on this origin posts here: a form from another site could hand a
        # victim's browser a formgrader session of the attacker's (login CSRF).
        if not sent_from_this_site(self.request.headers, self.request.host):
            raise web.HTTPError(403, "Open formgrader from JupyterLab on this site.")
        token = self.get_body_argument("token", "")
        found = orm.APIToken.find(self.db, token) if token else None
        # Only an LMS launch's own session token, unexpired (find skips expired ones).
        if found is None or found.user is None or found.note != SESSION_TOKEN_NOTE:
            raise web.HTTPError(
                403, "Your session has expired: open the activity again from your course."
            )
        # The row as stored: the hub's session may hold a copy loaded before it changed.
        self.db.refresh(found)
        username = found.user.name
        course_id = self.staff_course(username, course_id)
        if course_id is None:
            self.render_choice(username, token=token)
            return
        grader = await self.ready_grader(course_id)
        lifetime = remaining_lifetime(found)
        user = self.user_from_username(username)
        grader_token = user.new_api_token(
            note=FORMGRADER_TOKEN_NOTE,
            expires_in=lifetime,
            scopes=formgrader_token_scopes(course_id),
        )
        self.log.info("Formgrader of course %s opened for %s", course_id, username)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            self.render_page(
                "learnhub-formgrader-handoff.html",
                action=url_path_join(grader.url, GRADER_SESSION_PATH),
                token=grader_token,
                lifetime=lifetime,
                next=formgrader_page(self.assignment()),
            )
        )

    def assignment(self) -> str | None:
        """The assignment to open formgrader on (an assignment link's), if any."""
        try:
            return link_assignment(self.get_argument("assignment", None))
        except LinkError as e:
            raise web.HTTPError(400, str(e)) from None

    def staff_course(self, username: str, course_id: str | None) -> str | None:
        """The course to open: the one asked for, or the person's only one as staff (None
        when they teach several and must choose). 403 unless they are its staff."""
        store = self.authenticator.store
        if course_id is None:
            staff = [e for e in store.enrollments_of(username) if e.is_staff]
            if len(staff) > 1:
                return None
            if not staff:
                raise web.HTTPError(
                    403, "Only the course's instructors and TAs can open formgrader."
                )
            course_id = staff[0].course_id
        enrollment = store.enrollment(username, course_id) if COURSE_ID.match(course_id) else None
        if enrollment is None or not enrollment.is_staff:
            raise web.HTTPError(403, "Only the course's instructors and TAs can open formgrader.")
        return course_id

    def render_choice(self, username: str, token: str | None) -> None:
        """A person who teaches several courses picks one; with a launch token each choice
        posts it again (in the page, never in a URL)."""
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            self.render_page(
                "learnhub-courses.html",
                courses=courses_of(self.authenticator.store, username, self.hub),
                token=token,
            )
        )

    async def ready_grader(self, course_id: str):
        """The course's staff role granted, its course made, its grader server running."""
        self.courses.grant_staff_access(self.db, course_id)
        try:
            await self.courses.ensure(course_id)
        except (HTTPClientError, OSError) as e:
            self.log.error("Course service could not prepare course %s: %s", course_id, e)
            raise web.HTTPError(503, "The course service is not answering; try again.") from e
        grader = self.user_from_username(grader_username(course_id))
        spawner = grader.spawner
        # The course's own tool, opened by its staff: no "authorize access?" page. The set is
        # JupyterHub's, read at each OAuth request.
        skip_oauth_confirmation(self.settings, spawner.oauth_client_id)
        if not spawner.ready:
            if not spawner.pending:
                await self.spawn_single_user(grader)
            await wait_for_spawn(spawner)
        return grader


def remaining_lifetime(token: orm.APIToken) -> int:
    """Whole seconds until `token` expires (at least 1); a token without an expiry, which
    launches never mint, gets the shortest launch lifetime."""
    if token.expires_at is None:
        return MIN_SESSION_LIFETIME
    seconds = (token.expires_at - orm.APIToken.now()).total_seconds()
    return max(1, int(seconds))


def courses_of(store, username: str, hub) -> list[dict]:
    """A person's courses, their role, and for staff the way to the course's formgrader."""
    courses = []
    for enrollment in store.enrollments_of(username):
        record = store.course(enrollment.course_id)
        formgrader = url_path_join(
            hub.base_url, "learnhub/courses", enrollment.course_id, "formgrader"
        )
        courses.append(
            {
                "course_id": enrollment.course_id,
                "title": record.title if record else enrollment.course_id,
                "role": enrollment.role,
                "formgrader": formgrader if enrollment.is_staff else None,
            }
        )
    return courses


class CoursesOfUserHandler(BaseHandler):
    """/hub/learnhub/courses: the signed-in person's courses, as JSON for hub pages."""

    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {"courses": courses_of(self.authenticator.store, self.current_user.name, self.hub)}
            )
        )


def course_handlers() -> list[tuple[str, type]]:
    """Handlers under the hub's prefix, for the authenticator's get_handlers."""
    return [
        (r"/learnhub/courses", CoursesOfUserHandler),
        (r"/learnhub/courses/([^/]+)/formgrader", FormgraderHandler),
        (r"/learnhub/formgrader", FormgraderHandler),
    ]
