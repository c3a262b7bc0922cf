"""The grading service: workers take submissions from the queue, grade them in a sandbox,
write the gradebook, and hand scores to the grade outbox for the LMS.

A managed hub service. Scores reach the LMS from the gradebook, not from a worker's memory:
a pass over each course's gradebook compares every submission's score with what was last
queued for the LMS, so a crash between grading and queueing, or a manual grade changed in
formgrader, is sent on the next pass.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tarfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from nbgrader.api import Gradebook
from nbgrader.converters.generate_feedback import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from sqlalchemy import Float, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column
from tornado import web

from ..courses.coursedir import CourseDirectories
from ..courses.exchange import ExchangeStore, replace_folder
from ..courses.service import NOT_ALLOWED, role_in
from ..docker_engine import docker_client
from ..passback import GradeOutbox, run_outbox
from ..service_app import ServiceApp, TokenHandler, TokenIdentities
from ..service_environment import API_MAX_BODY_SIZE
from ..service_names import GRADING_SERVICE as SERVICE_NAME
from ..settings import load_settings
from ..stopping import skip_exit_collection, stop_signal
from ..store import Base, Store
from ..upstream import pool_processes
from .autograde import AutogradeError, autograde_submission, load_course_config
from .queue import GradingQueue, Job, JobState
from .sandbox import DEFAULT_IMAGE, DockerSandbox, Limits, ProcessSandbox, SandboxError

FEEDBACK_MODES = ("manual", "auto")
# Why the process sandbox graded, as SandboxSpec.why says it, for the note on each job.
NO_ENGINE = "no Docker engine answers on this machine"
CHOSEN = "process sandbox chosen by grading.sandbox"
WEAKER_SANDBOX = (
    "Graded in the process sandbox ({why}): learners' code ran as a limited process of the "
    "grading service instead of in a container."
)
NO_POINTS = (
    "This assignment is worth no points: nothing was sent to the LMS (give its test cells "
    "points in the source and grade again to send a score)."
)
SERVICE_FAILED = "The grading service failed on this submission"
SERVICE_FAILED_FOR_LEARNER = (
    "The grading service failed on this submission; your instructor sees why and can grade "
    "it again."
)
# How often a job is taken again after an error of the grading service itself (not of the
# learner's code) before it is marked failed.
MAX_ATTEMPTS = 3

log = logging.getLogger("learnhub.grading")


class GradeSnapshot(Base):
    """What was last queued for the LMS for one learner's assignment."""

    __tablename__ = "learnhub_grade_snapshots"
    course_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    student: Mapped[str] = mapped_column(String(255), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    needs_manual_grade: Mapped[int] = mapped_column(Integer)


class FeedbackMode(Base):
    """Whether an assignment's feedback goes to learners when graded, or when staff say."""

    __tablename__ = "learnhub_feedback_modes"
    course_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))


@dataclass(frozen=True)
class SandboxSpec:
    """Which sandbox grades, in a form a worker process can rebuild it from."""

    kind: str  # "docker" or "process"
    image: str
    limits: Limits
    # Why this kind: NO_ENGINE or CHOSEN for the process sandbox.
    why: str = CHOSEN

    def build(self):
        if self.kind == "docker":
            return DockerSandbox(image=self.image, limits=self.limits)
        return ProcessSandbox(limits=self.limits)

    @property
    def weaker(self) -> bool:
        return self.kind != "docker"

    @property
    def note(self) -> str | None:
        """What each job graded in a weaker sandbox says about it, or None."""
        return WEAKER_SANDBOX.format(why=self.why) if self.weaker else None


def pick_sandbox(kind: str, limits: Limits, image: str) -> SandboxSpec:
    """The sandbox the settings ask for; `auto` is Docker when an engine answers."""
    if kind == "auto":
        if shutil.which("docker") and _engine_answers():
            return SandboxSpec("docker", image, limits, why="")
        return SandboxSpec("process", image, limits, why=NO_ENGINE)
    return SandboxSpec(kind, image, limits, why=CHOSEN if kind == "process" else "")


