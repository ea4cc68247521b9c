"""The hub inside a real Jupyter server (pytest-jupyter): auth, discovery, views, lifecycle.

pytest-jupyter's fixtures are brought into this module only (not as a session-wide plugin: its
autouse fixtures would create a ServerApp and own the event loop for every test of the suite).
Tests are coroutines run on pytest-jupyter's loop by :func:`on_server_loop`. Tests that connect
without ``jp_ws_fetch``/``jp_fetch`` ask for ``http_server_client``: that fixture is what makes
the server listen on ``jp_http_port``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_jupyter.jupyter_server as _pytest_jupyter
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect
from traitlets.config import Config

from jupyter_interop.hub.store import ContextStore
from jupyter_interop.server.extension import InteropExtension
from jupyter_interop.server.runtime import runtime_file_path

# pytest-jupyter's fixtures (and the ones they depend on), for this module only
globals().update(
    {
        name: value
        for name, value in vars(_pytest_jupyter).items()
        # a pytest fixture definition (pytest >= 8.4, and older)
        if hasattr(value, "_fixture_function_marker") or hasattr(value, "_pytestfixturefunction")
    }
)


def on_server_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run a coroutine test on ``jp_asyncio_loop``, where the server under test lives.

    pytest-asyncio (strict mode) would run it on a loop of its own, where the server's
    sockets are never served.
    """
    signature = inspect.signature(test)
    own_loop = "jp_asyncio_loop" in signature.parameters
    parameters = list(signature.parameters.values())
    if not own_loop:
        parameters.append(inspect.Parameter("jp_asyncio_loop", inspect.Parameter.KEYWORD_ONLY))

    def run(**kwargs: Any) -> None:
        loop = kwargs["jp_asyncio_loop"] if own_loop else kwargs.pop("jp_asyncio_loop")
        loop.run_until_complete(asyncio.wait_for(test(**kwargs), 120))

    run.__name__ = test.__name__
    run.__qualname__ = test.__qualname__
    run.__doc__ = test.__doc__
    run.__module__ = test.__module__
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return run


NO_AUTH = {"Authorization": ""}  # jp_fetch / jp_ws_fetch add the Jupyter token otherwise


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> Config:
    """The extension enabled, with a small frame limit; tests may add config through
    ``@pytest.mark.parametrize("jp_server_config", [{...}], indirect=True)``."""
    config = Config(
        {
            "ServerApp": {"jpserver_extensions": {"jupyter_interop": True}},
            "InteropExtension": {"max_message_size": 65536},
        }
    )
    config.merge(Config(getattr(request, "param", {})))
    return config


def extension(serverapp: Any) -> InteropExtension:
    app = serverapp.extension_manager.extension_points["jupyter_interop"].app
    assert isinstance(app, InteropExtension)
    return app


def gateway_url(port: int, base_url: str, query: str = "") -> str:
    return f"ws://localhost:{port}{base_url}interop/gateway" + (f"?{query}" if query else "")


async def open_ws(url: str, headers: dict[str, str] | None = None) -> WebSocketClientConnection:
    return await websocket_connect(HTTPRequest(url, headers=headers or {}))


async def recv(ws: WebSocketClientConnection, timeout: float = 10) -> dict[str, Any] | None:
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    return None if raw is None else json.loads(raw)


