"""The course service: makes nbgrader courses and keeps the exchange, authorising every call.

A managed hub service. Learner and grader servers call it with their own server token
(`$JUPYTERHUB_API_TOKEN`, which carries `access:services!service=learnhub-courses`); the
hub tells it about launches with the service's own token. Whether a caller may act in a
course comes from LearnHub's enrollments (written by the hub at each LMS launch), never
from anything the caller says about itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from jupyterhub.utils import url_path_join
from nbgrader.api import Gradebook, MissingEntry
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.ioloop import IOLoop

from ..grading.queue import GradingQueue
from ..lti13.keys import ToolKeys
from ..lti13.service_tokens import ServiceTokens
from ..service_app import ServiceApp, TokenHandler, TokenIdentities
from ..service_names import COURSE_SERVICE as SERVICE_NAME
from ..service_names import RETENTION_URL_ENV
from ..settings import load_settings
from ..stopping import stop_signal
from ..store import Store
from .catalog import course_catalog
from .coursedir import COURSE_ID, CourseDirectories, course_of_grader
from .exchange import (
    ASSIGNMENT_ID,
    SUBMISSION_ID,
    USERNAME,
    ExchangeRefused,
    ExchangeStore,
    Submission,
)
from .roster import RosterError, RosterSync

# The one answer to a call someone may not make, whether or not the thing exists.
NOT_ALLOWED = "You are not allowed to do this in this course."
TARBALL = "application/gzip"

log = logging.getLogger("learnhub.courses")


def role_in(store: Store, username: str, course_id: str) -> str | None:
    """'staff', 'learner' or None for someone with no part in the course."""
    if course_of_grader(username) == course_id:
        return "staff"
    enrollment = store.enrollment(username, course_id)
    if enrollment is None:
        return None
    return "staff" if enrollment.is_staff else "learner"


@dataclass
class CourseService:
    """Everything the handlers share: the stores, and how to recognise a caller."""

    store: Store
    courses: CourseDirectories
    exchange: ExchangeStore
    hub_api_url: str
    own_token: str
    # Called with each kept submission (the grading queue listens here).
    on_submission: list[Callable[[Submission], object]] = field(default_factory=list)
    # Reads LTI 1.3 courses' rosters (NRPS); None when rosters are not read.
    roster: RosterSync | None = None

    def __post_init__(self):
        self.identities = TokenIdentities(self.hub_api_url, self.own_token, SERVICE_NAME)

    def role_in(self, username: str, course_id: str) -> str | None:
        return role_in(self.store, username, course_id)

    def ensure_course(self, course_id: str, username: str | None = None) -> bool:
        """Make the course (if launched from the LMS) and enrol its learners; idempotent.

        A new course gets every enrolled learner; after that, a launch brings only the
        learner who launched (one gradebook write, whatever the size of the course).
        """
        if self.store.course(course_id) is None:
            return False
        created = self.courses.ensure(course_id)
        if created or username is None:
            enrollments = self.store.enrollments_in(course_id)
        else:
            enrollment = self.store.enrollment(username, course_id)
            enrollments = [enrollment] if enrollment else []
        self.courses.sync_students(course_id, enrollments)
        if created:
            log.info("Created course %s", course_id)
        return True

    def duedate(self, course_id: str, assignment_id: str):
        with Gradebook(self.courses.gradebook_url(course_id), course_id=course_id) as gb:
            try:
                return gb.find_assignment(assignment_id).duedate
            except MissingEntry:
                return None


class ServiceHandler(TokenHandler):
    service: CourseService
    service_title = "course service"
    log = log

    def initialize(self, service: CourseService) -> None:
        self.service = service

    def identities(self) -> TokenIdentities:
        return self.service.identities

    def send_tarball(self, data: bytes | None, what: str) -> None:
        if data is None:
            raise web.HTTPError(404, f"{what} was not found.")
        self.set_header("Content-Type", TARBALL)
        self.finish(data)

    async def course_role(self, course_id: str, *, staff: bool = False) -> str:
        """The caller's role in the course, or 403: the same 403 for every reason."""
        role = (
            None
            if self.caller.is_service
            else self.service.role_in(self.caller.username, course_id)
        )
        if role is None or (staff and role != "staff") or not COURSE_ID.match(course_id):
            raise web.HTTPError(403, NOT_ALLOWED)
        if not self.service.courses.exists(course_id):
            await asyncio.to_thread(self.service.ensure_course, course_id)
        return role

    def check_assignment(self, assignment_id: str) -> None:
        if not ASSIGNMENT_ID.match(assignment_id):
            raise web.HTTPError(400, f"{assignment_id!r} is not a valid assignment name.")


