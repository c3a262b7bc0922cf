"""The Markdown form of an incident file: YAML front matter, then `## Section` headings."""

from __future__ import annotations

import re
from collections.abc import Mapping


class MarkdownError(ValueError):
    """A Markdown incident file whose layout cannot be read, with the fix."""


def split_front_matter(text: str, name: str) -> tuple[str, str]:
    """The front matter between the two '---' lines, and the body after them."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise MarkdownError(
            f"{name}: a Markdown incident file starts with YAML front matter between "
            "two '---' lines (title, occurred, discovered, data_affected)"
        )
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() in {"---", "..."}:
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    raise MarkdownError(f"{name}: the front matter has no closing '---' line")


def markdown_sections(body: str, name: str, headings: Mapping[str, str]) -> dict[str, str]:
    """`## What happened` style sections of the body, by the field `headings` maps each
    heading (in lower case) to."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        heading = re.match(r"^#{1,3}\s+(.*?)\s*#*\s*$", line)
        if heading:
            key = " ".join(heading.group(1).lower().rstrip(":?").split())
            if key not in headings:
                known = ", ".join(f"'## {s.capitalize()}'" for s in headings)
                raise MarkdownError(f"{name}: unknown section '{heading.group(1)}': use {known}")
            field_name = headings[key]
            if field_name in sections:
                raise MarkdownError(f"{name}: section '{heading.group(1)}' appears twice")
            current = sections[field_name] = []
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise MarkdownError(
                f"{name}: text before the first section: start the body with '## What happened'"
            )
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def bullets(text: str) -> list[str]:
    """The items of a `- item` list, one a line."""
    items = [re.sub(r"^\s*[-*]\s+", "", line).strip() for line in text.splitlines()]
    return [i for i in items if i]
