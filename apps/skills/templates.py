"""Filling skill templates: `{name}` and dotted `{data.id}` placeholders from JSON values."""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import quote


class MissingValue(KeyError):
    """A template names a value that is not there."""


def value_at(values: Any, path: str) -> Any:
    """The value at a dotted path (`data.items.0.id`) in nested dicts and lists."""
    current = values
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise MissingValue(path)
    return current


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fill(template: str, values: Any, *, url: bool = False) -> str:
    """`template` with every {path} replaced by its value (URL-quoted when `url`).

    Raises MissingValue naming the first path that has no value.
    """
    parts: list[str] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            text = _text(value_at(values, name))
            parts.append(quote(text, safe="") if url else text)
    return "".join(parts)


def fill_json(template: Any, values: Any) -> Any:
    """A JSON template filled in: a string that is just "{path}" takes the value itself
    (a number stays a number), other strings are filled as text."""
    if isinstance(template, dict):
        return {key: fill_json(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill_json(item, values) for item in template]
    if isinstance(template, str):
        parsed = list(string.Formatter().parse(template))
        if len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1]:
            return value_at(values, parsed[0][1])
        return fill(template, values)
    return template


def template_problem(template: str) -> str | None:
    """Why `template` cannot be filled (unpaired braces, formats), or None."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return "braces must be paired: write {{ and }} for literal braces"
    for _literal, name, spec, conversion in fields:
        if name is not None and (not name or spec or conversion):
            return f"{{{name}}}: only plain names and dotted paths are allowed"
    return None