def _die_with_parent() -> None:
    # A worker process outlives a killed service otherwise, and would write a grade the
    # restarted service is also writing.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _init_worker() -> None:
    _die_with_parent()
    # The service stops its workers (stop_grading): a Ctrl-C that reaches the service's
    # process group is the service's to handle, and SIGTERM from it cancels the grading.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    # The service waits for its workers to end (stop_grading).
    atexit.register(skip_exit_collection)


def _stop_worker(signum, frame) -> None:
    """SIGTERM from the stopping service: cancel the execution under way (its sandbox then
    removes what it started) and start no other. The pool's shutdown then ends the process,
    and the sandbox's exit hook removes a container waiting for the next submission."""
    _WORKER["stopping"] = True
    loop = _WORKER.get("loop")
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(_cancel_execution)


def _cancel_execution() -> None:
    execution = _WORKER.get("execution")
    if execution is not None:
        execution.cancel()


class _StoppableSandbox:
    """The worker's sandbox, whose executions the service's stop cancels (_stop_worker)."""

    def __init__(self, sandbox):
        self._sandbox = sandbox

    def __getattr__(self, name: str):
        return getattr(self._sandbox, name)

    async def execute(self, notebook_json: dict, files: Path | None, **kwargs):
        if _WORKER.get("stopping"):
            raise asyncio.CancelledError
        _WORKER["execution"] = asyncio.current_task()
        try:
            return await self._sandbox.execute(notebook_json, files, **kwargs)
        finally:
            _WORKER["execution"] = None


# One event loop and one sandbox per worker process, kept between submissions: a sandbox may
# prepare the next submission's container while this one is graded.
_WORKER: dict = {}


def _worker_state(spec: SandboxSpec):
    if _WORKER.get("spec") != spec:
        _WORKER.update(spec=spec, loop=_WORKER.get("loop") or asyncio.new_event_loop())
        _WORKER["sandbox"] = spec.build()
    return _WORKER["loop"], _WORKER["sandbox"]


def grade_in_worker_process(
    course_root: str, assignment: str, student: str, spec: SandboxSpec
) -> dict:
    """Autograde one submission in this worker process; a plain summary for the service.

    nbgrader changes the process's working directory and environment while it grades, so
    two gradings must never share a process: each runs in a process of the pool.
    """
    loop, sandbox = _worker_state(spec)
    if _WORKER.get("stopping"):
        raise asyncio.CancelledError
    # Cancelled by the service stopping: nbgrader's thread gets CancelledError from the
    # execution and unwinds, and that is raised here (the job is taken again at the next
    # start, GradingQueue.recover).
    result = loop.run_until_complete(
        autograde_submission(Path(course_root), assignment, student, _StoppableSandbox(sandbox))
    )
    return {
        "score": result.score,
        "max_score": result.max_score,
        "needs_manual_grade": any(n.needs_manual_grade for n in result.notebooks),
        "tampered": result.tampered,
        "messages": list(result.messages),
        "sandbox": result.sandbox,
        "weaker": result.weaker_sandbox,
        "seconds": result.seconds,
    }


def generate_feedback_in_worker_process(course_root: str, assignment: str, student: str) -> None:
    """nbgrader's generate_feedback for one learner (it renders HTML; no code runs)."""
    config = load_course_config(Path(course_root))
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    converter = GenerateFeedback(coursedir=coursedir, config=config)
    converter.force = True
    converter.start()


def new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
    )


def _engine_answers() -> bool:
    try:
        docker_client(timeout=5).ping()
        return True
    except Exception:
        return False