class CoursesHandler(ServiceHandler):
    """GET api/courses: the caller's courses and their role in each."""

    def get(self):
        username = self.caller.username
        grader_course = course_of_grader(username)
        courses = []
        if grader_course:
            record = self.service.store.course(grader_course)
            if record:
                courses.append({"course_id": record.id, "title": record.title, "role": "staff"})
        for enrollment in self.service.store.enrollments_of(username):
            record = self.service.store.course(enrollment.course_id)
            courses.append(
                {
                    "course_id": enrollment.course_id,
                    "title": record.title if record else enrollment.course_id,
                    "role": "staff" if enrollment.is_staff else "learner",
                }
            )
        self.send_json({"courses": courses})


class SyncHandler(ServiceHandler):
    """POST api/courses/<id>/sync: the hub says someone launched; make the course now."""

    async def post(self, course_id):
        if not self.caller.is_service or not COURSE_ID.match(course_id):
            raise web.HTTPError(403, NOT_ALLOWED)
        username = self.get_query_argument("student", None)
        known = await asyncio.to_thread(self.service.ensure_course, course_id, username)
        if not known:
            raise web.HTTPError(404, "No launch from this course has been recorded.")
        roster = self.service.roster
        if roster is not None and roster.due(course_id):
            IOLoop.current().spawn_callback(read_roster, roster, course_id)
        self.send_json({"course_id": course_id, "ready": True})


async def read_roster(roster: RosterSync, course_id: str) -> None:
    """A roster read prompted by a launch: its failure is logged, the launch goes on."""
    try:
        await roster.sync(course_id)
    except (RosterError, HTTPClientError, OSError) as e:
        log.warning("Roster of %s not read: %s", course_id, e)


class RosterHandler(ServiceHandler):
    """POST api/courses/<id>/roster[?whole=1]: read the LMS's roster now (the hub's token or
    the course's staff); answers what changed."""

    async def post(self, course_id):
        if not (self.caller.is_service and COURSE_ID.match(course_id)):
            await self.course_role(course_id, staff=True)
        if self.service.roster is None:
            raise web.HTTPError(404, "Rosters are not read here (courses.roster_sync_minutes).")
        try:
            changes = await self.service.roster.sync(
                course_id, full=self.get_query_argument("whole", "") == "1"
            )
        except (RosterError, HTTPClientError, OSError) as e:
            raise web.HTTPError(502, f"The LMS's roster could not be read: {e}") from None
        self.send_json(changes)


class AssignmentsHandler(ServiceHandler):
    """GET api/courses/<id>/assignments: what is released."""

    async def get(self, course_id):
        await self.course_role(course_id)
        self.send_json({"assignments": self.service.exchange.released(course_id)})


class CatalogHandler(ServiceHandler):
    """GET api/courses/<id>/catalog: every assignment (sources and releases) with its title
    and points, for the hub's deep-linking picker (the hub's token) or the course's staff."""

    async def get(self, course_id):
        if not (self.caller.is_service and COURSE_ID.match(course_id)):
            await self.course_role(course_id, staff=True)
        if not self.service.courses.exists(course_id):
            known = await asyncio.to_thread(self.service.ensure_course, course_id)
            if not known:
                raise web.HTTPError(404, "No launch from this course has been recorded.")
        entries = await asyncio.to_thread(
            course_catalog,
            self.service.courses.path(course_id),
            self.service.exchange.course(course_id) / "outbound",
        )
        self.send_json({"course_id": course_id, "assignments": [e.as_json() for e in entries]})


