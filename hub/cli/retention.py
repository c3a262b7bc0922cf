"""`learnhub retention` and `learnhub course remove-student`: expire or erase data now."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime

import requests

from ..privacy.erasure import remove_from_course
from ..privacy.retention import RetentionPolicy, sweep
from ..privacy.service import erasure_context, hub_api_url, service_token

log = logging.getLogger("learnhub.privacy.retention")


def _when(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO date or time like 2027-09-01 or 2027-09-01T12:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _context(settings):
    return erasure_context(
        settings, hub_api_url(settings), service_token(settings.state_dir), log=log
    )


def cmd_retention(settings, args) -> int:
    if not args.dry_run and args.action != "run":
        print("error: say what to do: --dry-run (list only) or run (do it now)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    policy = RetentionPolicy.from_settings(settings.values)
    try:
        report = sweep(_context(settings), policy, now=args.now, dry_run=args.dry_run)
    except requests.RequestException as e:
        print(
            f"error: the hub API did not answer ({type(e).__name__}): erasure deletes users "
            "through it, so the hub must be running",
            file=sys.stderr,
        )
        return 1
    decided = report.plan
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(args.now or time.time()))
    print(f"{'Would' if args.dry_run else 'Did'}, as of {moment}:")
    print(f"scrub name and email\t{len(decided.scrub)}")
    print(f"delete person\t{len(decided.delete)}")
    print(f"delete course\t{len(decided.delete_courses)}")
    for reason, count in sorted(decided.kept.items()):
        print(f"kept ({reason})\t{count}")
    # Usernames and course ids are pseudonyms (keyed hashes), not personal names.
    for label, names in (
        ("scrub", decided.scrub),
        ("delete", decided.delete),
        ("delete-course", decided.delete_courses),
    ):
        for name in names:
            print(f"{label}\t{name}")
    if not args.dry_run:
        for label, counts in (
            ("scrubbed", report.scrubbed),
            ("erased", report.erased),
            ("course data erased", report.courses_erased),
        ):
            if counts:
                print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        print(
            "seconds: "
            + ", ".join(f"{k}={v:.1f}" for k, v in report.phases.items())
            + f", sweep={report.seconds:.1f}"
        )
        if report.erase_seconds:
            print(
                "erasure seconds by store: "
                + ", ".join(f"{k}={v:.1f}" for k, v in report.erase_seconds.items())
            )
        if report.compacted:
            print(f"database compacted ({report.compacted})")
        if report.failed:
            print(f"failed for {report.failed} people; the next sweep retries", file=sys.stderr)
            return 3
    return 0


def cmd_remove_student(settings, args) -> int:
    context = _context(settings)
    courses = [c for c in context.store.courses() if args.course in {c.id, c.title, c.context_id}]
    if len(courses) != 1:
        problem = "no course" if not courses else f"{len(courses)} courses"
        print(f"error: {problem} with id or title {args.course!r}", file=sys.stderr)
        return 1
    course = courses[0]
    enrollment = context.store.enrollment(args.username, course.id)
    if enrollment is None:
        print(f"error: {args.username} is not enrolled in {course.id}", file=sys.stderr)
        return 1
    try:
        counts = remove_from_course(context, args.username, course.id)
    except requests.RequestException as e:
        print(f"error: the hub API did not answer ({type(e).__name__})", file=sys.stderr)
        return 1
    print(
        f"Removed {args.username} from {course.id} ({course.title}): "
        + ", ".join(f"{k}={v}" for k, v in counts.items())
    )
    print("A new launch from the LMS enrolls them again; remove them in the LMS too.")
    return 0


def add_commands(subparsers) -> None:
    """Add `retention` and `course` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "retention",
        help="expire inactive data now (run) or list what would expire (--dry-run)",
        description="Apply privacy.retention: scrub names and emails of learners inactive for "
        "scrub_after_days, delete learners inactive for delete_after_days and courses nobody "
        "launched for course_delete_after_days. Administrators and direct-login accounts are "
        "never touched. Needs the hub running (users are deleted through its API).",
    )
    p.add_argument("action", nargs="?", choices=["run"], help="run: do it now")
    p.add_argument("--dry-run", action="store_true", help="list counts and usernames only")
    p.add_argument(
        "--now",
        type=_when,
        metavar="ISO",
        help="decide as if it were this UTC time, e.g. 2027-09-01 (tests, catching up)",
    )
    p.set_defaults(func=cmd_retention)

    course = subparsers.add_parser("course", help="manage people in a course")
    actions = course.add_subparsers(dest="course_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "remove-student",
        help="remove a student from a course with everything kept for them there",
    )
    p.add_argument("course", help="the course id (cXXXXXXXXXXX) or its exact title")
    p.add_argument("username", help="the student's (pseudonymous) username")
    p.set_defaults(func=cmd_remove_student)
