"""Fixtures shared by the client's integration tests: one standalone hub per module, and the
clients a test opens (closed after it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_client_support import Clients, StandaloneHub, standalone_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneHub]:
    with standalone_hub(tmp_path_factory.mktemp("hub")) as h:
        yield h


@pytest.fixture
def clients(hub: StandaloneHub) -> Iterator[Clients]:
    opened = Clients(hub)
    yield opened
    opened.close()
