"""``%interop`` in real kernels: every sub-command with its values asserted, two notebooks
talking through a real hub."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kernelkit import Hub, Kernel

from jupyter_interop.notebook._parsers import PARSERS


def test_status_is_the_default_and_stores_a_dict(nb_a: Kernel) -> None:
    ex = nb_a.run("%interop")
    assert "Interop status" in ex.text
    assert "peer id" in ex.text
    assert "text/html" in (ex.result or {})
    nb_a.run("%interop status -o st")
    assert nb_a.value("st['peer_id'] == ji.connect().peer_id") is True
    assert nb_a.value("st['connected']") is True
    assert nb_a.value("st['channel']") is None


def test_every_sub_command_has_help(nb_a: Kernel) -> None:
    overview = nb_a.run("%interop --help").stdout
    for sub in PARSERS:
        assert f"  {sub} " in overview
        out = nb_a.run(f"%interop {sub} --help").stdout
        assert out.startswith(f"usage: %interop {sub}"), out
    assert "$name is the notebook variable itself" in nb_a.run("%interop invoke -h").stdout


def test_cell_method_arguments_as_names_and_last_expression_returned(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Calc.Scale")
    nb_a.run("factor = 10")
    reg = nb_a.run(
        f"%%interop method {name} --description multiply --accepts 'Double[] values'\n"
        'print(f"scaling {values}")\n'
        "[v * factor for v in values]"
    )
    assert f"Registered method '{name}'" in reg.text

    nb_b.run(f'%interop invoke {name} {{"values": [1, 2]}} -o out')
    assert nb_b.value("out") == [10, 20]
    # the handler's print went under the registering cell of notebook A
    nb_a.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "stream"
            and m["parent_header"].get("msg_id") == reg.msg_id
            and "scaling [1, 2]" in m["content"]["text"]
            for m in msgs
        )
    )
    # key=value with $var and {expr}, JSON with $var
    nb_b.run("vals = [3]")
    nb_b.run(f"%interop invoke {name} values=$vals -o out2")
    assert nb_b.value("out2") == [30]
    nb_b.run(f"%interop invoke {name} values={{[i for i in range(2)]}} -o out3")
    assert nb_b.value("out3") == [0, 10]
    nb_b.run(f'%interop invoke {name} {{"values": $vals}} -o out4')
    assert nb_b.value("out4") == [30]
    # the result view names the executor; the notebook variable was not touched by the call
    ex = nb_b.run(f"%interop invoke {name} values=[5]")
    assert "50" in ex.text and "executed by" in ex.text
    assert nb_a.value("factor") == 10
    # listed with its description and signature
    nb_b.run(f"%interop methods {name} -o ms")
    assert nb_b.value("[(m.name, m.description, m.accepts) for m in ms]") == [
        [name, "multiply", "Double[] values"]
    ]
    nb_a.run("st = None\n%interop status -o st")
    assert name in nb_a.value("st['methods']")


def test_invoke_targets_timeouts_and_remote_errors(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Calc.Who")
    body = f"%%interop method {name}\nimport os\n{{'pid': os.getpid(), 'x': x}}"
    nb_a.run(body)
    nb_b.run(body)
    pid_a, pid_b = nb_a.value("__import__('os').getpid()"), nb_b.value("__import__('os').getpid()")
    nb_b.run(f"%interop invoke {name} x=1 --target all -o outs")
    assert sorted(o["pid"] for o in nb_b.value("outs")) == sorted([pid_a, pid_b])
    nb_b.run(f"%interop invoke {name} x=2 --target skipMine -o o1")
    assert nb_b.value("o1") == {"pid": pid_a, "x": 2}
    app_a = nb_a.value("ji.connect().instance.application")
    nb_b.run(f"%interop invoke {name} x=3 --target {app_a} -o o2")
    assert nb_b.value("o2")["pid"] == pid_a
    peer_a = nb_a.value("ji.connect().peer_id")
    nb_b.run(f'%interop invoke {name} x=4 --target {{"peer_id": "{peer_a}"}} -o o3')
    assert nb_b.value("o3")["pid"] == pid_a

    slow = unique("Calc.Slow")
    nb_a.run(f"%%interop method {slow}\nimport time\ntime.sleep(3)\n1")
    message = nb_b.usage_error(f"%interop invoke {slow} --timeout 0.3")
    assert "timeout" in message.lower()

    failing = unique("Calc.Fail")
    nb_a.run(f"%%interop method {failing}\nraise ValueError(f'bad {{x}}')")
    message = nb_b.usage_error(f"%interop invoke {failing} x=7")
    assert "ValueError" in message and "bad 7" in message


def test_unregister_removes_the_method(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Calc.Gone")
    nb_a.run(f"%%interop method {name}\n1")
    nb_b.run(f"%interop invoke {name} -o one")
    assert nb_b.value("one") == 1
    assert f"Unregistered method '{name}'" in nb_a.run(f"%interop unregister {name}").text
    nb_b.wait_value(f"[m.name for m in ji.connect().methods.methods({name!r})]", [])
    assert "Can not find a method" in nb_b.usage_error(f"%interop invoke {name} --wait 0")


def test_peers_and_streams_listings(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    b_id = nb_b.value("ji.connect().peer_id")  # both kernels connected, whatever ran before
    nb_a.wait_value(
        "(get_ipython().run_line_magic('interop', 'peers -o ps'), "
        f"{b_id!r} in [p.peer_id for p in ps])[1]",
        True,
    )
    assert nb_a.value("ji.connect().peer_id") in nb_a.value("[p.peer_id for p in ps]")
    ex = nb_a.run("%interop peers")
    assert "this notebook" in ex.text
    stream = unique("Ticks.List")
    nb_a.run(f"s = ji.connect().streams.create({stream!r}, description='ticks')")
    nb_b.wait_value(
        f"(get_ipython().run_line_magic('interop', 'streams {stream} -o ss'), "
        f"[m.name for m in ss])[1]",
        [stream],
    )
    assert "1 stream(s)" in nb_b.run(f"%interop streams {stream}").text
    nb_a.run("s.close()")


def test_subscribe_keeps_a_live_list_and_frame(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    stream = unique("Ticks.Live")
    nb_a.run(f"ticks_stream = ji.connect().streams.create({stream!r})")
    ex = nb_b.run(f'%interop subscribe {stream} --to ticks --args {{"symbol": "A"}} --max 3')
    assert "ticks is a live list" in ex.text
    nb_b.run(f"%interop subscribe {stream} --to frame --frame")
    nb_a.wait_value("len(ticks_stream.subscriptions())", 2)
    nb_a.run("for i in range(5): ticks_stream.push({'i': i, 'px': 100 + i})")
    nb_b.wait_value("[t['i'] for t in ticks]", [2, 3, 4])
    nb_b.wait_value("list(frame['px'])", [100, 101, 102, 103, 104])
    nb_b.run("same = ticks")
    assert "Stopped stream" in nb_b.run("%interop unsubscribe ticks").text
    nb_a.wait_value("len(ticks_stream.subscriptions())", 1)
    nb_a.run("ticks_stream.push({'i': 99, 'px': 0})")
    nb_b.wait_value("list(frame['i'])[-1]", 99)
    assert nb_b.value("[t['i'] for t in ticks] == [2, 3, 4] and ticks is same") is True
    nb_b.run("%interop unsubscribe frame")
    nb_a.run("ticks_stream.close()")


def test_context_get_set_update_destroy(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("client")
    assert (
        "Set context" in nb_a.run(f'%interop context set {name} {{"id": 7, "name": "Acme"}}').text
    )
    nb_b.run(f"%interop context get {name} -o c")
    assert nb_b.value("c") == {"id": 7, "name": "Acme"}
    nb_a.run(f"%interop context update {name} name=null tier=gold address.city=Paris")
    nb_b.run(f"%interop context get {name} -o c")
    assert nb_b.value("c") == {"id": 7, "tier": "gold", "address": {"city": "Paris"}}
    nb_a.run(f"%interop context update {name} address.zip='75001'")
    nb_b.run(f"%interop context get {name} -o c")
    assert nb_b.value("c['address']") == {"city": "Paris", "zip": "75001"}
    nb_a.run(f'%interop context update {name} {{"id": 8}}')
    assert nb_b.run(f"%interop context get {name}").text.count('"id": 8') == 1
    nb_a.run(f"%interop context set {name} only=1")
    nb_b.run(f"%interop context get {name} -o c")
    assert nb_b.value("c") == {"only": 1}
    nb_b.run(f"%interop contexts {name} -o names")
    assert nb_b.value("names") == [name]
    assert "Destroyed" in nb_a.run(f"%interop context destroy {name}").text
    nb_b.wait_value(
        f"(get_ipython().run_line_magic('interop', 'context get {name} -o c'), c)[1]", {}
    )


def test_context_create_with_a_lifetime_and_read_only(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("quote")
    created = nb_a.run(f"%interop context create {name} px=1 --lifetime ownership --read-only").text
    assert f"Created context '{name}' (ownership, read-only for others)" in created
    refused = nb_b.usage_error(f"%interop context update {name} px=2")
    assert "is read-only: only its owner" in refused
    assert "is writable again" in nb_a.run(f"%interop context writable {name}").text
    nb_b.run(f"%interop context update {name} px=3")
    nb_a.wait_value(
        f"(get_ipython().run_line_magic('interop', 'context get {name} -o c'), c)[1]", {"px": 3}
    )
    existed = nb_b.run(f"%interop context create {name} px=9 --lifetime ref-counted").text
    assert "existed already" in existed
    assert "Only the owner" in nb_b.usage_error(f"%interop context read-only {name}")


def test_contexts_lists_each_lifetime_and_the_read_only_mark(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    """``%interop contexts`` has a lifetime column, as the hub announces it to every notebook:
    retained, ref-counted, ownership with its owner, and a read-only mark that follows the
    owner's changes."""
    base = unique("life")
    kept, counted, owned = f"{base}.kept", f"{base}.counted", f"{base}.owned"
    nb_a.run(f"%interop context create {kept} a=1")
    nb_a.run(f"%interop context create {counted} a=1 --lifetime ref-counted")
    nb_a.run(f"%interop context create {owned} a=1 --lifetime ownership --read-only")
    pattern = f"{base}.*"
    rows = "{r[0]: r[1] for r in t.rows}"
    for kernel in (nb_a, nb_b):
        kernel.run("from jupyter_interop.notebook._views import contexts_table")
    nb_b.run("io = ji.connect()")
    seen = f"(t := contexts_table(io, {pattern!r}), {rows})[1]"
    owner = nb_a.value("(i := ji.connect().instance).notebook_path or i.application")
    expected = {
        kept: "retained",
        counted: "ref-counted",
        owned: f"ownership (owner: {owner}), read-only",
    }
    nb_b.wait_value(seen, expected)
    assert nb_a.value(f"(t := contexts_table(ji.connect(), {pattern!r}), {rows})[1]")[owned] == (
        "ownership (owner: this notebook), read-only"
    )
    text = nb_b.run(f"%interop contexts {pattern}").text
    assert "lifetime" in text and "ref-counted" in text and "read-only" in text
    nb_a.run(f"%interop context writable {owned}")
    nb_b.wait_value(f"{seen}[{owned!r}]", f"ownership (owner: {owner})")


