"""The `learnhub` command: one parser, one bootstrap, one module per command group."""

from __future__ import annotations

import argparse
import sys

from ..settings import SettingsError, load_settings
from . import (
    analytics,
    breach,
    database,
    grades,
    grading,
    images,
    lti,
    report,
    retention,
    run,
    settings,
)

# In the order `learnhub --help` lists them.
COMMAND_GROUPS = (
    run,
    settings,
    database,
    lti,
    images,
    breach,
    analytics,
    grades,
    grading,
    retention,
    report,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnhub",
        description="LearnHub: a privacy-first learning platform on JupyterHub. Settings come "
        "from learnhub.yaml (or $LEARNHUB_CONFIG); state lives in $LEARNHUB_STATE_DIR "
        "(default ./learnhub-state).",
    )
    parser.add_argument(
        "--config", help="settings file (default: $LEARNHUB_CONFIG or ./learnhub.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as e:
        print(f"error: invalid settings: {e}", file=sys.stderr)
        return 2
    try:
        return args.func(settings, args)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
