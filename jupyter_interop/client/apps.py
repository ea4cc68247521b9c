"""``io.apps``: the notebooks a Jupyter server starts on demand (docs/INTENTS.md).

The server's app directory is a peer of its hub offering three methods (names in
``protocol/wire.py``): this module invokes them like any other method, so whatever a Python
client can ask, a JS app can ask too. Without a Jupyter server (a standalone hub) there is no
such peer: :meth:`Apps.alist` returns nothing and a start raises :class:`NoAppsFound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol.intents import RESULT_TYPE_KEY, result_type_problem
from ..protocol.wire import (
    APP_ERROR_KEY,
    APPS_LIST_METHOD,
    APPS_START_METHOD,
    APPS_STOP_METHOD,
    APPS_WATCH_METHOD,
    ENV_START_CONTEXT,
)
from .auth import env_object
from .errors import (
    AppTimeout,
    ArgumentError,
    ErrorOnLaunch,
    IntentError,
    InvocationError,
    NoAppsFound,
    TargetAppUnavailable,
)
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .methods import Methods
    from .session import ClientSession

__all__ = ["App", "AppIntent", "Apps", "RunningApp", "app_error"]

#: seconds a start may take beyond the server's ``start_timeout`` (the reply's way back)
_START_MARGIN = 15.0


@dataclass(frozen=True)
class AppIntent:
    """An intent a directory notebook declares."""

    name: str
    context_types: tuple[str, ...] = ()
    display_name: str | None = None
    #: what its handler returns (``resultType``, ``protocol/intents.py``)
    result_type: str | None = None


@dataclass(frozen=True)
class RunningApp:
    """A kernel the server started for a directory notebook."""

    kernel_id: str
    path: str
    state: str
    peer_id: str | None = None
    started: float | None = None
    last_activity: float | None = None
    error: dict[str, Any] | None = None
    #: when the kernel answered (its cells started then)
    kernel_ready: float | None = None

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RunningApp:
        return cls(
            str(item.get("kernel_id", "")),
            str(item.get("path", "")),
            str(item.get("state", "")),
            item.get("peer_id"),
            item.get("started"),
            item.get("last_activity"),
            item.get("error"),
            item.get("kernel_ready"),
        )


@dataclass(frozen=True)
class App:
    """A notebook of the server's app directory (``error``: why it cannot be started)."""

    path: str
    name: str
    title: str
    intents: tuple[AppIntent, ...] = ()
    methods: tuple[str, ...] = ()
    channel: str | None = None
    error: str | None = None
    running: tuple[RunningApp, ...] = ()

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> App:
        intents = tuple(
            AppIntent(
                str(i.get("name")),
                tuple(str(t) for t in i.get("contextTypes") or ()),
                i.get("displayName"),
                _result_type(i.get(RESULT_TYPE_KEY)),
            )
            for i in item.get("intents") or ()
            if isinstance(i, dict)
        )
        return cls(
            str(item.get("path", "")),
            str(item.get("name", "")),
            str(item.get("title", "")),
            intents,
            tuple(str(m) for m in item.get("methods") or ()),
            item.get("channel"),
            item.get("error"),
            tuple(
                RunningApp.from_json(r) for r in item.get("running") or () if isinstance(r, dict)
            ),
        )


def _result_type(value: Any) -> str | None:
    return value if result_type_problem(value) is None else None


_ERRORS: dict[str, type[IntentError]] = {
    "ErrorOnLaunch": ErrorOnLaunch,
    "AppTimeout": AppTimeout,
    "NoAppsFound": NoAppsFound,
    "TargetAppUnavailable": TargetAppUnavailable,
}


def app_error(error: InvocationError, intent: str | None) -> IntentError | None:
    """The FDC3 error a failed start's GW3 error stands for (``None``: not a start failure)."""
    context = error.context if isinstance(error.context, dict) else {}
    kind = _ERRORS.get(str(context.get(APP_ERROR_KEY)))
    if kind is None:
        return None
    message = str(context.get("message") or error.reason)
    path = context.get("notebook_path")
    if kind is ErrorOnLaunch:
        return ErrorOnLaunch(
            message,
            intent=intent,
            notebook_path=path,
            cell_index=context.get("cell_index"),
            cell_source=context.get("cell_source"),
            traceback=context.get("traceback"),
        )
    if kind is AppTimeout:
        return AppTimeout(message, intent=intent, notebook_path=path)
    return kind(message, intent=intent)


