"""`learnhub grades outbox|retry`: grades sent back to the LMS, and sending failed ones again."""

from __future__ import annotations

import asyncio
import time

from ..passback import PROBLEM_STATES, GradeOutbox, GradeState, OutboxEntry
from ..store import Store


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_entry(entry: OutboxEntry) -> str:
    """One listing line: what, where it stands, and why."""
    score = f"{entry.score:g}/{entry.max_score:g}" + (" (manual pending)" * entry.pending_manual)
    if entry.state is GradeState.SENT:
        where = entry.destination or "the LMS"
        status = f"sent {_when(entry.sent_at)} to {where} (LMS answered {entry.lms_status})"
    elif entry.state is GradeState.FAILED:
        status = f"next attempt {_when(entry.next_attempt)}"
    elif entry.state is GradeState.PENDING:
        status = f"due {_when(entry.next_attempt)}"
    elif entry.state is GradeState.SUPERSEDED:
        status = f"replaced by #{entry.superseded_by} before it was sent"
    else:
        status = "will not be retried until `learnhub grades retry`"
    why = f"\t{entry.last_error}" if entry.last_error and entry.state is not GradeState.SENT else ""
    return (
        f"#{entry.id}\t{entry.state}\t{entry.course_id}\t{entry.assignment}\t{entry.username}\t"
        f"{score}\tLTI {entry.lti_version or '?'}\tattempts={entry.attempts}\t{status}{why}"
    )


def _outbox(settings) -> GradeOutbox:
    return GradeOutbox(
        Store(settings.database_url, settings.crypt_key),
        unlinked=settings["grading"]["unlinked_assignments"],
    )


def cmd_outbox(settings, args) -> int:
    outbox = _outbox(settings)
    entries = outbox.entries(
        course_id=args.course,
        states=PROBLEM_STATES if args.failed else None,
        limit=args.limit,
    )
    if not entries:
        print("No grades " + ("failed" if args.failed else "in the outbox") + ".")
    for entry in entries:
        print(format_entry(entry))
    return 0


def cmd_retry(settings, args) -> int:
    outbox = _outbox(settings)
    chosen = outbox.requeue(course_id=args.course, ids=args.id or None)
    if not chosen:
        print("No failed grades to retry.")
        return 0
    print(f"Retrying {len(chosen)} grade(s).")
    if args.no_send:
        return 0
    asyncio.run(outbox.deliver_due())
    still_failing = 0
    for grade_id in sorted(chosen):
        entry = outbox.get(grade_id)
        if entry is None:
            continue
        still_failing += entry.state is not GradeState.SENT
        print(format_entry(entry))
    return 1 if still_failing else 0


def add_commands(subparsers) -> None:
    """Add `grades outbox` and `grades retry` to the `learnhub` command's subparsers."""
    grades = subparsers.add_parser("grades", help="see and retry grades sent back to the LMS")
    actions = grades.add_subparsers(dest="grades_command", required=True, metavar="ACTION")

    p = actions.add_parser(
        "outbox",
        help="list grades sent, failed or waiting for the LMS, and why",
        description="List the grade outbox, newest first: sent (when, LMS status), failed "
        "(next attempt, last error), needs-attention and no-target (not retried), pending.",
    )
    p.add_argument("--course", metavar="ID", help="only this course (its LearnHub course id)")
    p.add_argument(
        "--failed",
        action="store_true",
        help="only grades that did not arrive: failed, needs-attention, no-target",
    )
    p.add_argument("--limit", type=int, default=200, help="at most this many rows (default 200)")
    p.set_defaults(func=cmd_outbox)

    p = actions.add_parser(
        "retry",
        help="send failed grades again now (after fixing what the error named)",
        description="Make failed, needs-attention and no-target grades due now and send them. "
        "Exit status 0 when every one arrived, 1 otherwise.",
    )
    p.add_argument("--course", metavar="ID", help="only this course")
    p.add_argument("--id", type=int, action="append", help="only this grade (repeatable)")
    p.add_argument(
        "--no-send", action="store_true", help="only requeue; the grading service sends them"
    )
    p.set_defaults(func=cmd_retry)