def test_share_pull_and_watch_dataframes_and_arrays(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("results")
    nb_a.run("import pandas as pd, numpy as np")
    nb_a.run("df = pd.DataFrame({'x': [1, 2, 3], 'y': [0.5, 1.5, 2.5]})")
    ex = nb_a.run(f"%interop share df --as {name}")
    assert f"as '{name}'" in ex.text and "DataFrame 3x2" in ex.text
    ex = nb_b.run(f"%interop pull {name} -o got")
    assert "DataFrame 3x2" in ex.text
    assert nb_b.value("type(got).__name__") == "DataFrame"
    assert nb_b.value("got.to_dict('list')") == {"x": [1, 2, 3], "y": [0.5, 1.5, 2.5]}
    nb_b.run(f"%interop watch {name} -o live")
    assert nb_b.value("live.shape") == [3, 2]
    nb_a.run(f"df = pd.concat([df, df])\n%interop share df --as {name}")
    nb_b.wait_value("live.shape[0]", 6)
    nb_b.run("%interop unsubscribe live")
    nb_a.run(f"df = df.head(1)\n%interop share df --as {name}")
    nb_b.run(f"%interop pull {name}")
    assert nb_b.value(f"{name}.shape[0]") == 1
    assert nb_b.value("live.shape[0]") == 6

    arr = unique("matrix")
    nb_a.run(f"{arr} = np.arange(6, dtype='float32').reshape(2, 3)\n%interop share {arr}")
    nb_b.run(f"%interop pull {arr}")
    assert nb_b.value(f"({arr}.dtype.name, {arr}.shape, {arr}.tolist())") == [
        "float32",
        [2, 3],
        [[0, 1, 2], [3, 4, 5]],
    ]


def test_channel_join_publish_get_leave(nb_a: Kernel, nb_b: Kernel) -> None:
    assert "Joined channel Red" in nb_a.run("%interop channel join Red").text
    nb_b.run("%interop channel join Red")
    ex = nb_a.run("%interop publish symbol=AAPL client.id=7")
    assert "Published symbol, client.id to channel Red" in ex.text
    nb_b.wait_value(
        "(get_ipython().run_line_magic('interop', 'channel get -o d'), d)[1]",
        {"symbol": "AAPL", "client": {"id": 7}},
    )
    nb_a.run('%interop publish {"symbol": "MSFT"}')
    nb_b.wait_value("ji.connect().channels.get('Red').data['symbol']", "MSFT")
    nb_a.run("%interop channels -o chs")
    red = nb_a.value("[c for c in chs if c['name'] == 'Red'][0]")
    assert red["color"] == "red" and len(red["members"]) == 2
    assert "Red (this notebook)" in nb_a.run("%interop channels").text
    nb_a.run("%interop publish --channel Blue note=hi")
    assert nb_b.value("ji.connect().channels.get('Blue').data") == {"note": "hi"}
    assert "Left channel Red" in nb_a.run("%interop channel leave").text
    assert nb_a.value("ji.connect().channels.current") is None
    nb_b.run("%interop channel leave Red")
    ex = nb_a.run("%interop channel")
    assert "application/vnd.jupyter.widget-view+json" in (ex.result or {})


def test_channel_mode_restrict_and_restrictions(nb_a: Kernel, nb_b: Kernel) -> None:
    """``%interop channel mode``, ``restrict`` and ``restrictions``: a notebook in multi mode
    is on two channels; the restrictions it sets are the hub's (read back through the API),
    the hub refuses its publish to a channel it may not write, and an option not given keeps
    the hub's value."""
    assert "Channel mode single" in nb_a.run("%interop channel mode").text
    shown = nb_a.run("%interop channel mode multi").text
    assert "Channel mode multi (on no channel)" in shown
    nb_a.run("%interop channel join Red\n%interop channel join Green")
    assert "Channel mode multi (on Red, Green)" in nb_a.run("%interop channel mode").text
    said = nb_a.run("%interop channel restrict Red --no-write").text
    assert "This notebook may read channel Red" in said
    said = nb_a.run("%interop channel restrict Green --no-read --write").text
    assert "This notebook may write channel Green" in said
    hub_view = "{r['name']: [r['read'], r['write']] for r in held['channels']}"
    nb_a.run("%interop channel restrictions -o held")
    held = nb_a.value(hub_view)
    assert held["Red"] == [True, False] and held["Green"] == [False, True]
    assert held["Blue"] == [True, True]
    table = nb_a.run("%interop channel restrictions").text
    assert "restrictions of this notebook" in table and "Green" in table
    refused = nb_a.usage_error("%interop publish --channel Red x=1")
    assert "restricted from writing it" in refused
    nb_a.run("%interop channel restrict Green --read")  # --write not given: stays allowed
    nb_a.run("held = ji.connect().channels.get_restrictions()")
    assert nb_a.value(hub_view)["Green"] == [True, True]
    nb_a.run("%interop channel restrict Red --read")  # --write not given: stays refused
    nb_a.run("held = ji.connect().channels.get_restrictions()")
    assert nb_a.value(hub_view)["Red"] == [True, False]
    said = nb_a.run("%interop channel restrict '*' --no-read --no-write").text
    assert "This notebook may neither read nor write every channel" in said
    nb_a.run("held = ji.connect().channels.get_restrictions()")
    assert set(map(tuple, nb_a.value(hub_view).values())) == {(False, False)}
    nb_a.run("%interop channel restrict '*' --read --write")
    assert "Left channel Red" in nb_a.run("%interop channel leave Red").text
    assert "Left channel Green" in nb_a.run("%interop channel leave").text
    assert "Channel mode single" in nb_a.run("%interop channel mode single").text


def test_bus_publish_and_subscribe(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    topic = unique("news")
    nb_b.run(f"%interop bus subscribe {topic}.* --to msgs")
    printed = nb_b.run(f"%interop bus subscribe {topic}.alerts.>")
    nb_a.run(f"%interop bus publish {topic}.tech headline='chips are up' n=3")
    nb_a.run(f'%interop bus publish {topic}.alerts.red {{"level": 1}}')
    nb_b.wait_value(
        "[(m['topic'], m['data']) for m in msgs]",
        [[f"{topic}.tech", {"headline": "chips are up", "n": 3}]],
    )
    nb_b.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "stream"
            and m["parent_header"].get("msg_id") == printed.msg_id
            and f"[{topic}.alerts.red] {{'level': 1}}" in m["content"]["text"]
            for m in msgs
        )
    )
    assert "Unsubscribed" in nb_b.run(f"%interop bus unsubscribe {topic}.alerts.>").text
    assert "Stopped bus" in nb_b.run("%interop unsubscribe msgs").text


