"""The parity tables of docs/FDC3.md ("Parity with io.Connect's channels and contexts, and
FDC3's methods", and the method table of "The API"): every method of FDC3 2.2's DesktopAgent,
Channel and PrivateChannel and every channel and context method of io.Connect's JavaScript API
has a row, every row that works cites a test (in the parity tables, one that calls the row's
Python method), and every test cited exists in the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "FDC3.md"
SECTION = "## Parity with io.Connect's channels and contexts, and FDC3's methods"

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

#: FDC3 2.2's interfaces, without the deprecated forms
FDC3 = {
    "DesktopAgent": [
        "broadcast",
        "addContextListener",
        "getUserChannels",
        "joinUserChannel",
        "getCurrentChannel",
        "leaveCurrentChannel",
        "getOrCreateChannel",
        "createPrivateChannel",
        "raiseIntent",
        "raiseIntentForContext",
        "findIntent",
        "findIntentsByContext",
        "addIntentListener",
        "findInstances",
        "open",
        "getAppMetadata",
        "getInfo",
        "addEventListener",
    ],
    "Channel": ["broadcast", "getCurrentContext", "addContextListener"],
    "PrivateChannel": [
        "onAddContextListener",
        "onUnsubscribe",
        "onDisconnect",
        "addEventListener",
        "disconnect",
    ],
}

CITATION = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def rows() -> list[list[str]]:
    """The table's rows, as cells (the header and its rule left out)."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    return [row for row in cells if row[1] != "`io.`" and not row[0].startswith("---")]


def source_of(path: str, name: str) -> str:
    """The source of the test ``name`` in ``path`` (to the next top-level definition)."""
    text = (ROOT / path).read_text(encoding="utf-8")
    found = re.search(
        rf"^(async )?def {name}\(.*?(?=^(?:@|def |async def |class )|\Z)", text, re.M | re.S
    )
    assert found, f"{path} has no test {name}"
    return found.group(0)


def test_every_io_connect_channel_and_context_method_has_one_row() -> None:
    named = [cells[0] for cells in rows()]
    wanted = [f"`channels.{m}`" for m in CHANNELS] + [f"`contexts.{m}`" for m in CONTEXTS]
    wanted += [
        f"`{kind}.{m}`" for kind, methods in FDC3.items() if kind != "DesktopAgent" for m in methods
    ]
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


def test_every_cited_test_exists_and_one_of_them_calls_the_method() -> None:
    cited = 0
    for cells in rows():
        tests = [m.groups() for m in CITATION.finditer(cells[3])]
        for path, name in tests:
            assert (ROOT / path).is_file(), f"{path} (cited for {name}) does not exist"
        sources = [source_of(path, name) for path, name in tests]
        cited += len(tests)
        # the row's Python names: channels.get_my() -> get_my, %interop channel mode -> mode
        names = re.findall(r"\.(\w+)[(\[ ]", cells[1]) + re.findall(r"`\w+\.(\w+)`", cells[1])
        names += [words.split()[-1] for words in re.findall(r"%interop ((?:\w+ )*\w+)", cells[1])]
        if tests:
            assert names, cells[1]
            used = (re.search(rf"\b{n}\b", source) for n in names for source in sources)
            assert any(used), f"no test cited for {cells[0]} uses {names}"
    assert cited > 50


#: where the tests named in the table of "The API" are (docs/FDC3.md says so under it)
API_TESTS = (
    "tests/integration/test_fdc3_agent.py",
    "tests/integration/test_fdc3_js.py",
    "tests/notebook/test_intents_magics.py",
    "tests/notebook/test_fdc3_open.py",
)


def test_the_api_table_has_every_desktop_agent_method_and_its_tests_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The API", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    by_method = {row[0].strip("`"): row for row in cells if len(row) == 5}
    assert set(FDC3["DesktopAgent"]) <= set(by_method), set(FDC3["DesktopAgent"]) - set(by_method)
    sources = "\n".join((ROOT / path).read_text(encoding="utf-8") for path in API_TESTS)
    for method in FDC3["DesktopAgent"]:
        _, _, _, status, tests = by_method[method]
        assert status.startswith("works"), (method, status)
        names = re.findall(r"`(test_\w+)`", tests)
        assert names, f"{method} cites no test"
        for name in names:
            assert re.search(rf"^(async )?def {name}\(", sources, re.M), (
                f"{name} (cited for {method}) is in none of {API_TESTS}"
            )
