"""A typed, synchronous HTTP client for the ANT API (used by the CLI, tests and agents).

Finding the server: explicit url/token, else ANT_URL/ANT_TOKEN, else the connection file that
`ant serve` writes (`./ant_runner_logs/connection.json`, then `~/.config/ant/connection.json`).
A self-signed certificate named in that file is pinned: it is the only certificate trusted.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ant_scheduler.wire import (
    GpuOut,
    LogOut,
    RecoveryOut,
    ServerInfo,
    TaskOut,
    TerminalOut,
    parse,
)

CONNECTION_FILE = "connection.json"


class ClientError(Exception):
    """An error answer from the server, or no answer at all. `code` is the API's error code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ConnectionFailed(ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("connection_failed", message)


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    cert_path: str | None = None
    source: str = "arguments"


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: Any


def connection_candidates(cwd: Path | None = None) -> list[Path]:
    base = cwd or Path.cwd()
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [
        base / "ant_runner_logs" / CONNECTION_FILE,
        base / CONNECTION_FILE,
        home / "ant" / CONNECTION_FILE,
    ]


def find_connection(
    url: str | None = None, token: str | None = None, cwd: Path | None = None
) -> Connection:
    """Resolve where the server is and how to authenticate, in the documented order."""
    url = url or os.environ.get("ANT_URL") or None
    token = token or os.environ.get("ANT_TOKEN") or None
    for path in connection_candidates(cwd):
        if not path.is_file():
            continue
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            raise ConnectionFailed(
                f"{path} is not an ANT connection file (no server URL in it); delete it or "
                "pass --url"
            )
        if url is not None and url.rstrip("/") != str(info.get("url", "")).rstrip("/"):
            continue  # a file for another server: do not mix its token or certificate in
        saved_token, cert = info.get("token"), info.get("cert_path")
        return Connection(
            url=url or info["url"],
            token=token or (saved_token if isinstance(saved_token, str) else None),
            cert_path=cert if isinstance(cert, str) else None,
            source=str(path),
        )
    if url is None:
        raise ConnectionFailed(
            "no ANT server configured: pass --url or set ANT_URL, or run inside a directory "
            "where `ant serve` runs (it writes ant_runner_logs/connection.json)"
        )
    return Connection(url=url, token=token, source="environment")


def _verify_for(conn: Connection) -> ssl.SSLContext | bool:
    if not conn.url.startswith("https"):
        return True
    if conn.cert_path and Path(conn.cert_path).is_file():
        return ssl.create_default_context(cafile=conn.cert_path)  # pin: trust this cert only
    return True


