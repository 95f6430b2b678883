"""`ant serve`: build the store, executor, GPU backend, engine and app, then run uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import os
import pwd
import shlex
import signal
import socket
import stat
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from ant_scheduler import __version__
from ant_scheduler.api.app import create_app
from ant_scheduler.api.auth import load_or_create_token
from ant_scheduler.core.errors import AntError, ConfigError
from ant_scheduler.core.topology import TopologySpecError, parse_fake_topology
from ant_scheduler.engine import Engine
from ant_scheduler.executors.registry import create_executor
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
    executor: str | None = None  # overrides RUNNER_executor
    ray_address: str | None = None  # overrides RAY_address
    state_dir: str | None = None  # overrides STATE_dir (a service's, docs/deployment.md)
    # --fake-gpus' links: "nvlink=0-3,4-7; switch=0-1,2-3; socket=0-3,4-7" (core/topology.py)
    fake_topology: str | None = None


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
    if opts.fake_topology is not None and opts.fake_gpus is None:
        raise ConfigError("--fake-topology describes fake GPUs: give --fake-gpus N too")
    if opts.fake_gpus is not None:
        if opts.fake_gpus < 0:
            raise ConfigError("--fake-gpus must be >= 0")
        missing = [i for i in opts.gpus or [] if i >= opts.fake_gpus]
        if missing:
            raise ConfigError(f"GPU {missing[0]} does not exist (--fake-gpus {opts.fake_gpus})")
        load_file = opts.fake_gpu_load or state_dir / "fake_gpus.json"
        links = None
        if opts.fake_topology is not None:
            try:
                links = parse_fake_topology(opts.fake_topology, opts.fake_gpus)
            except TopologySpecError as exc:
                raise ConfigError(exc.message) from None
        return FakeGpuBackend(opts.fake_gpus, only=opts.gpus, load_file=load_file, topology=links)
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


def write_connection_file(
    state_dir: Path, url: str, token: str, cert: Path | None, unix_socket: Path | None = None
) -> Path:
    """What `ant` client commands read to find this server (mode 0600: it holds the token).

    Written to the state directory and to ~/.config/ant/, so `ant ls` works from anywhere.
    """
    info = {
        "url": url,
        "token": token,
        "cert_path": str(cert.resolve()) if cert else None,
        "cert_fingerprint": fingerprint(cert) if cert else None,
        "unix_socket": str(unix_socket) if unix_socket else None,
        "pid": os.getpid(),
        "version": __version__,
    }
    data = json.dumps(info, indent=2).encode()
    path = state_dir / "connection.json"
    for target in (path, user_config_dir() / "connection.json"):
        try:
            _write_private(target, data)
        except OSError as exc:
            _say(f"warning: could not write {target}: {exc.strerror or exc}")
    return path


def _write_private(target: Path, data: bytes) -> None:
    """Replace `target` atomically with a file only its owner can read (0600, whatever the umask).

    The temporary file has a unique name and is created exclusively, never through a symlink.
    """
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# ------------------------------------------------------------------------- the local socket

UNIX_SOCKET = "ant.sock"


def bind_unix_socket(path: Path) -> socket.socket | None:
    """`<state dir>/ant.sock`: the same API as the port, plain HTTP, for `ant` commands on this
    machine (no TLS to set up: ~15 ms less a command). Mode 0600 in the 0700 state directory:
    only this user (and root) can connect, and the token is still required.

    A socket left behind by a server that died is replaced: the state lock says none runs here.
    When it cannot be made (something else has its name, a path too long for a Unix socket),
    None and a warning: the commands use the URL.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _say(f"warning: not listening on {path}: {exc.strerror or exc}")
        return None
    else:
        if not stat.S_ISSOCK(st.st_mode):
            _say(f"warning: not listening on {path}: something else has that name; remove it")
            return None
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # On Linux the socket's own mode is the file's: 0600 from the start, not after a chmod.
        os.fchmod(sock.fileno(), 0o600)
        sock.bind(str(path))
        os.chmod(path, 0o600)
    except OSError as exc:
        sock.close()
        _say(f"warning: not listening on {path}: {exc.strerror or exc}")
        return None
    return sock


class PortServer(uvicorn.Server):
    """uvicorn on the port, catching SIGINT and SIGTERM as uvicorn does, but not raising them
    again once it has shut down: uvicorn does that so a default handler ends the process, and
    for SIGINT asyncio.run's handler then cancelled ANT's own shutdown halfway (Ctrl+C never
    stopped the engine: no "stopped:", no RUNNER_on_shutdown "terminate", no session end)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        caught = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in caught}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class LocalServer(uvicorn.Server):
    """uvicorn serving the app on the Unix socket too: its own server, as the port's has TLS. The
    port's server catches the signals and runs the app's lifespan; this one stops with it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# ------------------------------------------------------------------------- the state directory

