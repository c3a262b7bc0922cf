"""`learnhub grading queue|regrade|feedback`: the grading queue, from the command line."""

from __future__ import annotations

import time

from ..grading.queue import GradingQueue, JobState
from ..grading.service import FEEDBACK_MODES, FeedbackMode
from ..store import Store


def _queue(settings) -> GradingQueue:
    return GradingQueue(Store(settings.database_url, settings.crypt_key))


def _when(timestamp: float | None) -> str:
    return (
        "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
    )


def cmd_queue(settings, args) -> int:
    queue = _queue(settings)
    states = tuple(args.state or ())
    jobs = queue.jobs(course_id=args.course, states=states, limit=args.limit)
    counts = queue.counts()
    print("Queue: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty"))
    for job in jobs:
        score = "" if job.score is None else f" {job.score:g}/{job.max_score:g}"
        notes = f" | {' '.join(job.messages)}" if job.messages else ""
        print(
            f"#{job.id} {job.course_id} {job.assignment_id} {job.student} "
            f"submitted {job.timestamp}: {job.state}{score} "
            f"(attempts {job.attempts}, finished {_when(job.finished)})"
            f"{' TAMPERED' if job.tampered else ''}{notes}"
        )
    return 0


def cmd_regrade(settings, args) -> int:
    queue = _queue(settings)
    done = [job_id for job_id in args.job if queue.regrade(job_id)]
    print(f"Queued again: {', '.join(f'#{j}' for j in done) or 'nothing'}.")
    return 0 if len(done) == len(args.job) else 1


def cmd_feedback(settings, args) -> int:
    store = Store(settings.database_url, settings.crypt_key)
    with store.session() as s:
        row = s.get(FeedbackMode, (args.course, args.assignment))
        if args.mode is None:
            print(row.mode if row else "manual")
            return 0
        if args.mode not in FEEDBACK_MODES:
            return 2
        row = row or FeedbackMode(course_id=args.course, assignment_id=args.assignment)
        row.mode = args.mode
        s.add(row)
        s.commit()
    print(f"Feedback of {args.assignment} in {args.course}: {args.mode}.")
    return 0


def add_commands(subparsers) -> None:
    grading = subparsers.add_parser("grading", help="see the grading queue, regrade, feedback")
    actions = grading.add_subparsers(dest="grading_command", required=True, metavar="ACTION")

    p = actions.add_parser(
        "queue",
        help="list submissions to grade and graded, newest first, with their notes",
        description="Each job: course, assignment, learner (pseudonym), state, score, and "
        "what the sandbox reported (limits hit, tampering, the weaker process sandbox).",
    )
    p.add_argument("--course", metavar="ID", help="only this course")
    p.add_argument(
        "--state", action="append", choices=[s.value for s in JobState], help="only this state"
    )
    p.add_argument("--limit", type=int, default=100, help="at most this many jobs (default 100)")
    p.set_defaults(func=cmd_queue)

    p = actions.add_parser("regrade", help="grade these jobs again (the grading service does)")
    p.add_argument("job", type=int, nargs="+", help="job number, as `queue` shows it")
    p.set_defaults(func=cmd_regrade)

    p = actions.add_parser(
        "feedback",
        help="show or set when an assignment's feedback reaches learners",
        description="manual (default): when staff release it in formgrader; auto: as soon "
        "as a submission is graded.",
    )
    p.add_argument("course", help="the course id")
    p.add_argument("assignment", help="the assignment name")
    p.add_argument("mode", nargs="?", choices=["manual", "auto"], help="set this mode")
    p.set_defaults(func=cmd_feedback)
