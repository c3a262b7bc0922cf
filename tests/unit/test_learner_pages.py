"""A learner's own pages name courses by their titles, shown as text whatever they hold."""

from __future__ import annotations

import pytest

from learnhub_singleuser.learner_pages import TEMPLATE_ENVIRONMENT
from learnhub_singleuser.mydata import course_titles

COURSE = "cgpyuvdbytws"
HOSTILE_TITLE = '<script>alert("x")</script> & ../../etc'
ESCAPED_TITLE = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; ../../etc"


def described(title: str) -> dict:
    """The data service's description of a learner in one course (learnhub.privacy)."""
    return {
        "hub-user": {"name": None, "email": None},
        "enrollments": {
            "courses": [
                {
                    "course": title,
                    "course_id": COURSE,
                    "role": "learner",
                    "first_launch": "2025-01-01T00:00:00Z",
                    "last_launch": "2025-01-02T00:00:00Z",
                }
            ]
        },
        "courses": {
            "courses": {
                COURSE: {
                    "gradebook_entry": True,
                    "name_or_email_in_gradebook": False,
                    "graded_assignments": 2,
                    "submissions": 3,
                    "feedback_releases": 1,
                }
            }
        },
        "analytics": {"hashes_today": 0},
    }


def my_data_page(stores: dict) -> str:
    return TEMPLATE_ENVIRONMENT.get_template("learnhub-my-data.html").render(
        username="lstudent", stores=stores, titles=course_titles(stores), files=0,
        base="/user/lstudent/learnhub/my-data", session="{}",
    )  # fmt: skip


def test_my_data_names_the_courses_work_by_the_courses_title():
    page = my_data_page(described("Introduction to Python"))
    row = page.split("Your work in your courses")[1].split("</table>")[0]
    assert "<td>Introduction to Python</td><td>3</td><td>1</td><td>2</td>" in row
    assert COURSE not in page
    assert "analytics" in page  # the other stores are still shown as they are


def test_my_data_without_the_courses_title_shows_its_id():
    stores = described("Introduction to Python")
    stores["enrollments"]["courses"] = []
    assert f"<td>{COURSE}</td><td>3</td>" in my_data_page(stores)


@pytest.mark.parametrize(
    ("template", "values"),
    [
        ("learnhub-my-data.html", {}),
        ("learnhub-assignment.html", {"assignment": "ps1", "state": "not-released"}),
        (
            "learnhub-my-submissions.html",
            {"username": "lstudent", "page": "/p", "token": "",
             "submissions": [{"course_title": HOSTILE_TITLE, "assignment_id": "ps1",
                              "timestamp": "t", "status": "graded", "state": "graded",
                              "score": 1.0, "max_score": 2.0, "notes": []}]},
        ),
    ],
    ids=["my-data", "assignment-link", "my-submissions"],
)  # fmt: skip
def test_a_hostile_title_is_text_on_every_learner_page(template, values):
    stores = described(HOSTILE_TITLE)
    page = TEMPLATE_ENVIRONMENT.get_template(template).render(
        stores=stores, titles=course_titles(stores), course_title=HOSTILE_TITLE, files=0,
        base="/b", session="{}", lab_url="/lab", **{"username": "lstudent", **values},
    )  # fmt: skip
    assert ESCAPED_TITLE in page
    assert "<script>alert" not in page
