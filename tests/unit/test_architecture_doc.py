"""docs/ARCHITECTURE.md and CONTRIBUTING.md name real code: every ``file.py:Name`` and
``file.py:Class.method`` they cite (the hops of an invoke, a context update, a stream event)
is defined in that file, every module path they name exists, and every test they tell a
contributor to run is there; its table of layers says what the import contracts of
pyproject.toml forbid. A rename that forgets the docs fails here. And each module opens with a
sentence saying what it holds."""

from __future__ import annotations

import ast
import functools
import pathlib
import re

import pytest

import jupyter_interop

PACKAGE = pathlib.Path(jupyter_interop.__file__).resolve().parent
ROOT = PACKAGE.parent
DOCS = [ROOT / "docs" / "ARCHITECTURE.md", ROOT / "CONTRIBUTING.md"]

#: ``client/core.py:ClientProtocol.receive`` or ``frames.py:unpack_frame`` (in backquotes or
#: in the layout's code block)
CODE_REF = re.compile(r"([\w/]+\.py):([A-Za-z_][\w.]*\w)")
#: `` `server/wsreader.py` `` (a module of the package, named alone)
MODULE_REF = re.compile(r"`((?:[\w]+/)*[\w]+\.py)`")
#: `` `Connection.write_now` `` or `` `_take_call` ``: a class member or a private function
#: named without its file (it must exist in some module of the package)
NAME_REF = re.compile(r"`([A-Z]\w*(?:\.\w+)+|_[a-z]\w*[a-z0-9])`")
#: ``tests/unit/test_hub_agm.py::test_join_...`` in a command line
TEST_REF = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")


def _text(doc: pathlib.Path) -> str:
    return doc.read_text()


def _modules() -> list[pathlib.Path]:
    return [
        p
        for p in PACKAGE.rglob("*.py")
        if "labextension" not in p.parts and "schemas" not in p.parts
    ]


def resolve(path: str) -> pathlib.Path:
    """The package module a doc means by ``path`` (relative to the package, or a file name
    that only one module of the package has)."""
    direct = PACKAGE / path
    if direct.is_file():
        return direct
    if "/" not in path:
        same = [p for p in _modules() if p.name == path]
        if len(same) == 1:
            return same[0]
        raise LookupError(f"{path} names {len(same)} modules of the package, not one")
    raise LookupError(f"{path} is not a module of the package")


@functools.cache
def names(module: pathlib.Path) -> frozenset[str]:
    """Dotted names a module defines: functions, classes, their methods and attributes
    (class-level, and ``self.x`` set in the class's methods), and module-level names."""
    found: set[str] = set()

    def bound(target: ast.expr) -> list[str]:
        if isinstance(target, ast.Name):
            return [target.id]
        if isinstance(target, (ast.Tuple, ast.List)):
            return [n for elt in target.elts for n in bound(elt)]
        return []

    def visit(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(prefix + node.name)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}{node.name}.", True)
                elif in_class:
                    for sub in ast.walk(node):
                        if isinstance(sub, (ast.Assign, ast.AnnAssign)) and (
                            targets := getattr(sub, "targets", None) or [sub.target]
                        ):
                            for t in targets:
                                if (
                                    isinstance(t, ast.Attribute)
                                    and isinstance(t.value, ast.Name)
                                    and t.value.id == "self"
                                ):
                                    found.add(prefix + t.attr)
            elif isinstance(node, ast.Assign):
                found.update(prefix + n for t in node.targets for n in bound(t))
            elif isinstance(node, ast.AnnAssign):
                found.update(prefix + n for n in bound(node.target))
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body, prefix, in_class)

    visit(ast.parse(module.read_text()).body, "", False)
    return frozenset(found)


def code_refs() -> list[tuple[str, str, str]]:
    return [(doc.name, path, name) for doc in DOCS for path, name in CODE_REF.findall(_text(doc))]


def test_the_docs_cite_code() -> None:
    """The check below has something to check (the hops are written as file:function)."""
    assert len(code_refs()) >= 40


@pytest.mark.parametrize(("doc", "path", "name"), code_refs())
def test_each_cited_function_exists(doc: str, path: str, name: str) -> None:
    module = resolve(path)
    assert name in names(module), f"{doc} cites {path}:{name}, which {module} does not define"


def test_each_member_named_without_its_file_exists() -> None:
    """`` `GatewaySocket.kick` ``, `` `_take_call` ``: defined by some module of the package."""
    known: set[str] = set()
    for module in _modules():
        for name in names(module):
            parts = name.split(".")
            known.update(".".join(parts[i:]) for i in range(len(parts)))
    cited = {(doc.name, name) for doc in DOCS for name in NAME_REF.findall(_text(doc))}
    assert len(cited) >= 40
    assert sorted((doc, name) for doc, name in cited if name not in known) == []


def test_each_named_module_exists() -> None:
    missing = []
    for doc in DOCS:
        for path in MODULE_REF.findall(_text(doc)):
            if path.startswith(("tests/", "benchmarks/", "scripts/")):
                if not (ROOT / path).is_file():
                    missing.append((doc.name, path))
                continue
            try:
                resolve(path)
            except LookupError as error:
                missing.append((doc.name, str(error)))
    assert missing == []


def test_each_test_a_contributor_is_told_to_run_exists() -> None:
    missing = []
    for doc in DOCS:
        for path, test in TEST_REF.findall(_text(doc)):
            file = ROOT / path
            if not file.is_file():
                missing.append(path)
            elif test and test not in names(file):
                missing.append(f"{path}::{test}")
    assert missing == []


def test_a_renamed_function_is_caught() -> None:
    """The checker itself: a reference to a name that is not there fails it."""
    assert "ClientProtocol.receive" in names(resolve("client/core.py"))
    assert "ClientProtocol.no_such_hop" not in names(resolve("client/core.py"))
    with pytest.raises(LookupError):
        resolve("client/no_such_module.py")


@pytest.mark.parametrize(
    "module", sorted(_modules()), ids=lambda p: p.relative_to(PACKAGE).as_posix()
)
def test_each_module_says_what_it_holds(module: pathlib.Path) -> None:
    """The layout a newcomer reads (``scripts/arch_counts.py --tree``) is the modules' own
    first docstring sentences: each module has one, longer than a title."""
    doc = ast.get_docstring(ast.parse(module.read_text())) or ""
    first = " ".join(doc.split("\n\n", 1)[0].split())
    first = re.split(r"(?<!\.)\.(?:\s|$)", first, maxsplit=1)[0]
    assert len(first.split()) >= 5, f"{module.name}: {first!r}"


LAYERS = ("protocol", "hub", "server", "client", "fdc3", "notebook")


def test_the_layers_table_is_what_the_import_contracts_forbid() -> None:
    """ARCHITECTURE.md's "Must not import" column and pyproject.toml's import-linter
    contracts say the same: for each layer, the other layers it may not import."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    forbidden: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for contract in contracts["contracts"]:
        for source in contract["source_modules"]:
            layer = source.removeprefix("jupyter_interop.")
            forbidden[layer] |= {
                m.removeprefix("jupyter_interop.")
                for m in contract["forbidden_modules"]
                if m.startswith("jupyter_interop.")
            }
    table: dict[str, set[str]] = {}
    for layer, must_not in re.findall(r"^\| `(\w+)/` \|[^|]*\|([^|]*)\|$", _text(DOCS[0]), re.M):
        if "anything else of ours" in must_not:
            table[layer] = set(LAYERS) - {layer}
        else:
            table[layer] = set(re.findall(r"`(\w+)/`", must_not))
    assert table == forbidden
