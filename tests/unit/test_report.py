"""`learnhub report`: aggregate figures only, never a line about one learner."""

import pytest

from learnhub.privacy import analytics as stats
from learnhub.privacy.report import accounting_report, bounded, usage_report, usage_rows
from learnhub.settings import init_state, load_settings
from learnhub.store import Store


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0"), (1, "<5"), (4, "<5"), (5, "5"), (120, "120")],
    ids=["none", "one", "four", "five", "many"],
)  # fmt: skip
def test_small_counts_of_people_are_not_exact(count, shown):
    assert bounded(count) == shown


def test_usage_rows_sum_each_day():
    rows = usage_rows(
        [
            stats.Count("2027-01-02", stats.LAUNCHES, "1.1", 3),
            stats.Count("2027-01-02", stats.LAUNCHES, "1.3", 4),
            stats.Count("2027-01-02", stats.ACTIVE_LEARNERS, "", 6),
            stats.Count("2027-01-01", stats.PAGE_VIEWS, "/hub/login", 2),
            stats.Count("2027-01-01", stats.PAGE_VIEWS, "/hub/privacy", 5),
            stats.Count("2027-01-01", stats.ACTIVE_LEARNERS, "", 2),
        ]
    )
    assert [(r.label, r.values) for r in rows] == [
        ("2027-01-01", (0, "<5", 0, 7)),
        ("2027-01-02", (7, "6", 0, 0)),
    ]


@pytest.fixture
def settings(tmp_path):
    config = tmp_path / "learnhub.yaml"
    config.write_text("spawner:\n  backend: local\n")
    settings = load_settings(config, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "state")})
    init_state(settings)
    return settings


def test_reports_name_nobody(settings):
    store = Store(settings.database_url, settings.crypt_key)
    people = [
        ("lpersonone0000000000", "Ada Lovelace", "ada@example.edu", "learner"),
        ("lpersontwo0000000000", "Alan Turing", "alan@example.edu", "instructor"),
    ]
    for username, name, email, role in people:
        store.record_launch(
            username=username, course_id="cdemo0000000", platform="p", context_id="ctx",
            title="Python 101", role=role, lti_version="1.1", launch={}, name=name,
            email=email,
        )  # fmt: skip
    analytics = stats.Analytics(settings.database_url, settings.crypt_key)
    analytics.record_launch("1.1", people[0][0])
    home = settings.state_dir / "homes" / people[0][0]
    home.mkdir(parents=True)
    (home / "work.ipynb").write_text("x" * 1500)
    course = settings.state_dir / "courses" / "cdemo0000000"
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")

    accounting = accounting_report(settings)
    usage = usage_report(settings)
    assert "courses\t1" in accounting
    assert "enrollments as instructor\t1" in accounting
    assert "enrollments as learner\t1" in accounting
    assert "course cdemo0000000\tPython 101\t1\t" in accounting
    assert "local home folders (1)\t-\t1\t1.5 KB" in accounting
    assert "memory per learner\t2G" in accounting
    assert "\t1\t<5\t0\t0" in usage  # one launch, fewer than five learners
    for username, name, email, _role in people:
        for text in (accounting, usage):
            assert username not in text and name not in text and email not in text
