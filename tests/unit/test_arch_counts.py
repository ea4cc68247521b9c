"""The architecture rules stay kept: ``scripts/arch_counts.py`` measures the package, and the
counts docs/ARCHITECTURE.md brought to zero must stay zero (each failure lists the places).

The rules: no private reads on another object or module, each wire constant and each string
constant defined in one module, no inline ``"domain": "<literal>"`` dict outside protocol/, no
message written out as a dict in two places (a builder of protocol/messages.py writes it), no
wire name spelled outside its constant, no class name defined twice, and no client module
importing the whole ``Interop`` nor hub module the whole ``InteropHub``."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import pytest

import jupyter_interop

ROOT = pathlib.Path(jupyter_interop.__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    """``scripts/arch_counts.py``, imported without running it (scripts/ is not a package)."""
    path = ROOT / "scripts" / "arch_counts.py"
    spec = importlib.util.spec_from_file_location("arch_counts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("arch_counts", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def counts() -> Any:
    return _load_script().measure(ROOT)


def _places(found: Iterable[Any]) -> str:
    return "\n".join(f"  {item}" for item in found)


RULES: dict[str, Callable[[Any], list[str]]] = {
    "private reads on another object or module": lambda c: [
        f"{rel}:{line} {expr}" for rel, line, expr in c.privates
    ],
    "wire constants defined in more than one module": lambda c: [
        f"{kind} {value!r}: {'; '.join(places)}"
        for (kind, value), places in c.duplicated_wire.items()
    ],
    "string constants assigned in more than one module": lambda c: [
        f"{value!r}: {', '.join(mods)}" for value, mods in c.repeated_strings.items()
    ],
    'inline "domain": "<literal>" dicts outside protocol/': lambda c: [
        f"{rel}:{line} {domain}" for rel, line, domain in c.domains
    ],
    "wire names spelled outside their constant": lambda c: [
        f"{rel}:{line} {text!r}" for rel, line, text in c.spelled
    ],
    "messages written out as dicts in more than one place outside protocol/": lambda c: [
        f"{domain} {mtype}: {', '.join(places)}"
        for (domain, mtype), places in c.shared_messages.items()
    ],
    "class names defined in more than one module": lambda c: [
        f"{name}: {', '.join(mods)}" for name, mods in c.shared_classes.items()
    ],
    "client modules importing Interop": lambda c: c.whole_importers("Interop"),
    "hub modules importing InteropHub": lambda c: c.whole_importers("InteropHub"),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_the_count_stays_zero(counts: Any, rule: str) -> None:
    found = RULES[rule](counts)
    assert not found, (
        f"{rule}: {len(found)} (see docs/ARCHITECTURE.md; "
        f"python3 scripts/arch_counts.py lists them all):\n{_places(found)}"
    )


def test_the_script_measures_what_it_is_given(tmp_path: pathlib.Path) -> None:
    """A package planted with one breach of each rule is counted as such, so a zero above
    is a measurement, not a script that finds nothing."""
    package = tmp_path / "jupyter_interop"
    for sub in ("client", "hub", "protocol"):
        (package / sub).mkdir(parents=True)
    (package / "protocol" / "wire.py").write_text('CHANNEL_PREFIX = "___channel___"\n')
    (package / "client" / "a.py").write_text(
        "from .api import Interop\n"
        'CHANNEL_PREFIX = "___channel___"\n'
        'GREETING = "hello there"\n'
        "class Twin: ...\n"
        "def f(conn):\n"
        '    conn._sock.send({"domain": "agm", "type": "x"})\n'
        '    return "JUPYTER_INTEROP_URL"\n'
    )
    (package / "hub" / "b.py").write_text(
        'from .core import InteropHub\nGREETING = "hello there"\nclass Twin: ...\n'
        'EVENT = {"domain": BUS_DOMAIN, "type": "event"}\n'
        'AGAIN = {"domain": BUS_DOMAIN, "type": "event"}\n'
    )
    planted = _load_script().measure(tmp_path)
    for rule, found in RULES.items():
        assert found(planted), f"{rule}: the planted breach was not found"
