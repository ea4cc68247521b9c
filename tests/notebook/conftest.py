"""Fixtures of the notebook tests: one standalone hub and real kernels per module.

Kernels take a second or two to start, so a module shares its kernels (``nb_a``, ``nb_b``,
with the extension loaded); tests use distinct names (methods, contexts, variables) so they
do not depend on each other's order. The fixed colour channels (Red, Blue, ...) cannot take
distinct names, so each module gets its own hub: what one module published on Red is not
found by the next, whichever order they run in.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernelkit import Hub, Kernel, start_hub

# The example notebooks run against a real server started by the browser suite's kit.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))

_names = itertools.count(1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with start_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running


@pytest.fixture(scope="module")
def start_kernel(
    hub: Hub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Kernel]]:
    """Start kernels on the hub (``%load_ext jupyter_interop`` done); closed after the module."""
    started: list[Kernel] = []
    cwd = tmp_path_factory.mktemp("kernels")

    def start() -> Kernel:
        kernel = Kernel(hub.kernel_env(), cwd)
        started.append(kernel)
        kernel.run("%load_ext jupyter_interop\nimport jupyter_interop as ji")
        return kernel

    yield start
    for kernel in started:
        kernel.close()


@pytest.fixture(scope="module")
def nb_a(start_kernel: Callable[[], Kernel]) -> Kernel:
    return start_kernel()


@pytest.fixture(scope="module")
def nb_b(start_kernel: Callable[[], Kernel]) -> Kernel:
    return start_kernel()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names unique across the session (methods, contexts, topics)."""

    def make(prefix: str) -> str:
        return f"{prefix}{next(_names)}"

    return make


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
