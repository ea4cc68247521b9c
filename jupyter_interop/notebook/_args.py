"""Parsing of ``%interop`` lines: tokens, JSON payloads, ``key=value`` pairs and expansion.

Why not IPython's own expansion: it is all-or-nothing, and a JSON literal in the line makes it
expand **nothing** (Jupyter notes). The magic is therefore ``@no_var_expand`` and expands
explicitly, with rules that never touch JSON:

* ``key=value``: ``value`` is JSON if it parses as JSON (``5``, ``true``, ``null``,
  ``"quoted text"``, ``[1, 2]``, ``{"a": 1}``); ``$name`` (or ``$name.attr``) is a variable of
  the notebook, passed as the object itself (DataFrames included, never its text);
  ``{expr}`` is a Python expression evaluated in the notebook namespace; ``$$...`` is a
  literal ``$...``; anything else is the text itself (``'single quotes'`` are removed).
  A dotted key (``address.city=Paris``) builds nested objects.
* a JSON payload (a token starting with ``{`` or ``[``) is standard JSON in which ``$name``
  may stand for a value anywhere a JSON value may appear; ``$`` inside JSON strings is text.

The tokenizer keeps quotes and balanced ``{...}``/``[...]`` together, so JSON with spaces
needs no shell quoting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

__all__ = [
    "Token",
    "build_pairs",
    "expand_value",
    "nest",
    "parse_json",
    "parse_pairs",
    "parse_payload",
    "split_line",
    "unquote",
]

_NAME = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_KEY = re.compile(r"^[A-Za-z_][\w\-]*(?:\.[\w\-]+)*$")


@dataclass(frozen=True)
class Token:
    """A token of the line as typed (quotes kept) and where it started."""

    text: str
    start: int

    @property
    def is_json(self) -> bool:
        return self.text[:1] in ("{", "[")


def _scan_quoted(line: str, i: int) -> int:
    quote = line[i]
    i += 1
    while i < len(line):
        if line[i] == "\\" and quote == '"':
            i += 2
            continue
        if line[i] == quote:
            return i + 1
        i += 1
    raise UsageError(f"unterminated {quote} quote starting at column {i}")


def _scan_balanced(line: str, i: int) -> int:
    depth = 0
    start = i
    while i < len(line):
        ch = line[i]
        if ch == '"':
            i = _scan_quoted(line, i)
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise UsageError(f"unbalanced {line[start]!r} starting at column {start + 1}: {line[start:]}")


def split_line(line: str) -> list[Token]:
    """Split a magic line on whitespace, keeping quotes and JSON objects/arrays whole."""
    tokens: list[Token] = []
    i = 0
    n = len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not line[i].isspace():
            ch = line[i]
            if ch in "\"'":
                i = _scan_quoted(line, i)
            elif ch in "{[":
                i = _scan_balanced(line, i)
            else:
                i += 1
        tokens.append(Token(line[start:i], start))
    return tokens


def unquote(text: str) -> str:
    """Remove one pair of surrounding quotes (JSON rules for double quotes)."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text[1:-1]
        return value if isinstance(value, str) else text
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    return text


def _lookup(name: str, ns: Mapping[str, Any]) -> Any:
    head, *rest = name.split(".")
    if head not in ns:
        raise UsageError(f"${head}: no variable {head!r} in the notebook")
    value = ns[head]
    for attr in rest:
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise UsageError(f"${name}: {type(value).__name__} has no attribute {attr!r}") from None
    return value


def _evaluate(expr: str, ns: Mapping[str, Any]) -> Any:
    try:
        return eval(expr, dict(ns))  # the user's own expression in the user's own namespace
    except Exception as exc:
        raise UsageError(f"{{{expr}}}: {type(exc).__name__}: {exc}") from None


def expand_value(text: str, ns: Mapping[str, Any]) -> Any:
    """The value of one ``key=value`` right-hand side (see the module docstring)."""
    if text.startswith("$$"):
        return text[1:]
    match = _NAME.fullmatch(text)
    if match:
        return _lookup(match.group(1), ns)
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text.startswith("{") and text.endswith("}"):
        return _evaluate(text[1:-1], ns)
    if text[:1] in ("[", '"'):
        raise UsageError(f"invalid JSON value: {text}")
    return unquote(text)


def parse_json(text: str, ns: Mapping[str, Any] | None = None) -> Any:
    """Parse JSON in which ``$name`` outside strings stands for a notebook variable."""
    values: list[Any] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = _scan_quoted(text, i)
            out.append(text[i:j])
            i = j
            continue
        if ch == "$":
            match = _NAME.match(text, i)
            if match is None:
                raise UsageError(f"'$' at column {i + 1} of the JSON is not followed by a name")
            if ns is None:
                raise UsageError("$variables cannot be used here")
            values.append(_lookup(match.group(1), ns))
            out.append(json.dumps(f"\x00ji:{len(values) - 1}"))
            i = match.end()
            continue
        out.append(ch)
        i += 1
    try:
        parsed = json.loads("".join(out))
    except json.JSONDecodeError as exc:
        raise UsageError(f"invalid JSON ({exc.msg} at column {exc.colno}): {text}") from None
    return _substitute(parsed, values) if values else parsed


def _substitute(value: Any, values: list[Any]) -> Any:
    if isinstance(value, str) and value.startswith("\x00ji:"):
        return values[int(value[4:])]
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def parse_pairs(tokens: list[str], ns: Mapping[str, Any]) -> dict[str, Any]:
    """``key=value`` tokens to ``{dotted.path: value}`` (values expanded, keys as typed)."""
    paths: dict[str, Any] = {}
    for token in tokens:
        key, sep, raw = token.partition("=")
        if not sep or not _KEY.match(key):
            raise UsageError(
                f"expected key=value, got {token!r} (a JSON object must start with '{{')"
            )
        paths[key] = expand_value(raw, ns)
    return paths


def nest(paths: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` → ``{"a": {"b": 1}, "c": 2}``."""
    result: dict[str, Any] = {}
    for key, value in paths.items():
        target = result
        *parents, last = key.split(".")
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"{key}: {part!r} is already set to a non-object value")
            target = child
        target[last] = value
    return result


def build_pairs(tokens: list[str], ns: Mapping[str, Any]) -> dict[str, Any]:
    """``key=value`` tokens to a dict; dotted keys nest (``a.b=1`` → ``{"a": {"b": 1}}``)."""
    return nest(parse_pairs(tokens, ns))


def parse_payload(
    tokens: list[str], ns: Mapping[str, Any], *, what: str = "ARGS", require_object: bool = True
) -> Any:
    """ARGS as typed: one JSON token, or ``key=value`` pairs (nothing: ``{}``)."""
    if not tokens:
        return {}
    if tokens[0][:1] in ("{", "["):
        if len(tokens) > 1:
            raise UsageError(f"{what}: unexpected text after the JSON: {' '.join(tokens[1:])}")
        value = parse_json(tokens[0], ns)
        if require_object and not isinstance(value, dict):
            raise UsageError(f"{what} must be a JSON object, got {type(value).__name__}")
        return value
    return build_pairs(tokens, ns)