@dataclass
class GradingService:
    store: Store
    courses: CourseDirectories
    exchange: ExchangeStore
    queue: GradingQueue
    outbox: GradeOutbox
    sandbox: SandboxSpec
    identities: TokenIdentities
    workers: int = 2
    poll_s: float = 1.0
    sync_s: float = 15.0
    outbox_s: float = 10.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self):
        self.pool = new_pool(self.workers)
        self._sync_lock = threading.Lock()

    # the work

    async def run(self, stop: asyncio.Event) -> None:
        host, prefix = socket.gethostname(), f"{socket.gethostname()}-{os.getpid()}-"
        recovered = await asyncio.to_thread(self.queue.recover, host, prefix)
        if recovered:
            log.warning("requeued %d jobs an earlier grading service left unfinished", recovered)
        tasks = [
            asyncio.create_task(self.worker(f"{prefix}{n}", stop)) for n in range(self.workers)
        ]
        tasks.append(asyncio.create_task(self.sync_loop(stop)))
        tasks.append(
            asyncio.create_task(run_outbox(self.store, stop, self.outbox_s, outbox=self.outbox))
        )
        await asyncio.gather(*tasks)

    async def worker(self, name: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                job = await asyncio.to_thread(self.queue.claim, name)
            except Exception:
                log.exception("could not read the grading queue")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
                continue
            try:
                await self.grade(job, name)
            except Exception as e:
                # A bug, not the learner's code: tried again, a few times, then failed for
                # staff to see (a job left running would wait for its lease forever after).
                log.exception("grading job %d failed unexpectedly", job.id)
                await asyncio.to_thread(self._give_up_or_retry, job, name, e)

    def _give_up_or_retry(self, job: Job, worker: str, error: Exception) -> None:
        what = f"{type(error).__name__}: {error}"[:500]
        try:
            if job.attempts >= MAX_ATTEMPTS:
                self.queue.finish(job, worker, JobState.FAILED, messages=[
                    f"{SERVICE_FAILED} {job.attempts} times "
                    f"({what}); see its log, then regrade."
                ])  # fmt: skip
            else:
                self.queue.release(job, worker, f"Waiting: grading failed ({what}); retried.")
        except Exception:
            log.exception("could not record the failure of grading job %d", job.id)

    async def grade(self, job: Job, worker: str) -> None:
        if await asyncio.to_thread(self.queue.newer_exists, job):
            await asyncio.to_thread(self.queue.finish, job, worker, JobState.SUPERSEDED)
            return
        submission = await asyncio.to_thread(
            self.exchange.submission,
            job.course_id, job.assignment_id, job.student, job.submission_id,
        )  # fmt: skip
        if submission is None:
            await asyncio.to_thread(
                self.queue.finish,
                job, worker, JobState.FAILED, messages=["The submission's files are gone."],
            )  # fmt: skip
            return
        course_root = self.courses.path(job.course_id)
        await asyncio.to_thread(self._collect, course_root, job, submission.path)
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self.pool,
                grade_in_worker_process,
                str(course_root),
                job.assignment_id,
                job.student,
                self.sandbox,
            )
        except BrokenProcessPool:
            # A worker process died (out of memory, say): start new ones, retry the job.
            log.error("a grading worker process died on job %d", job.id)
            self.pool = new_pool(self.workers)
            await asyncio.to_thread(
                self.queue.release, job, worker, "Waiting: its grading process died; it is retried."
            )
            return
        except SandboxError as e:
            log.warning("sandbox could not run job %d: %s; it waits in the queue", job.id, e)
            await asyncio.to_thread(
                self.queue.release, job, worker, f"Waiting: the sandbox could not run ({e})."
            )
            await asyncio.sleep(5)
            return
        except AutogradeError as e:
            await asyncio.to_thread(
                self.queue.finish, job, worker, JobState.FAILED, messages=[str(e)]
            )
            return
        finally:
            await asyncio.to_thread(self._hand_over, course_root, job.student)
        messages = list(result["messages"])
        if result["weaker"] and self.sandbox.note:
            messages.insert(0, self.sandbox.note)
        if result["max_score"] <= 0:
            messages.append(NO_POINTS)
        mode = await asyncio.to_thread(self.feedback_mode, job.course_id, job.assignment_id)
        if mode == "auto":
            # Before the job counts as graded: a crash here grades (and releases) again.
            await asyncio.get_running_loop().run_in_executor(
                self.pool,
                generate_feedback_in_worker_process,
                str(course_root),
                job.assignment_id,
                job.student,
            )
            await asyncio.to_thread(self.release_feedback, job)
        # The score to the LMS before the job counts as graded (the sync loop would also
        # find it on its next pass, but a finished job should mean a queued grade).
        await asyncio.to_thread(self.sync_course, job.course_id, job)
        if not await asyncio.to_thread(
            self.queue.finish,
            job,
            worker,
            JobState.GRADED,
            score=result["score"],
            max_score=result["max_score"],
            needs_manual_grade=result["needs_manual_grade"],
            sandbox=result["sandbox"],
            tampered=result["tampered"],
            messages=messages,
        ):
            log.warning("job %d was taken by another worker while graded here", job.id)
        log.info(
            "graded job %d in %.1fs (%s sandbox)", job.id, result["seconds"], result["sandbox"]
        )

    def _collect(self, course_root: Path, job: Job, source: Path) -> None:
        """Copy the submission where nbgrader looks: submitted/<student>/<assignment>/."""
        dest = course_root / "submitted" / job.student / job.assignment_id
        incoming = dest.with_name(f".{dest.name}.incoming")
        shutil.rmtree(incoming, ignore_errors=True)
        shutil.copytree(source, incoming, ignore=shutil.ignore_patterns(".*"))
        (incoming / "timestamp.txt").write_text(job.timestamp)
        replace_folder(incoming, dest)

    def _hand_over(self, course_root: Path, student: str) -> None:
        for part in ("submitted", "autograded", "feedback"):
            path = course_root / part / student
            if path.exists():
                self.courses.give_to_owner(path)
        for name in ("gradebook.db", "submitted", "autograded", "feedback"):
            path = course_root / name
            if path.exists() and self.courses.owner_uid is not None and os.geteuid() == 0:
                os.lchown(path, self.courses.owner_uid, self.courses.owner_uid)

    # scores to the LMS

    async def sync_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for record in await asyncio.to_thread(self.store.courses):
                if self.courses.exists(record.id):
                    try:
                        await asyncio.to_thread(self.sync_course, record.id)
                    except Exception:
                        log.exception("could not read the gradebook of course %s", record.id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.sync_s)

    def sync_course(self, course_id: str, finishing: Job | None = None) -> int:
        """Queue for the LMS every score that differs from what was last queued; how many.

        A learner's assignment with a submission still queued or being graded is left for
        a later pass (its gradebook entry is half-written), except `finishing`, the job
        whose worker asks.
        """
        # Workers and the sync loop all call this: one pass at a time in this process.
        with self._sync_lock:
            return self._sync_course(course_id, finishing)

    def _sync_course(self, course_id: str, finishing: Job | None = None) -> int:
        queued = 0
        jobs = self.queue.jobs(course_id=course_id, limit=100_000)
        busy = {
            (j.student, j.assignment_id)
            for j in jobs
            if j.state in (JobState.QUEUED, JobState.RUNNING)
            and (finishing is None or j.id != finishing.id)
        }
        # A learner's latest submission that could not be graded (it did not run, say) has
        # no score to send: the gradebook's entry for it is nbgrader's empty one.
        latest: dict[tuple[str, str], Job] = {}
        for j in jobs:
            key = (j.student, j.assignment_id)
            if key not in latest or j.submission_id > latest[key].submission_id:
                latest[key] = j
        failed = {key for key, j in latest.items() if j.state == JobState.FAILED}
        with self.store.session() as s:
            rows = s.scalars(select(GradeSnapshot).where(GradeSnapshot.course_id == course_id))
            known = {(r.student, r.assignment_id): r for r in rows}
        url = self.courses.gradebook_url(course_id)
        with Gradebook(url, course_id=course_id) as gradebook:
            rows = [
                (sub.student_id, assignment.name, float(sub.score), float(sub.max_score),
                 bool(sub.needs_manual_grade))
                for assignment in gradebook.assignments
                for sub in assignment.submissions
            ]  # fmt: skip
        for student, assignment, score, max_score, manual in rows:
            if (student, assignment) in busy or (student, assignment) in failed:
                continue
            before = known.get((student, assignment))
            if before is not None and (
                before.score,
                before.max_score,
                bool(before.needs_manual_grade),
            ) == (score, max_score, manual):
                continue
            if max_score <= 0:
                # An LMS takes no score out of zero; the job's note says so (NO_POINTS).
                log.info(
                    "%s of %s in course %s is worth no points: nothing sent to the LMS",
                    assignment, student, course_id,
                )  # fmt: skip
            else:
                self.outbox.enqueue(
                    student, course_id, assignment, score, max_score, pending_manual=manual
                )
                queued += 1
            # Remembered either way: a pass sends (or says) each change once.
            with self.store.session() as s:
                row = s.get(GradeSnapshot, (course_id, student, assignment)) or GradeSnapshot(
                    course_id=course_id, student=student, assignment_id=assignment
                )
                row.score, row.max_score, row.needs_manual_grade = score, max_score, int(manual)
                s.add(row)
                s.commit()
        return queued

    # feedback

    def feedback_mode(self, course_id: str, assignment_id: str) -> str:
        with self.store.session() as s:
            row = s.get(FeedbackMode, (course_id, assignment_id))
            return row.mode if row else "manual"

    def set_feedback_mode(self, course_id: str, assignment_id: str, mode: str) -> None:
        if mode not in FEEDBACK_MODES:
            raise ValueError(f"feedback mode must be one of {', '.join(FEEDBACK_MODES)}")
        with self.store.session() as s:
            row = s.get(FeedbackMode, (course_id, assignment_id)) or FeedbackMode(
                course_id=course_id, assignment_id=assignment_id
            )
            row.mode = mode
            s.add(row)
            s.commit()

    def release_feedback(self, job: Job) -> bool:
        """Put the learner's feedback (made by generate_feedback_in_worker_process) in the
        exchange for them to fetch."""
        course_root = self.courses.path(job.course_id)
        folder = course_root / "feedback" / job.student / job.assignment_id
        htmls = sorted(folder.glob("*.html"))
        submission = self.exchange.submission(
            job.course_id, job.assignment_id, job.student, job.submission_id
        )
        self._hand_over(course_root, job.student)
        if not htmls or submission is None:
            return False
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in htmls:
                tar.add(path, arcname=path.name, recursive=False)
        self.exchange.release_feedback(submission, buffer.getvalue())
        return True

    # staff requests

    async def regrade(self, course_id: str, assignment_id: str, student: str) -> int | None:
        """Queue the learner's latest submission again; the job id, or None without one."""
        job_id = await asyncio.to_thread(self._queue_again, course_id, assignment_id, student)
        if job_id is not None:
            self._wake.set()
        return job_id

    def _queue_again(self, course_id: str, assignment_id: str, student: str) -> int | None:
        submissions = self.exchange.submissions(course_id, assignment_id, student)
        if not submissions:
            return None
        latest = submissions[-1]
        job_id = self.queue.enqueue(course_id, assignment_id, student, latest.id, latest.timestamp)
        self.queue.regrade(job_id)
        return job_id


