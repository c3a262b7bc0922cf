"""The grading queue against a real SQLite file: claims, leases, recovery, the CLI."""

from __future__ import annotations

import pytest

from learnhub.cli import main
from learnhub.grading.queue import GradingQueue, JobState
from learnhub.store import Store


@pytest.fixture
def queue(tmp_path):
    return GradingQueue(Store(f"sqlite:///{tmp_path / 'db.sqlite'}", b"k" * 32), lease_s=60)


def enqueue(queue, student="s1", submission="20260101T000000.000000Z", now=100.0):
    return queue.enqueue("cabcdefghijk", "ps1", student, submission, "ts", now=now)


def test_the_same_submission_twice_is_one_job(queue):
    assert enqueue(queue) == enqueue(queue)
    assert queue.counts() == {JobState.QUEUED: 1}


def test_a_job_goes_to_one_worker_oldest_first(queue):
    first = enqueue(queue, "s1", now=1.0)
    enqueue(queue, "s2", now=2.0)
    job = queue.claim("host-1-0", now=10.0)
    assert job.id == first and job.attempts == 1 and job.state == JobState.RUNNING
    other = queue.claim("host-1-1", now=10.0)
    assert other.id != first
    assert queue.claim("host-1-2", now=10.0) is None


def test_a_lapsed_lease_lets_another_worker_take_the_job(queue):
    enqueue(queue)
    job = queue.claim("host-1-0", now=10.0)
    assert queue.claim("host-2-0", now=69.0) is None
    again = queue.claim("host-2-0", now=71.0)
    assert again.id == job.id and again.attempts == 2
    # The first worker lost it: its result is not recorded.
    assert not queue.finish(job, "host-1-0", JobState.GRADED, score=1, max_score=1)
    assert queue.finish(again, "host-2-0", JobState.GRADED, score=2, max_score=3)
    [done] = queue.jobs()
    assert (done.state, done.score, done.max_score) == (JobState.GRADED, 2, 3)


def test_a_restarted_service_requeues_what_its_predecessor_held(queue):
    enqueue(queue, "s1")
    enqueue(queue, "s2")
    queue.claim("host-111-0", now=10.0)
    queue.claim("otherhost-5-0", now=10.0)
    assert queue.recover("host", "host-222-") == 1
    states = {j.student: j.state for j in queue.jobs()}
    assert states == {"s1": JobState.QUEUED, "s2": JobState.RUNNING}


def test_a_newer_submission_supersedes(queue):
    enqueue(queue, "s1", "20260101T000000.000000Z")
    enqueue(queue, "s1", "20260102T000000.000000Z")
    old = queue.claim("h-1-0", now=200.0)
    assert old.submission_id.startswith("20260101") and queue.newer_exists(old)
    new = queue.claim("h-1-0", now=200.0)
    assert not queue.newer_exists(new)


def test_cli_lists_the_queue(queue, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEARNHUB_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "learnhub.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite'}'}}\n")
    monkeypatch.setenv("LEARNHUB_CRYPT_KEY", (b"k" * 32).hex())
    job = enqueue(queue)
    assert main(["--config", str(config), "grading", "queue"]) == 0
    out = capsys.readouterr().out
    assert "Queue: 1 queued" in out and f"#{job} cabcdefghijk ps1 s1" in out
    assert main(["--config", str(config), "grading", "regrade", str(job)]) == 0


def test_a_learner_sees_their_own_jobs_without_staff_notes(queue):
    from learnhub.grading.service import SERVICE_FAILED, learner_view

    enqueue(queue, "s1", "20260101T000000.000000Z", now=1.0)
    enqueue(queue, "s2", "20260101T000000.000000Z", now=2.0)
    enqueue(queue, "s1", "20260102T000000.000000Z", now=3.0)
    first, other, second = (queue.claim("h-1-0", now=10.0) for _ in range(3))
    staff = "Graded in a process sandbox: grading.sandbox is 'process'."
    queue.finish(first, "h-1-0", JobState.GRADED, score=2, max_score=3,
                 needs_manual_grade=True, messages=[staff])  # fmt: skip
    queue.finish(second, "h-1-0", JobState.FAILED, score=1, max_score=3, messages=[
        f"{SERVICE_FAILED} 3 times (KeyError: 'secret path'); see its log, then regrade.",
        "p1 was not graded: it did not run.",
    ])  # fmt: skip
    mine = queue.jobs(student="s1")
    assert [j.submission_id[:8] for j in mine] == ["20260102", "20260101"]
    assert {j.student for j in mine} == {"s1"} and other.student == "s2"

    failed, graded = (learner_view(j, {"cabcdefghijk": "Python 1"}, staff) for j in mine)
    assert failed["status"] == "Could not be graded" and failed["course_title"] == "Python 1"
    assert failed["score"] is None and failed["max_score"] is None
    assert failed["notes"][0].startswith("The grading service failed on this submission;")
    assert "secret path" not in str(failed) and failed["notes"][1].endswith("did not run.")
    assert (graded["status"], graded["score"], graded["max_score"]) == (
        "Graded automatically", 2, 3,
    )  # fmt: skip
    assert graded["needs_manual_grade"] and graded["notes"] == []
