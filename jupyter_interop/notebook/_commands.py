"""What the sub-command mixins of ``%interop`` use from the magics class that provides it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Interop
    from ._session import NotebookSession

__all__ = ["CommandMixin"]


class CommandMixin:
    """Base of the mixins of :class:`~.magics.InteropMagics` (feeds, intents): the notebook's
    state, its client, the user namespace and ``-o VAR`` storage, all provided by the magics
    class itself."""

    state: NotebookSession

    @property
    def io(self) -> Interop:  # provided by the magics class
        raise NotImplementedError

    @property
    def ns(self) -> dict[str, Any]:  # provided by the magics class
        raise NotImplementedError

    def _store(self, var: str | None, value: Any) -> None:  # provided by the magics class
        raise NotImplementedError
