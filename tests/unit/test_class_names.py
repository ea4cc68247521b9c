"""No two classes of the package share a name: a name in a traceback, a log line or
docs/ARCHITECTURE.md then says which class it is (the hub's records are PeerConn, StreamRoute
and BusRoute; the client's Connection, Subscription and BusSubscription)."""

from __future__ import annotations

import ast
import collections
import pathlib

import jupyter_interop

PACKAGE = pathlib.Path(jupyter_interop.__file__).resolve().parent


def test_every_class_name_is_used_once() -> None:
    where: dict[str, list[str]] = collections.defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(path.relative_to(PACKAGE)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
