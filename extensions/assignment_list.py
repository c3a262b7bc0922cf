"""nbgrader's Assignments panel with each course's title where it would show the course id."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from nbgrader.exchange import ExchangeError, ExchangeFactory
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

from .course_folders import clip, full_width, readable
from .exchange import LearnHubExchange

MAX_LABEL_CHARS = 80
# The panel puts the course into `assignments?course_id=<label>` unescaped: a label carries
# no path step, end of query, other argument, space or escape.
UNESCAPED_IN_QUERY = full_width("/\\#&+%")


def course_label(title: str | None, course_id: str) -> str:
    """What the panel shows for a course: its title as one line, safe in its query."""
    text = readable(title)
    if len(text) > MAX_LABEL_CHARS:
        text = clip(text, MAX_LABEL_CHARS - 1).rstrip() + "\u2026"
    return text.translate(UNESCAPED_IN_QUERY) or course_id


def course_labels(courses: Iterable[dict]) -> dict[str, str]:
    """course id -> its label, one per course and each different from every other label
    and every course id: the title; where titles clash, the title and the id; else the id."""
    titles = {c["course_id"]: c.get("title") for c in courses}
    labels = {course_id: course_label(title, course_id) for course_id, title in titles.items()}
    shared = Counter(labels.values())
    labels = {
        course_id: (
            label
            if label == course_id or (shared[label] == 1 and label not in titles)
            else f"{label} ({course_id})"
        )
        for course_id, label in labels.items()
    }
    # A title spelled like another course's "title (id)": both courses show their ids.
    shared = Counter(labels.values())
    return {cid: label if shared[label] == 1 else cid for cid, label in labels.items()}


def course_id_of(value: str, labels: dict[str, str]) -> str:
    """The course id a label (or an id: assignment links and scripts send ids) stands for;
    anything else unchanged, for the course service to refuse."""
    if value in labels:
        return value
    return next((cid for cid, label in labels.items() if label == value), value)


class TitledAssignmentList(AssignmentList):
    """nbgrader's assignment list manager, speaking in course labels to the panel.

    The panel (nbgrader's JupyterLab extension, not rebuilt here) shows the `course_id` of
    the server's answers as text, in its course dropdown and each assignment's course
    column, and sends that same string back as the course of every list, fetch, submit
    and feedback request. So the answers carry labels, and a label that comes back is
    turned into the course id before nbgrader's code runs: the exchange, the gradebook and
    passback see course ids only.

    Overridden: what nbgrader's handlers call with the panel's course, list_assignments
    (whose labels list_courses collects), fetch_assignment, fetch_feedback and
    submit_assignment. list_released_assignments and list_submitted_assignments, which
    LearnHub's assignment links call with a course id, keep nbgrader's answers.
    """

    def labels(self) -> dict[str, str]:
        """The learner's courses' labels, from the course service; none (ids shown as they
        are) when it cannot say."""
        with self.get_assignment_dir_config() as config:
            exchange = ExchangeFactory(config=config).List(config=config)
            if not isinstance(exchange, LearnHubExchange):
                return {}
            try:
                return course_labels(exchange.courses())
            except ExchangeError:
                return {}

    def list_assignments(self, course_id=None):
        labels = self.labels()
        if course_id:
            course_id = course_id_of(course_id, labels)
        listed = super().list_assignments(course_id=course_id)
        if listed["success"]:
            for item in listed["value"]:
                for entry in (item, *item.get("submissions", [])):
                    entry["course_id"] = labels.get(entry["course_id"], entry["course_id"])
        return listed

    def fetch_assignment(self, course_id, assignment_id):
        return super().fetch_assignment(course_id_of(course_id, self.labels()), assignment_id)

    def fetch_feedback(self, course_id, assignment_id):
        return super().fetch_feedback(course_id_of(course_id, self.labels()), assignment_id)

    def submit_assignment(self, course_id, assignment_id):
        return super().submit_assignment(course_id_of(course_id, self.labels()), assignment_id)


def show_course_titles(settings: dict) -> bool:
    """Put TitledAssignmentList in place of nbgrader's manager (once nbgrader's assignment
    list has loaded, which reads it from the settings at each request); whether it did."""
    manager = settings.get("assignment_list_manager")
    if not isinstance(manager, AssignmentList) or isinstance(manager, TitledAssignmentList):
        return False
    titled = TitledAssignmentList(parent=manager.parent)
    titled.root_dir = manager.root_dir
    settings["assignment_list_manager"] = titled
    return True
