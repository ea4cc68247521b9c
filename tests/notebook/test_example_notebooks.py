"""Every example notebook in ``notebooks/``, executed top to bottom by nbclient against a real
Jupyter server with the interop extension; the notebooks of a pair run concurrently.

The first notebook of a pair (the one that offers something) keeps its kernel alive until its
partner has finished, as it would stay open in JupyterLab. nbclient starts kernels itself, so
they reach the server's hub through the URL and token of its runtime file.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labkit import LabServer, output_text, start_lab
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: the examples this project ships; a user's own notebooks in the folder are not tested
EXAMPLES = (
    "01-pricing-service.ipynb",
    "01-pricing-client.ipynb",
    "02-channels-client-list.ipynb",
    "02-channels-client-details.ipynb",
    "03-share-analysis.ipynb",
    "03-share-dashboard.ipynb",
    "04-node-app.ipynb",
    "05-intents-chart.ipynb",
    "05-intents-raiser.ipynb",
    "06-node-intents.ipynb",
    "07-fdc3.ipynb",
)
TIMEOUT = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with start_lab(tmp_path_factory.mktemp("examples")) as running:
        yield running


#: called with the client and a cell's index before that cell runs (to act as a user would)
BeforeCell = Callable[[NotebookClient, int], None]


def _execute(
    path: Path,
    env: dict[str, str],
    keep_alive: threading.Event | None = None,
    *,
    before_cell: BeforeCell | None = None,
    then: Sequence[str] = (),
) -> Any:
    """Run every cell of ``path``; with ``keep_alive``, hold the kernel until it is set, then
    run the extra cells ``then`` (appended to the returned notebook, not to the file).

    The kernel gets ``JPY_SESSION_NAME`` as Jupyter sets it, so its peer is named after the
    notebook."""
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    with client.setup_kernel(env={**env, "JPY_SESSION_NAME": str(path)}, cwd=str(NOTEBOOKS)):
        for index, cell in enumerate(nb.cells):
            if before_cell is not None:
                before_cell(client, index)
            client.execute_cell(cell, index)
        if keep_alive is not None:
            keep_alive.wait(TIMEOUT)
        for source in then:
            nb.cells.append(nbformat.v4.new_code_cell(source))
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return nb


def run_pair(
    first: str,
    second: str,
    env: dict[str, str],
    *,
    before_cell: BeforeCell | None = None,
    first_then: Sequence[str] = (),
) -> tuple[Any, Any]:
    """Run two notebooks at the same time; ``first`` stays up until ``second`` is done, then
    runs the cells ``first_then``; ``before_cell`` acts on ``second`` as it runs."""
    done = threading.Event()
    results: dict[str, Any] = {}

    def target(name: str, keep: threading.Event | None, **options: Any) -> None:
        try:
            results[name] = _execute(NOTEBOOKS / name, env, keep, **options)
        except BaseException as exc:  # reported below, with the notebook's name
            results[name] = exc
            done.set()

    t1 = threading.Thread(target=target, args=(first, done), kwargs={"then": first_then})
    t1.start()
    try:
        target(second, None, before_cell=before_cell)
    finally:
        done.set()
        t1.join(TIMEOUT)
    for name in (first, second):
        if isinstance(results.get(name), BaseException):
            raise AssertionError(f"{name} failed: {results[name]}") from results[name]
    return results[first], results[second]


def cell_text(nb: Any, marker: str) -> str:
    """Text output of the first code cell whose source contains ``marker``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and marker in cell.source:
            return output_text(cell.outputs)
    raise AssertionError(f"no cell with {marker!r}")


def test_every_example_starts_with_an_explanation() -> None:
    for name in EXAMPLES:
        nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# "), name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
            f"{name} is committed with outputs"
        )


def test_pricing_service_and_client(server: LabServer) -> None:
    service, client = run_pair(
        "01-pricing-service.ipynb", "01-pricing-client.ipynb", server.interop_env()
    )
    assert "Registered method 'Pricing.Quote'" in cell_text(service, "%%interop method")
    total = float(cell_text(client, 'quote["total"]'))
    assert 100 * 150 < total < 100 * 250
    assert "'symbol': 'NVDA'" in cell_text(client, '"NVDA", "qty": 3')
    assert "refused: KeyError" in cell_text(client, "except ji.InvocationError")
    assert "'symbol': 'AAPL'" in cell_text(client, "ticks[-3:]")
    assert "MSFT" in cell_text(client, "msft.tail()")
    assert "rejected:" in cell_text(client, "except ji.SubscriptionError")


