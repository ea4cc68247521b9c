"""FDC3 2.2 for Python: the standard context types, checked against FINOS's published schemas
(docs/FDC3.md).

``from jupyter_interop import fdc3``; ``fdc3.instrument("AAPL")`` builds an ``fdc3.instrument``
context, ``fdc3.validate_context(ctx)`` checks any context and raises
:class:`~jupyter_interop.client.errors.MalformedContext` for an invalid one. This layer sits on
the client (it may import ``client/`` and ``protocol/``; the client does not import it).
"""

from ..client.errors import MalformedContext
from .context import *  # noqa: F403
from .context import __all__ as _context_names
from .schemas import SchemasNotBuilt, context_schemas, validate_context

__all__ = [
    *_context_names,
    "MalformedContext",
    "SchemasNotBuilt",
    "context_schemas",
    "validate_context",
]
