"""`learnhub analytics`: the daily counts, never a learner's."""

from __future__ import annotations

import argparse
import sys
import time

from ..privacy.analytics import METRICS, Analytics


def cmd_analytics(settings, args) -> int:
    analytics = Analytics(settings.database_url, settings.crypt_key)
    if not settings["privacy"]["analytics"]:
        print("privacy.analytics is false: nothing is counted.", file=sys.stderr)
    analytics.roll_over()
    print("day\tmetric\tkey\tcount")
    for row in analytics.counts(since=args.since):
        print(f"{row.day}\t{row.metric}\t{row.key or '-'}\t{row.count}")
    return 0


def _day(value: str) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-09-01") from None


def add_commands(subparsers) -> None:
    """Add `analytics` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "analytics",
        help="print the daily counts (launches, distinct learners, server starts, page views)",
        description="Print LearnHub's first-party daily counts, UTC days, tab-separated: "
        f"{', '.join(METRICS)}. Today's distinct learners are counted so far.",
    )
    p.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="only days from this one on")
    p.set_defaults(func=cmd_analytics)