def test_channels_list_and_details(server: LabServer) -> None:
    listing, details = run_pair(
        "02-channels-client-list.ipynb", "02-channels-client-details.ipynb", server.interop_env()
    )
    assert cell_text(details, "print(client_id.value").strip() == "2 Globex"
    assert '"client_id": 2' in cell_text(details, "%interop channel get")
    assert "Red (this notebook)" in cell_text(listing, "%interop channels")


def test_share_analysis_and_dashboard(server: LabServer) -> None:
    analysis, dashboard = run_pair(
        "03-share-analysis.ipynb", "03-share-dashboard.ipynb", server.interop_env()
    )
    assert "as 'sales_summary'" in cell_text(analysis, "%interop share summary --as")
    assert "jupyter.share.sales_summary" in cell_text(analysis, "%interop contexts")
    summary = cell_text(dashboard, 'sales_summary["orders"].sum()')
    assert "EMEA" in summary and "APAC" in summary
    assert "(dtype('float32'), (3, 3))" in cell_text(dashboard, "weights.dtype")


def click_resolver_button(label: str, before: str) -> BeforeCell:
    """Click the resolver widget's button whose label holds ``label`` (as JupyterLab
    sends a click: a custom ``click`` event on the button's comm) before the first cell whose
    source contains ``before`` runs."""

    def act(client: NotebookClient, index: int) -> None:
        if before not in client.nb.cells[index].source:
            return
        buttons = [
            model_id
            for model_id, state in client.widget_state.items()
            if "ji-intent-handler" in state.get("_dom_classes", ())
            and label in str(state.get("description", ""))
        ]
        assert len(buttons) == 1, f"resolver buttons labelled {label!r}: {buttons}"
        content = {
            "comm_id": buttons[0],
            "data": {"method": "custom", "content": {"event": "click"}},
        }
        client.kc.shell_channel.send(client.kc.session.msg("comm_msg", content))

    return act


def test_intents_chart_and_raiser(server: LabServer) -> None:
    chart, raiser = run_pair(
        "05-intents-chart.ipynb",
        "05-intents-raiser.ipynb",
        server.interop_env(),
        before_cell=click_resolver_button("05-intents-chart", '"picked" in globals()'),
        first_then=["print(chart.title)"],
    )
    declared = chart.metadata["interop"]["intents"]
    assert declared == [
        {"name": "ViewChart", "contextTypes": ["fdc3.instrument"], "displayName": "Chart"}
    ]
    handling = cell_text(chart, "%%interop intent ViewChart")
    assert "Handling intent 'ViewChart' for fdc3.instrument" in handling
    listing = cell_text(raiser, "%interop intents")
    assert "ViewChart" in listing and "05-intents-chart" in listing
    assert "fdc3.instrument" in listing
    raised = cell_text(raiser, "id.ticker=AAPL -o answer")
    assert '"ticker": "AAPL"' in raised and "executed by 05-intents-chart" in raised
    assert float(cell_text(raiser, 'answer["last"]')) > 0
    assert "answered: {'type': 'fdc3.chart', 'ticker': 'MSFT'" in cell_text(raiser, "araise_intent")
    # two handlers fit: the raise returned the resolver widget, the click chose the chart
    handlers = cell_text(raiser, "%interop intents ViewChart")
    assert "05-intents-chart" in handlers and "05-intents-raiser" in handlers
    resolver = next(c for c in raiser.cells if "id.ticker=NVDA" in c.source)
    views = [o for o in resolver.outputs if "application/vnd.jupyter.widget-view+json" in o.data]
    assert views, resolver.outputs
    assert "'type': 'fdc3.chart', 'ticker': 'NVDA'" in cell_text(raiser, '"picked" in globals()')
    assert "Stopped handling" in cell_text(raiser, "%interop intent unsubscribe")
    # the chart notebook drew the last instrument it was asked for
    assert cell_text(chart, "print(chart.title)").strip() == "NVDA: last 60 closes"


