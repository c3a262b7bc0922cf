"""What courses keep about a learner: exported whole, scrubbed, removed, erased, and nothing
about anyone else touched."""

from __future__ import annotations

import io
import os
import zipfile
from collections import Counter
from dataclasses import dataclass

import pytest
from nbgrader.api import Comment as NbComment
from nbgrader.api import Grade, Gradebook, SubmittedAssignment
from sqlalchemy import select

from learnhub.courses.exchange import ExchangeStore
from learnhub.courses.personal_data import CourseDataStore
from learnhub.grading.queue import GradingQueue
from learnhub.grading.service import GradeSnapshot
from learnhub.passback import GradeOutbox
from learnhub.privacy.erasure import PartlyErased, stores
from tests.integration import test_grading_service as grading
from tests.integration.test_grading_service import COURSE
from tests.support import tarball

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


# Several people in several courses: three of the grading course's learners are erased or
# scrubbed at once; the other five, and everything outside the courses, stay as they were.
OTHER = "cothercourse"
NO_GRADEBOOK = "cnogradebook"
# Valid names with nothing kept (already erased, say): more people than the store asks
# about one by one, so each course's folders are listed.
NOBODY = [f"nobody{n}" for n in range(10)]
# Never a path or a query parameter.
INVALID = ["../teacher", "Bad Name", "", "s0right/../x"]


def add_graded_submission(gradebook: Gradebook, student: str) -> None:
    """A gradebook student with a name and email, a submission of ps1, grades, a comment."""
    gradebook.update_or_create_student(
        student, first_name="First", last_name=student, email=f"{student}@example.org"
    )
    # nbgrader builds the submission's rows before adding them: an autoflush in between
    # only warns that it cannot flush them yet.
    with gradebook.db.no_autoflush:
        submission = gradebook.add_submission(grading.ASSIGNMENT, student)
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            grade.auto_score = 1.0
        for comment in notebook.comments:
            comment.manual_comment = f"well done, {student}"
    gradebook.db.commit()


def add_student_files(root, exchange, course_id: str, student: str) -> None:
    """What grading leaves in the course directory and the exchange: the learner's folders
    and released feedback."""
    for step in ("submitted", "autograded", "feedback"):
        folder = root / course_id / step / student / grading.ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{grading.ASSIGNMENT}.ipynb").write_text("{}")
    released = exchange.course(course_id) / "outbound" / grading.ASSIGNMENT
    if released.is_dir():
        notebook = (released / f"{grading.ASSIGNMENT}.ipynb").read_bytes()
        exchange.submit(
            course_id, grading.ASSIGNMENT, student,
            tarball({f"{grading.ASSIGNMENT}.ipynb": notebook}),
        )  # fmt: skip
    for submission in exchange.submissions(course_id, student=student):
        exchange.release_feedback(submission, tarball({"ps1.html": b"<p>ok</p>"}))


def gradebook_rows(courses, course_id: str) -> dict[str, Counter]:
    """How many rows each student has in nbgrader's tables."""
    with Gradebook(courses.gradebook_url(course_id), course_id=course_id) as gb:
        return {
            "student": Counter(s.id for s in gb.students),
            "submission": Counter(s.student_id for s in gb.db.query(SubmittedAssignment)),
            "grade": Counter(g.notebook.assignment.student_id for g in gb.db.query(Grade)),
            "comment": Counter(c.notebook.assignment.student_id for c in gb.db.query(NbComment)),
        }


def names_in_gradebook(courses, course_id: str) -> dict[str, tuple]:
    with Gradebook(courses.gradebook_url(course_id), course_id=course_id) as gb:
        return {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}


def folders_of(root, exchange, course_id: str) -> dict[str, set[str]]:
    """Who has a folder in each student folder of a course and its exchange."""
    folders = [root / course_id / step for step in ("submitted", "autograded", "feedback")]
    folders += [exchange.course(course_id) / kind for kind in ("inbound", "feedback")]
    return {
        folder.relative_to(folder.parents[2]).as_posix(): (
            set(os.listdir(folder)) if folder.is_dir() else set()
        )
        for folder in folders
    }


def platform_rows(store) -> dict[str, list[tuple]]:
    """Grading jobs, grade snapshots and queued grades: (course, person) of each row."""
    with store.session() as s:
        snapshots = s.execute(select(GradeSnapshot.course_id, GradeSnapshot.student)).all()
    return {
        "jobs": sorted((j.course_id, j.student) for j in GradingQueue(store).jobs()),
        "snapshots": sorted(tuple(row) for row in snapshots),
        "outbox": sorted((e.course_id, e.username) for e in GradeOutbox(store).entries()),
    }