class Client:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, verify=verify, timeout=timeout
        )

    @classmethod
    def discover(
        cls, url: str | None = None, token: str | None = None, cwd: Path | None = None
    ) -> Client:
        conn = find_connection(url, token, cwd)
        return cls(conn.url, conn.token, verify=_verify_for(conn))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach ANT at {self.url}: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(
                "bad_response",
                f"{self.url} answered {path} with something other than JSON; is it an ANT server?",
                response.status_code,
            ) from None

    def _stream(
        self, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> Iterator[SseEvent]:
        try:
            with self._http.stream(
                "GET", path, params=params, headers=headers, timeout=httpx.Timeout(30, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(response)
                yield from _parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise ConnectionFailed(
                f"lost connection to ANT at {self.url}: {_reason(exc)}"
            ) from None

    # ---------------------------------------------------------------- API

    def health(self) -> dict[str, str]:
        data: dict[str, str] = self._json("GET", "/api/")
        return data

    def server_info(self) -> ServerInfo:
        return parse(ServerInfo, self._json("GET", "/api/v1/server"))

    def submit(
        self,
        command: str,
        *,
        mode: str = "single",
        n_gpus: int | None = None,
        task_id: str | None = None,
        env: dict[str, str] | None = None,
        priority: int = 0,
    ) -> list[TaskOut]:
        body: dict[str, Any] = {"command": command, "mode": mode, "priority": priority}
        if n_gpus is not None:
            body["n_gpus"] = n_gpus
        if task_id is not None:
            body["task_id"] = task_id
        if env:
            body["env"] = env
        data = self._json("POST", "/api/v1/tasks", json=body)
        return [parse(TaskOut, t) for t in data["tasks"]]

    def list_tasks(
        self,
        *,
        states: list[str] | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[TaskOut], int]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if states:
            params["state"] = ",".join(states)
        if q:
            params["q"] = q
        data = self._json("GET", "/api/v1/tasks", params=params)
        return [parse(TaskOut, t) for t in data["tasks"]], int(data["total"])

    def get_task(self, task_id: str) -> TaskOut:
        return parse(TaskOut, self._json("GET", f"/api/v1/tasks/{_q(task_id)}"))

    def delete_task(self, task_id: str) -> None:
        self._request("DELETE", f"/api/v1/tasks/{_q(task_id)}")

    def kill(self, task_id: str) -> TaskOut:
        return parse(TaskOut, self._json("POST", f"/api/v1/tasks/{_q(task_id)}/kill"))

    def restart(self, task_id: str) -> TaskOut:
        return parse(TaskOut, self._json("POST", f"/api/v1/tasks/{_q(task_id)}/restart"))

    def promote(self, task_id: str) -> TaskOut:
        return parse(TaskOut, self._json("POST", f"/api/v1/tasks/{_q(task_id)}/promote"))

    def log(self, task_id: str, lines: int | None = None) -> LogOut:
        params = {"lines": lines} if lines is not None else {}
        data = self._json("GET", f"/api/v1/tasks/{_q(task_id)}/log", params=params)
        return parse(LogOut, data)

    def full_log(self, task_id: str) -> bytes:
        path = f"/api/v1/tasks/{_q(task_id)}/log"
        return self._request("GET", path, params={"full": "true"}).content

    def terminal(self, task_id: str, lines: int | None = None) -> TerminalOut:
        params = {"lines": lines} if lines is not None else {}
        data = self._json("GET", f"/api/v1/tasks/{_q(task_id)}/terminal", params=params)
        return parse(TerminalOut, data)

    def follow_log(self, task_id: str, offset: int | None = None) -> Iterator[SseEvent]:
        """`output` events ({text, offset}) as the log grows, then `end` ({state, exit_code})."""
        params = {"offset": offset} if offset is not None else {}
        yield from self._stream(f"/api/v1/tasks/{_q(task_id)}/log/stream", params, {})

    def gpus(self) -> list[GpuOut]:
        return [parse(GpuOut, g) for g in self._json("GET", "/api/v1/gpus")]

    def set_gpu(self, index: int, enabled: bool) -> GpuOut:
        data = self._json("PATCH", f"/api/v1/gpus/{index}", json={"enabled": enabled})
        return parse(GpuOut, data)

    def recovery(self) -> RecoveryOut:
        return parse(RecoveryOut, self._json("GET", "/api/v1/recovery"))

    def restore(self, task_ids: list[str]) -> list[TaskOut]:
        data = self._json("POST", "/api/v1/recovery/restore", json={"task_ids": task_ids})
        return [parse(TaskOut, t) for t in data["tasks"]]

    def forget(self, task_id: str) -> None:
        self._request("DELETE", f"/api/v1/recovery/{_q(task_id)}")

    def doctor(self) -> dict[str, Any]:
        """The server's self-check: store vs memory vs live processes."""
        data: dict[str, Any] = self._json("GET", "/api/v1/doctor")
        return data

    def events(self, last_event_id: str | None = None) -> Iterator[SseEvent]:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        yield from self._stream("/api/v1/events", {}, headers)


def _q(task_id: str) -> str:
    """One URL path segment; dots are escaped so '..' can never climb the path."""
    return quote(task_id, safe="").replace(".", "%2E") or "%20"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _error_from(response: httpx.Response) -> ClientError:
    try:
        err = response.json()["error"]
        return ClientError(str(err["code"]), str(err["message"]), response.status_code)
    except (ValueError, KeyError, TypeError):
        return ClientError("http_error", f"HTTP {response.status_code}", response.status_code)


def _parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or "event" in fields:
                raw = "\n".join(data)
                try:
                    payload = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    payload = raw
                yield SseEvent(fields.get("id"), fields.get("event", "message"), payload)
            fields, data = {}, []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "data":
                data.append(value)
            else:
                fields[key] = value
