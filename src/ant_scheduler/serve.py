"""`ant serve`: build the store, executor, GPU backend, engine and app, then run uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from ant_scheduler import __version__
from ant_scheduler.api.app import create_app
from ant_scheduler.api.auth import load_or_create_token
from ant_scheduler.core.errors import ConfigError
from ant_scheduler.engine import Engine
from ant_scheduler.executors.local import LocalExecutor
from ant_scheduler.monitor.base import GpuBackend
from ant_scheduler.monitor.fake import FakeGpuBackend
from ant_scheduler.monitor.nvml import NvmlGpuBackend, NvmlUnavailable
from ant_scheduler.settings import Settings, load_settings
from ant_scheduler.store import Store
from ant_scheduler.tls import ensure_self_signed, fingerprint


@dataclass
class ServeOptions:
    config: Path | None = None
    gpus: list[int] | None = None
    fake_gpus: int | None = None
    host: str | None = None
    port: int | None = None
    tls: bool = True
    certfile: Path | None = None
    keyfile: Path | None = None
    fake_gpu_load: Path | None = None  # JSON file of simulated outside load (--fake-gpus)


def parse_gpu_list(text: str) -> list[int]:
    """'0,1,2,3' -> [0, 1, 2, 3]; raises ConfigError on anything else."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"GPU list must be comma-separated indices like 0,1,2,3, got {text!r}"
        ) from None
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"GPU list must be distinct non-negative indices, got {text!r}")
    return ids


def _say(message: str) -> None:
    print(f"ant: {message}", file=sys.stderr, flush=True)


def choose_gpu_backend(opts: ServeOptions, state_dir: Path) -> GpuBackend | None:
    if opts.fake_gpus is not None:
        if opts.fake_gpus < 0:
            raise ConfigError("--fake-gpus must be >= 0")
        missing = [i for i in opts.gpus or [] if i >= opts.fake_gpus]
        if missing:
            raise ConfigError(f"GPU {missing[0]} does not exist (--fake-gpus {opts.fake_gpus})")
        load_file = opts.fake_gpu_load or state_dir / "fake_gpus.json"
        return FakeGpuBackend(opts.fake_gpus, only=opts.gpus, load_file=load_file)
    try:
        return NvmlGpuBackend(only=opts.gpus)
    except NvmlUnavailable as exc:
        if opts.gpus is not None:
            raise ConfigError(
                f"GPUs {','.join(map(str, opts.gpus))} were requested but NVML is not available "
                f"({exc}); use --fake-gpus N to simulate GPUs"
            ) from None
        _say("no NVIDIA GPU found: running CPU-only tasks. Use --fake-gpus N to simulate N GPUs.")
        return None


def user_config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ant"


def write_connection_file(state_dir: Path, url: str, token: str, cert: Path | None) -> Path:
    """What `ant` client commands read to find this server (mode 0600: it holds the token).

    Written to the state directory and to ~/.config/ant/, so `ant ls` works from anywhere.
    """
    info = {
        "url": url,
        "token": token,
        "cert_path": str(cert.resolve()) if cert else None,
        "cert_fingerprint": fingerprint(cert) if cert else None,
        "pid": os.getpid(),
        "version": __version__,
    }
    path = state_dir / "connection.json"
    for target in (path, user_config_dir() / "connection.json"):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(info, f, indent=2)
            os.replace(tmp, target)
        except OSError as exc:
            _say(f"warning: could not write {target}: {exc.strerror}")
    return path


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


async def _serve(settings: Settings, opts: ServeOptions) -> None:
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    host = opts.host or settings.SERVER_host
    port = settings.frontend_port if opts.port is None else opts.port
    backend = choose_gpu_backend(opts, state_dir)
    token = load_or_create_token(state_dir)
    cert: Path | None = None
    key: Path | None = None
    if opts.tls:
        if opts.certfile or opts.keyfile:
            if not (opts.certfile and opts.keyfile):
                raise ConfigError("--certfile and --keyfile go together")
            cert, key = opts.certfile, opts.keyfile
        else:
            cert, key = ensure_self_signed(state_dir / "tls")
    store = Store(state_dir / "ant.db")
    engine = Engine(settings, store, LocalExecutor(), backend)
    scheme = "https" if opts.tls else "http"
    url = f"{scheme}://{_display_host(host)}:{port}"

    def on_shutdown(message: str) -> None:
        _say(f"stopped: {message}")

    app = create_app(engine, token=token, tls=opts.tls, on_shutdown=on_shutdown)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        local_url = f"{scheme}://127.0.0.1:{port}" if host in ("0.0.0.0", "::") else url
        write_connection_file(state_dir, local_url, token, cert)
        summary = ", ".join(f"{v} {k}" for k, v in engine.recovery_summary.items() if v)
        gpus = len(engine.gpus)
        _say(f"ANT {__version__} serving {gpus} GPU(s) on {url} (state in {state_dir})")
        if summary:
            _say(f"recovered from the last run: {summary}")
        print(f"    Open in a browser: {url}/?token={token}", flush=True)
        if local_url != url:
            print(f"                   or {local_url}/?token={token}", flush=True)

    announcer = asyncio.create_task(announce())
    try:
        await server.serve()
    finally:
        announcer.cancel()
        store.close()
    if not server.started:
        raise ConfigError(f"could not listen on {host}:{port} (in use or not permitted?)")


def run_server(opts: ServeOptions) -> int:
    """Entry point of `ant serve` / `python run.py`. Returns the process exit code."""
    warnings.showwarning = lambda message, *args, **kwargs: _say(f"warning: {message}")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it with the previous handler in
    # place; a no-op handler makes that a clean exit (status 0) after the shutdown message.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        settings = load_settings(opts.config)
        asyncio.run(_serve(settings, opts))
    except ConfigError as exc:
        _say(f"error: {exc.message}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