# HTTP: staff see the queue and the passback log; a grader server asks for a regrade.


class GradingHandler(TokenHandler):
    service_title = "grading service"
    log = log

    def initialize(self, service: GradingService) -> None:
        self.service = service

    def identities(self) -> TokenIdentities:
        return self.service.identities

    async def staff_of(self, course_id: str) -> None:
        if self.caller.is_service:
            raise web.HTTPError(403, NOT_ALLOWED)
        role = await asyncio.to_thread(role_in, self.service.store, self.caller.username, course_id)
        if role != "staff":
            raise web.HTTPError(403, NOT_ALLOWED)


class CourseQueueHandler(GradingHandler):
    """GET api/courses/<id>/grading: the course's jobs and what was sent to the LMS."""

    async def get(self, course_id):
        await self.staff_of(course_id)
        jobs = await asyncio.to_thread(self.service.queue.jobs, course_id=course_id)
        grades = await asyncio.to_thread(self.service.outbox.entries, course_id=course_id)
        if self.get_query_argument("format", "json") == "html":
            course = await asyncio.to_thread(self.service.store.course, course_id)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(queue_page(course.title if course else course_id, jobs, grades))
            return
        self.send_json(
            {
                "jobs": [j.as_json() for j in jobs],
                "passback": [_entry_json(e) for e in grades],
            }
        )