async def recv_until(ws: WebSocketClientConnection, mtype: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = await recv(ws)
        assert message is not None, f"closed ({ws.close_code}) while waiting for {mtype}"
        if message.get("type") == mtype:
            return message
    raise AssertionError(f"no {mtype}")


async def closed(ws: WebSocketClientConnection) -> int | None:
    while await recv(ws) is not None:
        pass
    return ws.close_code


def hello(token: str | None = None, **extra: Any) -> str:
    message: dict[str, Any] = {
        "domain": "global",
        "type": "hello",
        "request_id": "h1",
        "identity": {"application": "test"},
        **extra,
    }
    if token is not None:
        message["authentication"] = {"method": "access-token", "token": token}
    return json.dumps(message)


# ---------------------------------------------------------------- discovery


@on_server_loop
async def test_extension_is_found_and_loaded(jp_serverapp: Any) -> None:
    assert extension(jp_serverapp).name == "jupyter_interop"
    assert jp_serverapp.extension_manager.extensions["jupyter_interop"].enabled


@on_server_loop
async def test_env_and_runtime_file_at_load(
    jp_serverapp: Any, jp_runtime_dir: Path, jp_http_port: int, jp_base_url: str
) -> None:
    ext = extension(jp_serverapp)
    url = os.environ["JUPYTER_INTEROP_URL"]
    assert url == gateway_url(jp_http_port, jp_base_url)
    assert os.environ["JUPYTER_INTEROP_TOKEN"] == ext.token
    assert len(ext.token) >= 32
    path = jp_runtime_dir / f"jupyter_interop-{os.getpid()}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = json.loads(path.read_text())
    assert info["url"] == url
    assert info["token"] == ext.token
    assert info["pid"] == os.getpid()
    assert info["kind"] == "server"


@on_server_loop
async def test_start_hook_fixes_url_and_stop_cleans_up(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_runtime_dir: Path,
    jp_http_port: int,
    jp_base_url: str,
) -> None:
    ext = extension(jp_serverapp)
    await jp_serverapp.extension_manager.start_all_extensions()
    assert os.environ["JUPYTER_INTEROP_URL"] == gateway_url(jp_http_port, jp_base_url)
    path = jp_runtime_dir / f"jupyter_interop-{os.getpid()}.json"
    assert path.exists()

    ws = await open_ws(gateway_url(jp_http_port, jp_base_url))
    ws.write_message(hello(ext.token))
    await recv_until(ws, "welcome")

    await ext.stop_extension()
    assert await closed(ws) == 1001
    assert not path.exists()
    assert "JUPYTER_INTEROP_URL" not in os.environ
    assert "JUPYTER_INTEROP_TOKEN" not in os.environ
    await ext.stop_extension()  # idempotent


@on_server_loop
async def test_stop_without_load_leaves_another_servers_state_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension that never loaded owns nothing: stopping it must not unset the variables
    or remove the runtime file that another server of this process published."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_INTEROP_URL", "ws://127.0.0.1:1/interop/gateway")
    monkeypatch.setenv("JUPYTER_INTEROP_TOKEN", "theirs")
    theirs = runtime_file_path()
    assert theirs.parent == tmp_path
    theirs.write_text('{"kind": "server"}')
    ext = InteropExtension()
    await ext.stop_extension()
    await ext.stop_extension()
    assert os.environ["JUPYTER_INTEROP_URL"] == "ws://127.0.0.1:1/interop/gateway"
    assert os.environ["JUPYTER_INTEROP_TOKEN"] == "theirs"
    assert theirs.read_text() == '{"kind": "server"}'


@pytest.mark.parametrize(
    "jp_server_config",
    [{"InteropExtension": {"token": "configured"}, "InteropHub": {"user": "alice"}}],
    indirect=True,
)
@on_server_loop
async def test_config_reaches_extension_and_hub(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    ext = extension(jp_serverapp)
    assert ext.token == "configured" == ext.hub.token
    assert os.environ["JUPYTER_INTEROP_TOKEN"] == "configured"
    assert ext.service.max_message_size == 65536
    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(hello())
    assert (await recv_until(ws, "welcome"))["resolved_identity"]["user"] == "alice"
    ws.close()


@on_server_loop
async def test_retained_contexts_are_persisted_by_default(
    jp_serverapp: Any, jp_ws_fetch: Any, jp_data_dir: Path
) -> None:
    ext = extension(jp_serverapp)
    path = jp_data_dir / "interop" / "contexts.sqlite"
    assert ext.store is not None and Path(ext.store.path) == path
    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(hello())
    await recv_until(ws, "welcome")
    ws.write_message(
        json.dumps(
            {
                "type": "create-context",
                "request_id": "c",
                "name": "results",
                "data": {"rows": 3},
                "lifetime": "retained",
            }
        )
    )
    await recv_until(ws, "context-created")
    await ext.stop_extension()  # flushes and closes the store
    reopened = ContextStore(path)
    try:
        assert reopened.load()["results"].data == {"rows": 3}
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "jp_server_config", [{"InteropExtension": {"persist_contexts": False}}], indirect=True
)
@on_server_loop
async def test_persistence_can_be_switched_off(jp_serverapp: Any, jp_data_dir: Path) -> None:
    ext = extension(jp_serverapp)
    assert ext.store is None and ext.hub.store is None
    assert not (jp_data_dir / "interop" / "contexts.sqlite").exists()


# ---------------------------------------------------------------- gateway auth


