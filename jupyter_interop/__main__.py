"""``jupyter interop <command>`` / ``python -m jupyter_interop <command>``.

``jupyter interop`` dispatches to the ``jupyter-interop`` console script, which is :func:`main`.
Commands are traitlets subcommands, so ``--InteropHub.<trait>=...`` and the other
``--Class.trait`` options work as in every Jupyter application.
"""

from __future__ import annotations

import sys

from traitlets.config import Application

from ._version import __version__

__all__ = ["InteropApp", "main"]


class InteropApp(Application):
    """io.Connect (Glue42) interop for Jupyter."""

    name = "jupyter-interop"
    version = __version__
    description = "io.Connect (Glue42) interop for Jupyter. Commands:  hub"
    subcommands = {
        "hub": (
            "jupyter_interop.server.standalone.StandaloneHubApp",
            "Run a standalone interop hub (GW3 gateway) without a Jupyter server.",
        ),
    }

    def start(self) -> None:
        if self.subapp is None:
            print(
                "No command given. Try 'jupyter interop hub --help'.\n"
                f"Commands: {', '.join(sorted(self.subcommands))}",
                file=sys.stderr,
            )
            self.exit(2)
        super().start()


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``jupyter-interop``)."""
    InteropApp.launch_instance(argv)


if __name__ == "__main__":
    main()
