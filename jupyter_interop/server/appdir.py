"""The app directory: notebooks under the server root whose metadata declares ``interop``.

A notebook is an app when its ``metadata.interop`` holds the intents it handles (and,
optionally, the methods it offers and the channel it starts on), the shape of
docs/INTENTS.md, "Notebooks that start on demand". This module finds and validates them,
with no server or socket: a notebook whose metadata is wrong is listed with its ``error``,
never a crash, and the scan is bounded (hidden folders and checkpoints skipped, a depth and
a file cap) and cheap on a rescan (a notebook is read again only when its size or mtime
changed).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..hub.core import notebook_name
from ..protocol.intents import RESULT_TYPE_KEY, result_type_problem

__all__ = [
    "MAX_APP_NAMES",
    "MAX_NAME_LENGTH",
    "AppDirectory",
    "AppEntry",
    "DeclaredIntent",
    "app_from_notebook",
    "validate_interop",
]

#: most intents, methods or context types one notebook may declare
MAX_APP_NAMES = 64
#: longest intent, method, context type, display name or channel name
MAX_NAME_LENGTH = 200
#: intent, method and context type names: printable, no spaces, no path or markup characters
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*")
#: display names and channels: any printable text without control characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MetadataError(ValueError):
    """``metadata.interop`` does not have the documented shape (the message says where)."""


@dataclass(frozen=True)
class DeclaredIntent:
    """One intent a notebook declares it handles."""

    name: str
    context_types: tuple[str, ...] = ()
    display_name: str | None = None
    #: what its handler returns (``protocol/intents.py``)
    result_type: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "contextTypes": list(self.context_types),
            "displayName": self.display_name,
        }
        if self.result_type is not None:
            out[RESULT_TYPE_KEY] = self.result_type
        return out


@dataclass(frozen=True)
class AppEntry:
    """One notebook of the directory: what it declares, or why its declaration is refused."""

    #: root-relative, ``/``-separated (the contents API's path)
    path: str
    intents: tuple[DeclaredIntent, ...] = ()
    methods: tuple[str, ...] = ()
    channel: str | None = None
    title: str | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        """The application name its kernel has on the hub (the notebook's name)."""
        return notebook_name(self.path)

    def handles(self, intent: str, context_type: str | None = None) -> bool:
        """Does it declare ``intent`` for contexts of ``context_type`` (any without one)?"""
        return self.error is None and any(
            i.name == intent
            and (context_type is None or not i.context_types or context_type in i.context_types)
            for i in self.intents
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "title": self.title or self.name,
            "intents": [i.as_json() for i in self.intents],
            "methods": list(self.methods),
            "channel": self.channel,
            "error": self.error,
        }


# ---------------------------------------------------------------------- validation


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MetadataError(f"{where} must be a non-empty string, not {_shown(value)}")
    if len(value) > MAX_NAME_LENGTH or not _NAME.fullmatch(value):
        raise MetadataError(
            f"{where} {_shown(value)} is not a name (letters, digits, '_', '.', ':', '-'; "
            f"at most {MAX_NAME_LENGTH} characters)"
        )
    return value


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or _CONTROL.search(value):
        raise MetadataError(
            f"{where} must be a string of at most {MAX_NAME_LENGTH} printable characters, "
            f"not {_shown(value)}"
        )
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MetadataError(f"{where} must be a list of names, not {_shown(value)}")
    if len(value) > MAX_APP_NAMES:
        raise MetadataError(f"{where} lists {len(value)} names; at most {MAX_APP_NAMES}")
    return tuple(_name(item, f"{where}[{i}]") for i, item in enumerate(value))


def _result_type(value: Any, where: str) -> str | None:
    if value is None:
        return None
    problem = result_type_problem(value)
    if problem is not None:
        raise MetadataError(f"{where}: {problem}")
    return str(value)


def _shown(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    text = repr(value) if isinstance(value, str | int | float | bool) or value is None else None
    if text is None:
        return type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def validate_interop(
    interop: Any,
) -> tuple[tuple[DeclaredIntent, ...], tuple[str, ...], str | None, str | None]:
    """``(intents, methods, channel, title)`` from ``metadata.interop``; :class:`MetadataError`
    says what is wrong."""
    if not isinstance(interop, dict):
        raise MetadataError(f"metadata.interop must be an object, not {_shown(interop)}")
    raw = interop.get("intents")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise MetadataError(f"metadata.interop.intents must be a list, not {_shown(raw)}")
    if len(raw) > MAX_APP_NAMES:
        raise MetadataError(f"metadata.interop.intents lists {len(raw)}; at most {MAX_APP_NAMES}")
    intents = []
    for index, item in enumerate(raw):
        where = f"metadata.interop.intents[{index}]"
        if not isinstance(item, dict):
            raise MetadataError(f"{where} must be an object, not {_shown(item)}")
        intents.append(
            DeclaredIntent(
                _name(item.get("name"), f"{where}.name"),
                _names(item.get("contextTypes"), f"{where}.contextTypes"),
                _text(item.get("displayName"), f"{where}.displayName"),
                _result_type(item.get(RESULT_TYPE_KEY), f"{where}.{RESULT_TYPE_KEY}"),
            )
        )
    methods = _names(interop.get("methods"), "metadata.interop.methods")
    if not intents and not methods:
        raise MetadataError("metadata.interop declares no intents and no methods")
    channel = _text(interop.get("channel"), "metadata.interop.channel")
    title = _text(interop.get("title"), "metadata.interop.title")
    return tuple(intents), methods, channel or None, title


def app_from_notebook(path: str, content: bytes) -> AppEntry | None:
    """The directory entry of the notebook at ``path`` (root-relative) whose file holds
    ``content``: ``None`` when it declares nothing; an entry with ``error`` when what it
    declares (or the file) is not valid."""
    try:
        notebook = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None  # not readable as a notebook: Jupyter shows that, we list nothing
    metadata = notebook.get("metadata") if isinstance(notebook, dict) else None
    if not isinstance(metadata, dict) or "interop" not in metadata:
        return None
    try:
        intents, methods, channel, title = validate_interop(metadata["interop"])
    except MetadataError as error:
        return AppEntry(path, error=str(error))
    return AppEntry(path, intents, methods, channel, title)


# ---------------------------------------------------------------------- the directory


@dataclass
class _Seen:
    stamp: tuple[int, int]
    entry: AppEntry | None


@dataclass
class AppDirectory:
    """The app notebooks under ``root``; :meth:`scan` refreshes and returns them.

    Bounded: folders deeper than ``max_depth`` below the root, hidden names (``.x``, which
    includes ``.ipynb_checkpoints``) and symbolic links to folders are not entered; at most
    ``max_files`` notebooks are looked at, and none larger than ``max_notebook_bytes`` is read.
    """

    root: str
    max_depth: int = 4
    max_files: int = 2000
    max_notebook_bytes: int = 16 * 1024 * 1024
    _seen: dict[str, _Seen] = field(default_factory=dict)
    #: True when the last scan stopped at ``max_files``
    truncated: bool = False

    def scan(self) -> list[AppEntry]:
        """Walk the root; read the notebooks that changed since the last scan."""
        found: dict[str, _Seen] = {}
        self.truncated = False
        stack: list[tuple[str, str, int]] = [(self.root, "", 0)]
        while stack:
            folder, prefix, depth = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    items = sorted(entries, key=lambda e: e.name)
            except OSError:
                continue
            subfolders = []
            for item in items:
                if item.name.startswith("."):
                    continue
                rel = prefix + item.name
                try:
                    if item.is_dir(follow_symlinks=False):
                        if depth < self.max_depth:
                            subfolders.append((item.path, rel + "/", depth + 1))
                        continue
                    if not item.name.endswith(".ipynb") or not item.is_file():
                        continue
                    if len(found) >= self.max_files:
                        self.truncated = True
                        return self._keep(found)
                    stat = item.stat()
                except OSError:
                    continue
                found[rel] = self._look(rel, item.path, (stat.st_mtime_ns, stat.st_size))
            stack.extend(reversed(subfolders))
        return self._keep(found)

    def _look(self, rel: str, full: str, stamp: tuple[int, int]) -> _Seen:
        seen = self._seen.get(rel)
        if seen is not None and seen.stamp == stamp:
            return seen
        entry = None
        if stamp[1] <= self.max_notebook_bytes:
            try:
                with open(full, "rb") as handle:
                    entry = app_from_notebook(rel, handle.read())
            except OSError:
                entry = None
        return _Seen(stamp, entry)

    def _keep(self, found: dict[str, _Seen]) -> list[AppEntry]:
        self._seen = found
        return [s.entry for s in found.values() if s.entry is not None]
