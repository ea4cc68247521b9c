"""The FDC3 2.2 context helpers and their validation against FINOS's published schemas
(docs/FDC3.md): the schemas are the npm packages' files, every helper's output is valid, and
invalid contexts raise MalformedContext naming the failing part and schema rule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource

import jupyter_interop.fdc3 as fdc3
from jupyter_interop.client.errors import ArgumentError, InteropError, MalformedContext
from jupyter_interop.fdc3.schemas import SCHEMA_DIR

REPO = Path(__file__).resolve().parents[2]
NPM_DIR = REPO / "fdc3-schemas"
BUILD_HINT = "run `bash scripts/build-fdc3-schemas.sh` (scripts/setup.sh runs it)"


def aapl() -> dict:
    return fdc3.instrument("AAPL", name="Apple", market={"MIC": "XNAS"})


def alice() -> dict:
    return fdc3.contact("alice@example.com", name="Alice")


def team() -> dict:
    return fdc3.contact_list([alice(), fdc3.contact(id={"FDS_ID": "B0B"})], name="Team")


def january() -> dict:
    return fdc3.time_range(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "2024-01-31T23:59:59Z")


def product() -> dict:
    return fdc3.product({"SKU": "p1"}, instrument=aapl())


def room() -> dict:
    return fdc3.chat_room("Symphony", {"streamId": "s1"}, url="https://example.com/room")


#: one call of each helper, by the type it builds
SAMPLES = {
    "fdc3.action": lambda: fdc3.action("Buy", aapl(), intent="ViewChart", app={"appId": "chart"}),
    "fdc3.chart": lambda: fdc3.chart([aapl()], range=january(), style="candle"),
    "fdc3.chat.initSettings": lambda: fdc3.chat_init_settings(
        chat_name="desk", members=team(), message="hi", options={"isPublic": False}
    ),
    "fdc3.chat.message": lambda: fdc3.chat_message(room(), fdc3.message("hello")),
    "fdc3.chat.room": room,
    "fdc3.chat.searchCriteria": lambda: fdc3.chat_search_criteria([aapl(), "earnings"]),
    "fdc3.contact": alice,
    "fdc3.contactList": team,
    "fdc3.country": lambda: fdc3.country("GB", iso_alpha3="GBR", name="United Kingdom"),
    "fdc3.currency": lambda: fdc3.currency("EUR", name="Euro"),
    "fdc3.email": lambda: fdc3.email(team(), subject="Q1", text_body="numbers"),
    "fdc3.fileAttachment": lambda: fdc3.file_attachment("a.txt", "data:text/plain;base64,aGk="),
    "fdc3.instrument": aapl,
    "fdc3.instrumentList": lambda: fdc3.instrument_list([aapl(), fdc3.instrument("MSFT")]),
    "fdc3.interaction": lambda: fdc3.interaction(
        team(),
        january(),
        "Meeting",
        "Quarterly review",
        initiator=alice(),
        origin="crm",
    ),
    "fdc3.message": lambda: fdc3.message(
        "see chart", markdown="see *chart*", entities={"a1": fdc3.action("Open", aapl())}
    ),
    "fdc3.nothing": fdc3.nothing,
    "fdc3.order": lambda: fdc3.order({"myOMS": "o1"}, details={"product": product()}),
    "fdc3.orderList": lambda: fdc3.order_list([fdc3.order({"myOMS": "o1"})]),
    "fdc3.organization": lambda: fdc3.organization({"LEI": "5493001KJTIIGC8Y1R12"}),
    "fdc3.portfolio": lambda: fdc3.portfolio([fdc3.position(aapl(), 100)], name="Core"),
    "fdc3.position": lambda: fdc3.position(aapl(), -5.5),
    "fdc3.product": product,
    "fdc3.timeRange": january,
    "fdc3.trade": lambda: fdc3.trade({"myEMS": "t1"}, product()),
    "fdc3.tradeList": lambda: fdc3.trade_list([fdc3.trade({"myEMS": "t1"}, product())]),
    "fdc3.transactionResult": lambda: fdc3.transaction_result("Created", context=aapl()),
    "fdc3.valuation": lambda: fdc3.valuation(
        1.5e6, "USD", price=150.0, valuation_time="2024-01-31T16:00:00-05:00"
    ),
}


def test_the_schemas_are_the_npm_packages_files() -> None:
    """Each shipped schema is byte for byte the file of the pinned npm package it came from."""
    assert (SCHEMA_DIR / "SOURCE.json").is_file(), f"no FDC3 schemas in {SCHEMA_DIR}: {BUILD_HINT}"
    lock = json.loads((NPM_DIR / "package-lock.json").read_text())["packages"]
    source = {
        p["name"]: p for p in json.loads((SCHEMA_DIR / "SOURCE.json").read_text())["packages"]
    }
    pairs = {"@finos/fdc3-context": "context", "@finos/fdc3-schema": "api"}
    for package, folder in pairs.items():
        assert source[package]["version"] == lock[f"node_modules/{package}"]["version"]
        assert source[package]["version"].startswith("2.2.")
        published = NPM_DIR / "node_modules" / package / "dist" / "schemas" / folder
        assert published.is_dir(), f"{published} is missing: {BUILD_HINT}"
        shipped = sorted(p.name for p in (SCHEMA_DIR / folder).glob("*.schema.json"))
        if folder == "context":
            assert shipped == sorted(p.name for p in published.glob("*.schema.json"))
        assert shipped
        for name in shipped:
            assert (SCHEMA_DIR / folder / name).read_bytes() == (published / name).read_bytes()


def test_every_standard_type_has_a_helper() -> None:
    """The types come from the schemas' ``type`` constants, and each has one helper."""
    types = set(fdc3.context_schemas().by_type)
    assert {"fdc3.instrument", "fdc3.nothing", "fdc3.timeRange", "fdc3.chart"} <= types
    assert set(fdc3.CONTEXT_HELPERS) == types == set(SAMPLES)


