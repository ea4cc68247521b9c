"""The notebook layer's pure parts, without a kernel: line parsing and expansion, rendering,
cell methods, and bind's ordering rules."""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as w
import pytest
from IPython.core.error import UsageError

from jupyter_interop.notebook import binding as bind_module
from jupyter_interop.notebook._args import (
    build_pairs,
    expand_value,
    parse_json,
    parse_payload,
    split_line,
    unquote,
)
from jupyter_interop.notebook._cellmethod import compile_cell_method
from jupyter_interop.notebook._kernel import call_on_main, routes_output
from jupyter_interop.notebook._render import KeyValues, Table, swatch

NS: dict[str, Any] = {"sym": "AAPL", "n": 3, "obj": type("O", (), {"attr": [1, 2]})()}


def test_split_keeps_quotes_and_json_with_spaces_whole() -> None:
    tokens = [t.text for t in split_line('Q {"a": [1, 2], "b": "x y"} --t 5 name="A B" s=\'c d\'')]
    assert tokens == ["Q", '{"a": [1, 2], "b": "x y"}', "--t", "5", 'name="A B"', "s='c d'"]
    assert [t.start for t in split_line("  a  b")] == [2, 5]
    assert unquote('"a\\"b"') == 'a"b' and unquote("'x'") == "x" and unquote("x") == "x"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("true", True),
        ("null", None),
        ('"quoted text"', "quoted text"),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("$sym", "AAPL"),
        ("$obj.attr", [1, 2]),
        ("{n * 2}", 6),
        ("{sym.lower()}", "aapl"),
        ("$$sym", "$sym"),
        ("plain", "plain"),
        ("'single quoted'", "single quoted"),
        ("2024-01-02", "2024-01-02"),
    ],
)
def test_expansion_rules(text: str, value: Any) -> None:
    assert expand_value(text, NS) == value


def test_json_payload_with_variables_and_text_dollars() -> None:
    assert parse_json('{"s": $sym, "t": "$sym", "l": [$n, {"o": $obj.attr}]}', NS) == {
        "s": "AAPL",
        "t": "$sym",
        "l": [3, {"o": [1, 2]}],
    }
    frame = object()
    assert parse_json('{"df": $df}', {"df": frame})["df"] is frame  # the object itself
    with pytest.raises(UsageError, match="cannot be used here"):
        parse_json('{"a": $sym}')


def test_pairs_nest_and_payload_forms() -> None:
    assert build_pairs(["a.b=1", "a.c=$sym", "d={n}"], NS) == {"a": {"b": 1, "c": "AAPL"}, "d": 3}
    assert parse_payload([], NS) == {}
    assert parse_payload(['{"x": 1}'], NS) == {"x": 1}
    assert parse_payload(["[1]"], NS, require_object=False) == [1]


def test_render_text_and_html_fallbacks() -> None:
    table = Table(["name", "colour"], [["Red", swatch("red", "Red")], ["x" * 300, None]])
    text = str(table)
    assert text.splitlines()[0].split() == ["name", "colour"]
    assert "Red" in text and "<" not in text
    html = table._repr_html_()
    assert 'class="ji-swatch" style="background:red"' in html and "..." in html
    assert "(none)" in str(Table(["a"], []))
    kv = KeyValues([("hub", "ws://x"), ("channel", swatch(None, "(none)"))], title="T")
    assert str(kv) == "T\nhub      ws://x\nchannel  (none)"
    assert "<thead>" not in kv._repr_html_()
    assert "<script>" not in Table(["a"], [["<script>"]])._repr_html_()


def test_cell_method_scoping_and_errors() -> None:
    ns = {"factor": 10, "x": "notebook"}
    handler = compile_cell_method("M.a", "y = [v * factor for v in values]\nx\n", ns, None)
    assert handler(values=[1]) == "notebook"
    handler = compile_cell_method(
        "M.b", "def f():\n    return [v * factor for v in values]\nf()", ns, None
    )
    assert handler(values=[1, 2]) == [10, 20]
    handler = compile_cell_method("M.c", "if n:\n    return 'yes'\n'no'", ns, None)
    assert (handler(n=1), handler(n=0)) == ("yes", "no")
    assert compile_cell_method("M.d", "z = 1", ns, None)() is None
    assert compile_cell_method("M.e", "%time 1", ns, lambda s: "'transformed'")() == ("transformed")
    with pytest.raises(UsageError, match="invalid syntax"):
        compile_cell_method("M.f", "def (:", ns, None)
    with pytest.raises(UsageError, match="empty"):
        compile_cell_method("M.g", "  \n", ns, None)
    boom = compile_cell_method("M.h", "1/0", ns, None)
    with pytest.raises(ZeroDivisionError) as info:
        boom()
    assert "1/0" in "".join(__import__("traceback").format_tb(info.tb))  # lines shown


def test_outside_a_kernel_main_loop_calls_run_at_once() -> None:
    seen: list[str] = []
    call_on_main(lambda: seen.append(threading.current_thread().name))
    assert seen == [threading.current_thread().name]
    call_on_main(lambda: 1 / 0)  # logged, never raised into the caller
    assert routes_output() is False


def test_writer_sends_in_order_and_coalesces_per_key() -> None:
    writer = bind_module._Writer()
    sent: list[tuple[str, int]] = []
    gate = threading.Event()
    writer.submit("gate", gate.wait)
    for i in range(5):
        writer.submit("a", lambda i=i: sent.append(("a", i)))
        writer.submit("b", lambda i=i: sent.append(("b", i)))
    gate.set()
    assert writer.flush()
    assert sent == [("a", 4), ("b", 4)]


class _FakeSource:
    label = "fake"

    def __init__(self) -> None:
        self.writes: list[Any] = []

    def write(self, binding: Any, value: Any) -> None:
        self.writes.append(value)

    def remove(self, binding: Any) -> None:
        pass


def test_apply_group_sets_bounds_first_without_publishing_back() -> None:
    slider = w.IntSlider(value=10, max=100)
    source = _FakeSource()
    value = bind_module.Binding(slider, "value", "v", source)  # type: ignore[arg-type]
    maximum = bind_module.Binding(slider, "max", "m", source)  # type: ignore[arg-type]
    slider.observe(value._on_widget_change, names="value")
    slider.observe(maximum._on_widget_change, names="max")
    bind_module._apply_group([(value, 150), (maximum, 200)])
    assert (slider.value, slider.max) == (150, 200)
    assert source.writes == []  # applied from the hub: nothing published back
    slider.value = 20
    assert source.writes == [20]
    value.unbind()
    slider.value = 30
    assert source.writes == [20]
    assert "(unbound)" in repr(value)
    assert bind_module.get_path({"a": {"b": 1}}, "a.b") == 1
    assert bind_module.get_path({"a": 1}, "a.b") is bind_module._MISSING


def test_flush_writes_waits_for_queued_writes() -> None:
    started = time.monotonic()
    assert bind_module.flush_writes(5)
    assert time.monotonic() - started < 5