class RegradeHandler(GradingHandler):
    """POST api/courses/<id>/regrade {assignment_id, student_id}: grade the latest again."""

    async def post(self, course_id):
        await self.staff_of(course_id)
        try:
            body = json.loads(self.request.body or b"{}")
            assignment, student = body["assignment_id"], body["student_id"]
        except (ValueError, KeyError):
            raise web.HTTPError(400, "Send {assignment_id, student_id} as JSON.") from None
        job_id = await self.service.regrade(course_id, assignment, student)
        if job_id is None:
            raise web.HTTPError(404, f"{student} has no submission of {assignment}.")
        self.send_json({"job_id": job_id, "state": "queued"}, status=202)


class FeedbackModeHandler(GradingHandler):
    """GET/PUT api/courses/<id>/assignments/<a>/feedback-mode {"mode": "manual"|"auto"}."""

    async def get(self, course_id, assignment_id):
        await self.staff_of(course_id)
        mode = await asyncio.to_thread(self.service.feedback_mode, course_id, assignment_id)
        self.send_json({"mode": mode})

    async def put(self, course_id, assignment_id):
        await self.staff_of(course_id)
        try:
            mode = json.loads(self.request.body or b"{}")["mode"]
            await asyncio.to_thread(self.service.set_feedback_mode, course_id, assignment_id, mode)
        except (ValueError, KeyError) as e:
            raise web.HTTPError(400, f"Send {{'mode': 'manual' or 'auto'}}: {e}") from None
        self.send_json({"mode": mode})