@pytest.fixture
def many(course):
    """The grading course (ps1, eight learners' submissions) plus: every learner graded in the
    gradebook, with folders, feedback, a grade snapshot and a queued grade; a second course
    where two of the erased and one kept learner are graded and a third erased one is only
    enrolled; a course with folders but no gradebook; a folder that is not a course."""
    env, store, courses, students = course
    from learnhub.settings import load_settings

    settings = load_settings(environ=env)
    exchange = ExchangeStore(courses.root.parent / "exchange")
    learners = sorted(students)
    erased, kept = learners[:3], learners[3:]
    courses.ensure(OTHER)
    with Gradebook(courses.gradebook_url(OTHER), course_id=OTHER) as gb:
        gb.update_or_create_assignment(grading.ASSIGNMENT)
        gb.update_or_create_notebook(grading.ASSIGNMENT, grading.ASSIGNMENT)
        gb.update_or_create_grade_cell("answer", grading.ASSIGNMENT, grading.ASSIGNMENT,
                                       max_score=3, cell_type="code")  # fmt: skip
        gb.update_or_create_solution_cell("answer", grading.ASSIGNMENT, grading.ASSIGNMENT)
    released = exchange.course(COURSE) / "outbound" / grading.ASSIGNMENT
    notebook = (released / f"{grading.ASSIGNMENT}.ipynb").read_bytes()
    exchange.release(OTHER, grading.ASSIGNMENT, tarball({"ps1.ipynb": notebook}))
    members = {COURSE: learners, OTHER: [erased[0], erased[1], kept[0]]}
    for course_id, people in members.items():
        with Gradebook(courses.gradebook_url(course_id), course_id=course_id) as gb:
            for student in people:
                add_graded_submission(gb, student)
        for student in people:
            add_student_files(courses.root, exchange, course_id, student)
            GradeOutbox(store).enqueue(student, course_id, grading.ASSIGNMENT, 1.0, 3.0)
            with store.session() as s:
                s.add(GradeSnapshot(course_id=course_id, student=student,
                                    assignment_id=grading.ASSIGNMENT, score=1.0,
                                    max_score=3.0, needs_manual_grade=0))  # fmt: skip
                s.commit()
        if course_id == OTHER:
            for student in people:
                [submission] = exchange.submissions(course_id, student=student)
                GradingQueue(store).enqueue(
                    course_id, grading.ASSIGNMENT, student, submission.id, submission.timestamp
                )
    # Only enrolled in the second course (the course service made its gradebook entry).
    store.record_launch(
        username=erased[2], course_id=OTHER, platform="lti13:x", context_id="ctx-2",
        title="Other", role="learner", lti_version="1.3", launch={}, name="Grace Hopper",
        email="grace@example.org",
    )  # fmt: skip
    with Gradebook(courses.gradebook_url(OTHER), course_id=OTHER) as gb:
        gb.update_or_create_student(erased[2], first_name="Grace", last_name="Hopper",
                                    email="grace@example.org")  # fmt: skip
    # Files left of a course whose gradebook is gone, and a folder that is no course at all.
    for student in (erased[0], kept[0]):
        (courses.root / NO_GRADEBOOK / "submitted" / student).mkdir(parents=True)
        (exchange.course(NO_GRADEBOOK) / "inbound" / student).mkdir(parents=True)
    (courses.root / "not-a-course" / "submitted" / erased[0]).mkdir(parents=True)
    data = CourseDataStore(Context(settings, store, DeletedUsers()))
    return data, store, courses, exchange, erased, kept


