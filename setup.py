"""Build hook: a wheel must carry the prebuilt JupyterLab extension (docs/LAB.md).

Metadata lives in setup.cfg; the extension's files go in through its ``data_files``
(``share/jupyter/labextensions/jupyter_interop``). Building them needs Node, which a user's
``pip install`` of the wheel must not, so a wheel built without them fails here with what to
run. Editable installs do not go through this check.
"""

from pathlib import Path

from setuptools import setup

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

LABEXTENSION = Path(__file__).resolve().parent / "jupyter_interop" / "labextension"


class bdist_wheel_with_labextension(bdist_wheel):
    """``bdist_wheel`` that refuses to build a wheel without the built lab extension."""

    def run(self) -> None:
        static = LABEXTENSION / "static"
        built = (
            (LABEXTENSION / "package.json").is_file()
            and (LABEXTENSION / "install.json").is_file()
            and any(static.glob("remoteEntry.*.js"))
        )
        if not built:
            raise SystemExit(
                f"error: the JupyterLab extension is not built ({LABEXTENSION} is missing or "
                "incomplete). Run `bash scripts/build-labextension.sh` (needs Node.js and npm) "
                "before building a wheel."
            )
        super().run()


setup(cmdclass={"bdist_wheel": bdist_wheel_with_labextension})
