"""Who retention scrubs and deletes: plan() is pure, so every rule is a row of a table."""

import re

import pytest

from learnhub.privacy.retention import (
    DAY,
    CourseActivity,
    Person,
    RetentionPolicy,
    plan,
)
from learnhub.settings import SettingsError, validate

NOW = 2_000_000_000.0
POLICY = RetentionPolicy(
    scrub_after=100 * DAY, delete_after=200 * DAY, course_delete_after=300 * DAY
)
LEARNER = "l" + "a" * 19


def ago(days: float) -> float:
    return NOW - days * DAY


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Person(LEARNER, last_activity=ago(10), has_contact=True), "kept:active"),
        (Person(LEARNER, last_activity=ago(150), has_contact=True), "scrub"),
        (Person(LEARNER, last_activity=ago(150)), "kept:already_scrubbed"),
        (Person(LEARNER, last_activity=ago(250)), "delete"),
        (Person(LEARNER, last_activity=ago(250), has_contact=True), "delete"),
        # A launch within the window keeps someone whose hub activity is old, and vice versa.
        (Person(LEARNER, last_activity=ago(250), last_launch=ago(5)), "kept:active"),
        (Person(LEARNER, last_activity=ago(5), last_launch=ago(250)), "kept:active"),
        (Person(LEARNER, created=ago(5)), "kept:active"),
        (Person(LEARNER), "kept:undated"),
        (Person(LEARNER, last_activity=ago(100), has_contact=True), "scrub"),
        (Person(LEARNER, last_activity=ago(99.9), has_contact=True), "kept:active"),
        (Person(LEARNER, last_activity=ago(200)), "delete"),
        (Person(LEARNER, last_activity=ago(999), admin=True), "kept:admin"),
        (Person(LEARNER, last_activity=ago(999), direct_login=True), "kept:direct_login"),
        (Person("teacher", last_activity=ago(999)), "kept:not_lms_account"),
        (Person(LEARNER, last_activity=ago(999), running=True), "kept:running"),
        (
            Person(LEARNER, last_activity=ago(999), staff_in=("c-active",), has_contact=True),
            "scrub",
        ),
        (Person(LEARNER, last_activity=ago(999), staff_in=("c-old",)), "delete"),
        (Person(LEARNER, last_launch=ago(250), in_hub=False), "delete"),
    ],
    ids=[
        "active",
        "inactive-scrub",
        "inactive-nothing-to-scrub",
        "expired",
        "expired-with-contact-is-deleted-not-scrubbed",
        "recent-launch-counts",
        "recent-hub-activity-counts",
        "new-account",
        "undated",
        "scrub-boundary",
        "just-inside-scrub-window",
        "delete-boundary",
        "admin",
        "direct-login",
        "operator-made-account",
        "server-running",
        "staff-of-active-course-scrubbed-not-deleted",
        "staff-of-expired-course",
        "enrollment-only-orphan",
    ],
)
def test_plan_for_one_person(person, expected):
    courses = [CourseActivity("c-active", ago(10)), CourseActivity("c-old", ago(400))]
    result = plan(NOW, [person], courses, POLICY)
    if expected.startswith("kept:"):
        assert result.scrub == [] and result.delete == []
        assert result.kept == {expected[5:]: 1}
    else:
        assert getattr(result, expected) == [person.username]
        other = "delete" if expected == "scrub" else "scrub"
        assert getattr(result, other) == []


@pytest.mark.parametrize(
    ("last_launch_days", "deleted"),
    [(10, False), (299, False), (300, True), (1000, True)],
    ids=["active", "inside-window", "boundary", "long-gone"],
)
def test_plan_for_courses(last_launch_days, deleted):
    result = plan(NOW, [], [CourseActivity("c1", ago(last_launch_days))], POLICY)
    assert result.delete_courses == (["c1"] if deleted else [])


def test_plan_is_sorted_and_counts_every_reason():
    people = [Person("l" + c * 19, last_activity=ago(300)) for c in "zyx"] + [
        Person("admin", admin=True)
    ]
    result = plan(NOW, people, [], POLICY)
    assert result.delete == sorted(p.username for p in people[:3])
    assert result.counts() == {"scrub": 0, "delete": 3, "delete_courses": 0, "kept_admin": 1}


def test_policy_from_settings_in_seconds():
    values = validate({"privacy": {"retention": {"scrub_after_days": 40, "interval_hours": 6}}})
    policy = RetentionPolicy.from_settings(values)
    assert policy.scrub_after == 40 * DAY
    assert policy.delete_after == 730 * DAY
    assert policy.course_delete_after == 1095 * DAY
    assert policy.interval == 6 * 3600
    assert policy.enabled


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"scrub_after_days": 29}, "'privacy.retention.scrub_after_days' is 29"),
        ({"delete_after_days": 10}, "'privacy.retention.delete_after_days' is 10"),
        ({"course_delete_after_days": 1}, "'privacy.retention.course_delete_after_days' is 1"),
        ({"interval_hours": 0}, "'privacy.retention.interval_hours' is 0"),
        ({"scrub_after_day": 40}, "did you mean 'scrub_after_days'?"),
    ],
    ids=["scrub-minimum", "delete-minimum", "course-minimum", "interval", "typo"],
)
def test_schema_refuses_unsafe_windows(retention, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        validate({"privacy": {"retention": retention}})


def test_delete_window_must_not_be_shorter_than_scrub_window():
    with pytest.raises(
        SettingsError, match=re.escape("'privacy.retention.delete_after_days' is 300")
    ):
        validate({"privacy": {"retention": {"scrub_after_days": 400, "delete_after_days": 300}}})