def test_viewer_magic_returns_a_widget(nb_a: Kernel) -> None:
    ex = nb_a.run("%interop viewer")
    assert "application/vnd.jupyter.widget-view+json" in (ex.result or {})


ERRORS: list[tuple[str, str]] = [
    # the line itself
    ('%interop invoke X a="open', 'unterminated " quote'),
    ('%interop invoke X {"a": 1', "unbalanced '{'"),
    ("%interop invoke X a=$nope_missing", "$nope_missing: no variable 'nope_missing'"),
    ("%interop invoke X a=$ji.nope", "has no attribute 'nope'"),
    ("%interop invoke X a={1/0}", "{1/0}: ZeroDivisionError"),
    ("%interop invoke X a=[1,", "unbalanced '['"),
    ('%interop invoke X {"a": $}', "'$' at column 7 of the JSON is not followed by a name"),
    ('%interop invoke X {"a": 1,}', "invalid JSON"),
    ("%interop invoke X a", "expected key=value, got 'a'"),
    ("%interop invoke X a=1 a.b=2", "'a' is already set to a non-object value"),
    ('%interop invoke X {"a": 1} b=2', "unexpected text after the JSON"),
    ("%interop invoke X [1, 2]", "ARGS must be a JSON object, got list"),
    ("%interop invoke X 'a=1' \"b", "unterminated"),
    ('%interop invoke X a="x', "unterminated"),
    # sub-commands and argparse
    ("%interop bogus", "unknown sub-command 'bogus'"),
    ("%%interop\n1", "%%interop needs a sub-command"),
    ("%%interop status\n1", "%%interop status takes no cell body"),
    ("%interop invoke", "the following arguments are required: name"),
    ("%interop invoke X --timeout soon", "invalid float value: 'soon'"),
    ("%interop context frob X", "invalid choice: 'frob'"),
    ("%interop status --frob", "unrecognized arguments: --frob"),
    ("%interop status -o 1bad", "-o 1bad: not a valid variable name"),
    # invoke
    ("%interop invoke X --timeout 0", "--timeout must be a positive number of seconds"),
    ("%interop invoke X --wait -1", "--wait must be a number of seconds >= 0"),
    ("%interop invoke No.Such.Method --wait 0", "Can not find a method matching 'No.Such.Method'"),
    # method
    ("%interop method X", "needs a cell body"),
    ("%%interop method X\n   \n", "the cell body is empty"),
    ("%%interop method X\ndef (:", "%%interop method X: invalid syntax"),
    ("%interop unregister Never.Registered", "No method 'Never.Registered' is registered"),
    # subscribe / unsubscribe
    ("%interop subscribe S --to 1x", "--to 1x: not a valid variable name"),
    ("%interop subscribe S --to t --max 0", "--max must be a positive number of items"),
    ("%interop subscribe S --to t --args [1]", "--args must be a JSON object"),
    ("%interop subscribe S", "the following arguments are required: --to"),
    ("%interop subscribe No.Such.Stream --to t", "No.Such.Stream"),
    ("%interop unsubscribe nothing_here", "nothing named 'nothing_here' is subscribed here"),
    # contexts
    ("%interop context get C x=1", "context get takes no values"),
    ("%interop context destroy C x=1", "context destroy takes no values"),
    ("%interop context set C", "context set needs values"),
    ("%interop context destroy Never.Created.Ctx", "No context named 'Never.Created.Ctx'"),
    ("%interop context update C [1]", "VALUES must be a JSON object, got list"),
    # sharing
    ("%interop share not_defined_var", "share: no variable 'not_defined_var'"),
    ("%interop share ji --as 'a b'", "share --as 'a b': use a name without spaces"),
    ("%interop pull never_shared_name", "nothing is shared as 'never_shared_name'"),
    ("%interop pull never_shared_name -o 9x", "-o 9x: not a valid variable name"),
    ("%interop watch never_shared_name -o 9x", "-o 9x: not a valid variable name"),
    # channels
    ("%interop channel show Red", "did you mean '%interop channel join NAME'?"),
    ("%interop channel join", "channel join needs a channel name"),
    ("%interop channel join Mauve", "Unknown channel 'Mauve'"),
    ("%interop channel leave Green", "not on channel 'Green'"),
    ("%interop channel mode double", "'single' or 'multi', not 'double'"),
    ("%interop channel restrict", "channel restrict needs a channel name"),
    ("%interop channel restrict Red", "needs --read/--no-read or --write/--no-write"),
    ("%interop channel join Red --no-read", "--read and --write are for channel restrict"),
    ("%interop publish a=1", "not on a channel"),
    ("%interop publish a=1 --channel Mauve", "Unknown channel 'Mauve'"),
    # bus
    ("%interop bus publish t x=1 --to v", "--to is for bus subscribe"),
    ("%interop bus publish t", "bus publish needs data"),
    ("%interop bus subscribe t x=1", "bus subscribe takes no data"),
    ("%interop bus unsubscribe never.subscribed", "no bus subscription 'never.subscribed'"),
    ("%interop bus subscribe t --to 1v", "--to 1v: not a valid variable name"),
]


