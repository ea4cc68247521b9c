"""Join storms cost the hub O(N) Python work, not O(N²) (docs/RELIABILITY.md, join storms).

Every agm peer still learns of every other one (N² copies in all), but the core returns each
announcement once and each reader's copies are made by one join when its queue is written
(``server/announcements.py``), so the work counted here grows linearly with the peers.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
from hubkit import TOKEN, HubKit

from jupyter_interop.hub import PeerConn
from jupyter_interop.protocol import decode
from jupyter_interop.protocol.addressed import Template, encoded_peer_id
from jupyter_interop.server.announcements import (
    PEERS_PER_ANNOUNCE_DELAY,
    AnnouncementLog,
    Rendered,
    frame_header,
    held_delay,
)
from jupyter_interop.server.outbox import Outbox, OutboxLimits, batch_with_runs


def storm(peers: int) -> tuple[int, HubKit]:
    """``peers`` peers say hello, join agm and register 5 methods, one after the other, as in
    ``python -m benchmarks --only connect``: the number of items the core returned."""
    kit = HubKit()
    items = 0
    for n in range(peers):
        client = kit.raw()
        hello = {
            "domain": "global",
            "type": "hello",
            "request_id": "h",
            "identity": {"application": f"storm{n}"},
            "authentication": {"method": "access-token", "token": TOKEN},
        }
        join = {"domain": "global", "type": "join", "destination": "agm", "request_id": "j"}
        methods = [{"id": str(m), "name": f"storm.{n}.{m}"} for m in range(5)]
        register = {"domain": "agm", "type": "register", "methods": methods, "request_id": "r"}
        for message in (hello, join, register):
            out = kit.hub.handle(client.conn, message)
            items += len(out)
    return items, kit


def test_a_join_storm_returns_work_linear_in_the_peers() -> None:
    small, _ = storm(50)
    large, _ = storm(200)
    # 4 times the peers: 4 times the items (16 times if each copy were an item)
    assert large <= 4 * small + 8, (small, large)


def copies(log: AnnouncementLog, frames: list[Any]) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for frame in frames:
        if isinstance(frame, Rendered):
            got.extend(decode(f) for f in frame.frames())
        else:
            decoded = orjson.loads(frame)
            got.extend(decoded if isinstance(decoded, list) else [decoded])
    return got


def added(n: int, identity_size: int = 10) -> Template:
    return Template(
        {
            "domain": "agm",
            "type": "peer-added",
            "new_peer_id": f"p{n}",
            "identity": {"application": "x" * identity_size},
        }
    )


def removed(n: int) -> Template:
    return Template({"domain": "agm", "type": "peer-removed", "removed_id": f"p{n}"})


def test_a_reader_gets_a_storm_as_one_queue_entry_and_each_copy_is_its_own() -> None:
    log = AnnouncementLog()
    readers = []
    for n in range(20):
        outbox = Outbox(PeerConn())
        outbox.read(log, encoded_peer_id(f"reader-{n}"))
        readers.append(outbox)
    for n in range(300):
        log.append(added(n))
    for n, outbox in enumerate(readers):
        assert len(outbox) == 300
        frames = outbox.take()
        assert len(frames) == 1 and isinstance(frames[0], Rendered)  # one entry, one join
        got = copies(log, frames)
        assert [m["new_peer_id"] for m in got] == [f"p{i}" for i in range(300)]
        assert {m["peer_id"] for m in got} == {f"reader-{n}"}
        assert len(outbox) == 0 and not outbox.has_output


def test_the_wire_of_a_run_is_each_copy_in_its_own_websocket_frame() -> None:
    # frame headers of each size class: under 126 bytes, 16-bit and 64-bit lengths
    templates = [added(1, 5), added(2, 500), added(3, 70_000), added(4, 0)]
    rendered = Rendered.of(templates, b'"me"', framed=False)
    framed = Rendered.of(templates, b'"me"', framed=True)
    wire = rendered.wire()
    assert framed.wire() == wire and framed.frames() == rendered.frames()
    frames = []
    at = 0
    while at < len(wire):
        opcode, length = wire[at], wire[at + 1]
        at += 2
        if length == 126:
            (length,) = struct.unpack("!H", wire[at : at + 2])
            at += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", wire[at : at + 8])
            at += 8
        assert opcode == 0x81
        frames.append(wire[at : at + length])
        at += length
    assert frames == rendered.frames()
    assert [decode(f)["new_peer_id"] for f in frames] == ["p1", "p2", "p3", "p4"]
    assert all(decode(f)["peer_id"] == "me" for f in frames)
    assert frame_header(5) == bytes((0x81, 5))


def test_batch_frames_of_a_run_stay_under_the_cap_and_keep_the_order() -> None:
    templates = [added(n, 100) for n in range(50)]
    pid = encoded_peer_id("p-9")
    rendered = Rendered.of(templates, pid, framed=False)
    framed = batch_with_runs([b'{"type":"first"}', rendered, b'{"type":"last"}'], max_bytes=1000)
    assert all(len(f) <= 1000 for f in framed if isinstance(f, bytes))
    got = [m for f in framed for m in orjson.loads(f)]  # every frame is a batch
    assert [m.get("new_peer_id") for m in got[1:-1]] == [f"p{n}" for n in range(50)]
    assert got[0] == {"type": "first"} and got[-1] == {"type": "last"}
    alone = batch_with_runs([Rendered.of(templates[:1], pid, framed=False)])
    assert [m["new_peer_id"] for m in orjson.loads(alone[0])] == ["p0"]


def test_removals_after_other_announcements_are_written_apart() -> None:
    log = AnnouncementLog()
    outbox = Outbox(PeerConn())
    outbox.read(log, b'"r"')
    for template in (added(1), added(2), removed(1), removed(2), added(3)):
        log.append(template)
    first = copies(log, outbox.take())
    assert [m["type"] for m in first] == ["peer-added", "peer-added"]
    assert outbox.held and outbox.take() == []
    outbox.release()
    rest = copies(log, outbox.take())
    assert [m["type"] for m in rest] == ["peer-removed", "peer-removed", "peer-added"]


def test_a_message_pushed_between_announcements_keeps_its_place() -> None:
    log = AnnouncementLog()
    outbox = Outbox(PeerConn())
    outbox.read(log, b'"r"')
    log.append(added(1))
    outbox.push({"domain": "global", "type": "success", "request_id": "x"})
    log.append(added(2))
    got = copies(log, outbox.take())
    assert [m.get("new_peer_id", m["type"]) for m in got] == ["p1", "success", "p2"]
    outbox.stop_reading()
    log.append(added(3))
    assert len(outbox) == 0 and outbox.take() == []


def test_the_log_forgets_what_every_reader_has_read_and_keeps_the_kinds() -> None:
    log = AnnouncementLog()
    for template in (added(1), removed(1), added(2), removed(2), removed(3), added(4)):
        log.append(template)
    log.trim(3)
    assert log.base == 3 and log.end == 6
    kinds = [(len(run), removal) for run, removal in log.runs(3, 6, b'"r"', framed=True)]
    assert kinds == [(2, True), (1, False)]
    log.trim(10)
    assert log.base == 6 and log.heads == []
    log.append(removed(5))
    assert [removal for _, removal in log.runs(6, 7, b'"r"', framed=False)] == [True]


def test_announcements_not_read_yet_count_against_the_limits() -> None:
    log = AnnouncementLog()
    outbox = Outbox(PeerConn(), OutboxLimits(soft_messages=10, hard_messages=20))
    outbox.read(log, b'"r"')
    for n in range(15):
        log.append(added(n))
    assert len(outbox) == 15 and outbox.over_soft_limit
    sizes = [len(head) + len(tail) + 3 for head, tail in zip(log.heads, log.tails, strict=True)]
    assert outbox.pending_bytes == sum(sizes)
    assert outbox.check_limits()
    for n in range(15, 25):
        log.append(added(n))
    assert not outbox.check_limits() and outbox.closed_reason


def test_the_announce_hold_grows_with_the_readers_up_to_its_maximum() -> None:
    per = PEERS_PER_ANNOUNCE_DELAY
    assert held_delay(0, 0.02, 0.25) == 0.02
    assert held_delay(per, 0.02, 0.25) == 0.02
    assert abs(held_delay(5 * per, 0.02, 0.25) - 0.1) < 1e-9
    assert held_delay(100 * per, 0.02, 0.25) == 0.25
    assert held_delay(100 * per, 0.02, 0.01) == 0.02  # never below announce_delay
    assert held_delay(100 * per, 0.0, 0.25) == 0.0  # 0: written at once


def about(mtype: str, n: int) -> Template:
    """An announcement of ``mtype`` about the peer ``p<n>`` (its subject)."""
    return Template({"domain": "agm", "type": mtype, "server_id": f"p{n}"}, subject=f"p{n}")


def logged(log: AnnouncementLog) -> list[dict[str, Any]]:
    """Every announcement the log holds, as a reader from its start would get them."""
    runs = log.runs(log.base, log.end, b'"r"', False)
    return copies(log, [run for run, _ in runs])


def test_a_peer_that_left_unseen_takes_its_announcements_with_it() -> None:
    log = AnnouncementLog()
    outbox = Outbox(PeerConn())
    outbox.read(log, b'"r"')
    for template in (
        about("peer-added", 1),
        about("peer-added", 2),
        about("methods-added", 1),
        about("methods-added", 2),
        about("methods-removed", 1),
    ):
        assert log.append(template)
    assert not log.append(about("peer-removed", 1))  # nobody got p1's: all of them go
    assert [(m["type"], m["server_id"]) for m in copies(log, outbox.take())] == [
        ("peer-added", "p2"),
        ("methods-added", "p2"),
    ]
    # taken by a reader: p2's removal must be announced now
    assert log.append(about("peer-removed", 2))
    assert [m["type"] for m in copies(log, outbox.take())] == ["peer-removed"]


def test_the_peers_after_a_dropped_one_can_still_be_dropped() -> None:
    log = AnnouncementLog()
    for n in (1, 2, 3):
        log.append(about("peer-added", n))
        log.append(about("methods-added", n))
    assert not log.append(about("peer-removed", 1))
    assert not log.append(about("peer-removed", 3))  # its position moved down with p1's drop
    kinds = [(m["type"], m["server_id"]) for m in logged(log)]
    assert kinds == [("peer-added", "p2"), ("methods-added", "p2")]


def test_a_peer_known_to_someone_is_announced_leaving() -> None:
    log = AnnouncementLog()
    log.append(about("peer-added", 1))
    log.append(about("peer-added", 2))
    log.seal(keep="p2")  # p2 joined after p1: its first queue holds p1
    assert log.append(about("peer-removed", 1))
    assert not log.append(about("peer-removed", 2))  # nobody but p2 itself knew of p2
    log.append(about("peer-added", 3))
    log.seal()  # the readers are written
    assert log.append(about("peer-removed", 3))
    kinds = [(m["type"], m["server_id"]) for m in logged(log)]
    assert kinds == [
        ("peer-added", "p1"),
        ("peer-removed", "p1"),
        ("peer-added", "p3"),
        ("peer-removed", "p3"),
    ]
