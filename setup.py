"""Build hook: a wheel must carry the prebuilt JupyterLab extension (docs/LAB.md) and FINOS's
FDC3 schemas copied from their npm packages (docs/FDC3.md).

Metadata lives in setup.cfg; the extension's files go in through its ``data_files``
(``share/jupyter/labextensions/jupyter_interop``). Building them needs Node, which a user's
``pip install`` of the wheel must not, so a wheel built without them fails here with what to
run. The FDC3 schemas go in as package data of ``jupyter_interop.fdc3``. Editable installs do not
go through this check.
"""

from pathlib import Path

from setuptools import setup

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

LABEXTENSION = Path(__file__).resolve().parent / "jupyter_interop" / "labextension"
FDC3_SCHEMAS = Path(__file__).resolve().parent / "jupyter_interop" / "fdc3" / "schemas"


class bdist_wheel_with_labextension(bdist_wheel):
    """``bdist_wheel`` that refuses to build a wheel without the built lab extension or the
    FDC3 schemas."""

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
        if not (FDC3_SCHEMAS / "SOURCE.json").is_file():
            raise SystemExit(
                f"error: the FDC3 schemas are not copied ({FDC3_SCHEMAS} is missing). Run "
                "`bash scripts/build-fdc3-schemas.sh` (needs Node.js and npm) before building a "
                "wheel."
            )
        super().run()


setup(cmdclass={"bdist_wheel": bdist_wheel_with_labextension})