class MyGradingHandler(GradingHandler):
    """GET api/me/grading: the caller's own submissions, newest first, and how each one's
    grading went (a learner's server asks, with its own token, for its My Submissions page).
    """

    async def get(self):
        if self.caller.is_service:
            raise web.HTTPError(403, NOT_ALLOWED)
        jobs = await asyncio.to_thread(
            self.service.queue.jobs, student=self.caller.username, limit=MY_JOBS
        )
        courses = await asyncio.to_thread(self.service.store.courses)
        titles = {c.id: c.title for c in courses}
        self.send_json(
            {"submissions": [learner_view(j, titles, self.service.sandbox.note) for j in jobs]}
        )


# The most submissions api/me/grading lists (nbgrader keeps every one; the page is for now).
MY_JOBS = 200
# What each state means to the learner who submitted.
LEARNER_STATES = {
    JobState.QUEUED: "Waiting to be graded",
    JobState.RUNNING: "Being graded",
    JobState.GRADED: "Graded automatically",
    JobState.SUPERSEDED: "Not graded: a later submission of yours was graded instead",
    JobState.FAILED: "Could not be graded",
}


def learner_view(job: Job, titles: dict[str, str], staff_note: str | None = None) -> dict:
    """One submission as its learner sees it: no other learner, no note meant for staff
    only (which sandbox graded), a score only once graded."""
    graded = job.state == JobState.GRADED
    notes = [m for m in job.messages if m != staff_note and not m.startswith("Waiting")]
    return {
        "course_id": job.course_id,
        "course_title": titles.get(job.course_id, job.course_id),
        "assignment_id": job.assignment_id,
        "timestamp": job.timestamp,
        "state": job.state,
        "status": LEARNER_STATES.get(JobState(job.state), job.state),
        "score": job.score if graded else None,
        "max_score": job.max_score if graded else None,
        "needs_manual_grade": bool(job.needs_manual_grade) if graded else False,
        "notes": [_for_learner(m) for m in notes],
    }


def _for_learner(message: str) -> str:
    # The service's own failure names its exception, which is for staff and the log.
    if message.startswith(SERVICE_FAILED):
        return SERVICE_FAILED_FOR_LEARNER
    return message


def _entry_json(entry) -> dict:
    return {
        key: (value.value if hasattr(value, "value") else value)
        for key, value in vars(entry).items()
        if not key.startswith("_")
    }


QUEUE_PAGE = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"), autoescape=True
).get_template("learnhub-grading-queue.html")


