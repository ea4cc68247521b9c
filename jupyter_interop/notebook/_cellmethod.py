"""``%%interop method NAME``: a cell body turned into a method handler.

The body is compiled once into a function whose last expression statement becomes its
``return`` (an explicit ``return`` works too). Each invocation calls it with fresh globals: the
notebook's namespace with the invocation's arguments laid over it, so the arguments read as
plain names everywhere in the body, comprehensions and nested functions included (Python 3.11
comprehensions could not see ``exec`` locals). Assignments stay local to the call; the
notebook's variables are read, not rebound. IPython syntax in the body (``!cmd``, ``%magic``)
is transformed first, as in any cell.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import linecache
import types
from collections.abc import Callable, Mapping
from typing import Any

from IPython.core.error import UsageError

__all__ = ["compile_cell_method"]

_counter = itertools.count(1)


def compile_cell_method(
    name: str,
    source: str,
    namespace: Mapping[str, Any],
    transform: Callable[[str], str] | None,
    kind: str = "method",
) -> Callable[..., Any]:
    """A handler ``(**arguments) -> value`` running ``source`` against ``namespace``
    (``kind``: the cell magic's word, ``method`` or ``intent``, for messages)."""
    python = transform(source) if transform is not None else source
    if not python.strip():
        raise UsageError(f"%%interop {kind} {name}: the cell body is empty")
    filename = f"<interop {kind} {name} #{next(_counter)}>"
    try:
        module = ast.parse(python, filename)
    except SyntaxError as exc:
        raise UsageError(f"%%interop {kind} {name}: {exc.msg} (line {exc.lineno})") from None
    body = module.body
    if body and isinstance(body[-1], ast.Expr):
        last = body[-1]
        body[-1] = ast.copy_location(ast.Return(value=last.value), last)
    # A parsed template keeps the FunctionDef valid on every Python version (3.12 added fields).
    wrapper = ast.parse("def _interop_method():\n    pass\n")
    func = wrapper.body[0]
    assert isinstance(func, ast.FunctionDef)
    func.body = body or [ast.Pass()]
    ast.fix_missing_locations(wrapper)
    try:
        code = compile(wrapper, filename, "exec")
    except SyntaxError as exc:  # 'return' outside function is fine here; others are not
        raise UsageError(f"%%interop {kind} {name}: {exc.msg} (line {exc.lineno})") from None
    # Tracebacks from the handler show the cell's lines.
    linecache.cache[filename] = (len(python), None, python.splitlines(True), filename)
    scratch: dict[str, Any] = {"__builtins__": builtins}
    exec(code, scratch)
    fn_code = scratch["_interop_method"].__code__

    def handler(**arguments: Any) -> Any:
        scope = {**namespace, **arguments}
        scope.setdefault("__builtins__", builtins)
        return types.FunctionType(fn_code, scope, name)()

    handler.__name__ = name.replace(".", "_")
    handler.__qualname__ = f"interop {kind} {name}"
    handler.__doc__ = source
    return handler