def test_erase_many_deletes_exactly_the_listed_people_in_every_course(many):
    data, store, courses, exchange, erased, kept = many
    gone = set(erased)
    with_ids = (COURSE, OTHER, NO_GRADEBOOK)
    rows_before = {c: gradebook_rows(courses, c) for c in (COURSE, OTHER)}
    folders_before = {c: folders_of(courses.root, exchange, c) for c in with_ids}
    platform_before = platform_rows(store)
    # Each erased person has something of every kind somewhere, or the test proves nothing.
    assert gone <= set(rows_before[COURSE]["grade"]) and gone <= set(rows_before[OTHER]["student"])
    assert all(gone & set(p for _, p in rows) for rows in platform_before.values())
    assert all(gone & names for names in folders_before[COURSE].values())

    removed = data.erase_many([*erased, *NOBODY, *INVALID])

    for course_id in (COURSE, OTHER):
        after = gradebook_rows(courses, course_id)
        for table, counted in rows_before[course_id].items():
            expected = {s: n for s, n in counted.items() if s not in gone}
            assert after[table] == expected, (course_id, table)
    for course_id in with_ids:
        after = folders_of(courses.root, exchange, course_id)
        assert after == {k: v - gone for k, v in folders_before[course_id].items()}, course_id
    assert {s.student for s in exchange.submissions(COURSE)} == set(kept)
    platform_after = platform_rows(store)
    assert platform_after == {
        kind: [(c, p) for c, p in rows if p not in gone] for kind, rows in platform_before.items()
    }
    # The count is everything that went: gradebook students, folders, rows.
    students = sum(len(gone & set(r["student"])) for r in rows_before.values())
    folders = sum(len(gone & n) for f in folders_before.values() for n in f.values())
    rows = sum(len(r) for r in platform_before.values()) - sum(
        len(r) for r in platform_after.values()
    )
    assert removed == students + folders + rows
    # Nothing of them can be read back from the gradebooks' files (secure_delete).
    for course_id in (COURSE, OTHER):
        stored = (courses.root / course_id / "gradebook.db").read_bytes()
        for person in erased:
            assert f"{person}@example.org".encode() not in stored, (course_id, person)
        assert b"grace@example.org" not in stored
    # A course without a gradebook is not given one; what is not a course is not touched.
    assert not (courses.root / NO_GRADEBOOK / "gradebook.db").exists()
    assert (courses.root / "not-a-course" / "submitted" / erased[0]).is_dir()
    assert (courses.root.parent / "exchange" / COURSE / "outbound" / grading.ASSIGNMENT).is_dir()
    # Nothing is left to find (an enrollment is the enrollment store's to delete), and a
    # second run has nothing to do.
    described = [c for p in erased for c in data.describe(p)["courses"].values()]
    assert described == [
        {
            "gradebook_entry": False,
            "name_or_email_in_gradebook": False,
            "graded_assignments": 0,
            "submissions": 0,
            "feedback_releases": 0,
        }
    ]
    assert data.erase_many(erased) == 0


def test_scrub_many_drops_names_and_emails_of_exactly_the_listed_people(many):
    data, _, courses, _, erased, _ = many
    before = {c: names_in_gradebook(courses, c) for c in (COURSE, OTHER)}
    rows_before = {c: gradebook_rows(courses, c) for c in (COURSE, OTHER)}
    named = sum(1 for names in before.values() for p in erased if any(names.get(p, ())))
    assert named == 6  # three in the grading course, three in the other

    assert data.scrub_many([*erased, *NOBODY, *INVALID]) == named

    for course_id, names in before.items():
        after = names_in_gradebook(courses, course_id)
        assert after == {
            p: (None, None, None) if p in erased else name for p, name in names.items()
        }, course_id
        # Scrubbing keeps the work: every submission, grade and comment is still there.
        assert gradebook_rows(courses, course_id) == rows_before[course_id]
        stored = (courses.root / course_id / "gradebook.db").read_bytes()
        assert not [p for p in erased if f"{p}@example.org".encode() in stored], course_id
    assert data.scrub_many(erased) == 0


def test_a_broken_gradebook_leaves_only_its_own_people_for_the_next_sweep(many):
    data, store, courses, _, erased, kept = many
    first, second, third = erased
    broken = courses.root / "cbrokencours"
    (broken / "submitted" / second).mkdir(parents=True)
    (broken / "gradebook.db").write_bytes(b"this is not a database" * 100)

    with pytest.raises(PartlyErased) as caught:
        data.erase_many(erased)

    assert caught.value.failed == {second}
    assert caught.value.count > 0
    # The others are gone; of the one in the broken course, what the working courses held
    # is gone, the broken course's folder and the rows outside the courses wait.
    assert set(gradebook_rows(courses, COURSE)["student"]) == set(kept)
    assert not set(gradebook_rows(courses, OTHER)["student"]) & {first, second, third}
    waiting = [p for rows in platform_rows(store).values() for _, p in rows if p not in kept]
    assert set(waiting) == {second}
    assert (broken / "submitted" / second).is_dir()
    # Once the gradebook is mended (here: gone), the next sweep finishes.
    (broken / "gradebook.db").unlink()
    assert data.erase_many(erased) == 1 + len(waiting)
    assert not (broken / "submitted" / second).exists()
    assert {p for _, p in platform_rows(store)["outbox"]} == set(kept)