def queue_page(course_title: str, jobs: list[Job], grades) -> str:
    """A plain page for staff: each submission's grading, and each grade's trip to the LMS."""
    return QUEUE_PAGE.render(course_title=course_title, jobs=jobs, grades=grades)


def make_app(service: GradingService, prefix: str) -> web.Application:
    root = "/" + prefix.strip("/") if prefix.strip("/") else ""
    api, me = f"{root}/api/courses", f"{root}/api/me"
    args = {"service": service}
    return web.Application(
        [
            (rf"{api}/([^/]+)/grading", CourseQueueHandler, args),
            (rf"{api}/([^/]+)/regrade", RegradeHandler, args),
            (rf"{api}/([^/]+)/assignments/([^/]+)/feedback-mode", FeedbackModeHandler, args),
            (rf"{me}/grading", MyGradingHandler, args),
        ]
    )


def service_from_environment(environ=os.environ) -> GradingService:
    settings = load_settings(environ=environ)
    grading = settings["grading"]
    store = Store(settings.database_url, settings.crypt_key)
    limits = Limits(
        cpus=float(grading["cpu_limit"]),
        memory_mb=int(grading["memory_mb"]),
        pids=int(grading["pids_limit"]),
        cell_timeout_s=int(grading["cell_timeout"]),
        notebook_timeout_s=int(grading["notebook_timeout"]),
    )
    service = GradingService(
        store=store,
        courses=CourseDirectories.from_settings(settings, environ),
        exchange=ExchangeStore(settings.state_dir / "exchange"),
        queue=GradingQueue(store),
        outbox=GradeOutbox(store, unlinked=grading["unlinked_assignments"]),
        sandbox=pick_sandbox(grading["sandbox"], limits, grading["image"] or DEFAULT_IMAGE),
        identities=TokenIdentities(
            environ["JUPYTERHUB_API_URL"], environ["JUPYTERHUB_API_TOKEN"], SERVICE_NAME
        ),
        workers=int(grading["workers"] or os.cpu_count() or 1),
    )
    return service


# How long the worker processes get to cancel their gradings and end, before they are killed.
WORKER_STOP_S = 3.0


async def stop_grading(service: GradingService, stop: asyncio.Event, work: asyncio.Task) -> None:
    """Take no more jobs, cancel the gradings under way and end the worker processes.

    A cancelled grading's sandbox removes what it started (its container, or its processes
    and folder); its job stays leased to this service and is taken again at the next start
    (GradingQueue.recover). The pool is shut down, not left to the interpreter's exit, so no
    worker outlives the service and no semaphore of the pool is left behind.
    """
    stop.set()
    service._wake.set()
    processes = pool_processes(service.pool)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)  # _stop_worker
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    shutdown = asyncio.to_thread(service.pool.shutdown, wait=True, cancel_futures=True)
    try:
        await asyncio.wait_for(shutdown, WORKER_STOP_S)
    except TimeoutError:
        log.warning("grading workers did not stop within %g s; killing them", WORKER_STOP_S)
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)


def _report_failure(work: asyncio.Task) -> None:
    if not work.cancelled() and work.exception() is not None:
        log.error("the grading service stopped grading", exc_info=work.exception())


class GradingServiceApp(ServiceApp):
    """learnhub-grading: grades each submission in a sandbox and sends the score on."""

    name = SERVICE_NAME

    async def serve(self) -> None:
        """Grade and serve until the hub stops the service (SIGINT, or SIGTERM)."""
        service = service_from_environment()
        server = self.listen(make_app(service, self.prefix), max_body_size=API_MAX_BODY_SIZE)
        log.info("%s: %d workers, %s sandbox", SERVICE_NAME, service.workers, service.sandbox.kind)
        stop = asyncio.Event()
        work = asyncio.create_task(service.run(stop))
        work.add_done_callback(_report_failure)
        await stop_signal(SERVICE_NAME, log)
        server.stop()
        await stop_grading(service, stop, work)
        await server.close_all_connections()


main = GradingServiceApp.launch_instance


if __name__ == "__main__":
    main()
