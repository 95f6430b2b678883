"""The package as a user gets it: `python -m build` makes a wheel with the web UI in it, and that
wheel, installed by pipx into a fresh venv of its own (no source tree, no npm, its dependencies
from the package index), runs `ant serve` with the UI, `ant submit` and `ant --version`.

This builds and installs for real: ~30 s with a warm pip cache (pipx's venv has no access to
the test's packages: include-system-site-packages is false)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ant_scheduler import __version__
from tests.server import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "ant_scheduler" / "web"
PACKAGE_FILES = ("pyproject.toml", "setup.py", "README.md")

# The build and the install are done once for the file; a cold pip cache may take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def source_copy(target: Path, *, with_ui: bool) -> Path:
    """What `python -m build` reads, copied away from the repository (and from its build/)."""
    target.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy(ROOT / name, target / name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", *([] if with_ui else ["web"]))
    shutil.copytree(ROOT / "src", target / "src", ignore=skip)
    return target


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (it would reach the source tree) and nothing of the test's venv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (WEB / "index.html").is_file():
        pytest.fail("the web UI is not built: run `make ui` (make test does)")
    source = source_copy(tmp_path_factory.mktemp("pkg") / "src-copy", with_ui=True)
    dist = source.parent / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [built] = dist.glob("*.whl")
    return built


def test_the_wheel_holds_the_built_ui_and_one_version(wheel: Path) -> None:
    assert f"-{__version__}-" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    built = {p.relative_to(WEB).as_posix() for p in WEB.rglob("*") if p.is_file()}
    shipped = {n.removeprefix("ant_scheduler/web/") for n in names if "/web/" in n}
    assert built == shipped and "index.html" in shipped and ".vite/license.md" in shipped
    metadata = (
        zipfile.ZipFile(wheel).read(f"ant_scheduler-{__version__}.dist-info/METADATA").decode()
    )
    assert f"\nVersion: {__version__}\n" in metadata


def test_a_build_without_the_ui_stops_and_says_why(tmp_path: Path) -> None:
    source = source_copy(tmp_path / "src-copy", with_ui=False)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "error: the web UI is not built" in said and "run `make ui`" in said, said[-3000:]
    assert not list((source / "dist").glob("*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Iterator[Path]:
    """`pipx install` of the wheel, into a home and bin directory of the test's own."""
    home = wheel.parent.parent / "pipx"
    env = clean_env(
        PIPX_HOME=str(home / "home"), PIPX_BIN_DIR=str(home / "bin"), PIPX_MAN_DIR=str(home / "man")
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipx", "install", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    config = (home / "home" / "venvs" / "ant-scheduler" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    yield home / "bin"


def test_the_installed_ant_serves_the_ui_and_runs_a_task(installed: Path, tmp_path: Path) -> None:
    ant = str(installed / "ant")
    env = clean_env(PATH=f"{installed}:/usr/bin:/bin", XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    version = subprocess.run([ant, "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.strip() == f"ant, version {__version__}"
    python = installed.parent / "home" / "venvs" / "ant-scheduler" / "bin" / "python"
    where = subprocess.run(
        [python, "-c", "import ant_scheduler; print(ant_scheduler.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.startswith(str(installed.parent / "home"))  # not the source tree
    run = tmp_path / "run"  # nothing of the source tree here
    run.mkdir()
    port = free_port()
    out = (tmp_path / "serve.out").open("w")
    server = subprocess.Popen(
        [ant, "serve", "--fake-gpus", "2", "--host", "127.0.0.1", "--port", str(port), "--no-tls"],
        cwd=run,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: up(url) or server.poll() is not None, timeout=60)
        assert server.poll() is None, (tmp_path / "serve.out").read_text()
        page = httpx.get(url + "/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.text == (WEB / "index.html").read_text()
        [script] = re.findall(r'src="(/assets/index-[^"]+\.js)"', page.text)
        asset = httpx.get(url + script)
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
        assert asset.content == (WEB / script.lstrip("/")).read_bytes()
        assert httpx.get(url + "/api/").json()["version"] == __version__

        def ant_run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [ant, *args], cwd=run, env=env, capture_output=True, text=True, timeout=60
            )

        submitted = ant_run("submit", "--id", "hello", "-g", "1", "--", "echo hi from the wheel")
        assert submitted.returncode == 0 and submitted.stdout.strip() == "hello", submitted
        waited = ant_run("wait", "hello")
        assert waited.returncode == 0, waited
        logs = ant_run("logs", "hello")
        assert "hi from the wheel" in logs.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def up(url: str) -> bool:
    try:
        return httpx.get(url + "/api/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
