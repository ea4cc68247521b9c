"""Magics and widgets in real kernels joined to the real Glue42 gateway (a plain GW3 gateway,
channels seeded as io.Connect Desktop seeds them): every service it offers works, and
``%interop status`` says which gateway it is and what falls back (docs/GATEWAYS.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernelkit import Kernel, isolated_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from gateway_support import Glue42Gateway, glue42_gateway


@pytest.fixture(scope="module")
def real_gateway() -> Iterator[Glue42Gateway]:
    with glue42_gateway("default") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def desks(
    real_gateway: Glue42Gateway, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Kernel, Kernel]]:
    """Two kernels whose environment points at the gateway, as a server's kernels would."""
    base = tmp_path_factory.mktemp("gateway-kernels")
    env = {
        **isolated_env(base),
        "JUPYTER_INTEROP_URL": real_gateway.url,
        "JUPYTER_INTEROP_TOKEN": real_gateway.token,
    }
    kernels = (Kernel(env, base), Kernel(env, base))
    try:
        for kernel in kernels:
            kernel.run(
                "%load_ext jupyter_interop\nimport jupyter_interop as ji\nimport ipywidgets as w\n"
                "from jupyter_interop.notebook import flush_writes"
            )
        yield kernels
    finally:
        for kernel in kernels:
            kernel.close()


def test_status_names_the_gateway_and_the_fallbacks(desks: tuple[Kernel, Kernel]) -> None:
    a, _ = desks
    a.run("%interop status -o st")
    assert a.value("st['gateway']") == "GW3 gateway"
    assert a.value("st['extensions']") == []
    fallbacks = a.value("sorted(st['fallbacks'])")
    assert {"binary", "batch", "channels", "notices", "versions"} <= set(fallbacks)
    assert "GW3 gateway" in a.run("%interop status").text


def test_methods_contexts_and_channels_through_magics_and_widgets(
    desks: tuple[Kernel, Kernel],
) -> None:
    a, b = desks
    a.run("%%interop method Gw.Scale\n[v * 10 for v in values]")
    b.run('%interop invoke Gw.Scale {"values": [1, 2]} -o out')
    assert b.value("out") == [10, 20]

    # a widget bound to a context, changed from the other notebook's magic
    a.run("s = w.IntSlider(max=1000)\nji.bind(s, 'value', context='gw.limits', path='limit')")
    b.run("%interop context set gw.limits limit=42")
    a.wait_value("s.value", 42)
    a.run("s.value = 7\nassert flush_writes()")
    b.wait_value("ji.connect().contexts.get('gw.limits')", {"limit": 7})

    # channels are the gateway's channel contexts; a widget follows the current channel
    a.run("%interop channel join Red")
    b.run("%interop channel join Red\n%interop publish symbol=AAPL")
    a.run("sym = w.Text()\nji.bind(sym, 'value', channel=True, path='symbol')")
    a.wait_value("sym.value", "AAPL")
    b.run("%interop publish symbol=NVDA")
    a.wait_value("sym.value", "NVDA")
