"""The notebook experience: ``%interop`` magics, widgets bound to contexts and channels, views.

``%load_ext jupyter_interop`` registers the magics. To load them in every kernel, add to
``ipython_kernel_config.py`` (or ``ipython_config.py`` of the profile)::

    c.InteractiveShellApp.extensions = ["jupyter_interop"]

or, loaded only when ``%interop`` is first used (IPython >= 7.32)::

    c.MagicsManager.lazy_magics = {"interop": "jupyter_interop"}

Nothing connects to the hub until a magic or widget needs it.
"""

from __future__ import annotations

from typing import Any

from ._kernel import call_on_main, routes_output
from .binding import Binding, bind, flush_writes

__all__ = [
    "Binding",
    "ChannelSelector",
    "ContextView",
    "InteropViewer",
    "StreamView",
    "bind",
    "call_on_main",
    "flush_writes",
    "load_ipython_extension",
    "routes_output",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%interop`` / ``%%interop`` (``%load_ext jupyter_interop``); raised intents
    that several handlers fit are resolved with a widget in this kernel."""
    from ..client.intents import set_default_resolver
    from ._intents import notebook_resolver
    from .magics import InteropMagics

    ipython.register_magics(InteropMagics(ipython))
    set_default_resolver(notebook_resolver)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext``: stop the feeds the magics started (the client stays connected);
    intents are resolved by ``"error"`` again."""
    from ..client.intents import set_default_resolver
    from ._session import session

    set_default_resolver("error")

    state = session()
    for key in list(state.feeds):
        state.close_feed(key)


def __getattr__(name: str) -> Any:
    # Widgets import ipywidgets; load them on first use so `import jupyter_interop` stays light.
    if name in ("ChannelSelector", "ContextView", "StreamView"):
        from . import widgets

        return getattr(widgets, name)
    if name == "InteropViewer":
        from .viewer import InteropViewer

        return InteropViewer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
