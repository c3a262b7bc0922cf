"""`learnhub settings`: the values in effect, and the configuration reference."""

from __future__ import annotations

import copy

import yaml

from ..configuration_reference import markdown

# Shown as set or not, never printed.
SECRET_KEYS = (("smtp", "password"),)


def cmd_show(settings, args) -> int:
    values = copy.deepcopy(settings.values)
    for section, key in SECRET_KEYS:
        if values[section][key] is not None:
            values[section][key] = "(set)"
    print(f"# settings: {settings.source or 'none (defaults)'}")
    print(f"# state directory: {settings.state_dir}")
    print(yaml.safe_dump(values, sort_keys=False, allow_unicode=True), end="")
    return 0


def cmd_reference(settings, args) -> int:
    print(markdown(), end="")
    return 0


def add_commands(subparsers) -> None:
    """Add `settings show` and `settings reference` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "settings",
        help="print the settings in effect, or the configuration reference",
        description="The settings LearnHub runs with, read and checked as the hub reads them.",
    )
    commands = p.add_subparsers(dest="settings_command", required=True, metavar="ACTION")
    show = commands.add_parser(
        "show",
        help="print every key's value in effect, defaults included (secrets shown as '(set)')",
    )
    show.set_defaults(func=cmd_show)
    reference = commands.add_parser(
        "reference", help="print the configuration reference (docs/configuration.md), Markdown"
    )
    reference.set_defaults(func=cmd_reference)
