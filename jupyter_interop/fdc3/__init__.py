"""FDC3 2.2 for Python: the standard context types, checked against FINOS's published schemas
(docs/FDC3.md).

The Desktop Agent API is ``io.fdc3`` on a client (:class:`DesktopAgent`, ``agent.py``); the
package itself stays the context types' namespace, so there is no ``ji.fdc3()`` function.

``from jupyter_interop import fdc3``; ``fdc3.instrument("AAPL")`` builds an ``fdc3.instrument``
context, ``fdc3.validate_context(ctx)`` checks any context and raises
:class:`~jupyter_interop.client.errors.MalformedContext` for an invalid one. This layer sits on
the client (it may import ``client/`` and ``protocol/``; the client does not import it).
"""

from ..client.errors import MalformedContext
from .agent import (
    AppIdentifier,
    Channel,
    DesktopAgent,
    Fdc3IntentResolution,
    Listener,
    PrivateChannel,
)
from .context import *  # noqa: F403
from .context import __all__ as _context_names
from .errors import (
    ChannelErrorName,
    Fdc3ChannelError,
    Fdc3OpenError,
    NoResultReturned,
    OpenErrorName,
    ResolveErrorName,
    ResultErrorName,
)
from .schemas import SchemasNotBuilt, context_schemas, validate_context

__all__ = [
    *_context_names,
    "AppIdentifier",
    "Channel",
    "ChannelErrorName",
    "DesktopAgent",
    "Fdc3ChannelError",
    "Fdc3OpenError",
    "Fdc3IntentResolution",
    "Listener",
    "NoResultReturned",
    "OpenErrorName",
    "PrivateChannel",
    "ResolveErrorName",
    "ResultErrorName",
    "MalformedContext",
    "SchemasNotBuilt",
    "context_schemas",
    "validate_context",
]
