"""What a hub domain may ask of the hub: a narrow protocol instead of the whole ``InteropHub``.

The domains (``agm``, ``contexts``, ``bus``, ``channels``) and the views get the hub as one of
these, so each module states what it uses and a domain can be driven by anything that provides
it. ``hub/core.py:InteropHub`` provides both; mypy checks it where the domains are built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .connection import Outgoing
from .peers import Message, Peer

if TYPE_CHECKING:
    from .agm import AgmDomain
    from .bus import BusDomain
    from .channels import ChannelRegistry
    from .contexts import ContextDomain
    from .store import ContextStore

#: one entry of the hub's ``(domain, type) -> handler`` table (``hub/core.py``)
Handler = Callable[[Peer, Message, Outgoing], None]


class HubServices(Protocol):
    """The hub's state and helpers shared by its domains."""

    @property
    def peers(self) -> dict[str, Peer]:
        """Every authenticated peer by peer id."""
        ...

    @property
    def store(self) -> ContextStore | None:
        """Where retained contexts persist; None: nowhere."""
        ...

    @property
    def log(self) -> logging.Logger: ...

    @property
    def channel_registry(self) -> ChannelRegistry:
        """Channel membership and restrictions (the context domain enforces the latter)."""
        ...

    @property
    def max_methods_per_peer(self) -> int: ...

    @property
    def max_subscriptions_per_peer(self) -> int: ...

    @property
    def max_contexts_per_peer(self) -> int: ...

    @property
    def max_bus_subscriptions_per_peer(self) -> int: ...

    def new_id(self, kind: str) -> str:
        """A fresh id, unique within and across hubs."""
        ...

    def peers_in(self, domain: str) -> list[Peer]:
        """Peers joined to ``domain``, in join order."""
        ...

    def success(self, out: Outgoing, peer: Peer, request: Message, **extra: Any) -> None:
        """Queue the GW3 ``success`` reply to ``request``."""
        ...


class HubState(Protocol):
    """What the read-only views (``hub/views.py``) read: the domains' state, never changed."""

    @property
    def hub_id(self) -> str: ...

    @property
    def peers(self) -> dict[str, Peer]: ...

    @property
    def store(self) -> ContextStore | None: ...

    @property
    def agm(self) -> AgmDomain: ...

    @property
    def contexts(self) -> ContextDomain: ...

    @property
    def bus(self) -> BusDomain: ...

    @property
    def channel_registry(self) -> ChannelRegistry: ...
