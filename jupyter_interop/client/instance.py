"""Peers as Python sees them: :class:`Instance`, and io.Connect's instance filters.

An instance filter is a dict of identity fields (io.Connect's camelCase names or their
snake_case twins); a peer matches when every given field equals its value, compared as
case-insensitive strings as the io.Connect client does. A compiled regular expression as a
value matches with ``search`` (io.Connect documents regex filters; its 2021 code never had them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ArgumentError

__all__ = ["Instance", "InstanceFilter", "matches", "normalize_filter", "wire_identity"]

InstanceFilter = dict[str, Any]

#: snake_case attribute -> io.Connect identity key
_WIRE_NAMES = {
    "application": "application",
    "application_name": "applicationName",
    "pid": "process",
    "machine": "machine",
    "user": "user",
    "environment": "environment",
    "region": "region",
    "service": "service",
    "instance": "instance",
    "window_id": "windowId",
    "peer_id": "peerId",
    "kernel_id": "kernelId",
    "notebook_path": "notebookPath",
    "api": "api",
}
_FROM_WIRE = {wire: attr for attr, wire in _WIRE_NAMES.items()}
_FROM_WIRE["pid"] = "pid"


@dataclass(frozen=True, eq=False)
class Instance:
    """One peer's identity as resolved by the hub (``notebook_path`` for notebook kernels)."""

    peer_id: str
    application: str | None = None
    application_name: str | None = None
    instance: str | None = None
    pid: int | None = None
    machine: str | None = None
    user: str | None = None
    environment: str | None = None
    region: str | None = None
    service: str | None = None
    window_id: str | None = None
    kernel_id: str | None = None
    notebook_path: str | None = None
    api: str | None = None
    is_local: bool = True
    #: for a peer of another hub of the federation (``is_local`` false), the id of the hub it
    #: is connected to (docs/FEDERATION.md); None for a peer of this hub
    hub: str | None = None
    identity: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_identity(
        cls,
        identity: dict[str, Any],
        peer_id: str | None = None,
        is_local: bool = True,
        hub: str | None = None,
    ) -> Instance:
        values: dict[str, Any] = {}
        for key, value in identity.items():
            attr = _FROM_WIRE.get(key)
            if attr is not None and attr not in values:
                values[attr] = value
        pid = values.get("pid")
        if not isinstance(pid, int):
            values["pid"] = int(pid) if isinstance(pid, str) and pid.isdigit() else None
        values["peer_id"] = str(peer_id or identity.get("peerId") or "")
        return cls(is_local=is_local, hub=hub, identity=dict(identity), **values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Instance) and other.peer_id == self.peer_id

    def __hash__(self) -> int:
        return hash(self.peer_id)

    def as_filter(self) -> InstanceFilter:
        """A filter matching exactly this peer."""
        return {"peer_id": self.peer_id}

    def __repr__(self) -> str:
        where = f" {self.notebook_path!r}" if self.notebook_path else ""
        return f"<Instance {self.application!r}{where} peer={self.peer_id}>"


def normalize_filter(target: Any) -> InstanceFilter:
    """A filter with snake_case keys; an :class:`Instance` becomes its peer id filter."""
    if isinstance(target, Instance):
        return target.as_filter()
    if not isinstance(target, dict):
        raise ArgumentError(
            f"An instance filter must be a dict of identity fields or an Instance, not "
            f"{type(target).__name__}"
        )
    out: InstanceFilter = {}
    for key, value in target.items():
        if not isinstance(key, str):
            raise ArgumentError(f"Instance filter keys must be strings, not {key!r}")
        out[_FROM_WIRE.get(key, key)] = value
    return out


def wire_identity(target: Any) -> dict[str, Any]:
    """An instance filter with io.Connect's identity keys (``applicationName``, ...), as the
    hub matches it against peers (a bus publisher's ``target``)."""
    flt = normalize_filter(target)
    return {_WIRE_NAMES.get(k, k): v for k, v in flt.items()}


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, re.Pattern):
        return actual is not None and expected.search(str(actual)) is not None
    if actual is None:
        return expected is None
    return str(expected).lower() == str(actual).lower()


def matches(instance: Instance, flt: InstanceFilter) -> bool:
    """Does ``instance`` satisfy every field of the (normalized) filter?"""
    for key, expected in flt.items():
        if key in _WIRE_NAMES or key in ("is_local", "hub"):
            actual = getattr(instance, key)
        else:
            actual = instance.identity.get(key)
        if expected is None:
            continue  # io.Connect ignores undefined properties
        if not _equal(expected, actual):
            return False
    return True