class AssignmentHandler(ServiceHandler):
    """The files of a released assignment: GET (members), PUT and DELETE (staff)."""

    async def get(self, course_id, assignment_id):
        await self.course_role(course_id)
        self.check_assignment(assignment_id)
        data = await asyncio.to_thread(
            self.service.exchange.released_files, course_id, assignment_id
        )
        self.send_tarball(data, f"Assignment {assignment_id}")

    async def put(self, course_id, assignment_id):
        await self.course_role(course_id, staff=True)
        self.check_assignment(assignment_id)
        try:
            files = await asyncio.to_thread(
                self.service.exchange.release, course_id, assignment_id, self.request.body
            )
        except ExchangeRefused as e:
            raise web.HTTPError(400, str(e)) from None
        log.info("Released %s in %s (%d files)", assignment_id, course_id, len(files))
        self.send_json({"assignment_id": assignment_id, "files": files}, status=201)

    async def delete(self, course_id, assignment_id):
        await self.course_role(course_id, staff=True)
        self.check_assignment(assignment_id)
        removed = self.service.exchange.unrelease(course_id, assignment_id)
        self.send_json({"assignment_id": assignment_id, "removed": removed})


class SubmissionsHandler(ServiceHandler):
    """GET: submissions (a learner's own, or everyone's for staff); POST: submit."""

    async def get(self, course_id, assignment_id):
        role = await self.course_role(course_id)
        if assignment_id != "*":
            self.check_assignment(assignment_id)
        student = self.get_query_argument("student", None)
        if role != "staff":
            student = self.caller.username
        elif student is not None and not USERNAME.match(student):
            raise web.HTTPError(400, f"{student!r} is not a valid student name.")
        submissions = await asyncio.to_thread(
            self.service.exchange.submissions,
            course_id,
            None if assignment_id == "*" else assignment_id,
            student,
        )
        self.send_json({"submissions": [s.as_json() for s in submissions]})

    async def post(self, course_id, assignment_id):
        await self.course_role(course_id)
        self.check_assignment(assignment_id)
        duedate = await asyncio.to_thread(self.service.duedate, course_id, assignment_id)
        try:
            submission = await asyncio.to_thread(
                self.service.exchange.submit,
                course_id,
                assignment_id,
                self.caller.username,
                self.request.body,
                duedate=duedate,
            )
        except ExchangeRefused as e:
            raise web.HTTPError(400, f"Submission refused: {e}.") from None
        log.info("Kept a submission of %s in %s", assignment_id, course_id)
        # The learner sees "submitted" only once the files are on disk and queued.
        for listener in self.service.on_submission:
            await asyncio.to_thread(listener, submission)
        self.send_json(submission.as_json(), status=201)


class SubmissionHandler(ServiceHandler):
    """One submission's files (staff, or the learner who made it) and its feedback."""

    async def find(self, course_id, assignment_id, student, submission_id) -> Submission:
        role = await self.course_role(course_id)
        if role != "staff" and student != self.caller.username:
            raise web.HTTPError(403, NOT_ALLOWED)
        self.check_assignment(assignment_id)
        if not USERNAME.match(student) or not SUBMISSION_ID.match(submission_id):
            raise web.HTTPError(404, "Submission was not found.")
        submission = self.service.exchange.submission(
            course_id, assignment_id, student, submission_id
        )
        if submission is None:
            raise web.HTTPError(404, "Submission was not found.")
        return submission

    async def get(self, course_id, assignment_id, student, submission_id, feedback):
        submission = await self.find(course_id, assignment_id, student, submission_id)
        if feedback:
            data = await asyncio.to_thread(self.service.exchange.feedback_files, submission)
            self.send_tarball(data, "Feedback")
        else:
            data = await asyncio.to_thread(self.service.exchange.submission_files, submission)
            self.send_tarball(data, "Submission")

    async def put(self, course_id, assignment_id, student, submission_id, feedback):
        if not feedback:
            raise web.HTTPError(405, "Submissions cannot be changed once kept.")
        await self.course_role(course_id, staff=True)
        submission = await self.find(course_id, assignment_id, student, submission_id)
        try:
            files = await asyncio.to_thread(
                self.service.exchange.release_feedback, submission, self.request.body
            )
        except ExchangeRefused as e:
            raise web.HTTPError(400, str(e)) from None
        self.send_json({"submission_id": submission_id, "files": files}, status=201)


