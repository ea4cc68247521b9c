"""The bookkeeping of ``open(app, context)``, both sides, without I/O (docs/FDC3.md, "open with
a context").

The exchange is io.Connect's: the opener serves ``T42.FDC3.Open.Listener.Response.<id>`` and
starts the app with the starting context ``{meta: {responseMethodName, instance}, context}``
(``instance``: the opener's ``{appId, instanceId}``). In the started app the first context
listener that takes the context's type (or every type) invokes that method on the opener with
``{listenerInvoked: true}`` and then gets the context; the opener's ``open`` returns once
invoked, or gives ``AppTimeout``. :class:`OpenRequest` is the started side (what its starting
context asks, claimed once per process since the starting context is the process's),
:class:`PendingOpen` the opener's wait.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from ..client.instance import Instance
from ..protocol.wire import (
    FDC3_OPEN_CONTEXT_KEY,
    FDC3_OPEN_INSTANCE_KEY,
    FDC3_OPEN_INVOKED_KEY,
    FDC3_OPEN_META_KEY,
    FDC3_OPEN_RESPONSE_KEY,
    FDC3_OPEN_RESPONSE_PREFIX,
)

__all__ = ["OpenRequest", "PendingOpen", "claim", "starting_context"]


def starting_context(
    response_method: str, opener: dict[str, str], context: dict[str, Any]
) -> dict[str, Any]:
    """The starting context that asks the started app to hand ``context`` to a listener."""
    return {
        FDC3_OPEN_META_KEY: {
            FDC3_OPEN_RESPONSE_KEY: response_method,
            FDC3_OPEN_INSTANCE_KEY: opener,
        },
        FDC3_OPEN_CONTEXT_KEY: context,
    }


@dataclass(frozen=True)
class OpenRequest:
    """What a started app's starting context asks: hand ``context`` to its first listener
    that takes it, after invoking ``response_method`` on ``opener`` (``{appId,
    instanceId}``)."""

    response_method: str
    opener: dict[str, str]
    context: dict[str, Any]

    @classmethod
    def from_starting_context(cls, value: Any) -> OpenRequest | None:
        """The request a starting context holds; None when it holds none (or not in
        io.Connect's shape: such a context is not an ``open`` with a context)."""
        if not isinstance(value, dict):
            return None
        meta, context = value.get(FDC3_OPEN_META_KEY), value.get(FDC3_OPEN_CONTEXT_KEY)
        if not isinstance(meta, dict) or not isinstance(context, dict):
            return None
        name = meta.get(FDC3_OPEN_RESPONSE_KEY)
        if not isinstance(name, str) or not name.startswith(FDC3_OPEN_RESPONSE_PREFIX + "."):
            return None
        if not isinstance(context.get("type"), str):
            return None
        opener = meta.get(FDC3_OPEN_INSTANCE_KEY)
        opener = opener if isinstance(opener, dict) else {}
        ident = {k: v for k, v in opener.items() if k in ("appId", "instanceId")}
        return cls(name, {k: v for k, v in ident.items() if isinstance(v, str)}, context)

    def takes(self, context_type: str | None) -> bool:
        """Does a listener of ``context_type`` (None: every type) take the context?"""
        return context_type is None or context_type == self.context["type"]

    def target(self) -> dict[str, str] | str:
        """Where the response method is invoked: the opener's peer (any server of the method
        when the starting context did not say)."""
        peer = self.opener.get("instanceId")
        return {"peer_id": peer} if peer else "best"


_claimed: set[str] = set()
_claim_lock = threading.Lock()


def claim(request: OpenRequest) -> bool:
    """True for the first listener of this process that takes ``request``: every client of
    the process reads the same starting context, and one listener gets the context."""
    with _claim_lock:
        if request.response_method in _claimed:
            return False
        _claimed.add(request.response_method)
        return True


class PendingOpen:
    """The opener's side: the response method's name, and the wait for its invocation
    (:meth:`answer` runs on the loop that awaits :meth:`wait`)."""

    def __init__(self) -> None:
        self.name = f"{FDC3_OPEN_RESPONSE_PREFIX}.{uuid.uuid4().hex}"
        #: the peer whose listener took the context (the first answer's caller)
        self.listener: Instance | None = None
        self._answered = asyncio.Event()

    def answer(self, caller: Instance, arguments: dict[str, Any]) -> bool:
        """The response method was invoked by ``caller``: True when the arguments say a
        listener took the context (only the first such answer counts)."""
        if arguments.get(FDC3_OPEN_INVOKED_KEY) is not True:
            return False
        if self.listener is None:
            self.listener = caller
            self._answered.set()
        return True

    async def wait(self, timeout: float) -> Instance | None:
        """The peer whose listener took the context, or None after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._answered.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        return self.listener
