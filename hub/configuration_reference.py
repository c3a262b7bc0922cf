"""The configuration reference (docs/configuration.md), written from the settings schema.

`learnhub settings reference` prints it; a test compares the committed page with it, so the
page cannot say what the schema does not.
"""

from __future__ import annotations

import json
from typing import Any

from .settings import RULES, SCHEMA, SECRET_ENV, SETTINGS_FILE_NAME, options

INTRODUCTION = f"""\
# Configuration reference

<!-- Written by `learnhub settings reference` from the schema in hub/settings.py; a test
     compares this page with it. Edit the schema, then run
     `learnhub settings reference > docs/configuration.md`. -->

LearnHub reads one YAML file: `--config FILE`, else `$LEARNHUB_CONFIG`, else
`./{SETTINGS_FILE_NAME}`, else the defaults below. Every key is optional; an unknown key, a
value of the wrong type or out of its range, and keys that contradict each other are refused
when the file is read, with a message that names the key, by every `learnhub` command and by
the hub's start. `learnhub settings show` prints the values in effect.

A key marked *sets* is copied unchanged to that JupyterHub option (set it here, not in a
`jupyterhub_config.local.py`); LearnHub's own traits among them take their default, range and
help from this schema, so that the two cannot say different things.
"""

ENVIRONMENT = {
    "LEARNHUB_CONFIG": "the settings file, when `--config` is not given",
    "LEARNHUB_STATE_DIR": "the state directory (default `./learnhub-state`): keys, SQLite "
    "database, learners' files with the local backend, courses",
    SECRET_ENV["crypt_key"]: "64 or more hex digits: the secret LTI secrets, tool keys and "
    "auth state are encrypted with (else `crypt_key.hex` of the state directory)",
    SECRET_ENV["pseudonym_key"]: "64 or more hex digits: the key of learners' pseudonymous "
    "usernames (else `pseudonym_key.hex` of the state directory); changing it gives every "
    "learner a new account",
    "LEARNHUB_SMTP_PASSWORD": "the SMTP password, instead of `smtp.password`",
}


def _code(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def type_of(prop: dict[str, Any]) -> str:
    """A key's type and range in words, e.g. 'integer, 300 to 86400'."""
    if "enum" in prop:
        return "one of " + ", ".join(_code(v) for v in prop["enum"])
    types = prop.get("type", "any")
    words = " or ".join(types) if isinstance(types, list) else types
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum")
    if low is not None or high is not None:
        above = "above " if "exclusiveMinimum" in prop else ""
        words += f", {above}{low} to {high}" if high is not None else f", at least {low}"
    items = prop.get("items", {})
    if "pattern" in items:
        words += f" of strings matching `{items['pattern']}`"
    if "pattern" in prop:
        words += f" matching `{prop['pattern']}`"
    return words


def _key(path: str, prop: dict[str, Any]) -> list[str]:
    lines = [f"### `{path}`", ""]
    description = prop.get("description")
    if description:
        lines += [f"{description[0].upper()}{description[1:]}.", ""]
    lines.append(f"- type: {type_of(prop)}")
    lines.append(f"- default: {_code(prop.get('default'))}")
    if "sets" in prop:
        lines.append(f"- sets: `c.{prop['sets']}`")
    return [*lines, ""]


def _sections() -> list[str]:
    lines: list[str] = []
    current = None
    for path, prop in options():
        section = path.split(".")[0] if "." in path else ""
        if section != current:
            current = section
            title = f"`{section}`" if section else "Top level"
            lines += [f"## {title}", ""]
            description = SCHEMA["properties"].get(section, {}).get("description")
            if section and description:
                lines += [f"{description[0].upper()}{description[1:]}.", ""]
        lines += _key(path, prop)
    return lines


def markdown() -> str:
    """The whole page."""
    lines = [INTRODUCTION, *_sections(), "## Rules between keys", ""]
    lines += [f"- {' '.join(rule.__doc__.split())}" for rule in RULES]
    lines += ["", "## Environment", ""]
    lines += [f"- `{name}`: {what}" for name, what in ENVIRONMENT.items()]
    return "\n".join(lines) + "\n"
