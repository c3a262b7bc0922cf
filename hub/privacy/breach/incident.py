"""The incident file: what the operator tells affected people, checked before anything is sent."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .markdown import MarkdownError, bullets, markdown_sections, split_front_matter


class IncidentError(ValueError):
    """An incident file that cannot be sent, with a message naming the field and the fix."""


# Each field's description is what the operator reads when it is missing or wrong.
INCIDENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "title",
        "occurred",
        "discovered",
        "data_affected",
        "what_happened",
        "what_we_are_doing",
        "what_you_can_do",
    ],
    "properties": {
        "title": {
            "type": "string",
            "minLength": 5,
            "maxLength": 150,
            "pattern": "^[^\\n]+$",
            "description": "a one-line summary, e.g. 'Learner names and emails exposed "
            "by a misconfigured backup'",
        },
        "occurred": {
            "type": "string",
            "minLength": 4,
            "description": "when it happened: a date, or a period in words, e.g. "
            "'between 2026-05-20 and 2026-05-28'",
        },
        "discovered": {
            "type": "string",
            "minLength": 4,
            "description": "when you found out, e.g. 2026-05-29",
        },
        "data_affected": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 2},
            "description": "which personal data was involved, a list such as "
            "[names, email addresses, course grades]",
        },
        "what_happened": {
            "type": "string",
            "minLength": 80,
            "description": "what happened in reasonable detail, in words a learner "
            "understands (at least 80 characters)",
        },
        "what_we_are_doing": {
            "type": "string",
            "minLength": 40,
            "description": "the steps you have taken and are taking in response "
            "(at least 40 characters)",
        },
        "what_you_can_do": {
            "type": "string",
            "minLength": 10,
            "description": "what the learner can do to protect themselves, or that "
            "they need not do anything",
        },
        "contact": {
            "type": "string",
            "minLength": 5,
            "description": "how learners reach you with questions; operator.contact_email "
            "from the settings when unset",
        },
    },
}

# Markdown section headings and the fields they fill.
SECTIONS = {
    "what happened": "what_happened",
    "what we are doing": "what_we_are_doing",
    "what you can do": "what_you_can_do",
    "data affected": "data_affected",
    "contact": "contact",
}
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|<[A-Za-z ]+>")


@dataclass(frozen=True)
class Incident:
    """What the operator tells affected people about one breach."""

    title: str
    occurred: str
    discovered: str
    data_affected: tuple[str, ...]
    what_happened: str
    what_we_are_doing: str
    what_you_can_do: str
    contact: str | None = None


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key in ("occurred", "discovered"):
        # YAML reads an unquoted 2026-05-28 as a date.
        if isinstance(out.get(key), dt.date | dt.datetime):
            out[key] = out[key].isoformat()
    if isinstance(out.get("data_affected"), str):
        out["data_affected"] = bullets(out["data_affected"]) or [out["data_affected"]]
    for key, value in out.items():
        if isinstance(value, str):
            out[key] = value.strip()
    return out


def _describe_incident_error(error: jsonschema.ValidationError, name: str) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        sub = INCIDENT_SCHEMA["properties"][missing]
        return f"{name}: missing field '{missing}': add {sub['description']}"
    if error.validator == "additionalProperties":
        known = sorted(INCIDENT_SCHEMA["properties"])
        extra = sorted(set(error.instance) - set(known))
        return f"{name}: unknown field(s) {', '.join(extra)}: known fields are {', '.join(known)}"
    field_name = str(error.absolute_path[0]) if error.absolute_path else where
    description = INCIDENT_SCHEMA["properties"].get(field_name, {}).get("description", "")
    if error.validator == "minLength" and isinstance(error.instance, str):
        return (
            f"{name}: field '{where}' is too short ({len(error.instance)} characters): "
            f"write {description}"
        )
    return f"{name}: field '{where}': {error.message}; expected {description}"


def parse_incident(text: str, name: str = "incident", markdown: bool | None = None) -> Incident:
    """Read an incident from YAML, or from Markdown with YAML front matter and sections."""
    if markdown is None:
        markdown = text.lstrip("\ufeff").startswith("---")
    try:
        if markdown:
            front, body = split_front_matter(text, name)
            data = yaml.safe_load(front) or {}
            if not isinstance(data, dict):
                raise IncidentError(f"{name}: the front matter must be a mapping of fields")
            for key, value in markdown_sections(body, name, SECTIONS).items():
                if key in data:
                    raise IncidentError(
                        f"{name}: '{key}' is both in the front matter and a section: keep one"
                    )
                data[key] = value
        else:
            data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise IncidentError(f"{name} is not valid YAML: {e}") from None
    except MarkdownError as e:
        raise IncidentError(str(e)) from None
    if not isinstance(data, dict):
        raise IncidentError(f"{name} must hold a mapping of fields (title, occurred, ...)")
    data = _normalise(data)
    errors = sorted(
        jsonschema.Draft202012Validator(INCIDENT_SCHEMA).iter_errors(data),
        key=lambda e: (e.validator != "required", list(e.absolute_path)),
    )
    if errors:
        raise IncidentError(_describe_incident_error(errors[0], name))
    for key, value in data.items():
        for text_value in value if isinstance(value, list) else [value]:
            found = PLACEHOLDER.search(text_value)
            if found:
                raise IncidentError(
                    f"{name}: field '{key}' still holds the placeholder {found.group(0)!r}: "
                    "replace it with the real text"
                )
    data["data_affected"] = tuple(data["data_affected"])
    return Incident(**data)


def load_incident(path: str | os.PathLike) -> Incident:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise IncidentError(f"cannot read the incident file {path}: {e.strerror}") from None
    markdown = True if path.suffix.lower() in {".md", ".markdown"} else None
    return parse_incident(text, name=str(path), markdown=markdown)
