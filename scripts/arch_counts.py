"""Architecture figures of the package, measured the same way on any commit.

Prints the figures docs/ARCHITECTURE.md's rules are checked by: the largest modules, the
functions over 60 lines, reads of another object's private attributes, where each wire
constant is defined, message dicts that spell their domain inline, and class names used by
more than one module. It reads source files only (``ast``), so it measures an old checkout as
well as the current one::

    python3 scripts/arch_counts.py                 # this checkout
    python3 scripts/arch_counts.py /tmp/old-tree   # another checkout (e.g. a git worktree)
    python3 scripts/arch_counts.py --tree          # one line per module: what it holds
"""

from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import operator
import pathlib
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

LONG_FUNCTION_LINES = 60
#: receivers whose private attributes are the object's own
OWN_RECEIVERS = {"self", "cls"}
#: underscore names that are public APIs by convention: namedtuple's methods (``_replace``...);
#: ``_sunder_`` names (IPython's ``_repr_html_``, enum's) are counted as public too
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}
#: wire names by kind, recognised by value so that a commit from before protocol/wire.py
#: existed is measured alike
DOMAINS = {"global", "agm", "context", "bus", "metrics"}
EXTENSIONS = {"channels", "notices", "versions", "binary", "batch", "runs", "shm", "read-only"}
CHANNEL_PREFIX = "___channel___"
ENV_NAME = re.compile(r"^(JUPYTER_INTEROP_[A-Z0-9_]+|_GD_STARTING_CONTEXT_)$")
REASON_URI = re.compile(r"^(com\.tick42\.)?(global|agm|context|bus)\.[a-z_\-]+(\.[a-z_\-]+)*$")
#: a cap on the batch frames of the ``batch`` extension (one rule: all caps in one module)
BATCH_CAP_NAME = re.compile(r"BATCH_MAX|MAX_BATCH")

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.LShift: operator.lshift,
    ast.Pow: operator.pow,
}


def modules(root: pathlib.Path) -> Iterator[tuple[str, ast.Module, int]]:
    """(path relative to ``root``, parsed module, line count) of each package module."""
    package = root / "jupyter_interop"
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "/labextension/" in rel or "/schemas/" in rel:
            continue
        text = path.read_text()
        yield rel, ast.parse(text, rel), len(text.splitlines())


def literal(node: ast.AST | None) -> Any:
    """The value of a str/int/float literal, or of arithmetic on int literals; else None."""
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = literal(node.left), literal(node.right)
        if isinstance(left, int) and isinstance(right, int):
            return _BINOPS[type(node.op)](left, right)
    return None


def constant_definitions(tree: ast.Module) -> Iterator[tuple[str, Any, int]]:
    """(name, value, line) of each UPPER_CASE name bound to a literal at module or class level."""
    bodies: list[list[ast.stmt]] = [tree.body]
    bodies += [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for body in bodies:
        for stmt in body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                target, value = stmt.target, stmt.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id.lstrip("_").isupper():
                found = literal(value)
                if found is not None:
                    yield target.id, found, stmt.lineno


def wire_kind(name: str, value: Any) -> str | None:
    """Which kind of wire constant a definition is, or None."""
    if isinstance(value, str):
        if value == CHANNEL_PREFIX:
            return "channel prefix"
        if ENV_NAME.match(value):
            return "environment variable"
        if REASON_URI.match(value) and not value.endswith(".json"):
            return "reason URI"
        if value in DOMAINS and "DOMAIN" in name:
            return "domain"
        if value in EXTENSIONS and ("EXT" in name or "EXTENSION" in name):
            return "extension"
    elif BATCH_CAP_NAME.search(name):
        return "batch cap"
    return None


def private_reads(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, expression) of each ``x._name`` whose ``x`` is not ``self``/``cls``/``super()``.

    Dunder and ``_sunder_`` names and namedtuple's methods are public; every other access is
    counted, loads and stores alike."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.endswith("_") or name in PUBLIC_UNDERSCORE:
            continue
        receiver = node.value
        if isinstance(receiver, ast.Name) and receiver.id in OWN_RECEIVERS:
            continue
        if (
            isinstance(receiver, ast.Call)
            and isinstance(receiver.func, ast.Name)
            and receiver.func.id == "super"
        ):
            continue
        yield node.lineno, ast.unparse(node)


def private_imports(root: pathlib.Path, rel: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, statement) of each import of another module's private name (``from .m import
    _name``); a private module (``from . import _direct``) is the package's, not counted."""
    here = (root / rel).parent
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0 and not (node.module or "").startswith("jupyter_interop"):
            continue
        if node.level:
            base = here
            for _ in range(node.level - 1):
                base = base.parent
        else:
            base = root
        base = base.joinpath(*(node.module or "").split(".")) if node.module else base
        for alias in node.names:
            name = alias.name
            if not name.startswith("_") or name.endswith("_"):
                continue
            if (base / f"{name}.py").exists() or (base / name).is_dir():
                continue
            yield node.lineno, f"from {'.' * node.level}{node.module or ''} import {name}"


