"""jupyter_interop: io.Connect (Glue42) interop services between notebooks, scripts and apps."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell jupyter_server where the interop hub extension lives."""
    from .server.extension import InteropExtension

    return [{"module": "jupyter_interop.server.extension", "app": InteropExtension}]
