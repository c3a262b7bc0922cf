"""The hub's side of courses: staff access to a course's grader server, and formgrader."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from jupyterhub import orm, roles
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from ..identity import CourseRole, group_name
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

    def notify(self, course_id: str, username: str) -> None:
        """Tell the course service about a launch, without making the launch wait."""

        async def send():
            try:
                await self.ensure(course_id, username)
            except (HTTPClientError, OSError) as e:
                # The service makes the course on the first exchange call anyway.
                log.warning("Course service did not take course %s yet: %s", course_id, e)

        IOLoop.current().spawn_callback(send)


class FormgraderHandler(BaseHandler):
    """/hub/learnhub/courses/<id>/formgrader: open the course's formgrader, staff only.

    GET works with the hub's login cookie. POST takes the LMS launch token in the form
    body (JupyterLab posts it into a new tab): an LMS session has no hub cookie, and a
    token must not travel in a URL. The POST then sets the hub's login cookie in that
    first-party tab, which the grader server's OAuth needs.
    """

    def check_xsrf_cookie(self):
        # The POST is authenticated by the token in its body, which a forged cross-site
        # form cannot know; GET changes nothing but starting the grader server.
        return

    @property
    def courses(self) -> CourseAccess:
        return self.settings[COURSES_SETTINGS_KEY]

    async def get(self, course_id=None):
        user = self.current_user
        if user is None:
            raise web.HTTPError(
                403,
                "Open formgrader from JupyterLab (Course menu) after launching from your "
                "course, or log in first.",
            )
        await self.open_formgrader(user, course_id)

    async def post(self, course_id=None):
        from ..session import SESSION_TOKEN_NOTE  # the session module imports this one

        # Only JupyterLab on this origin posts here: a form from another site could log a
        # victim in as the attacker (login CSRF) with the attacker's own launch token.
        # Browsers say where a request comes from in Sec-Fetch-Site; Origin is "null" from
        # pages with Referrer-Policy: no-referrer (LearnHub's), so it decides only when set.
        site = self.request.headers.get("Sec-Fetch-Site")
        origin = self.request.headers.get("Origin")
        if (site is not None and site != "same-origin") or (
            origin not in (None, "null") and urlsplit(origin).netloc != self.request.host
        ):
            raise web.HTTPError(403, "Open formgrader from JupyterLab on this site.")
        token = self.get_body_argument("token", "")
        found = orm.APIToken.find(self.db, token) if token else None
        # Only an LMS launch's own session token, unexpired (find skips expired ones).
        if found is None or found.user is None or found.note != SESSION_TOKEN_NOTE:
            raise web.HTTPError(
                403, "Your session has expired: open the activity again from your course."
            )
        user = self.user_from_username(found.user.name)
        self.set_login_cookie(user)
        await self.open_formgrader(user, course_id)

    async def open_formgrader(self, user, course_id: str | None) -> None:
        store = self.authenticator.store
        if course_id is None:
            # From JupyterLab's Course menu: straight to the one course, or a choice.
            staff = [e for e in store.enrollments_of(user.name) if e.is_staff]
            if len(staff) != 1:
                self.set_header("Content-Type", "text/html; charset=utf-8")
                self.finish(
                    self.get_template("learnhub-courses.html", sync=True).render(
                        base_url=self.hub.base_url, courses=courses_of(store, user.name, self.hub)
                    )
                )
                return
            course_id = staff[0].course_id
        enrollment = store.enrollment(user.name, course_id) if COURSE_ID.match(course_id) else None
        if enrollment is None or not enrollment.is_staff:
            raise web.HTTPError(403, "Only the course's instructors and TAs can open formgrader.")
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
        self.settings.setdefault("oauth_no_confirm_list", set()).add(spawner.oauth_client_id)
        if not spawner.ready:
            if not spawner.pending:
                await self.spawn_single_user(grader)
            if spawner._spawn_future is not None:
                await spawner._spawn_future
        self.redirect(url_path_join(grader.url, "formgrader/"))


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
