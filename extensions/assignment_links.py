"""Where an assignment's LMS link lands in the person's server.

An instructor adds one LMS link per assignment, with the custom parameter
`assignment=<name>`; the hub's launch sends the frame here, to
learnhub/assignment/<course>/<assignment> (learnhub.session.landing_url), and this server
opens that assignment:

- for a learner, it is fetched if it is released and not fetched yet, and JupyterLab opens
  on its notebook; one not released yet (or a name the course does not have) gets a page
  that says so, with JupyterLab a click away;
- for the course's staff, a page opens formgrader on the assignment's submissions in a new
  tab (formgrader is never framed), posting the launch token as Course > Formgrader does.

The person's role and the course's title come from the course service, asked with this
server's own token; fetching goes through nbgrader's own assignment list, so the course
service checks the enrollment as for the Assignments panel.
"""

from __future__ import annotations

import json
import logging
from pathlib import PurePosixPath
from urllib.parse import quote, urlencode

from jupyter_server.utils import url_path_join
from tornado import web

from .cookieless import request_token
from .learner_pages import HubService, LearnerHandler

PATH = "learnhub/assignment"
EXCHANGE_URL_ENV = "LEARNHUB_EXCHANGE_URL"
# The course id (learnhub.identity.course_id_for) and an assignment name
# (learnhub.identity.ASSIGNMENT_NAME) in the path.
NAMES = r"(c[a-z2-7]{11})/([A-Za-z0-9][A-Za-z0-9_.-]{0,99})"

log = logging.getLogger(__name__)


class AssignmentLinkPage(LearnerHandler):
    """GET learnhub/assignment/<course>/<assignment>: open what the link names."""

    @web.authenticated
    async def get(self, course_id: str, assignment: str):
        if ".." in assignment:
            raise web.HTTPError(404)
        token = request_token(self)
        course = await self.course(course_id)
        values = {
            "assignment": assignment,
            "course_title": course["title"],
            "lab_url": self.lab_url("lab", token),
        }
        if course["role"] == "staff":
            hub = self.settings.get("hub_host", "") + self.settings.get("hub_prefix", "/hub/")
            action = url_path_join(hub, "learnhub/courses", course_id, "formgrader")
            self.page("staff", formgrader=action, token=token, **values)
            return
        manager = self.settings.get("assignment_list_manager")
        if manager is None:
            raise web.HTTPError(503, "nbgrader's assignment list is not loaded in this server.")
        entry = self.listed(manager, course_id, assignment)
        if entry is not None and entry["status"] == "released":
            fetched = manager.fetch_assignment(course_id, assignment)
            if not fetched["success"]:
                self.unavailable(fetched, values)
                return
            entry = self.listed(manager, course_id, assignment)
        if entry is None or entry["status"] != "fetched":
            self.set_status(404)
            self.page("not-released", **values)
            return
        self.redirect(self.lab_url(f"lab/tree/{notebook_of(entry, assignment)}", token))

    async def course(self, course_id: str) -> dict:
        service = HubService.from_environment(EXCHANGE_URL_ENV, "course service")
        courses = json.loads(await service.fetch("api/courses", timeout=30))["courses"]
        course = next((c for c in courses if c["course_id"] == course_id), None)
        if course is None:
            raise web.HTTPError(
                403, "You are not in this course here: open the link from your course in the LMS."
            )
        return course

    def listed(self, manager, course_id: str, assignment: str) -> dict | None:
        # nbgrader's assignment list works in the process's current directory (it changes
        # it for a moment), so it is asked on the event loop, as its own handlers ask it.
        listed = manager.list_released_assignments(course_id=course_id)
        if not listed["success"]:
            self.unavailable(listed, {})
            raise web.Finish()
        found = [a for a in listed["value"] if a["assignment_id"] == assignment]
        fetched = [a for a in found if a["status"] == "fetched"]
        return (fetched or found or [None])[0]

    def unavailable(self, answer: dict, values: dict) -> None:
        log.error("LearnHub: assignment link: %s", answer.get("value"))
        self.set_status(503)
        self.page("unavailable", **values)

    def lab_url(self, path: str, token: str) -> str:
        url = url_path_join(self.base_url, quote(path))
        return f"{url}?{urlencode({'token': token})}" if token else url

    def page(self, state: str, **values) -> None:
        self.finish_template("learnhub-assignment.html", state=state, **values)


def notebook_of(entry: dict, assignment: str) -> str:
    """The notebook to open, relative to the server's root: the one named like the
    assignment, else the first."""
    notebooks = sorted(n["path"] for n in entry.get("notebooks", []))
    named = [p for p in notebooks if PurePosixPath(p).stem == assignment]
    return (named or notebooks or [entry["path"]])[0]


def assignment_link_handlers(base_url: str) -> list[tuple[str, type]]:
    return [(url_path_join(base_url, PATH, NAMES), AssignmentLinkPage)]
