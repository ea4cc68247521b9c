"""The hub's shared-memory directory: where same-host peers put large attachments.

Layout, under ``root`` (``/dev/shm`` by default; tmpfs)::

    jupyter-interop-<uid>-<random>/      0700, the hub's; ``.lock`` is flock'ed while it runs
        held/<name>                      attachments the hub holds (0600)
        peers/<random>/                  one inbox per peer, 0700: the nonce file, and the
                                         files the peer wrote and has not announced yet

Lifetime. A peer writes a file in its inbox and sends a reference; decoding the frame takes the
file over (:meth:`PeerInbox.claim` renames it into ``held`` under a new name). From then on it
belongs to the hub: a :class:`SharedAttachment` stands for it, carried by reference like any
attachment (context data, invoke arguments, events), and when the last of those is gone (the
value replaced, the context destroyed, the message delivered and dropped) the file is removed
after ``grace`` seconds, so that a receiver that has the reference but has not mapped the file
yet still finds it (a receiver maps it as soon as the frame arrives; once mapped, removal does
not matter). Files waiting out their grace period hold at most ``grace_bytes``: beyond that the
oldest go at once (a fast stream of large values must not fill tmpfs with delivered ones; a
receiver that is that late gets a clear error instead).

A peer's inbox, with whatever it wrote but never announced, is removed when the peer leaves;
the whole directory when the hub stops; directories of hubs that died without stopping (their
lock is free) when a hub starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import stat
import threading
import time
import weakref
from typing import Any

from ..protocol.chunks import DEFAULT_MAX_ATTACHMENT_BYTES
from ..protocol.shm import (
    SharedAttachment,
    SharedMemoryError,
    check_ref,
    checked_open,
    map_file,
    new_name,
    open_dir,
)

__all__ = ["DIR_PREFIX", "PeerInbox", "SharedMemoryArea"]

log = logging.getLogger("jupyter_interop")

#: the hub directories are ``<root>/<DIR_PREFIX><uid>-<random>``
DIR_PREFIX = "jupyter-interop-"
_LOCK = ".lock"


class PeerInbox:
    """The inbox of one peer that proved it sees the directory: claims the files it announces.

    No descriptor is kept open per peer (a thousand peers must not cost a thousand of them):
    the inbox is opened, without following a symlink, for each claim.
    """

    __slots__ = ("area", "name", "proven")

    def __init__(self, area: SharedMemoryArea, name: str) -> None:
        self.area = area
        self.name = name
        self.proven = False

    def open(self) -> int:
        """A descriptor of the inbox directory (the caller closes it)."""
        if self.area.peers_fd is None:
            raise SharedMemoryError("The hub's shared-memory directory is closed")
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(self.name, flags, dir_fd=self.area.peers_fd)
        except OSError as error:
            raise SharedMemoryError(f"This peer's shared-memory inbox is gone: {error}") from None

    def claim(self, meta: dict[str, Any], ref: Any) -> SharedAttachment:
        """Take over the file a reference names: checked, renamed into ``held``, owned by the
        hub from now on. Raises :class:`SharedMemoryError` with the reason."""
        area = self.area
        if not self.proven or area.held_fd is None:
            raise SharedMemoryError("Shared memory was not negotiated on this connection")
        name, size = check_ref(ref, area.max_bytes)
        inbox_fd = self.open()
        try:
            fd = checked_open(inbox_fd, name, size)
            try:
                held = new_name()
                os.rename(name, held, src_dir_fd=inbox_fd, dst_dir_fd=area.held_fd)
                moved = os.stat(held, dir_fd=area.held_fd, follow_symlinks=False)
                opened = os.fstat(fd)
                if (moved.st_ino, moved.st_dev) != (opened.st_ino, opened.st_dev):
                    os.unlink(held, dir_fd=area.held_fd)  # swapped under us: refuse it
                    raise SharedMemoryError(f"Shared-memory file {name} changed while claimed")
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        finally:
            os.close(inbox_fd)
        return area.hold(meta, held, size)


class SharedMemoryArea:
    """The hub's shared-memory directory (see the module docstring). Thread-safe where the
    store's writer thread may reach it (release of a file)."""

    def __init__(
        self,
        root: str = "/dev/shm",
        *,
        max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        grace: float = 10.0,
        grace_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.grace = grace
        self.grace_bytes = grace_bytes
        #: the hub's directory while open, else None (the extension is then not offered)
        self.path: str | None = None
        self.held_fd: int | None = None
        self.peers_fd: int | None = None
        self._lock_fd: int | None = None
        self._inboxes: dict[str, PeerInbox] = {}
        self._nonces: dict[str, str] = {}
        #: files released, removed at their deadline: name -> (deadline, size), oldest first
        self._doomed: dict[str, tuple[float, int]] = {}
        self._doomed_bytes = 0
        self._cond = threading.Condition()
        self._sweeper: threading.Thread | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> bool:
        """Create the directory (after removing stale ones); False if the root is unusable,
        then peers simply get bytes."""
        if self.path is not None:
            return True
        try:
            self.clean_stale()
            path = os.path.join(self.root, f"{DIR_PREFIX}{os.geteuid()}-{secrets.token_hex(8)}")
            os.mkdir(path, 0o700)
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                raise OSError(f"{path} is not our directory")
            os.chmod(path, 0o700)
            lock_fd = os.open(
                os.path.join(path, _LOCK), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            for sub in ("held", "peers"):
                os.mkdir(os.path.join(path, sub), 0o700)
            self.held_fd = open_dir(os.path.join(path, "held"))
            self.peers_fd = open_dir(os.path.join(path, "peers"))
        except OSError as error:
            log.warning("Interop: no shared memory for attachments in %s: %s", self.root, error)
            return False
        self._lock_fd = lock_fd
        self.path = path
        self._closing = False
        return True

    def close(self) -> None:
        """Remove the directory and everything in it (idempotent)."""
        with self._cond:
            self._closing = True
            self._doomed.clear()
            self._doomed_bytes = 0
            self._cond.notify_all()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.join(5)
        self._inboxes.clear()
        self._nonces.clear()
        for name in ("held_fd", "peers_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        path, self.path = self.path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def clean_stale(self) -> list[str]:
        """Remove the directories of this user's hubs that are not running any more."""
        removed: list[str] = []
        prefix = f"{DIR_PREFIX}{os.geteuid()}-"
        try:
            entries = os.listdir(self.root)
        except OSError:
            return removed
        for entry in entries:
            if not entry.startswith(prefix):
                continue
            path = os.path.join(self.root, entry)
            try:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    continue
                state = _lock_state(path)
                if state == "held" or (state == "missing" and time.time() - st.st_mtime < 60):
                    continue  # running, or a hub creating its directory right now
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        if removed:
            log.info("Interop: removed %d stale shared-memory directories", len(removed))
        return removed

    # ------------------------------------------------------------------ peers

    def offer(self, peer_id: str) -> dict[str, Any] | None:
        """A new inbox with a nonce file for a peer that asked for shared memory: the offer
        for its welcome (None when the directory is not available)."""
        if self.path is None or self.peers_fd is None:
            return None
        inbox_name = secrets.token_hex(16)
        nonce_name = new_name()
        nonce = secrets.token_urlsafe(32)
        self.forget(peer_id)
        inbox = PeerInbox(self, inbox_name)
        try:
            os.mkdir(inbox_name, 0o700, dir_fd=self.peers_fd)
            fd = inbox.open()
            try:
                nonce_fd = os.open(
                    nonce_name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=fd,
                )
            finally:
                os.close(fd)
            try:
                os.write(nonce_fd, nonce.encode())
            finally:
                os.close(nonce_fd)
        except (OSError, SharedMemoryError) as error:
            log.warning("Interop: cannot offer shared memory to %s: %s", peer_id, error)
            return None
        self._inboxes[peer_id] = inbox
        self._nonces[peer_id] = f"{nonce_name}:{nonce}"
        return {
            "inbox": os.path.join(self.path, "peers", inbox_name),
            "held": os.path.join(self.path, "held"),
            "nonce": nonce_name,
        }

    def prove(self, peer_id: str, nonce: Any) -> PeerInbox:
        """Check the content a peer read from its nonce file; its inbox, ready for claims."""
        inbox = self._inboxes.get(peer_id)
        expected = self._nonces.get(peer_id)
        if inbox is None or expected is None:
            if inbox is not None and inbox.proven:
                return inbox
            raise SharedMemoryError("No shared-memory offer for this peer")
        nonce_name, secret = expected.split(":", 1)
        if not isinstance(nonce, str) or not secrets.compare_digest(
            nonce.encode(), secret.encode()
        ):
            raise SharedMemoryError("Wrong nonce: the hub's shared-memory directory is not seen")
        del self._nonces[peer_id]
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.path, "peers", inbox.name, nonce_name))
        inbox.proven = True
        return inbox

    def accept_proof(self, peer: Any, nonce: Any) -> None:
        """A peer's ``shm-proof``: on success, its connection decodes references through its
        inbox (``conn.attrs["shm"]``) and receives references (its ``shm`` extension)."""
        inbox = self.prove(peer.peer_id, nonce)
        peer.conn.attrs["shm"] = inbox
        peer.extensions["shm"] = True

    def inbox(self, peer_id: str) -> PeerInbox | None:
        """The inbox of a peer that proved it sees the directory."""
        inbox = self._inboxes.get(peer_id)
        return inbox if inbox is not None and inbox.proven else None

    def forget(self, peer_id: str) -> None:
        """The peer left: remove its inbox and the files it never announced."""
        self._nonces.pop(peer_id, None)
        inbox = self._inboxes.pop(peer_id, None)
        if inbox is None:
            return
        if self.path is not None:
            shutil.rmtree(os.path.join(self.path, "peers", inbox.name), ignore_errors=True)

    # ------------------------------------------------------------------ held files

    def hold(self, meta: dict[str, Any], name: str, size: int) -> SharedAttachment:
        """The attachment for a file now in ``held``; the file goes when the object does."""
        attachment = SharedAttachment(meta, name, size, lambda: self._map(name, size))
        weakref.finalize(attachment, self.release, name, size)
        return attachment

    def _map(self, name: str, size: int) -> Any:
        if self.held_fd is None:
            raise SharedMemoryError("The hub's shared-memory directory is closed")
        return map_file(self.held_fd, name, size, private=False)

    def held_names(self) -> list[str]:
        if self.path is None:
            return []
        return sorted(os.listdir(os.path.join(self.path, "held")))

    def release(self, name: str, size: int = 0) -> None:
        """Remove a held file after the grace period (any thread)."""
        with self._cond:
            if self._closing or self.path is None:
                return
            if self.grace <= 0:
                self._unlink(name)
                return
            self._doomed[name] = (time.monotonic() + self.grace, size)
            self._doomed_bytes += size
            while self._doomed_bytes > self.grace_bytes and len(self._doomed) > 1:
                oldest = next(iter(self._doomed))
                self._drop(oldest)
            if self._sweeper is None:
                self._sweeper = threading.Thread(
                    target=self._sweep_loop, name="interop-shm-sweeper", daemon=True
                )
                self._sweeper.start()
            self._cond.notify_all()

    @property
    def pending_bytes(self) -> int:
        """Bytes of released files still waiting out their grace period."""
        return self._doomed_bytes

    def sweep(self, now: float | None = None) -> int:
        """Remove the released files whose grace period is over; how many."""
        now = time.monotonic() if now is None else now
        with self._cond:
            due = [name for name, (deadline, _) in self._doomed.items() if deadline <= now]
            for name in due:
                self._drop(name)
        return len(due)

    def _sweep_loop(self) -> None:
        with self._cond:
            while not self._closing:
                if not self._doomed:
                    self._cond.wait(60)
                    continue
                wait = min(d for d, _ in self._doomed.values()) - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                now = time.monotonic()
                for name in [n for n, (d, _) in self._doomed.items() if d <= now]:
                    self._drop(name)

    def _drop(self, name: str) -> None:
        """Remove a released file now (the lock is held)."""
        _, size = self._doomed.pop(name)
        self._doomed_bytes -= size
        self._unlink(name)

    def _unlink(self, name: str) -> None:
        if self.held_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self.held_fd)


def _lock_state(path: str) -> str:
    """``held`` (a running hub), ``free`` (its hub is gone) or ``missing`` (no lock file)."""
    try:
        fd = os.open(os.path.join(path, _LOCK), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return "missing"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return "held"
    finally:
        os.close(fd)
    return "free"
