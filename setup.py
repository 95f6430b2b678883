"""The package's build: pyproject.toml says what it is; this refuses a wheel without the web UI.

The UI (frontend/, built by `make ui` into src/ant_scheduler/web/, which git ignores) is part of
the package: `ant serve` from an installed wheel serves it. A wheel built before it would serve
only a "the web UI is not built" page, so the build stops instead and says what to do.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WEB = Path(__file__).resolve().parent / "src" / "ant_scheduler" / "web"


class BuildWithUi(build_py):
    def run(self) -> None:
        # An editable install (make's venv, made before the UI) serves the UI from the source tree.
        if not getattr(self, "editable_mode", False) and not (WEB / "index.html").is_file():
            raise SystemExit(
                f"error: the web UI is not built ({WEB / 'index.html'} is missing): "
                "run `make ui` (npm) before `python -m build`"
            )
        super().run()


setup(cmdclass={"build_py": BuildWithUi})