def test_intents_raiser_starts_the_chart_notebook_on_demand(server: LabServer) -> None:
    """No chart notebook runs, but the server's root holds it: the raiser's first raise starts
    it headless from the app directory (its metadata declares ViewChart), and the resolver then
    offers the started notebook and the raiser's own handler (docs/INTENTS.md)."""
    chart = server.root_dir / "05-intents-chart.ipynb"
    shutil.copy(NOTEBOOKS / chart.name, chart)
    try:
        raiser = _execute(
            NOTEBOOKS / "05-intents-raiser.ipynb",
            server.interop_env(),
            before_cell=click_resolver_button("05-intents-chart", '"picked" in globals()'),
        )
        entry = next(a for a in server.api("interop/api/apps")["apps"] if a["path"] == chart.name)
        assert entry["error"] is None and [r["state"] for r in entry["running"]] == ["running"]
        listed = cell_text(raiser, "%interop intents")  # before the first raise
        assert "05-intents-chart.ipynb (starts on demand)" in listed
        raised = cell_text(raiser, "id.ticker=AAPL -o answer")
        assert '"ticker": "AAPL"' in raised and "executed by 05-intents-chart" in raised
        picked = cell_text(raiser, '"picked" in globals()')
        assert "'type': 'fdc3.chart', 'ticker': 'NVDA'" in picked
    finally:
        for app in server.api("interop/api/apps")["apps"]:
            for run in app["running"]:
                server.api(f"interop/api/apps/running/{run['kernel_id']}", method="DELETE")
        chart.unlink()


@pytest.mark.node
def test_node_app_with_interopio_core(server: LabServer) -> None:
    assert shutil.which("node"), "Node.js is required (scripts/setup.sh installs it)"
    nb = _execute(NOTEBOOKS / "04-node-app.ipynb", server.interop_env())
    assert "order desk ready" in cell_text(nb, "subprocess.Popen")
    assert "node-order-desk" in cell_text(nb, "%interop peers node-*")
    assert '"from": "node"' in cell_text(nb, "Node.OrderDesk.Quote")
    value = cell_text(nb, "Node.OrderDesk.PortfolioValue")
    assert '"symbol": "MSFT"' in value and '"total":' in value
    acks = cell_text(nb, "orders.ack --to acks")
    assert "('AAPL', True, '')" in acks
    assert "('NVDA', False, 'above the 500 shares limit')" in acks


@pytest.mark.node
def test_node_intents_with_interopio_core(server: LabServer) -> None:
    assert shutil.which("node"), "Node.js is required (scripts/setup.sh installs it)"
    nb = _execute(NOTEBOOKS / "06-node-intents.ipynb", server.interop_env())
    started = cell_text(nb, "chart-app.js")
    assert "chart app ready" in started
    assert "node-chart-app" in started and "fdc3.instrument" in started  # the listing
    raised = cell_text(nb, "--target node-chart-app")
    assert '"from": "node"' in raised and '"ticker": "AAPL"' in raised
    assert "executed by node-chart-app" in raised
    # the Node raiser sees both handlers with the display name each declared, and reaches the
    # notebook's Python handler
    node_side = cell_text(nb, "raise-intent.js")
    assert "handler of ViewChart: Node chart in node-chart-app" in node_side
    assert "handler of ViewChart: Notebook in 06-node-intents" in node_side
    assert 'result from 06-node-intents: {"type":"fdc3.chart","ticker":"MSFT","from":"python"}' in (
        node_side
    )
    assert "Stopped handling intent 'ViewChart'" in cell_text(nb, "chart_app.terminate()")


def test_fdc3_notebook(server: LabServer) -> None:
    nb = _execute(NOTEBOOKS / "07-fdc3.ipynb", server.interop_env())
    channels = cell_text(nb, "get_user_channels()")
    assert "('fdc3.channel.1', 'Channel 1', 'red')" in channels
    assert "AAPL from desk-app" in cell_text(nb, "heard.append")
    assert "inst is the latest fdc3.instrument context" in cell_text(nb, "--to inst")
    assert "'ticker': 'MSFT'" in cell_text(nb, '!= "MSFT"')
    assert "'email': 'alice@example.com'" in cell_text(nb, "desk_heard = []")
    assert cell_text(nb, "print(ticker.value)").strip() == "MSFT"
    wire = cell_text(nb, "___channel___Red")
    assert "'fdc3&contact'" in wire and "'fdc3_fdc3&instrument'" in wire
    assert "'bid': 189.5" in cell_text(nb, "desk.prices")
    assert "('desk-app', {'type': 'desk.quote'" in cell_text(nb, "ViewQuote")
    errors = cell_text(nb, "fdc3.channel.42")
    assert "NoChannelFound - No user channel 'fdc3.channel.42'" in errors and "'2.2'" in errors