@pytest.mark.parametrize(("code", "message"), ERRORS, ids=[c for c, _ in ERRORS])
def test_usage_errors(nb_a: Kernel, code: str, message: str) -> None:
    assert message in nb_a.usage_error(code)


def test_subscribe_frame_without_pandas_is_a_usage_error(nb_a: Kernel) -> None:
    nb_a.run("import sys\n_saved_pd = sys.modules.get('pandas')\nsys.modules['pandas'] = None")
    try:
        assert "--frame needs pandas" in nb_a.usage_error("%interop subscribe S --to t --frame")
    finally:
        nb_a.run("sys.modules['pandas'] = _saved_pd")


def test_no_hub_is_a_usage_error(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {k: v for k, v in hub.env.items()}
    env["JUPYTER_INTEROP_URL"] = "ws://127.0.0.1:9/interop/gateway"
    env["JUPYTER_INTEROP_TOKEN"] = "nope"
    kernel = Kernel(env, tmp_path_factory.mktemp("nohub"))
    try:
        kernel.run("%load_ext jupyter_interop")
        assert "cannot connect to the interop hub" in kernel.usage_error("%interop status", 60)
    finally:
        kernel.close()


@pytest.mark.parametrize(
    "config",
    [
        "c.InteractiveShellApp.extensions = ['jupyter_interop']",
        "c.MagicsManager.lazy_magics = {'interop': 'jupyter_interop'}",
    ],
)
def test_auto_loading_through_ipython_config(
    hub: Hub, tmp_path_factory: pytest.TempPathFactory, config: str
) -> None:
    base = tmp_path_factory.mktemp("autoload")
    profile = base / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(config + "\n")
    env = {**hub.kernel_env(), "IPYTHONDIR": str(base / "ipython")}
    kernel = Kernel(env, base)
    try:
        assert kernel.run("%interop --help").stdout.startswith("%interop SUB-COMMAND")
    finally:
        kernel.close()