def long_functions(tree: ast.Module) -> Iterator[tuple[int, str, int]]:
    """(line, qualified name, length) of each function longer than the limit."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[int, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > LONG_FUNCTION_LINES:
                    yield child.lineno, qual, length
                yield from visit(child, qual + ".")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, prefix + child.name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def inline_domain_dicts(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, domain) of each dict display with a literal ``"domain": "<str>"`` entry."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if not (isinstance(key, ast.Constant) and key.value == "domain"):
                    continue
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield node.lineno, value.value


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def wire_spellings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, text) of each string in code (not a docstring, not a constant's own definition)
    that spells a wire name of one meaning only: the channel prefix, an environment variable,
    a reason URI."""
    skip = docstrings(tree)
    defining = {
        id(stmt.value)
        for stmt in ast.walk(tree)
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip or id(node) in defining:
            continue
        text = node.value
        uri = REASON_URI.match(text) and not text.endswith(".json")
        if CHANNEL_PREFIX in text or ENV_NAME.match(text) or uri:
            yield node.lineno, text


def wire_values(root: pathlib.Path) -> dict[str, Any]:
    """Each constant of ``protocol/wire.py`` by name, the measured checkout's and this
    script's own (so that an older commit reads the same names)."""
    wire = pathlib.Path("jupyter_interop", "protocol", "wire.py")
    own = pathlib.Path(__file__).resolve().parent.parent
    values: dict[str, Any] = {}
    for path in (own / wire, root / wire):
        if path.exists():
            for name, value, _ in constant_definitions(ast.parse(path.read_text())):
                values[name] = value
    return values


def written_messages(
    tree: ast.Module, wire: dict[str, Any]
) -> Iterator[tuple[int, tuple[str, str]]]:
    """(line, (domain, type)) of each message dict display with both keys spelled out (a literal or
    a wire constant), as opposed to one built by a function of protocol/messages.py."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        fields = {
            key.value: value
            for key, value in zip(node.keys, node.values, strict=True)
            if isinstance(key, ast.Constant)
        }
        named = [_wire_value(fields.get(k), wire) for k in ("domain", "type")]
        if named[0] is not None and named[1] is not None:
            yield node.lineno, (named[0], named[1])


def _wire_value(node: ast.AST | None, wire: dict[str, Any]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(wire.get(node.id), str):
        return str(wire[node.id])
    if isinstance(node, ast.Attribute) and isinstance(wire.get(node.attr), str):
        return str(wire[node.attr])
    return None


def message_type_names(root: pathlib.Path) -> set[str]:
    """The hyphenated GW3 message types (``context-updated``...) of ``protocol/wire.py``, the
    measured checkout's and this script's own, so that an older commit (whose wire.py named
    fewer types, or did not exist) is measured against the same vocabulary."""
    wire = pathlib.Path("jupyter_interop", "protocol", "wire.py")
    own = pathlib.Path(__file__).resolve().parent.parent
    return {
        value
        for path in {root / wire, own / wire}
        if path.exists()
        for name, value, _ in constant_definitions(ast.parse(path.read_text()))
        if name.endswith("_TYPE") and isinstance(value, str) and "-" in value
    }


def type_spellings(tree: ast.Module, types: set[str]) -> Iterator[tuple[int, str]]:
    """(line, type) of each message type spelled as a string in a comparison, a collection
    or a dict (not a constant's definition, not a docstring, not a label in a call)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
        elif isinstance(node, (ast.Set, ast.Tuple, ast.List)):
            values = list(node.elts)
        elif isinstance(node, ast.Dict):
            values = [*node.values, *(k for k in node.keys if k is not None)]
        else:
            continue
        for value in values:
            if isinstance(value, ast.Constant) and value.value in types:
                yield value.lineno, value.value


def whole_object_imports(rel: str, tree: ast.Module) -> Iterator[str]:
    """The whole client (``Interop``) imported by a client module or the whole hub
    (``InteropHub``) by a hub module, other than the package's ``__init__``."""
    if not re.search(r"/(client|hub)/", rel) or rel.endswith("__init__.py"):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in {"Interop", "InteropHub"}:
                    yield alias.name


def classes(tree: ast.Module) -> Iterator[str]:
    """Names of the classes a module defines (at any depth)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            yield node.name


def summary(tree: ast.Module) -> str:
    """The first sentence of a module's docstring (its first paragraph, up to a full stop)."""
    doc = ast.get_docstring(tree) or ""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    end = re.search(r"(?<!\.)\.(\s|$)", paragraph)
    return paragraph[: end.start() + 1] if end else paragraph


def tree_report(root: pathlib.Path, out: Any) -> None:
    """One line per module: its path, its length and what its docstring says it holds."""
    for rel, tree, lines in modules(root):
        out.write(f"{rel.removeprefix('jupyter_interop/')} ({lines}) — {summary(tree)}\n")


@dataclasses.dataclass
class Counts:
    """What :func:`measure` finds, each list naming its places (``path:line ...``)."""

    sizes: list[tuple[int, str]]
    longs: list[tuple[int, str, str]]
    privates: list[tuple[str, int, str]]
    wire: dict[tuple[str, Any], list[str]]
    by_value: dict[Any, set[str]]
    domains: list[tuple[str, int, str]]
    class_where: dict[str, set[str]]
    spelled: list[tuple[str, int, str]]
    whole: list[tuple[str, str]]
    writers: dict[tuple[str, str], list[str]]

    @property
    def shared_classes(self) -> dict[str, list[str]]:
        return {n: sorted(m) for n, m in self.class_where.items() if len(m) > 1}

    @property
    def duplicated_wire(self) -> dict[tuple[str, Any], list[str]]:
        return {k: v for k, v in self.wire.items() if len({p.split(":")[0] for p in v}) > 1}

    @property
    def repeated_strings(self) -> dict[Any, list[str]]:
        return {v: sorted(m) for v, m in self.by_value.items() if len(m) > 1}

    @property
    def shared_messages(self) -> dict[tuple[str, str], list[str]]:
        return {k: v for k, v in self.writers.items() if len(v) > 1}

    def whole_importers(self, name: str) -> list[str]:
        """The modules importing the whole ``Interop`` or ``InteropHub``."""
        return sorted({rel for rel, n in self.whole if n == name})


def measure(root: pathlib.Path) -> Counts:
    """Measure the package under ``root`` (no output: scripts and tests read the result)."""
    counts = Counts(
        [],
        [],
        [],
        collections.defaultdict(list),
        collections.defaultdict(set),
        [],
        collections.defaultdict(set),
        [],
        [],
        collections.defaultdict(list),
    )
    types = message_type_names(root)
    wire_names = wire_values(root)
    for rel, tree, lines in modules(root):
        counts.sizes.append((lines, rel))
        counts.longs += [
            (length, f"{rel}:{line}", qual) for line, qual, length in long_functions(tree)
        ]
        counts.privates += [(rel, line, expr) for line, expr in private_reads(tree)]
        counts.privates += [(rel, line, stmt) for line, stmt in private_imports(root, rel, tree)]
        for name, value, line in constant_definitions(tree):
            kind = wire_kind(name, value)
            if kind:
                key = (kind, "every cap" if kind == "batch cap" else value)
                counts.wire[key].append(f"{rel}:{line} {name} = {value!r}")
            if isinstance(value, str) and len(value) > 2:
                counts.by_value[value].add(rel)
        if "/protocol/" not in rel:
            counts.domains += [(rel, line, d) for line, d in inline_domain_dicts(tree)]
            for line, key in written_messages(tree, wire_names):
                counts.writers[key].append(f"{rel}:{line}")
        for name in classes(tree):
            counts.class_where[name].add(rel)
        counts.spelled += [(rel, line, text) for line, text in wire_spellings(tree)]
        if not rel.endswith("protocol/wire.py"):
            counts.spelled += [(rel, line, text) for line, text in type_spellings(tree, types)]
        counts.whole += [(rel, name) for name in whole_object_imports(rel, tree)]
    counts.sizes.sort(reverse=True)
    counts.longs.sort(reverse=True)
    return counts


def report(root: pathlib.Path, out: Any) -> None:
    """Measure the package under ``root`` and write the figures to ``out``."""
    counts = measure(root)
    sizes, longs, privates, wire = counts.sizes, counts.longs, counts.privates, counts.wire
    domains, spelled = counts.domains, counts.spelled
    shared_classes = counts.shared_classes
    duplicated_wire = counts.duplicated_wire
    repeated_strings = counts.repeated_strings
    private_modules = collections.Counter(rel for rel, _, _ in privates)

    w = out.write
    w(f"# architecture counts of {root}\n\n")
    w("## summary\n")
    w(f"modules: {len(sizes)}, lines: {sum(n for n, _ in sizes)}\n")
    w(f"largest module: {sizes[0][1]} ({sizes[0][0]} lines)\n")
    w(f"functions over {LONG_FUNCTION_LINES} lines: {len(longs)}\n")
    w(f"private attribute reads on another object or module: {len(privates)} ")
    w(f"in {len(private_modules)} modules\n")
    w(f"wire constants defined in more than one module: {len(duplicated_wire)} ")
    w(f"(of {len(wire)}; {sum(len(v) for v in wire.values())} definitions)\n")
    w(f"string constants assigned in more than one module: {len(repeated_strings)}\n")
    w(f'inline "domain": "<literal>" dicts outside protocol/: {len(domains)} ')
    w(f"in {len({rel for rel, _, _ in domains})} modules\n")
    w(f"class names defined in more than one module: {len(shared_classes)}\n")
    shared_messages = counts.shared_messages
    w("messages (domain, type) written out as dicts in more than one place outside ")
    w(f"protocol/: {len(shared_messages)} ({sum(map(len, shared_messages.values()))} places)\n")
    w("wire names spelled in code outside their constant (channel prefix, environment ")
    w(f"variables, reason URIs, hyphenated message types): {len(spelled)}\n")
    for name in ("Interop", "InteropHub"):
        users = counts.whole_importers(name)
        layer = "client" if name == "Interop" else "hub"
        w(f"{layer} modules importing the whole {name}: {len(users)}\n")

    sections: list[tuple[str, Iterable[str]]] = [
        ("largest modules (lines)", (f"{n:6d}  {rel}" for n, rel in sizes[:10])),
        (
            f"functions over {LONG_FUNCTION_LINES} lines (length, where, name)",
            (f"{length:6d}  {where}  {qual}" for length, where, qual in longs),
        ),
        (
            "wire constants: definitions per kind and value (batch caps: all together)",
            (
                f"{len(places)}x {kind} {value!r}: {'; '.join(places)}"
                for (kind, value), places in sorted(wire.items(), key=lambda kv: str(kv[0]))
            ),
        ),
        (
            "string constants assigned in more than one module",
            (f"{value!r}: {', '.join(mods)}" for value, mods in sorted(repeated_strings.items())),
        ),
        (
            'inline "domain": "<literal>" dicts outside protocol/',
            (f"{rel}:{line} {domain}" for rel, line, domain in domains),
        ),
        (
            "messages written out as dicts in more than one place outside protocol/",
            (f"{d} {t}: {', '.join(m)}" for (d, t), m in sorted(shared_messages.items())),
        ),
        (
            "class names defined in more than one module",
            (f"{name}: {', '.join(mods)}" for name, mods in sorted(shared_classes.items())),
        ),
        (
            "wire names spelled in code outside their constant",
            (f"{rel}:{line} {text!r}" for rel, line, text in spelled),
        ),
        (
            "modules importing the whole client (Interop) or hub (InteropHub)",
            (f"{rel}: {name}" for rel, name in sorted(set(counts.whole))),
        ),
        (
            "private attribute reads on another object or module, per module",
            (f"{count:5d}  {rel}" for rel, count in private_modules.most_common()),
        ),
        (
            "private attribute reads on another object or module",
            (f"{rel}:{line} {expr}" for rel, line, expr in privates),
        ),
    ]
    for title, lines in sections:
        w(f"\n## {title}\n")
        out.writelines(f"{line}\n" for line in lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", help="checkout to measure")
    parser.add_argument("--tree", action="store_true", help="list the modules instead")
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root).resolve()
    (tree_report if args.tree else report)(root, sys.stdout)


if __name__ == "__main__":
    main()