LOCK_FILE = "ant.lock"
GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _shown(path: Path) -> str:
    return os.path.abspath(path)


def _who(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def prepare_state_dir(state_dir: Path) -> Path:
    """Create the state directory with mode 0700, or tighten an existing one of ours to 0700.

    It holds the token, the TLS key and the database: a directory that belongs to someone else, or
    that others can write to (and so swap files in), is refused with how to fix it.
    """
    shown = _shown(state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(state_dir)
    except OSError as exc:
        raise ConfigError(
            f"cannot create state directory {shown}: {exc.strerror or exc}; "
            "set STATE_dir to a directory you can write"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"state directory {shown} is not a directory; use another STATE_dir")
    if st.st_uid != os.geteuid():
        raise ConfigError(
            f"state directory {shown} belongs to {_who(st.st_uid)}, not to you "
            f"({_who(os.geteuid())}); use your own STATE_dir"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        with contextlib.suppress(OSError):
            os.chmod(state_dir, 0o700)
        st = os.stat(state_dir)
        if st.st_mode & GROUP_OTHER_WRITE:
            raise ConfigError(
                f"state directory {shown} is writable by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): run `chmod 700 {shlex.quote(shown)}`"
            )
        if stat.S_IMODE(st.st_mode) != 0o700:
            _say(
                f"warning: state directory {shown} has mode {stat.S_IMODE(st.st_mode):04o}; "
                f"run `chmod 700 {shlex.quote(shown)}`"
            )
    return state_dir


class StateLock:
    """An exclusive flock on `<state dir>/ant.lock`: one server per state directory.

    Held for the life of the process; the kernel drops it when the process dies, even on SIGKILL,
    so a stale lock file never blocks a restart. The descriptor is close-on-exec: tasks never
    inherit it. The file records the holder's pid and, once it listens, its URL.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path) -> StateLock:
        path = state_dir / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot open lock file {_shown(path)}: {exc.strerror or exc}"
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise ConfigError(
                    f"lock file {_shown(path)} belongs to {_who(st.st_uid)} or is not a file; "
                    "remove it, or use your own STATE_dir"
                )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"another ANT server ({_holder(fd)}) is using state directory "
                    f"{_shown(state_dir)}; stop it first or use another STATE_dir"
                ) from None
            except OSError as exc:
                raise ConfigError(
                    f"cannot lock {_shown(path)}: {exc.strerror or exc}; use a STATE_dir on a "
                    "local file system"
                ) from None
            os.fchmod(fd, 0o600)
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, fd)
        lock.record(None)
        return lock

    def record(self, url: str | None) -> None:
        """Write who holds the lock, in place (a reader that sees it half-written retries)."""
        if self.fd is None:
            return
        data = json.dumps(
            {"pid": os.getpid(), "url": url, "version": __version__, "since": time.time()}
        ).encode()
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # drops the flock; the file stays (removing it would race)
            self.fd = None


def _holder(fd: int) -> str:
    """'pid 1234, https://127.0.0.1:6060' from a lock file another server holds."""
    info: dict[str, object] = {}
    for _ in range(25):  # the holder may be rewriting it this very moment
        try:
            raw = os.pread(fd, 4096, 0)
            loaded = json.loads(raw)
            if isinstance(loaded, dict):
                info = loaded
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    pid = info.get("pid")
    url = info.get("url")
    who = f"pid {pid}" if isinstance(pid, int) else "pid unknown"
    return f"{who}, {url}" if isinstance(url, str) else f"{who}, still starting"


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (ValueError, OSError):
        return False


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


async def _serve(settings: Settings, opts: ServeOptions) -> None:
    # The lock comes first: a second server must not touch the token, the TLS files, the
    # database or the connection file of the one that is running.
    state_dir = prepare_state_dir(settings.state_dir)
    lock = StateLock.acquire(state_dir)
    try:
        await _serve_locked(settings, opts, state_dir, lock)
    finally:
        lock.release()


async def _serve_locked(
    settings: Settings, opts: ServeOptions, state_dir: Path, lock: StateLock
) -> None:
    host = opts.host or settings.SERVER_host
    port = settings.frontend_port if opts.port is None else opts.port
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
    cluster = settings.RUNNER_executor != "local"
    if cluster and (opts.fake_gpus is not None or opts.gpus is not None):
        raise ConfigError(
            f"--fake-gpus and --gpus are for the local executor; with {settings.RUNNER_executor!r}"
            " the GPUs are those of the cluster's nodes"
        )
    backend = None if cluster else choose_gpu_backend(opts, state_dir)
    store = Store(state_dir / "ant.db")
    try:
        # The server id marks every task process (ANT_SERVER_ID): it is how ANT finds them
        # again after a restart, and tells them from another ANT's on the same machine.
        executor = create_executor(settings, store.server_id)
        # A cluster executor brings its own GPUs: those of its nodes, read where they are.
        own_gpus = getattr(executor, "gpu_backend", None)
        if own_gpus is not None:
            backend = own_gpus()
        engine = Engine(settings, store, executor, backend)
        # Started before the port opens, so a failure (a database locked for too long) is one
        # clear line, and requests never meet a half-recovered engine.
        await engine.start()
    except BaseException:
        store.close()
        raise
    # What start-up made (modules, classes, the recovered queue) lives as long as the server: a
    # full garbage collection need not walk it again each time, which shortens its pauses.
    gc.freeze()
    scheme = "https" if opts.tls else "http"
    url = f"{scheme}://{_display_host(host)}:{port}"
    app = create_app(engine, token=token, tls=opts.tls, manage_engine=False)
    common: dict[str, Any] = dict(
        log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        lifespan="on",
        **common,
    )
    server = PortServer(config)
    # The same app on <state dir>/ant.sock, for `ant` commands on this machine (bind_unix_socket):
    # opened once the port listens, closed when the port's server stops.
    local = LocalServer(uvicorn.Config(app, lifespan="off", **common))
    local_path = state_dir.resolve() / UNIX_SOCKET
    local_run: asyncio.Task[None] | None = None

    async def serve_locally() -> Path | None:
        """Listen on the Unix socket; its path once it listens, None if it cannot."""
        nonlocal local_run
        sock = bind_unix_socket(local_path)
        if sock is None:
            return None
        local_run = asyncio.create_task(local.serve(sockets=[sock]))
        while not local.started and not local_run.done():
            await asyncio.sleep(0.01)
        return local_path if local.started else None

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        unix_socket = await serve_locally()
        local_url = f"{scheme}://127.0.0.1:{port}" if host in ("0.0.0.0", "::") else url
        lock.record(local_url)
        write_connection_file(state_dir, local_url, token, cert, unix_socket)
        summary = ", ".join(f"{v} {k}" for k, v in engine.recovery_summary.items() if v)
        gpus = len(engine.gpus)
        _say(f"ANT {__version__} serving {gpus} GPU(s) on {url} (state in {state_dir})")
        if summary:
            _say(f"recovered from the last run: {summary}")
        if _stdout_is_terminal():
            print(f"    Open in a browser: {url}/?token={token}", flush=True)
            if local_url != url:
                print(f"                   or {local_url}/?token={token}", flush=True)
        else:
            # A log file or a pipe is no place for the token: say how to get the URL instead.
            _say("web UI login URL: run `ant login-url` (the token is only printed to a terminal)")
        if local_run is not None:
            while not server.should_exit:  # a signal: both servers shut down, at the same time
                await asyncio.sleep(0.1)
            local.should_exit = True

    async def end_streams_on_exit() -> None:
        # A signal makes uvicorn wait for open responses before it stops: event streams never
        # end on their own, and cancelling them after the grace printed an ASGI traceback.
        while not server.should_exit:
            await asyncio.sleep(0.1)
        engine.events.close()

    announcer = asyncio.create_task(announce())
    stream_closer = asyncio.create_task(end_streams_on_exit())
    try:
        await server.serve()
    finally:
        announcer.cancel()
        stream_closer.cancel()
        if local_run is not None:
            local.should_exit = True
            await _stop_local(local_run, local_path)
        _say(f"stopped: {await engine.stop()}")
        store.close()
    if not server.started:
        raise ConfigError(f"could not listen on {host}:{port} (in use or not permitted?)")


async def _stop_local(run: asyncio.Task[None], path: Path) -> None:
    """Wait for the Unix socket's server to end, then remove the socket file (no other server
    can have made a new one meanwhile: this one holds the state lock until it exits)."""
    try:
        await run
    except Exception as exc:
        _say(f"warning: the server on {path} failed: {exc}")
    with contextlib.suppress(OSError):
        os.unlink(path)


def run_server(opts: ServeOptions) -> int:
    """Entry point of `ant serve` / `python run.py`. Returns the process exit code."""
    warnings.showwarning = lambda message, *args, **kwargs: _say(f"warning: {message}")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it with the previous handler in
    # place; a no-op handler makes that a clean exit (status 0) after the shutdown message.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        settings = load_settings(opts.config)
        overrides = {
            "RUNNER_executor": opts.executor,
            "RAY_address": opts.ray_address,
            "STATE_dir": opts.state_dir,
        }
        chosen = {key: value for key, value in overrides.items() if value is not None}
        if chosen:
            settings = settings.replace(**chosen)
        asyncio.run(_serve(settings, opts))
    except AntError as exc:  # a bad config, a locked or unusable database, ...
        _say(f"error: {exc.message}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
