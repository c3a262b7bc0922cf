"""`learnhub notify-breach`: email every affected person whose address is known, and report."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ..privacy.breach import (
    AFFECTED_FORMS,
    UNREADABLE,
    AffectedError,
    HubDirectory,
    IncidentError,
    Recipient,
    Report,
    Sender,
    build_message,
    default_report_path,
    deliver,
    load_incident,
    parse_affected,
    resolve_recipients,
    select_accounts,
    sending_problems,
    write_report,
)
from ..privacy.mail import SmtpConnectError, SmtpOutbox, SmtpServer, TokenBucket

log = logging.getLogger("learnhub.privacy.breach")

# Exit codes of the command.
EXIT_OK = 0
EXIT_REFUSED = 1  # bad input or settings, or the server cannot be used: nothing was sent
EXIT_SOME_FAILED = 3  # the run finished but some messages were not delivered


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _duration(count: int, rate_per_minute: int) -> str:
    minutes = max(count - 1, 0) / rate_per_minute
    return "under a minute" if minutes < 1 else f"about {minutes:.0f} min"


PREVIEW_RECIPIENT = Recipient("preview", email="learner@example.invalid", name="Ada Learner")


def cmd_notify_breach(settings, args, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        incident = load_incident(args.incident)
        affected = parse_affected(args.affected)
    except (IncidentError, AffectedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    problems = sending_problems(settings.values, incident, environ)
    if problems and not args.dry_run:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("Nothing was sent.", file=sys.stderr)
        return EXIT_REFUSED

    try:
        accounts = HubDirectory(settings.database_url).accounts()
        chosen, not_found = select_accounts(accounts, affected)
    except AffectedError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    recipients = asyncio.run(resolve_recipients(chosen, settings.crypt_key))
    encrypted = sum(1 for a in chosen if a.encrypted_auth_state is not None)
    unreadable = sum(1 for r in recipients if r.missing == UNREADABLE)
    if encrypted and unreadable == encrypted:
        print(
            f"error: none of the {encrypted} auth states could be decrypted: this is not the "
            "hub's crypt key (LEARNHUB_CRYPT_KEY, or crypt_key.hex in the state directory)",
            file=sys.stderr,
        )
        return EXIT_REFUSED

    report = Report(
        incident=incident.title,
        affected=affected.label,
        dry_run=args.dry_run,
        started=_now(),
        not_found=not_found,
        no_address=[{"username": r.username, "reason": r.missing} for r in recipients if r.missing],
    )
    sendable = [r for r in recipients if r.email]
    rate = settings["smtp"]["rate_per_minute"]
    print(f"Incident: {incident.title}")
    print(
        f"Affected ({affected.label}): {len(recipients)} users, {len(sendable)} with an "
        f"address, {len(report.no_address)} without"
    )
    sender = Sender.from_settings(settings.values, settings.public_url)

    if args.dry_run:
        report.would_notify = [r.username for r in sendable]
        report.finished = _now()
        print("Dry run: nothing is sent.")
        for problem in problems:
            print(f"A real run would refuse: {problem}")
        if not problems:
            server = SmtpServer.from_settings(settings["smtp"], environ)
            print(
                f"Would send {len(sendable)} messages through {server.describe()}, at most "
                f"{rate} per minute ({_duration(len(sendable), rate)})."
            )
            preview = build_message(incident, sender, PREVIEW_RECIPIENT)
            print("\nThe message, for a made-up recipient:\n")
            for header in ("From", "To", "Reply-To", "Subject"):
                if preview[header]:
                    print(f"{header}: {preview[header]}")
            print(f"\n{preview.get_content()}")
        print("\n".join(report.lines()))
        return EXIT_REFUSED if problems else EXIT_OK

    server = SmtpServer.from_settings(settings["smtp"], environ)
    print(
        f"Sending {len(sendable)} messages through {server.describe()}, at most {rate} per "
        f"minute ({_duration(len(sendable), rate)})."
    )
    try:
        with SmtpOutbox(server) as outbox:
            deliver(incident, sender, recipients, outbox, TokenBucket(rate), report)
    except SmtpConnectError as e:
        print(f"error: {e}", file=sys.stderr)
        print("Nothing was sent.", file=sys.stderr)
        return EXIT_REFUSED
    report.finished = _now()
    log.info(
        "breach notification: %d notified, %d failed, %d without an address, %d not found",
        len(report.notified),
        len(report.failed),
        len(report.no_address),
        len(report.not_found),
    )
    path = Path(args.report) if args.report else default_report_path(settings, Path(args.incident))
    write_report(report, path)
    print("\n".join(report.lines()))
    print(f"Report: {path}")
    return EXIT_SOME_FAILED if report.failed else EXIT_OK


def add_commands(subparsers) -> None:
    """Add `notify-breach` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "notify-breach",
        help="email everyone affected by a data breach and report who was notified",
        description="Email every affected user whose address is known about a data breach, "
        "through the SMTP server in the settings (smtp, operator). Try --dry-run first. "
        f"Exit status: {EXIT_OK} all sent, {EXIT_REFUSED} refused (nothing sent), "
        f"{EXIT_SOME_FAILED} some messages failed.",
    )
    p.add_argument(
        "--incident",
        required=True,
        metavar="FILE",
        help="YAML or Markdown-with-front-matter file describing the incident "
        "(see docs/breach-notification.md)",
    )
    p.add_argument(
        "--affected",
        default="all",
        metavar="WHO",
        help=f"who is affected: {AFFECTED_FORMS} (default: all)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="send nothing; show who would get which message"
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="where to write the JSON report (default: the state directory's breach-reports/)",
    )
    p.set_defaults(func=cmd_notify_breach)
