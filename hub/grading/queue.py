"""The grading queue: one row per submission to autograde, kept in the platform database.

A job is claimed with a lease; a worker that dies leaves its job to be claimed again once
the lease runs out. Grading twice is harmless (nbgrader replaces a student's submission in
the gradebook), so a crash costs time, never a duplicate grade.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db.leases import lapsed, take_lease
from ..store import Base, Store


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    GRADED = "graded"
    # A newer submission of the same assignment by the same learner came in first.
    SUPERSEDED = "superseded"
    # Not graded: nbgrader could not (no such assignment in the gradebook, a broken notebook),
    # the notebook did not run (its kernel would not start), or the service failed on it.
    FAILED = "failed"


class GradingJob(Base):
    __tablename__ = "learnhub_grading_jobs"
    __table_args__ = (UniqueConstraint("course_id", "assignment_id", "student", "submission_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[str] = mapped_column(String(32), index=True)
    assignment_id: Mapped[str] = mapped_column(String(128))
    student: Mapped[str] = mapped_column(String(255), index=True)
    submission_id: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True, default=JobState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(64))
    enqueued: Mapped[float] = mapped_column(Float)
    started: Mapped[float | None] = mapped_column(Float)
    finished: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)
    needs_manual_grade: Mapped[bool | None] = mapped_column(Integer)
    sandbox: Mapped[str | None] = mapped_column(String(16))
    tampered: Mapped[bool | None] = mapped_column(Integer)
    messages_json: Mapped[str] = mapped_column(Text, default="[]")


@dataclass(frozen=True)
class Job:
    id: int
    course_id: str
    assignment_id: str
    student: str
    submission_id: str
    timestamp: str
    state: str
    attempts: int
    enqueued: float
    started: float | None
    finished: float | None
    score: float | None
    max_score: float | None
    needs_manual_grade: bool
    sandbox: str | None
    tampered: bool
    messages: list[str]

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "course_id": self.course_id,
            "assignment_id": self.assignment_id,
            "student_id": self.student,
            "submission_id": self.submission_id,
            "timestamp": self.timestamp,
            "state": self.state,
            "attempts": self.attempts,
            "enqueued": self.enqueued,
            "started": self.started,
            "finished": self.finished,
            "score": self.score,
            "max_score": self.max_score,
            "needs_manual_grade": self.needs_manual_grade,
            "sandbox": self.sandbox,
            "tampered": self.tampered,
            "messages": self.messages,
        }


def _job(row: GradingJob) -> Job:
    return Job(
        id=row.id,
        course_id=row.course_id,
        assignment_id=row.assignment_id,
        student=row.student,
        submission_id=row.submission_id,
        timestamp=row.timestamp,
        state=row.state,
        attempts=row.attempts,
        enqueued=row.enqueued,
        started=row.started,
        finished=row.finished,
        score=row.score,
        max_score=row.max_score,
        needs_manual_grade=bool(row.needs_manual_grade),
        sandbox=row.sandbox,
        tampered=bool(row.tampered),
        messages=json.loads(row.messages_json or "[]"),
    )


class GradingQueue:
    """Enqueue, claim with a lease, finish: every step one short transaction."""

    def __init__(self, store: Store, *, lease_s: float = 900.0):
        self.store = store
        self.lease_s = lease_s

    def enqueue(
        self,
        course_id: str,
        assignment_id: str,
        student: str,
        submission_id: str,
        timestamp: str,
        *,
        now: float | None = None,
    ) -> int:
        """Queue a submission; the same submission twice is one job (returns its id)."""
        now = time.time() if now is None else now
        with self.store.session() as s:
            existing = s.scalar(
                select(GradingJob).where(
                    GradingJob.course_id == course_id,
                    GradingJob.assignment_id == assignment_id,
                    GradingJob.student == student,
                    GradingJob.submission_id == submission_id,
                )
            )
            if existing is not None:
                return existing.id
            job = GradingJob(
                course_id=course_id,
                assignment_id=assignment_id,
                student=student,
                submission_id=submission_id,
                timestamp=timestamp,
                state=JobState.QUEUED,
                attempts=0,
                enqueued=now,
            )
            s.add(job)
            s.commit()
            return job.id

    def recover(self, host: str, own_prefix: str) -> int:
        """Requeue jobs left running by an earlier grading service on this host (it died).

        Workers are named <host>-<pid>-<n>; a job held by a worker of this host that is
        not one of ours cannot finish, so it need not wait for its lease to run out.
        """
        with self.store.session() as s:
            recovered = s.execute(
                update(GradingJob)
                .where(
                    GradingJob.state == JobState.RUNNING,
                    GradingJob.worker.like(f"{host}-%"),
                    GradingJob.worker.not_like(f"{own_prefix}%"),
                )
                .values(state=JobState.QUEUED, worker=None, lease_until=None)
            ).rowcount
            s.commit()
            return recovered

    def regrade(self, job_id: int) -> bool:
        """Put a finished job back in the queue (an instructor asked for it)."""
        with self.store.session() as s:
            changed = s.execute(
                update(GradingJob)
                .where(GradingJob.id == job_id, GradingJob.state != JobState.RUNNING)
                .values(state=JobState.QUEUED, lease_until=None, worker=None)
            ).rowcount
            s.commit()
            return changed == 1

    def claim(self, worker: str, *, now: float | None = None) -> Job | None:
        """The oldest queued job (or one whose worker's lease ran out), now leased to `worker`."""
        now = time.time() if now is None else now
        claimable = or_(
            GradingJob.state == JobState.QUEUED,
            and_(GradingJob.state == JobState.RUNNING, lapsed(GradingJob, now)),
        )
        with self.store.session() as s:
            candidates = s.scalars(
                select(GradingJob.id).where(claimable).order_by(GradingJob.enqueued).limit(5)
            ).all()
            for job_id in candidates:
                taken = take_lease(
                    s, GradingJob, job_id, free=claimable, until=now + self.lease_s, values={
                        "state": JobState.RUNNING,
                        "worker": worker,
                        "started": now,
                        "attempts": GradingJob.attempts + 1,
                    },
                )  # fmt: skip
                if taken:
                    return _job(s.get(GradingJob, job_id))
        return None

    def newer_exists(self, job: Job) -> bool:
        """Whether the same learner submitted the same assignment again after this one."""
        with self.store.session() as s:
            return (
                s.scalar(
                    select(GradingJob.id).where(
                        GradingJob.course_id == job.course_id,
                        GradingJob.assignment_id == job.assignment_id,
                        GradingJob.student == job.student,
                        GradingJob.submission_id > job.submission_id,
                    )
                )
                is not None
            )

    def finish(
        self,
        job: Job,
        worker: str,
        state: JobState,
        *,
        score: float | None = None,
        max_score: float | None = None,
        needs_manual_grade: bool = False,
        sandbox: str | None = None,
        tampered: bool = False,
        messages: list[str] | None = None,
        now: float | None = None,
    ) -> bool:
        """Record the outcome, if this worker still holds the job; False when it lost it."""
        now = time.time() if now is None else now
        with self.store.session() as s:
            changed = s.execute(
                update(GradingJob)
                .where(
                    GradingJob.id == job.id,
                    GradingJob.worker == worker,
                    GradingJob.state == JobState.RUNNING,
                )
                .values(
                    state=state,
                    finished=now,
                    lease_until=None,
                    score=score,
                    max_score=max_score,
                    needs_manual_grade=int(needs_manual_grade),
                    sandbox=sandbox,
                    tampered=int(tampered),
                    messages_json=json.dumps(messages or []),
                )
            ).rowcount
            s.commit()
            return changed == 1

    def release(self, job: Job, worker: str, message: str) -> None:
        """Give a job back to the queue (the sandbox could not run): it is tried again. A job
        this worker already finished stays finished."""
        with self.store.session() as s:
            s.execute(
                update(GradingJob)
                .where(
                    GradingJob.id == job.id,
                    GradingJob.worker == worker,
                    GradingJob.state == JobState.RUNNING,
                )
                .values(
                    state=JobState.QUEUED,
                    worker=None,
                    lease_until=None,
                    messages_json=json.dumps([message]),
                )
            )
            s.commit()

    def jobs(
        self,
        *,
        course_id: str | None = None,
        student: str | None = None,
        states: tuple[str, ...] = (),
        limit: int = 500,
    ) -> list[Job]:
        query = select(GradingJob).order_by(GradingJob.enqueued.desc()).limit(limit)
        if course_id:
            query = query.where(GradingJob.course_id == course_id)
        if student:
            query = query.where(GradingJob.student == student)
        if states:
            query = query.where(GradingJob.state.in_(states))
        with self.store.session() as s:
            return [_job(r) for r in s.scalars(query)]

    def counts(self) -> dict[str, int]:
        with self.store.session() as s:
            rows = s.execute(
                select(GradingJob.state, func.count()).group_by(GradingJob.state)
            ).all()
        return {state: count for state, count in rows}
