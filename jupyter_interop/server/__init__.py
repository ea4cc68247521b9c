"""Transports around the hub core: the Jupyter server extension and the standalone hub."""

from __future__ import annotations

__all__: list[str] = []
