"""What the JupyterLab shell asks of a notebook's kernel.

The channel chip on a notebook's toolbar (the lab extension, ``docs/LAB.md``) changes the
notebook's channel through the hub when the kernel already has a client that follows channel
requests. A kernel that has never used interop has no peer to move, so the chip runs one
silent statement in the kernel instead: ``join_channel(name)``. It connects the notebook's one
client (the same peer that ``%interop channel join`` and the widgets use) and joins, so the
hub names the peer after the notebook. It also runs after a kernel restart, to keep the
notebook's channel. The return value tells the chip what the kernel is on now.
"""

from __future__ import annotations

from ._session import session

__all__ = ["join_channel"]


def join_channel(name: str | None) -> str | None:
    """Join the channel ``name`` (``None``: leave the current one); return the channel the
    notebook is on afterwards. Errors (an unknown channel, no hub) are raised as they are, so
    the shell can show them."""
    io = session().client()
    if name is None:
        io.channels.leave()
    else:
        io.channels.join(name)
    return io.channels.current
