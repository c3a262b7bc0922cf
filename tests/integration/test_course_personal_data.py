"""What courses keep about a learner: exported whole, scrubbed, removed, erased, and nothing
about anyone else touched."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import pytest
from nbgrader.api import Gradebook

from learnhub.courses.personal_data import CourseDataStore
from learnhub.grading.queue import GradingQueue
from learnhub.passback import GradeOutbox
from learnhub.privacy.erasure import stores
from tests.integration import test_grading_service as grading
from tests.integration.test_grading_service import COURSE

pytestmark = pytest.mark.integration

# A course with ps1 released and eight learners' submissions queued (see test_grading_service).
course = grading.course


class DeletedUsers:
    """The hub's REST API as the store sees it: only delete_user is called."""

    def __init__(self):
        self.deleted: list[str] = []

    def delete_user(self, name: str) -> bool:
        self.deleted.append(name)
        return True


@dataclass
class Context:
    settings: object
    store: object
    hub: object


def test_export_scrub_remove_and_erase(course):
    env, store, courses, students = course
    from learnhub.settings import load_settings

    settings = load_settings(environ=env)
    learner, other = sorted(students)[:2]
    with Gradebook(courses.gradebook_url(COURSE), course_id=COURSE) as gb:
        gb.update_or_create_student(learner, first_name="Ada", last_name="Lovelace",
                                    email="ada@example.org")  # fmt: skip
        gb.update_or_create_student(other, first_name="Alan", last_name="Turing",
                                    email="alan@example.org")  # fmt: skip
    GradeOutbox(store).enqueue(learner, COURSE, "ps1", 2.0, 3.0)
    GradeOutbox(store).enqueue(other, COURSE, "ps1", 1.0, 3.0)
    hub = DeletedUsers()
    data = CourseDataStore(Context(settings, store, hub))
    assert any(isinstance(s, CourseDataStore) for s in stores(Context(settings, store, hub)))

    described = data.describe(learner)["courses"][COURSE]
    assert described["gradebook_entry"] and described["name_or_email_in_gradebook"]
    assert described["submissions"] == 1

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        assert data.export(learner, archive, "courses/") >= 3
    names = zipfile.ZipFile(buffer).namelist()
    blob = b"".join(zipfile.ZipFile(buffer).read(n) for n in names)
    assert f"courses/{COURSE}/gradebook.json" in names
    assert any(n.endswith("/ps1.ipynb") and "/submissions/ps1/" in n for n in names)
    assert any(n.startswith("courses/sent-to-lms/") for n in names)
    assert b"ada@example.org" in blob and b"alan@example.org" not in blob
    assert not any(other in n for n in names)

    assert data.scrub(learner) == 1
    with Gradebook(courses.gradebook_url(COURSE), course_id=COURSE) as gb:
        assert gb.find_student(learner).email is None
        assert gb.find_student(other).email == "alan@example.org"

    assert data.erase(learner) > 0
    assert data.describe(learner) == {"courses": {}}
    with Gradebook(courses.gradebook_url(COURSE), course_id=COURSE) as gb:
        assert {s.id for s in gb.students} == {other}
    assert not (courses.root.parent / "exchange" / COURSE / "inbound" / learner).exists()
    assert [j for j in GradingQueue(store).jobs() if j.student == learner] == []
    assert GradeOutbox(store).entries(username=learner) == []
    assert len(GradeOutbox(store).entries(username=other)) == 1

    # The course itself: its folders, its grader account, every row of it.
    assert data.erase_course(COURSE) > 0
    assert hub.deleted == [f"grader-{COURSE}"]
    assert not courses.path(COURSE).exists()
    assert GradingQueue(store).jobs(course_id=COURSE) == []
    assert GradeOutbox(store).entries(course_id=COURSE) == []
