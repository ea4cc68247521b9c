"""Fixtures of the JS client compat suite: a real standalone hub per test module.

See compatkit.py for how the hub is started (and how to point the suite at another gateway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from compatkit import Hub, run_scenario, running_hub


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    with running_hub() as h:
        yield h


@pytest.fixture
def run_js(hub: Hub) -> Callable[..., dict]:
    """``run_js(scenario, a, b)``: run a scenario against the module's hub, return its result."""

    def run(scenario: str, a: str, b: str, timeout: float = 30.0) -> dict:
        return run_scenario(hub, scenario, a, b, timeout)

    return run
