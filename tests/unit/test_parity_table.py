"""The parity table of docs/FDC3.md ("Parity with io.Connect's channels and contexts"): every
channel and context method of io.Connect's JavaScript API has a row, every row that works
cites a test, and every test it cites exists in the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "FDC3.md"
SECTION = "## Parity with io.Connect's channels and contexts"

#: io.Connect's channel API (the 24 methods of Desktop 9/10 and the mode property) and its
#: contexts API (8 methods and setPathSupported)
CHANNELS = [
    "add",
    "all",
    "clearChannelData",
    "get",
    "getMy",
    "getMyChannels",
    "getRestrictions",
    "getWindowsOnChannel",
    "getWindowsWithChannels",
    "join",
    "leave",
    "list",
    "my",
    "myChannels",
    "onChanged",
    "onChannelsChanged",
    "publish",
    "remove",
    "restrict",
    "restrictAll",
    "setPath",
    "setPaths",
    "subscribe",
    "subscribeFor",
    "mode",
]
CONTEXTS = [
    "all",
    "get",
    "set",
    "update",
    "setPath",
    "setPaths",
    "subscribe",
    "destroy",
    "setPathSupported",
]

CITATION = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def rows() -> list[list[str]]:
    """The table's rows, as cells (the header and its rule left out)."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]


def test_every_io_connect_channel_and_context_method_has_one_row() -> None:
    named = [cells[0] for cells in rows()]
    wanted = [f"`channels.{m}`" for m in CHANNELS] + [f"`contexts.{m}`" for m in CONTEXTS]
    missing = [name for name in wanted if name not in named]
    assert not missing, f"no row for {missing}"
    assert len(set(wanted)) == len(wanted)
    assert all(named.count(name) == 1 for name in wanted)


def test_each_row_says_whether_it_works_and_a_working_row_cites_a_test() -> None:
    for cells in rows():
        assert len(cells) == 4, cells
        here, shown = cells[2], cells[3]
        assert here.startswith(("works", "partly", "not offered")), cells
        if not here.startswith("not offered"):
            assert CITATION.search(shown), f"{cells[0]} works but cites no test"


def test_every_cited_test_exists() -> None:
    cited = [m.groups() for cells in rows() for m in CITATION.finditer(cells[3])]
    assert len(cited) > 30
    for path, name in cited:
        source = ROOT / path
        assert source.is_file(), f"{path} (cited for {name}) does not exist"
        pattern = rf"^(async )?def {name}\("
        assert re.search(pattern, source.read_text(encoding="utf-8"), re.M), (
            f"{path} has no test {name}"
        )