@pytest.mark.parametrize("context_type", sorted(SAMPLES))
def test_every_helper_output_is_valid(context_type: str) -> None:
    context = SAMPLES[context_type]()
    assert context["type"] == context_type
    assert fdc3.validate_context(context) is context
    validator = fdc3.context_schemas().by_type[context_type]
    assert list(validator.iter_errors(json.loads(json.dumps(context)))) == []


def test_helpers_leave_out_what_is_not_given() -> None:
    assert fdc3.nothing() == {"type": "fdc3.nothing"}
    assert fdc3.instrument(id={"ISIN": "US0378331005"}, ticker="AAPL") == {
        "type": "fdc3.instrument",
        "id": {"ISIN": "US0378331005", "ticker": "AAPL"},
    }
    assert fdc3.position(aapl(), 3, desk="EQ")["desk"] == "EQ"


@pytest.mark.parametrize(
    ("context", "path", "schema_path"),
    [
        (
            {"type": "fdc3.valuation", "value": 1, "CURRENCY_ISOCODE": "usd"},
            "/CURRENCY_ISOCODE",
            "/allOf/0/properties/CURRENCY_ISOCODE/pattern",
        ),
        ({"type": "fdc3.position", "holding": 1}, "/", "/allOf/0/required"),
        (
            {
                "type": "fdc3.position",
                "instrument": {"type": "fdc3.contact", "id": {}},
                "holding": 1,
            },
            "/instrument/type",
            "/allOf/0/properties/instrument/allOf/0/properties/type/const",
        ),
        (
            {"type": "fdc3.timeRange", "startTime": "2024-01-01T00:00:00"},
            "/startTime",
            "/allOf/0/properties/startTime/format",
        ),
        (
            {"type": "fdc3.chart", "instruments": [], "style": "sparkles"},
            "/style",
            "/allOf/0/properties/style/enum",
        ),
        ({"type": "myorg.thing", "name": 5}, "/name", "/allOf/0/properties/name/type"),
    ],
)
def test_invalid_contexts_name_the_part_and_the_rule(
    context: dict, path: str, schema_path: str
) -> None:
    with pytest.raises(MalformedContext) as caught:
        fdc3.validate_context(context)
    error = caught.value
    assert error.path == path
    assert error.schema_path is not None and error.schema_path.startswith(schema_path)
    assert context["type"] in str(error) and error.schema_path in str(error)


def test_malformed_context_is_the_fdc3_error_and_an_argument_error() -> None:
    with pytest.raises(MalformedContext) as caught:
        fdc3.valuation(1, "usd")
    assert isinstance(caught.value, InteropError) and isinstance(caught.value, ArgumentError)
    assert caught.value.fdc3_error == "MalformedContext"


@pytest.mark.parametrize("bad", [None, [], "fdc3.instrument", {"id": {}}, {"type": ""}])
def test_a_context_needs_a_type(bad: object) -> None:
    with pytest.raises(MalformedContext, match="FDC3 context"):
        fdc3.validate_context(bad)


def test_unknown_types_in_the_fdc3_namespace_are_refused() -> None:
    with pytest.raises(MalformedContext, match=r"not a standard FDC3 2\.2 context type"):
        fdc3.validate_context({"type": "fdc3.instrumnt", "id": {"ticker": "X"}})
    own = {"type": "myorg.basket", "id": {"code": "B1"}, "anything": [1, 2]}
    assert fdc3.validate_context(own) is own


def test_naive_datetimes_are_refused_rather_than_guessed() -> None:
    with pytest.raises(MalformedContext, match="naive datetime") as caught:
        fdc3.time_range(dt.datetime(2024, 1, 1))
    assert caught.value.path == "/startTime"
    local = dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert fdc3.time_range(end=local) == {
        "type": "fdc3.timeRange",
        "endTime": "2024-01-01T09:00:00+02:00",
    }


def test_missing_schemas_say_how_to_build_them(tmp_path: Path) -> None:
    with pytest.raises(fdc3.SchemasNotBuilt, match=r"scripts/build-fdc3-schemas\.sh"):
        fdc3.context_schemas(tmp_path)


@pytest.mark.parametrize(
    ("schema", "context"),
    [
        (
            "timeRange",
            {
                "type": "fdc3.timeRange",
                "startTime": "2024-01-01T00:00:00Z",
                "endTime": "2024-01-02T00:00:00Z",
            },
        ),
        ("interaction", None),
    ],
)
def test_one_of_is_read_as_any_of_because_the_files_refuse_the_standards_examples(
    schema: str, context: dict | None
) -> None:
    """The published files, read strictly, refuse these contexts (several ``oneOf``
    alternatives match); validation reads ``oneOf`` as ``anyOf`` and accepts them. When a
    release of the schemas stops refusing them, this test says the reading can go."""
    context = context or SAMPLES[f"fdc3.{schema}"]()
    documents = [json.loads(p.read_text()) for p in SCHEMA_DIR.glob("*/*.schema.json")]
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents
    )
    published = json.loads((SCHEMA_DIR / "context" / f"{schema}.schema.json").read_text())
    strict = Draft7Validator(published, registry=registry)
    assert {error.validator for error in strict.iter_errors(context)} == {"oneOf"}
    assert fdc3.validate_context(context) is context
