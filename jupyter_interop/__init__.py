"""jupyter_interop: io.Connect (Glue42) interop services between notebooks, scripts and apps.

The public API is the client's (``connect``, ``Interop``, the error hierarchy, ...) plus the
notebook layer (``bind`` and the widgets, ``%load_ext jupyter_interop``).
"""

from __future__ import annotations

from typing import Any

from . import client as _client
from ._version import __version__
from .client import *  # noqa: F403 - the client's public API is ours, listed in client.__all__
from .client.api import Interop, register_service
from .notebook import Binding, bind

#: widgets import ipywidgets: loaded on first use (the server and scripts never need them)
_WIDGETS = ("ChannelSelector", "ContextView", "InteropViewer", "StreamView")

__all__ = [
    *_client.__all__,
    *_WIDGETS,
    "Binding",
    "__version__",
    "bind",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell jupyter_server where the extension app is (imported lazily: kernels importing the
    client must not pay for the server)."""
    from .server.extension import InteropExtension

    return [{"module": "jupyter_interop.server.extension", "app": InteropExtension}]


def _fdc3_agent(client: Interop, session: Any) -> Any:
    """``io.fdc3``: imported on first use (it loads the FDC3 schemas' validator)."""
    from .fdc3.agent import DesktopAgent

    return DesktopAgent(client, session)


register_service("fdc3", _fdc3_agent)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_interop``: register the ``%interop`` magics."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
