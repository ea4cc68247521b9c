"""Shared pytest setup: only what every test directory can live with.

pytest-jupyter's server fixtures (``jp_serverapp``, ``jp_fetch``, ``jp_ws_fetch``, ...) must be
declared in the top-level conftest (pytest refuses ``pytest_plugins`` further down). Its async
tests run on its own loop; tests that use pytest-asyncio mark themselves (strict mode).
"""

from __future__ import annotations

pytest_plugins = ["pytest_jupyter.jupyter_server"]