class Apps:
    """``io.apps``: list the server's notebook apps, start and stop them."""

    def __init__(self, session: ClientSession, methods: Methods) -> None:
        self._session = session
        self._methods = methods
        #: the server's start timeout, as its last listing said
        self.start_timeout = 30.0

    @property
    def starting_context(self) -> dict[str, Any] | None:
        """The starting context this process was given when the server started it as a
        directory notebook with one (``ENV_START_CONTEXT``), else None."""
        return env_object(ENV_START_CONTEXT)

    async def available(self) -> bool:
        """Is a server's app directory on the hub?"""
        return any(
            m.name == APPS_START_METHOD and m.servers for m in await self._methods.amethods()
        )

    @on_io_loop
    async def alist(self) -> list[App]:
        """The notebooks of the app directory, with their running kernels (``[]`` when no
        Jupyter server with the extension is on the hub)."""
        if not await self.available():
            return []
        reply = await self._methods.ainvoke(APPS_LIST_METHOD, {}, wait_timeout=0)
        listing = reply.returned if isinstance(reply.returned, dict) else {}
        timeout = listing.get("start_timeout")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            self.start_timeout = float(timeout)
        return [App.from_json(a) for a in listing.get("apps") or () if isinstance(a, dict)]

    list = blocking(alist)

    @on_io_loop
    async def astart(
        self,
        path: str | None = None,
        *,
        intent: str | None = None,
        context_type: str | None = None,
        method: str | None = None,
        new: bool = False,
        start_context: dict[str, Any] | None = None,
    ) -> RunningApp:
        """Start the notebook ``path`` (or one that declares ``intent``/``method``) unless
        one runs (``new``: always); with an intent or method, returns once its handler is
        registered. ``start_context`` (a JSON object) starts a new kernel that reads it as
        :attr:`starting_context`. Raises :class:`ErrorOnLaunch`, :class:`AppTimeout`,
        :class:`NoAppsFound` or :class:`TargetAppUnavailable`."""
        if path is None and intent is None and method is None:
            raise ArgumentError("Name a notebook path, an intent or a method to start")
        if not await self.available():
            raise NoAppsFound(
                "No Jupyter server's app directory is on this hub, so no notebook can be "
                "started (a standalone hub has none)",
                intent=intent,
            )
        arguments: dict[str, Any] = {"new": bool(new)}
        given = {
            "path": path,
            "intent": intent,
            "context_type": context_type,
            "method": method,
            "start_context": start_context,
        }
        arguments.update({k: v for k, v in given.items() if v is not None})
        return await self._call(
            APPS_START_METHOD, arguments, intent, self.start_timeout + _START_MARGIN
        )

    start = blocking(astart)

    @on_io_loop
    async def astop(self, kernel_id: str) -> RunningApp:
        """Stop a notebook the server started (:class:`TargetAppUnavailable` if none runs in
        ``kernel_id``)."""
        return await self._call(APPS_STOP_METHOD, {"kernel_id": kernel_id}, None, None)

    async def _call(
        self, method: str, arguments: dict[str, Any], intent: str | None, timeout: float | None
    ) -> RunningApp:
        """Invoke one of the app directory's methods; a failure is its FDC3 error."""
        try:
            reply = await self._methods.ainvoke(method, arguments, timeout=timeout, wait_timeout=0)
        except InvocationError as error:
            failure = app_error(error, intent)
            if failure is None:
                raise
            raise failure from None
        returned = reply.returned if isinstance(reply.returned, dict) else {}
        return RunningApp.from_json(returned)

    stop = blocking(astop)

    @on_io_loop
    async def awatch(self, kernel_id: str, timeout: float) -> RunningApp:
        """Wait until the notebook the server started in ``kernel_id`` stopped (its entry,
        state ``"stopped"``) or ``timeout`` seconds passed (its entry as it runs); raises
        :class:`ErrorOnLaunch` as soon as it failed (a cell raised: the server stops it), so
        a starter hears of a failure without polling the listing."""
        arguments = {"kernel_id": kernel_id, "timeout": timeout}
        return await self._call(APPS_WATCH_METHOD, arguments, None, timeout + _START_MARGIN)

    watch = blocking(awatch)
