"""`learnhub report usage|accounting|support`: aggregate system statistics, never a learner's."""

from __future__ import annotations

import sys
import time

from ..privacy.report import accounting_report, support_report, usage_report
from ..settings import Settings


def cmd_report(settings: Settings, args) -> int:
    if args.kind == "usage":
        print(usage_report(settings, args.since))
    elif args.kind == "accounting":
        print(accounting_report(settings))
    else:
        print(support_report(settings))
    generated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(
        f"\n(generated {generated}; aggregate figures only: LearnHub has no report or "
        "endpoint about one learner)",
        file=sys.stderr,
    )
    return 0


def add_commands(subparsers) -> None:
    """Add `report` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "report",
        help="aggregate system statistics: usage, accounting or support",
        description="Aggregate figures the privacy policy allows: usage (launches, distinct "
        "learners, server starts, page views per day), accounting (accounts, courses, "
        "enrollments by role, storage, container limits) or support (servers, grade "
        "passback outbox, service health). Nothing in them is about one learner.",
    )
    p.add_argument("kind", choices=["usage", "accounting", "support"])
    p.add_argument("--since", help="usage: only days from this one on (YYYY-MM-DD)")
    p.set_defaults(func=cmd_report)
