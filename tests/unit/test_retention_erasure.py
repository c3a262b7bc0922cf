"""The hub-side stores erasure runs, against a real SQLite database and real folders."""

import pytest

from learnhub.privacy.erasure import (
    EnrollmentStore,
    LocalHomeStore,
    batches,
    without_personal_keys,
)
from learnhub.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", b"k" * 32)
    for i in range(3):
        for course in ("c1", "c2"):
            store.record_launch(
                username=f"l{i}", course_id=course, platform="p", context_id=course,
                title=course, role="learner", lti_version="1.1", launch={"x": i},
                name=f"Name {i}", email=f"n{i}@example.edu",
            )  # fmt: skip
    return store


def test_enrollments_scrub_erase_and_course_removal(store):
    enrollments = EnrollmentStore(store)
    assert enrollments.scrub_many(["l0", "l1"]) == 4
    assert enrollments.scrub("l0") == 0  # idempotent: nothing left to scrub
    assert [(e.name, e.email) for e in store.enrollments_of("l0")] == [(None, None)] * 2
    assert store.enrollments_of("l2")[0].email == "n2@example.edu"
    assert enrollments.remove_from_course("l2", "c1") == 1
    assert [e.course_id for e in store.enrollments_of("l2")] == ["c2"]
    assert enrollments.erase_many(["l0", "l1"]) == 4
    assert store.enrollments_of("l0") == []
    assert enrollments.erase_course("c2") == 2  # l2's enrollment and the course itself
    assert [c.id for c in store.courses()] == ["c1"]


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", ""], ids=str)
def test_home_store_never_leaves_homes(tmp_path, name):
    homes = tmp_path / "homes"
    (homes / "lperson").mkdir(parents=True)
    assert LocalHomeStore(homes).erase(name) == 0
    assert (homes / "lperson").is_dir()


def test_home_store_erases_one_folder_and_not_a_symlink(tmp_path):
    homes = tmp_path / "homes"
    (homes / "lperson" / "sub").mkdir(parents=True)
    (homes / "lperson" / "sub" / "work.ipynb").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (homes / "llink").symlink_to(outside)
    store = LocalHomeStore(homes)
    assert store.describe("lperson") == {"exists": True, "files": 1, "bytes": 2}
    assert store.erase("llink") == 0 and outside.is_dir()
    assert store.erase("lperson") == 1
    assert not (homes / "lperson").exists()
    assert store.erase("lperson") == 0


def test_personal_keys_go_at_any_depth():
    state = {
        "name": "A",
        "email": "a@x",
        "lms_user_id": "7",
        "courses": {"c1": {"launch": {"lis_person_name_full": "A", "resource_link_id": "r"}}},
    }
    assert without_personal_keys(state) == {
        "lms_user_id": "7",
        "courses": {"c1": {"launch": {"resource_link_id": "r"}}},
    }


def test_batches():
    assert list(batches(map(str, range(5)), size=2)) == [["0", "1"], ["2", "3"], ["4"]]
