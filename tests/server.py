"""AntServer: runs the real `ant serve` in a subprocess for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class AntServer:
    def __init__(
        self,
        *,
        workdir: Path,
        fake_gpus: int | None = 4,
        config: dict[str, Any] | None = None,
        tls: bool = False,
        extra_args: list[str] | None = None,
        token: str | None = TOKEN,
    ) -> None:
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.port = free_port()
        self.tls = tls
        self.token = token
        cfg = {
            "LOGGER_log_dir": str(self.log_dir),
            "LOGGER_log_to_stdout": False,
            "RUNNER_kill_grace_seconds": 2,
            "step_interval": 0.2,
            "MONITORING_refresh_interval": 0.5,
        }
        cfg.update(config or {})
        self.config_path = workdir / "config.json"
        self.config_path.write_text(json.dumps(cfg))
        self.args = [
            sys.executable,
            "-m",
            "ant_scheduler",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--config",
            str(self.config_path),
        ]
        if fake_gpus is not None:
            self.args += ["--fake-gpus", str(fake_gpus)]
        if not tls:
            self.args.append("--no-tls")
        self.args += extra_args or []
        self.proc: subprocess.Popen[str] | None = None
        self.output_path = workdir / f"server-{self.port}.out"

    @property
    def state_dir(self) -> Path:
        """Where its database lives (STATE_dir, else the log directory, as in Settings)."""
        state = json.loads(self.config_path.read_text()).get("STATE_dir")
        return Path(state) if state else self.log_dir

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> AntServer:
        env = dict(os.environ)
        env["XDG_CONFIG_HOME"] = str(self.workdir / ".config")  # keep the user's home clean
        env.pop("ANT_TOKEN", None)
        if self.token is not None:
            env["ANT_TOKEN"] = self.token
        for _ in range(5):
            out = self.output_path.open("a")
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = httpx.get(self.url + "/api/", verify=False, timeout=1)
                    # Ours, not another test's server: the port free_port() gave can be taken by
                    # another worker's server before ours binds it, and that one answers too.
                    if r.status_code == 200 and self._listening():
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError(f"ant serve did not come up:\n{self.output()}")
            if "in use" not in self.output():
                raise RuntimeError(f"ant serve exited early:\n{self.output()}")
            self._new_port()  # lost the race for the port: again on another
        raise RuntimeError(f"ant serve found no free port:\n{self.output()}")

    def _listening(self) -> bool:
        """Whether this server's own process listens on the port."""
        assert self.proc is not None
        try:
            conns = psutil.Process(self.proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in conns)

    def _new_port(self) -> None:
        old = str(self.port)
        self.port = free_port()
        self.args = [str(self.port) if a == old else a for a in self.args]

    def output(self) -> str:
        return self.output_path.read_text() if self.output_path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, verify=False, timeout=30, **kwargs)

    def task_pids(self) -> list[int]:
        """Pids of every process started by this server (its children's process trees)."""
        if self.proc is None:
            return []
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def sigterm(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, kill_tasks: bool = True) -> None:
        """End the server and (for test hygiene) every task process group it may have left."""
        groups: set[int] = set()
        if kill_tasks and self.proc is not None:
            for pid in self.task_pids():
                try:
                    groups.add(os.getpgid(pid))
                except OSError:
                    pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # Never our own group: the server is not in a session of its own, so a child caught
        # between its fork and its setsid is still in it (a CI run was SIGKILLed once, at 9 %).
        groups.discard(os.getpgrp())
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass


def wait_for(predicate: Any, timeout: float = 15, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return its value. Raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
