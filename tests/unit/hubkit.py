"""A socket-free harness for the hub core: clients whose inboxes hold what the hub sent them.

Messages are round-tripped through the codec as soon as the hub returns them, exactly as the
transport does (the hub's contract: encode before the next ``handle``).
"""

from __future__ import annotations

import itertools
from typing import Any

from jupyter_interop.hub import InteropHub, PeerConn
from jupyter_interop.protocol import decode, encode
from jupyter_interop.protocol.addressed import Fanout

TOKEN = "test-token"


class Client:
    def __init__(self, kit: HubKit, conn: PeerConn) -> None:
        self.kit = kit
        self.conn = conn
        self.inbox: list[dict[str, Any]] = []
        self.peer_id: str | None = None
        self.identity: dict[str, Any] = {}
        self._req = itertools.count(1)

    def send(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Send a message; return (and take from the inbox) what this client got from it."""
        message.setdefault("request_id", f"r{next(self._req)}")
        if self.peer_id and "peer_id" not in message:
            message["peer_id"] = self.peer_id
        before = len(self.inbox)
        self.kit.deliver(self.kit.hub.handle(self.conn, message))
        got = self.inbox[before:]
        del self.inbox[before:]
        return got

    def take(self, mtype: str | None = None) -> list[dict[str, Any]]:
        if mtype is None:
            got, self.inbox = self.inbox, []
            return got
        got = [m for m in self.inbox if m["type"] == mtype]
        self.inbox = [m for m in self.inbox if m["type"] != mtype]
        return got

    def one(self, mtype: str) -> dict[str, Any]:
        got = self.take(mtype)
        assert len(got) == 1, f"expected one {mtype!r}, got {got} (inbox: {self.inbox})"
        return got[0]

    def join(self, *domains: str) -> None:
        for domain in domains:
            replies = self.send({"domain": "global", "type": "join", "destination": domain})
            assert any(r["type"] == "success" and r["domain"] == domain for r in replies), replies
            self.inbox.extend(r for r in replies if r["type"] != "success")

    def close(self) -> None:
        self.kit.deliver(self.kit.hub.close(self.conn))


class HubKit:
    def __init__(self, **hub_kwargs: Any) -> None:
        hub_kwargs.setdefault("token", TOKEN)
        self.hub = InteropHub(**hub_kwargs)
        self.clients: dict[PeerConn, Client] = {}
        #: one copy of each announcement per recipient, as the transport writes them
        self.fanout = Fanout()

    def deliver(self, out: list[tuple[PeerConn, dict[str, Any]]]) -> None:
        for conn, message in self.fanout.expand(out):
            client = self.clients.get(conn)
            if client is not None:
                client.inbox.append(decode(encode(message)))

    def raw(self, trusted: bool = False, **conn_kwargs: Any) -> Client:
        conn = PeerConn(trusted=trusted, **conn_kwargs)
        self.hub.open(conn)
        client = Client(self, conn)
        self.clients[conn] = client
        return client

    def hello(
        self, application: str = "app", extensions: dict[str, Any] | None = None
    ) -> tuple[Client, list[dict[str, Any]]]:
        """A new connection that said hello (asking for ``extensions``), and the replies."""
        client = self.raw()
        hello: dict[str, Any] = {
            "domain": "global",
            "type": "hello",
            "identity": {"application": application},
            "authentication": {"method": "access-token", "token": TOKEN},
        }
        if extensions:
            hello["extensions"] = {"jupyter_interop": extensions}
        return client, client.send(hello)

    def client(
        self, application: str = "app", *domains: str, extensions: dict[str, Any] | None = None
    ) -> Client:
        client, replies = self.hello(application, extensions)
        welcome = [r for r in replies if r["type"] == "welcome"]
        assert welcome, replies
        client.peer_id = welcome[0]["peer_id"]
        client.identity = welcome[0]["resolved_identity"]
        client.join(*(domains or ("agm", "bus")))
        client.take()
        return client