NAME = r"([^/]+)"


def make_app(service: CourseService, prefix: str) -> web.Application:
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    api = prefix + "api/courses"
    args = {"service": service}
    limit = service.exchange.submission_limit_bytes * 4 + 1_000_000
    return web.Application(
        [
            (rf"{api}", CoursesHandler, args),
            (rf"{api}/{NAME}/sync", SyncHandler, args),
            (rf"{api}/{NAME}/assignments", AssignmentsHandler, args),
            (rf"{api}/{NAME}/catalog", CatalogHandler, args),
            (rf"{api}/{NAME}/roster", RosterHandler, args),
            (rf"{api}/{NAME}/assignments/{NAME}", AssignmentHandler, args),
            (rf"{api}/{NAME}/assignments/{NAME}/submissions", SubmissionsHandler, args),
            (
                rf"{api}/{NAME}/assignments/{NAME}/submissions/{NAME}/{NAME}(/feedback)?",
                SubmissionHandler,
                args,
            ),
        ],
        max_body_size=limit,
    )


def service_from_environment(environ=os.environ) -> CourseService:
    """Build the service from the settings and what JupyterHub gives a managed service."""
    settings = load_settings(environ=environ)
    service = CourseService(
        store=Store(settings.database_url, settings.crypt_key),
        courses=CourseDirectories.from_settings(settings, environ),
        exchange=ExchangeStore(
            settings.state_dir / "exchange",
            submission_limit_bytes=settings["courses"]["submission_limit_mb"] * 1_000_000,
        ),
        hub_api_url=environ["JUPYTERHUB_API_URL"],
        own_token=environ["JUPYTERHUB_API_TOKEN"],
    )
    # Each kept submission goes into the grading queue (the grading service's workers
    # take it from there; the queue lives in the platform database).
    queue = GradingQueue(service.store)
    service.on_submission.append(
        lambda s: queue.enqueue(s.course_id, s.assignment_id, s.student, s.id, s.timestamp)
    )
    minutes = settings["courses"]["roster_sync_minutes"]
    if minutes is not None:
        service.roster = RosterSync(
            store=service.store,
            tokens=ServiceTokens(ToolKeys(service.store)),
            pseudonym_key=settings.pseudonym_key,
            add_students=service.courses.sync_students,
            remove=functools.partial(
                remove_learner, environ.get(RETENTION_URL_ENV, ""), service.own_token
            ),
            keep_names=settings["courses"]["roster_names"],
            interval=minutes * 60,
        )
    return service


async def remove_learner(retention_url: str, token: str, course_id: str, username: str) -> None:
    """Remove a learner who left the LMS's roster, as `learnhub course remove-student` does:
    the retention service's removal, which reaches every store that keeps them."""
    if not retention_url:
        raise RosterError("the retention service is not running: nobody can be removed")
    url = url_path_join(retention_url, "api/courses", course_id, "people", username)
    response = await AsyncHTTPClient().fetch(
        url, method="DELETE", headers={"Authorization": f"token {token}"}, request_timeout=120,
        raise_error=False,
    )  # fmt: skip
    if response.code not in (200, 404):
        raise RosterError(f"the retention service answered {response.code} removing {username}")


class CourseServiceApp(ServiceApp):
    """learnhub-courses: makes the courses and keeps the exchange."""

    name = SERVICE_NAME

    async def serve(self) -> None:
        """Serve until the hub stops the service (SIGINT, or SIGTERM)."""
        service = service_from_environment()
        service.courses.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        service.exchange.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        server = self.listen(make_app(service, self.prefix), xheaders=False)
        await stop_signal(SERVICE_NAME, log)
        server.stop()
        # Open connections are closed; a file still being written finishes in its thread
        # before the process ends (asyncio.run waits for those threads).
        await server.close_all_connections()


main = CourseServiceApp.launch_instance


if __name__ == "__main__":
    main()
