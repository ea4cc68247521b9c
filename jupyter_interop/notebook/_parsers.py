"""The argument parsers of every ``%interop`` sub-command, with their help.

One ``MagicArgumentParser`` per sub-command (argparse errors become ``UsageError``, so a typo
never kills the kernel); ``%interop SUB --help`` prints the parser's help and
``%interop --help`` lists the sub-commands. The expansion rules are written once,
:data:`EXPANSION_HELP`, and appended to every command that takes values.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from IPython.core.magic_arguments import MagicArgumentParser

from ..protocol.wire import CHANNEL_PREFIX, CONTEXT_LIFETIMES

__all__ = ["EXPANSION_HELP", "PARSERS", "SUMMARY", "overview"]

EXPANSION_HELP = """\
Values (ARGS, key=value pairs, --args) are expanded by these rules, never by IPython's own
$var/{expr} expansion, which gives up entirely on a line containing JSON:
  key=value     value is JSON when it parses as JSON (5, true, null, "quoted text",
                [1, 2], {"a": 1}); $name is the notebook variable itself (a DataFrame
                stays a DataFrame); {expr} is a Python expression evaluated in the
                notebook; $$x is the text "$x"; anything else is the text as typed
                ('single quotes' are removed). a.b=1 builds {"a": {"b": 1}}.
  JSON          a token starting with { or [ is JSON, spaces allowed, no shell quoting;
                $name may stand for any JSON value ({"symbol": $sym}); "$sym" inside a
                JSON string stays text.
"""

SUMMARY: dict[str, str] = {
    "status": "connection, identity, channel, this notebook's methods and streams",
    "peers": "the peers (notebooks, scripts, apps) connected to the hub",
    "methods": "the methods offered, with their servers",
    "streams": "the streams offered, with their servers",
    "contexts": "the shared contexts",
    "channels": "the colour channels and which notebooks are on each",
    "invoke": "call a method: %interop invoke NAME [ARGS]",
    "method": "%%interop method NAME: register the cell body as a method",
    "unregister": "stop offering a method registered here",
    "subscribe": "keep a live list (or DataFrame) of a stream's data in a variable",
    "unsubscribe": "stop a subscription, a watch or a bus subscription",
    "context": "get | create | set | update | destroy | read-only | writable a shared context",
    "share": "publish a variable for other notebooks",
    "pull": "take a shared variable once",
    "watch": "keep a variable updated as its owner re-shares it",
    "channel": "the channel selector; join | leave | get | mode | restrict | restrictions",
    "publish": "publish key=value data to the current channel",
    "bus": "publish | subscribe | unsubscribe on the pub/sub bus",
    "viewer": "the Interop Viewer widget: peers, methods, streams, invoke",
    "intents": "the intents offered, with their handlers",
    "intent": "raise an intent, or %%interop intent NAME: handle it with the cell body",
    "apps": "the notebooks the server starts on demand, with their kernels; stop one",
    "fdc3": "broadcast | listen FDC3 contexts on the current user channel (io.fdc3)",
}


def _parser(name: str, description: str, expansion: bool = False) -> MagicArgumentParser:
    epilog = EXPANSION_HELP if expansion else None
    parser = MagicArgumentParser(
        prog=f"%interop {name}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.allow_abbrev = False
    return parser


def _output(parser: MagicArgumentParser, what: str) -> None:
    parser.add_argument(
        "-o", "--output", metavar="VAR", help=f"also store {what} in the variable VAR"
    )


def _status() -> MagicArgumentParser:
    p = _parser("status", "Connection, identity, current channel, my methods and streams.")
    _output(p, "the status as a dict")
    return p


def _peers() -> MagicArgumentParser:
    p = _parser("peers", "The peers connected to the hub (this notebook included).")
    p.add_argument("pattern", nargs="?", help="only applications matching this glob pattern")
    _output(p, "the peers (Instance objects)")
    return p


def _listing(name: str, what: str) -> Callable[[], MagicArgumentParser]:
    def build() -> MagicArgumentParser:
        p = _parser(name, f"The {what} offered on the hub, with the peers offering them.")
        p.add_argument("pattern", nargs="?", help="only names matching this glob pattern")
        _output(p, f"the {what} (Method objects)")
        return p

    return build


def _contexts() -> MagicArgumentParser:
    p = _parser("contexts", "The shared contexts (channel contexts with --all).")
    p.add_argument("pattern", nargs="?", help="only names matching this glob pattern")
    p.add_argument("--all", action="store_true", help=f"include the {CHANNEL_PREFIX} contexts")
    _output(p, "the context names")
    return p


def _channels() -> MagicArgumentParser:
    p = _parser("channels", "The colour channels, their data and which notebooks are on each.")
    _output(p, "the channels as a list of dicts")
    return p


def _invoke() -> MagicArgumentParser:
    p = _parser(
        "invoke",
        "Invoke a method and show its result.\n\n"
        "  %interop invoke Pricing.Quote symbol=AAPL qty=100\n"
        '  %interop invoke Pricing.Quote {"symbol": $sym, "qty": 100} --target all\n',
        expansion=True,
    )
    p.add_argument("name", help="the method name")
    p.add_argument("args", nargs="*", metavar="ARGS", help="a JSON object or key=value pairs")
    p.add_argument(
        "--target",
        default="best",
        help="best (default), all, skipMine, an application name, or a JSON instance filter",
    )
    p.add_argument("--timeout", type=float, help="seconds to wait for the reply (default 30)")
    p.add_argument(
        "--wait", type=float, help="seconds to wait for the method to appear (default 5)"
    )
    p.add_argument(
        "--start",
        action="store_true",
        help="when no server offers it, have the Jupyter server start a notebook that declares "
        "it (metadata.interop.methods) and wait for it",
    )
    _output(p, "the returned value (with --target all: the list of returned values)")
    return p


def _method() -> MagicArgumentParser:
    p = _parser(
        "method",
        "%%interop method NAME: register the cell body as the method NAME.\n\n"
        "The invocation's arguments are bound as local names in the body (they shadow\n"
        "notebook variables of the same name; other names are the notebook's variables);\n"
        "the value of the last expression is returned (or use 'return'). Output printed by\n"
        "the body appears under this cell. Re-running the cell replaces the method.\n\n"
        "  %%interop method Pricing.Quote --accepts 'String symbol, Int qty'\n"
        "  price = prices[symbol]\n"
        '  {"symbol": symbol, "price": price, "total": price * qty}\n',
    )
    p.add_argument("name", help="the method name")
    p.add_argument("--description", help="a description shown to callers")
    p.add_argument("--accepts", help="io.Connect input signature, e.g. 'String symbol, Int qty'")
    p.add_argument("--returns", help="io.Connect result signature")
    return p


def _unregister() -> MagicArgumentParser:
    p = _parser("unregister", "Stop offering a method registered by this notebook.")
    p.add_argument("name", help="the method name")
    return p


def _subscribe() -> MagicArgumentParser:
    p = _parser(
        "subscribe",
        "Subscribe to a stream and keep its data in a variable, updated live (on the\n"
        "kernel's main loop, between cells). A list keeps the same object (in-place\n"
        "appends); with --frame the variable is rebound to a new DataFrame per batch.\n\n"
        '  %interop subscribe Pricing.Ticks --to ticks --args {"symbol": "AAPL"}\n',
        expansion=True,
    )
    p.add_argument("stream", help="the stream name")
    p.add_argument("--to", required=True, metavar="VAR", help="the variable to keep updated")
    p.add_argument("--args", metavar="JSON", help="subscription arguments (a JSON object)")
    p.add_argument("--target", default="best", help="best (default), all, or an application")
    p.add_argument("--max", type=int, default=1000, help="keep the last N items (default 1000)")
    p.add_argument(
        "--frame", action="store_true", help="keep a pandas DataFrame (one row per item)"
    )
    return p


def _unsubscribe() -> MagicArgumentParser:
    p = _parser(
        "unsubscribe",
        "Stop what keeps VAR updated (subscribe, watch, bus subscribe --to VAR); a bus\n"
        "subscription without a variable is named by its pattern. No argument: stop all.",
    )
    p.add_argument("key", nargs="?", metavar="VAR|PATTERN", help="the variable or bus pattern")
    return p


def _context() -> MagicArgumentParser:
    p = _parser(
        "context",
        "Shared contexts.\n\n"
        "  %interop context get NAME [-o VAR]\n"
        "  %interop context create NAME [JSON | key=value ...] [--lifetime L] [--read-only]\n"
        "        (L: retained, ref-counted: gone when no one follows it, ownership: gone when\n"
        "         this kernel leaves; --read-only: ownership only, no one else may change it)\n"
        "  %interop context set NAME JSON | key=value ...     (replaces the data)\n"
        "  %interop context update NAME JSON | key=value ...  (top-level keys; a.b=1 sets a path;\n"
        "                                                      null removes a key)\n"
        "  %interop context destroy NAME\n"
        "  %interop context read-only NAME | writable NAME   (an ownership context this kernel\n"
        "                                                     created)\n",
        expansion=True,
    )
    p.add_argument(
        "action",
        choices=["get", "create", "set", "update", "destroy", "read-only", "writable"],
    )
    p.add_argument("name", help="the context name")
    p.add_argument("values", nargs="*", metavar="VALUES", help="JSON or key=value pairs")
    p.add_argument(
        "--lifetime",
        choices=list(CONTEXT_LIFETIMES),
        default="retained",
        help="(create) when the hub destroys it (default retained)",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="(create) an ownership context no other peer may change",
    )
    _output(p, "the context data (get)")
    return p


def _share() -> MagicArgumentParser:
    p = _parser(
        "share",
        "Publish a notebook variable (JSON values, numpy arrays, pandas DataFrames) so other\n"
        "notebooks can '%interop pull' or '%interop watch' it. Run again to re-share the new\n"
        "value: watchers get it at once. Stored in the shared context 'jupyter.share.NAME'.",
    )
    p.add_argument("var", help="the variable to share")
    p.add_argument("--as", dest="name", help="the shared name (default: the variable name)")
    return p


def _pull() -> MagicArgumentParser:
    p = _parser("pull", "Take a shared variable once (see share).")
    p.add_argument("name", help="the shared name")
    _output(p, "the value (default: a variable named NAME)")
    return p


def _watch() -> MagicArgumentParser:
    p = _parser(
        "watch",
        "Keep a variable updated with a shared value: each time its owner re-shares it, the\n"
        "variable is rebound (on the kernel's main loop, between cells). Stop with\n"
        "'%interop unsubscribe VAR'.",
    )
    p.add_argument("name", help="the shared name")
    _output(p, "the value (default: a variable named NAME)")
    return p


def _channel() -> MagicArgumentParser:
    p = _parser(
        "channel",
        "Colour channels.\n\n"
        "  %interop channel              the channel selector widget\n"
        "  %interop channel join NAME    join a channel (Red, Green, ...; in multi mode: add it)\n"
        "  %interop channel leave [NAME] leave the current channel(s), or NAME\n"
        "  %interop channel get [-o VAR] the current channel and its data\n"
        "  %interop channel mode [multi | single]\n"
        "        show or set the mode (multi: this notebook may be on several channels)\n"
        "  %interop channel restrict NAME [--read | --no-read] [--write | --no-write]\n"
        "        whether this notebook may read (receive) and write (publish to) NAME ('*':\n"
        "        every channel); the hub enforces it; an option not given keeps its value\n"
        "  %interop channel restrictions [-o VAR]   this notebook's restrictions\n",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["show", "join", "leave", "get", "mode", "restrict", "restrictions"],
        default="show",
    )
    p.add_argument("name", nargs="?", help="the channel (join, leave, restrict) or the mode")
    for flag in ("read", "write"):
        p.add_argument(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"(restrict) allow or refuse to {flag} the channel",
        )
    _output(p, "the channel data (get) or the restrictions (restrictions)")
    return p


def _publish() -> MagicArgumentParser:
    p = _parser(
        "publish",
        "Publish data to the current channel: top-level keys are replaced, others kept\n"
        "(io.Connect's channels.publish); a.b=1 sets a path.\n\n"
        '  %interop publish symbol=AAPL client={"id": 7}\n',
        expansion=True,
    )
    p.add_argument("values", nargs="+", metavar="VALUES", help="JSON or key=value pairs")
    p.add_argument("--channel", help="publish to this channel instead of the current one")
    return p


def _bus() -> MagicArgumentParser:
    p = _parser(
        "bus",
        "The pub/sub bus. Topics are dot-separated; in patterns '*' matches one segment and\n"
        "'>' the rest.\n\n"
        "  %interop bus publish TOPIC JSON | key=value ...\n"
        "  %interop bus subscribe PATTERN [--to VAR]   (print messages here, or keep them in VAR)\n"
        "  %interop bus unsubscribe PATTERN|VAR\n",
        expansion=True,
    )
    p.add_argument("action", choices=["publish", "subscribe", "unsubscribe"])
    p.add_argument("topic", metavar="TOPIC|PATTERN")
    p.add_argument("values", nargs="*", metavar="DATA", help="JSON or key=value pairs (publish)")
    p.add_argument("--to", metavar="VAR", help="keep received messages in the list VAR")
    p.add_argument("--max", type=int, default=1000, help="keep the last N messages in VAR")
    return p


def _viewer() -> MagicArgumentParser:
    return _parser("viewer", "The Interop Viewer: peers, methods and streams, invoke, preview.")


def _intents() -> MagicArgumentParser:
    p = _parser("intents", "The intents running peers handle, one row per handler.")
    p.add_argument("intent", nargs="?", help="only this intent")
    _output(p, "the intents (Intent objects, with their handlers)")
    return p


def _intent() -> MagicArgumentParser:
    p = _parser(
        "intent",
        "Raise an intent, or handle one with a cell.\n\n"
        '  %interop intent raise ViewChart {"type": "fdc3.instrument", "id": {"ticker": "AAPL"}}\n'
        "  %interop intent raise ViewChart type=fdc3.instrument id.ticker=AAPL --target App -o r\n"
        "  %%interop intent ViewChart --context-types fdc3.instrument --result-type fdc3.chart\n"
        '  print(context["id"])                 (the raised context is bound as `context`;\n'
        '  {"type": "fdc3.chart"}                the last expression is the result)\n\n'
        "When several handlers fit and no --target chooses, a widget under the cell lists\n"
        "them: the result appears there (and in VAR) once one is clicked. Re-running a\n"
        "%%interop intent cell replaces its handler; '%interop intent unsubscribe INTENT'\n"
        "stops it.",
        expansion=True,
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="raise INTENT [CONTEXT] | unsubscribe INTENT | INTENT",
        help="'raise', the intent and its context (JSON or key=value); 'unsubscribe' and the "
        "intent a cell handles; with a cell: the intent",
    )
    p.add_argument("--target", help="an application name, or a peer id / instance id")
    p.add_argument("--timeout", type=float, help="seconds for the choice and the reply, each")
    p.add_argument(
        "--context-types", metavar="T1,T2", help="(cell) the context types it takes (default any)"
    )
    p.add_argument("--display-name", help="(cell) the name shown to people choosing a handler")
    p.add_argument("--description", help="(cell) a description of the handler")
    p.add_argument(
        "--result-type",
        metavar="TYPE",
        help="(cell) what it returns: a context type, 'channel' or 'channel<TYPE>' "
        "(FDC3's resultType, which finds and raises filter by)",
    )
    _output(p, "the handler's result (raise)")
    return p


def _apps() -> MagicArgumentParser:
    p = _parser(
        "apps",
        "The notebooks of the Jupyter server's app directory (metadata.interop), the intents\n"
        "and methods they declare and the kernels started for them (docs/INTENTS.md).\n\n"
        "  %interop apps                   list them\n"
        "  %interop apps stop KERNEL_ID    stop a notebook started headless",
    )
    p.add_argument("words", nargs="*", metavar="stop KERNEL_ID", help="stop a running notebook")
    _output(p, "the apps (App objects)")
    return p


def _fdc3() -> MagicArgumentParser:
    p = _parser(
        "fdc3",
        "FDC3 contexts on the current user channel (io.fdc3, docs/FDC3.md); join one with\n"
        "'%interop channel join Red' (fdc3.channel.1).\n\n"
        '  %interop fdc3 broadcast fdc3.instrument {"id": {"ticker": "AAPL"}}\n'
        "  %interop fdc3 broadcast fdc3.instrument id.ticker=AAPL name=Apple\n"
        "  %interop fdc3 listen fdc3.instrument --to inst   (inst: the latest one)\n"
        "  %interop fdc3 listen '*'                         (print every context here)\n"
        "Stop a listener with '%interop unsubscribe VAR' (or 'fdc3:TYPE').",
        expansion=True,
    )
    p.add_argument("action", choices=["broadcast", "listen"])
    p.add_argument("type", metavar="TYPE", help="the context type ('*': every type, listen)")
    p.add_argument("values", nargs="*", metavar="CONTEXT", help="JSON or key=value (broadcast)")
    p.add_argument("--to", metavar="VAR", help="keep the latest context in VAR (listen)")
    return p


PARSERS: dict[str, Callable[[], MagicArgumentParser]] = {
    "status": _status,
    "peers": _peers,
    "methods": _listing("methods", "methods"),
    "streams": _listing("streams", "streams"),
    "contexts": _contexts,
    "channels": _channels,
    "invoke": _invoke,
    "method": _method,
    "unregister": _unregister,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "context": _context,
    "share": _share,
    "pull": _pull,
    "watch": _watch,
    "channel": _channel,
    "publish": _publish,
    "bus": _bus,
    "viewer": _viewer,
    "intents": _intents,
    "intent": _intent,
    "apps": _apps,
    "fdc3": _fdc3,
}


def overview() -> str:
    """``%interop --help``."""
    width = max(map(len, SUMMARY))
    lines = [
        "%interop SUB-COMMAND ... : io.Connect interop from this notebook.",
        "",
        "Sub-commands (each has --help):",
    ]
    lines.extend(f"  {name.ljust(width)}  {text}" for name, text in SUMMARY.items())
    lines += [
        "",
        "%interop alone is %interop status. Load with %load_ext jupyter_interop, or",
        "for every kernel: c.InteractiveShellApp.extensions = ['jupyter_interop'] in",
        "ipython_kernel_config.py (see the notebooks/README.md).",
        "",
        EXPANSION_HELP,
    ]
    return "\n".join(lines)