@on_server_loop
async def test_jupyter_token_header_is_trusted(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(hello())  # no interop token: the upgrade was authenticated
    welcome = await recv(ws)
    assert welcome is not None and welcome["type"] == "welcome"
    ws.close()


@on_server_loop
async def test_jupyter_token_in_url_is_trusted(
    jp_serverapp: Any, http_server_client: Any, jp_http_port: int, jp_base_url: str
) -> None:
    token = jp_serverapp.identity_provider.token
    ws = await open_ws(gateway_url(jp_http_port, jp_base_url, f"token={token}"))
    ws.write_message(hello())
    welcome = await recv(ws)
    assert welcome is not None and welcome["type"] == "welcome"
    ws.close()


@on_server_loop
async def test_no_credentials_needs_the_interop_token(
    jp_serverapp: Any, http_server_client: Any, jp_http_port: int, jp_base_url: str
) -> None:
    url = gateway_url(jp_http_port, jp_base_url)
    ws = await open_ws(url)  # the upgrade is allowed, but untrusted
    ws.write_message(hello())
    error = await recv(ws)
    assert error is not None
    assert error["type"] == "error"
    assert error["reason_uri"] == "global.errors.authentication.failure"
    assert await closed(ws) == 1008

    ws = await open_ws(url)
    ws.write_message(hello("wrong"))
    assert (await recv(ws) or {}).get("reason_uri") == "global.errors.authentication.failure"
    assert await closed(ws) == 1008

    ws = await open_ws(url)
    ws.write_message(hello(extension(jp_serverapp).token))
    assert (await recv(ws) or {}).get("type") == "welcome"
    ws.close()


@on_server_loop
async def test_wrong_jupyter_token_is_untrusted_not_refused(
    jp_serverapp: Any, http_server_client: Any, jp_http_port: int, jp_base_url: str
) -> None:
    ws = await open_ws(gateway_url(jp_http_port, jp_base_url, "token=wrong"))
    ws.write_message(hello())
    assert (await recv(ws) or {}).get("reason_uri") == "global.errors.authentication.failure"
    assert await closed(ws) == 1008


async def _login_cookie(jp_fetch: Any, token: str) -> str:
    response = await jp_fetch("api", "status", headers=NO_AUTH, params={"token": token})
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    login = [c for c in cookies if c.startswith("username-")]
    assert login, cookies
    return login[0]


@on_server_loop
async def test_cookie_with_foreign_origin_is_refused(
    jp_serverapp: Any, jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    cookie = await _login_cookie(jp_fetch, jp_serverapp.identity_provider.token)
    # jp_fetch talks to 127.0.0.1, and Jupyter's cookie name includes the host
    url = gateway_url(jp_http_port, jp_base_url).replace("localhost", "127.0.0.1")
    with pytest.raises(HTTPClientError) as info:
        await open_ws(url, {"Cookie": cookie, "Origin": "http://evil.example"})
    assert info.value.code == 403
    # the same cookie from the server's own origin is a trusted upgrade
    ws = await open_ws(url, {"Cookie": cookie, "Origin": f"http://127.0.0.1:{jp_http_port}"})
    ws.write_message(hello())
    assert (await recv(ws) or {}).get("type") == "welcome"
    ws.close()


@on_server_loop
async def test_foreign_origin_without_credentials_must_use_the_interop_token(
    jp_serverapp: Any, http_server_client: Any, jp_http_port: int, jp_base_url: str
) -> None:
    url = gateway_url(jp_http_port, jp_base_url)
    ws = await open_ws(url, {"Origin": "http://app.example"})
    ws.write_message(hello())
    assert (await recv(ws) or {}).get("type") == "error"
    assert await closed(ws) == 1008
    ws = await open_ws(url, {"Origin": "http://app.example"})
    ws.write_message(hello(extension(jp_serverapp).token))
    assert (await recv(ws) or {}).get("type") == "welcome"
    ws.close()


# ---------------------------------------------------------------- REST views


VIEWS = ("peers", "methods", "streams", "contexts", "channels", "status")


@pytest.mark.parametrize("view", VIEWS)
@on_server_loop
async def test_views_require_jupyter_auth(jp_fetch: Any, view: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("interop", "api", view, headers=NO_AUTH)
    assert info.value.code == 403
    response = await jp_fetch("interop", "api", view)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert isinstance(body, dict if view == "status" else list)


@on_server_loop
async def test_dashboard_page_requires_jupyter_auth(jp_fetch: Any, jp_base_url: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("interop", "", headers=NO_AUTH, follow_redirects=False)
    assert info.value.code in (302, 403)
    response = await jp_fetch("interop", "")
    assert response.code == 200
    page = response.body.decode()
    assert "<title>Interop hub</title>" in page
    assert f"const BASE = {json.dumps(jp_base_url)};" in page


@on_server_loop
async def test_status_and_peers_views(
    jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(hello(application="viewer"))
    welcome = await recv_until(ws, "welcome")
    status = json.loads((await jp_fetch("interop", "api", "status")).body)
    assert status["kind"] == "server"
    assert status["url"] == gateway_url(jp_http_port, jp_base_url)
    assert status["connections"] == 1 and status["peers"] == 1
    peers = json.loads((await jp_fetch("interop", "api", "peers")).body)
    assert [p["peer_id"] for p in peers] == [welcome["peer_id"]]
    channels = json.loads((await jp_fetch("interop", "api", "channels")).body)
    assert len(channels) == 10
    ws.close()


# ---------------------------------------------------------------- kernel identity


@on_server_loop
async def test_kernel_id_is_resolved_to_the_notebook(
    jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Path
) -> None:
    (jp_root_dir / "work").mkdir()
    response = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {"path": "work/analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
        ),
    )
    kernel_id = json.loads(response.body)["kernel"]["id"]

    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(
        json.dumps(
            {
                "type": "hello",
                "request_id": "h",
                "identity": {"application": "whatever the client says"},
                "extensions": {"jupyter_interop": {"kernel_id": kernel_id}},
            }
        )
    )
    identity = (await recv_until(ws, "welcome"))["resolved_identity"]
    assert identity["kernelId"] == kernel_id
    assert identity["notebookPath"] == "work/analysis.ipynb"
    assert identity["application"] == "analysis"
    ws.close()

    # the io.Connect identity field works too
    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(
        json.dumps(
            {
                "type": "hello",
                "request_id": "h",
                "identity": {"application": "x", "kernelId": kernel_id},
            }
        )
    )
    identity = (await recv_until(ws, "welcome"))["resolved_identity"]
    assert identity["notebookPath"] == "work/analysis.ipynb"
    ws.close()


@pytest.mark.parametrize(
    "claim",
    [
        {"extensions": {"jupyter_interop": {"kernel_id": "not-a-kernel"}}},
        {"identity": {"application": "app", "kernelId": "not-a-kernel", "notebookPath": "x"}},
    ],
)
@on_server_loop
async def test_unknown_kernel_id_is_not_trusted(
    jp_serverapp: Any, jp_ws_fetch: Any, claim: dict[str, Any]
) -> None:
    ws = await jp_ws_fetch("interop", "gateway")
    message = {"type": "hello", "request_id": "h", "identity": {"application": "app"}, **claim}
    ws.write_message(json.dumps(message))
    identity = (await recv_until(ws, "welcome"))["resolved_identity"]
    assert identity["application"] == "app"
    assert "notebookPath" not in identity
    assert "kernelId" not in identity
    ws.close()


# ---------------------------------------------------------------- malformed input


@on_server_loop
async def test_oversize_frame_closes_1009(
    jp_serverapp: Any, jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    big = await jp_ws_fetch("interop", "gateway")
    big.write_message(hello())
    await recv_until(big, "welcome")
    other = await jp_ws_fetch("interop", "gateway")
    other.write_message(hello())
    await recv_until(other, "welcome")
    big.write_message(json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert await closed(big) == 1009
    other.write_message(json.dumps({"type": "create-token", "request_id": "t"}))
    assert (await recv_until(other, "token"))["request_id"] == "t"
    other.close()


@on_server_loop
async def test_invalid_json_is_a_gw3_error(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("interop", "gateway")
    ws.write_message(hello())
    await recv_until(ws, "welcome")
    ws.write_message("{oops")
    error = await recv_until(ws, "error")
    assert error["reason_uri"] == "global.errors.invalid_message"
    ws.write_message(b"\x01\x02", binary=True)
    error = await recv_until(ws, "error")
    assert "Binary" in error["reason"]
    ws.write_message(json.dumps({"type": "create-token", "request_id": "t"}))
    assert (await recv_until(ws, "token"))["request_id"] == "t"
    ws.close()
