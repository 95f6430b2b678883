"""A typed, synchronous HTTP client for the ANT API (used by the CLI, tests and agents).

Finding the server: explicit url/token, else ANT_URL/ANT_TOKEN, else the connection file that
`ant serve` writes (`./ant_runner_logs/connection.json`, then `~/.config/ant/connection.json`).
A self-signed certificate named in that file is pinned: it is the only certificate trusted. The
server's local socket named there (`unix_socket`) is preferred to the URL: plain HTTP to a socket
only its user can open, no TLS to set up (~15 ms of a command: importing ssl, its context, the
handshake).

Light on purpose, since every `ant` command is a Python start-up plus this module: the standard
library only, nothing of the server (no pydantic, FastAPI, httpx), no typing, dataclasses or
pathlib, and what is not needed at once is imported when first used: `socket` on the first
request, `ssl` for https over TCP only, the answers' dataclasses (wire.py) with the first answer
read into them (`submit_json` needs none). HTTP/1.1 is spoken over one persistent connection
by the few lines of `_Connection` (a request, then a body framed by Content-Length, chunks, or the
end of the connection): `http.client` would cost ~15 ms of imports (`email.*`) for the same.
"""

from __future__ import annotations

import json
import os
import stat
import time

from ant_scheduler import __version__

# typing.TYPE_CHECKING without importing typing (~2 ms, at every `ant` command); mypy reads a
# name TYPE_CHECKING the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Callable, Generator, Iterator
    from typing import Any, BinaryIO, TypeVar
    from urllib.parse import SplitResult

    from ant_scheduler.wire import (
        BulkOut,
        GpuOut,
        HealthOut,
        ImportOut,
        LogOut,
        QueueOut,
        RecoveryOut,
        ServerInfo,
        TagsOut,
        TaskOut,
        TerminalOut,
    )

    T = TypeVar("T")

CONNECTION_FILE = "connection.json"

_MAX_LINE = 65536  # longest status, header or chunk-size line accepted
_MAX_HEADERS = 100
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE", "PUT", "OPTIONS"})


class ClientError(Exception):
    """An error answer from the server, or no answer at all. `code` is the API's error code."""

    code: str

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ConnectionFailed(ClientError):
    """No answer: the server cannot be reached, its certificate is not the pinned one, no server is
    configured, or the connection broke."""

    code = "connection_failed"

    def __init__(self, message: str) -> None:
        super().__init__(ConnectionFailed.code, message)


class BadResponse(ClientError):
    """An answer that is not ANT's: not HTTP, not JSON, or JSON of another shape."""

    code = "bad_response"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(BadResponse.code, message, status)


class _Record:
    """A few named, read-only fields with a repr and equality: what `@dataclass(frozen=True)`
    gave, without importing dataclasses (with inspect, ~5 ms) into every `ant` command."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, *values: Any) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")


class Connection(_Record):
    """Where the server is and how to authenticate: what find_connection resolved.
    `unix_socket`: the server's local socket (its connection file's), preferred to the URL."""

    __slots__ = ("url", "token", "cert_path", "source", "unix_socket")  # noqa: RUF023  (in order)
    url: str
    token: str | None
    cert_path: str | None
    source: str
    unix_socket: str | None

    def __init__(
        self,
        url: str,
        token: str | None,
        cert_path: str | None = None,
        source: str = "arguments",
        unix_socket: str | None = None,
    ) -> None:
        super().__init__(url, token, cert_path, source, unix_socket)


class SseEvent(_Record):
    """One server-sent event: its id, its type (`event:`) and its data, read as JSON."""

    __slots__ = ("id", "event", "data")  # noqa: RUF023  (the fields, in order)
    id: str | None
    event: str
    data: Any

    def __init__(self, id: str | None, event: str, data: Any) -> None:
        super().__init__(id, event, data)


def connection_candidates(cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """Where connection files are looked for, in order (os.path, not pathlib: ~2 ms less)."""
    base = os.fspath(cwd) if cwd is not None else os.getcwd()
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [
        os.path.join(base, "ant_runner_logs", CONNECTION_FILE),
        os.path.join(base, CONNECTION_FILE),
        os.path.join(home, "ant", CONNECTION_FILE),
    ]


def find_connection(
    url: str | None = None, token: str | None = None, cwd: str | os.PathLike[str] | None = None
) -> Connection:
    """Resolve where the server is and how to authenticate, in the documented order."""
    url = url or os.environ.get("ANT_URL") or None
    token = token or os.environ.get("ANT_TOKEN") or None
    for path in connection_candidates(cwd):
        if not os.path.isfile(path):
            continue
        try:
            with open(path) as file:
                info = json.loads(file.read())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            raise ConnectionFailed(
                f"{path} is not an ANT connection file (no server URL in it); delete it or "
                "pass --url"
            )
        if url is not None and url.rstrip("/") != str(info.get("url", "")).rstrip("/"):
            continue  # a file for another server: do not mix its token or certificate in
        saved_token, cert, unix = info.get("token"), info.get("cert_path"), info.get("unix_socket")
        return Connection(
            url=url or info["url"],
            token=token or (saved_token if isinstance(saved_token, str) else None),
            cert_path=cert if isinstance(cert, str) else None,
            source=path,
            unix_socket=unix if isinstance(unix, str) else None,
        )
    if url is None:
        raise ConnectionFailed(
            "no ANT server configured: pass --url or set ANT_URL, or run inside a directory "
            "where `ant serve` runs (it writes ant_runner_logs/connection.json)"
        )
    return Connection(url=url, token=token, source="environment")


def _verify_for(conn: Connection) -> str | bool:
    if not conn.url.startswith("https"):
        return True
    if conn.cert_path and os.path.isfile(conn.cert_path):
        return conn.cert_path  # pinned: the only certificate trusted
    return True


class _PlainUrl(_Record):
    """The parts of a URL Client reads, as urllib.parse.SplitResult has them."""

    __slots__ = ("scheme", "netloc", "hostname", "port", "path")  # noqa: RUF023  (in order)
    scheme: str
    netloc: str
    hostname: str
    port: int | None
    path: str


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")
_PATH_CHARS = _HOST_CHARS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ/~")


def _split_url(url: str) -> _PlainUrl | SplitResult:
    """`url` split as urllib.parse.urlsplit does. A URL written plainly, as `ant serve` writes
    them (`http[s]://host[:port][/path]`: a lower-case host name or address, a port of at most 5
    digits, a path of letters, digits and `/._~-`), is split here: those are read alike, and
    importing urllib.parse (with ipaddress) would cost every command ~2 ms. Any other goes to
    urllib.parse."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    host, colon, port = netloc.partition(":")
    plain_port = not colon or (port.isascii() and port.isdigit() and len(port) <= 5)
    if (
        sep
        and scheme in ("http", "https")
        and host
        and _HOST_CHARS.issuperset(host)
        and plain_port
        and (not colon or int(port) <= 65535)
        and _PATH_CHARS.issuperset(path)
    ):
        return _PlainUrl(scheme, netloc, host, int(port) if colon else None, slash + path)
    from urllib.parse import urlsplit

    return urlsplit(url)


class Client:
    """The API as typed calls: answers are the dataclasses of wire.py, errors are ClientError.

    One kept connection for requests; each stream (events, follow_log) opens its own, so a stream
    can be read while requests are made. Not thread-safe: one Client per thread.

    `verify` (https): True for the system's trusted CAs, a CA file (PEM) to trust only the
    certificates it holds (the server's own, pinned), or an ssl.SSLContext. `unix_socket`: the
    server's local socket (`ant serve` names it in its connection file), used instead of the
    URL's host and port whenever it is a socket of this user's that accepts the connection.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        verify: ssl.SSLContext | str | bool = True,
        timeout: float = 30.0,
        unix_socket: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        parts = _split_url(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionFailed(f"{url!r} is not an http:// or https:// URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ConnectionFailed(f"{url!r} has an invalid port") from None
        self._host, self._port, self._prefix = parts.hostname, port, parts.path.rstrip("/")
        self._tls = parts.scheme == "https"
        self._verify = verify
        self._unix_socket = unix_socket
        self._context: ssl.SSLContext | None = None
        self._timeout = timeout
        host = parts.netloc.rpartition("@")[2]
        self._headers = f"Host: {host}\r\nUser-Agent: ant/{__version__}\r\n"
        if token:
            if not token.isprintable():
                from ant_scheduler.core.errors import WrongToken

                raise ClientError(WrongToken.code, "the token has a control character in it")
            self._headers += f"Authorization: Bearer {token}\r\n"
        self._conn: _Connection | None = None

    @classmethod
    def discover(
        cls,
        url: str | None = None,
        token: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> Client:
        conn = find_connection(url, token, cwd)
        return cls(conn.url, conn.token, verify=_verify_for(conn), unix_socket=conn.unix_socket)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport

    def _connection(self) -> _Connection:
        if self._unix_socket is not None:
            sock = _connect_unix(self._unix_socket, self._timeout)
            if sock is not None:
                return _Connection(self._host, self._port, None, self._timeout, sock)
        # Over TCP (TLS for https): ssl is imported, and the context made, only now.
        if self._tls and self._context is None:
            self._context = _ssl_context(self._verify)
        return _Connection(self._host, self._port, self._context, self._timeout)

    def _head(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
    ) -> bytes:
        if params:
            from urllib.parse import urlencode

            path += f"?{urlencode(params, doseq=True)}"
        target = self._prefix + path
        head = f"{method} {target} HTTP/1.1\r\n{self._headers}"
        for key, value in (headers or {}).items():
            head += f"{key}: {value}\r\n"
        data = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Length: {len(data)}\r\n"
        return head.encode("latin-1", "backslashreplace") + b"\r\n" + data

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, bytes]:
        """One request on the kept connection: (status, body). Errors raise ClientError."""
        request = self._head(method, path, params, body, None)
        for attempt in (1, 2):
            conn = self._conn
            reused = conn is not None and conn.idle_and_open()
            if conn is not None and not reused:
                conn.close()
            if not reused:
                conn = self._conn = self._connection()
            assert conn is not None
            try:
                conn.send(request)
                status, headers = conn.read_head()
            except (OSError, UnicodeError, _NoAnswer) as exc:
                self.close()
                # A kept connection the server closed meanwhile: open a new one and try again,
                # when sending the request twice cannot do anything twice.
                unsent = isinstance(exc, _NoAnswer) and exc.unsent
                again = unsent or (method in _IDEMPOTENT and not isinstance(exc, TimeoutError))
                if reused and attempt == 1 and again:
                    continue
                raise ConnectionFailed(f"cannot reach ANT at {self.url}: {_reason(exc)}") from None
            except BadResponse:
                self.close()
                raise
            try:
                data = b"".join(conn.body(method, status, headers))
            except (OSError, _NoAnswer) as exc:
                self.close()
                raise ConnectionFailed(
                    f"lost connection to ANT at {self.url}: {_reason(exc)}"
                ) from None
            except BadResponse:
                self.close()
                raise
            if not conn.reusable:
                self.close()
            if status >= 400:
                raise _error_from(status, data)
            return status, data
        raise AssertionError("unreachable")

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        status, data = self._request(method, path, params=params, body=body)
        try:
            return json.loads(data)
        except ValueError:
            raise BadResponse(
                f"{self.url} answered {path} with something other than JSON; is it an ANT server?",
                status,
            ) from None

    def _read(self, path: str, convert: Callable[[], T]) -> T:
        """An answer as the dataclasses of wire.py; another shape is a BadResponse."""
        try:
            return convert()
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            detail = _reason(exc)
            raise BadResponse(
                f"{self.url} answered {path} in a shape ant cannot read ({type(exc).__name__}: "
                f"{detail[:200]}); is it an ANT server?"
            ) from exc

    def _stream(
        self,
        path: str,
        params: dict[str, Any],
        headers: dict[str, str],
        until: float | None = None,
    ) -> Generator[SseEvent, None, None]:
        """Server-sent events, on a connection of their own (the stream holds it until it ends).

        With `until` (a time.monotonic() deadline) the stream stops quietly at that time."""
        conn = self._connection()
        try:
            try:
                conn.send(self._head("GET", path, params, None, headers))
                status, head = conn.read_head()
            except (OSError, UnicodeError, _NoAnswer) as exc:
                raise ConnectionFailed(f"cannot reach ANT at {self.url}: {_reason(exc)}") from None
            try:
                if status >= 400:
                    raise _error_from(status, b"".join(conn.body("GET", status, head)))
                pieces = conn.body("GET", status, head, stream=True, until=until)
                yield from _parse_sse(_lines(pieces))
            except (OSError, _NoAnswer) as exc:
                raise ConnectionFailed(
                    f"lost connection to ANT at {self.url}: {_reason(exc)}"
                ) from None
        finally:
            conn.close()

    # ---------------------------------------------------------------- API

    def health(self) -> dict[str, str]:
        data = self._json("GET", "/api/")

        def check() -> dict[str, str]:
            return {"status": str(data["status"]), "version": str(data["version"])}

        return self._read("/api/", check)

    def health_detail(self) -> HealthOut:
        """GET /api/v1/health: can the executor start tasks, and the nodes (token needed)."""
        from ant_scheduler.wire import HealthOut, parse

        data = self._json("GET", "/api/v1/health")
        return self._read("/api/v1/health", lambda: parse(HealthOut, data))

    def server_info(self) -> ServerInfo:
        from ant_scheduler.wire import ServerInfo, parse

        data = self._json("GET", "/api/v1/server")
        return self._read("/api/v1/server", lambda: parse(ServerInfo, data))

    def submit(
        self,
        command: str,
        *,
        mode: str = "single",
        n_gpus: int | None = None,
        task_id: str | None = None,
        env: dict[str, str] | None = None,
        priority: int = 0,
        n_nodes: int | None = None,
        timeout: float | None = None,
        notify: str | None = None,
        retries: int | None = None,
        retry_on: list[str] | None = None,
        retry_backoff: float | None = None,
        after: list[str] | None = None,
        tags: list[str] | None = None,
        gpu_mem: int | str | None = None,
    ) -> list[TaskOut]:
        body = _submission(
            command, mode, n_gpus, task_id, env, priority, n_nodes, timeout, notify, after, tags
        )
        retry = {"retries": retries, "retry_on": retry_on, "retry_backoff": retry_backoff}
        body.update({k: v for k, v in retry.items() if v is not None})
        if gpu_mem is not None:
            body["gpu_mem"] = gpu_mem
        data = self._json("POST", "/api/v1/tasks", body=body)
        return self._read("/api/v1/tasks", lambda: _tasks(data["tasks"]))

    def submit_json(
        self,
        command: str,
        *,
        mode: str = "single",
        n_gpus: int | None = None,
        task_id: str | None = None,
        env: dict[str, str] | None = None,
        priority: int = 0,
        n_nodes: int | None = None,
        timeout: float | None = None,
        notify: str | None = None,
        retries: int | None = None,
        retry_on: list[str] | None = None,
        retry_backoff: float | None = None,
        after: list[str] | None = None,
        tags: list[str] | None = None,
        gpu_mem: int | str | None = None,
    ) -> list[dict[str, Any]]:
        """`submit`, the new tasks given as `dataclasses.asdict` of each TaskOut: what `ant submit`
        prints. The server's answer is that already, so it is returned as it came, without loading
        wire.py (~9 ms); an answer of another shape is read as `submit` reads it."""
        body = _submission(
            command, mode, n_gpus, task_id, env, priority, n_nodes, timeout, notify, after, tags
        )
        retry = {"retries": retries, "retry_on": retry_on, "retry_backoff": retry_backoff}
        body.update({k: v for k, v in retry.items() if v is not None})
        if gpu_mem is not None:
            body["gpu_mem"] = gpu_mem
        data = self._json("POST", "/api/v1/tasks", body=body)
        items = data.get("tasks") if isinstance(data, dict) else None
        if isinstance(items, list) and all(map(_is_task_out, items)):
            return items
        import dataclasses

        tasks = self._read("/api/v1/tasks", lambda: _tasks(data["tasks"]))
        return [dataclasses.asdict(task) for task in tasks]

    def list_tasks(
        self,
        *,
        states: list[str] | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str | None = None,
        order: str | None = None,
        since: str | None = None,
        until: str | None = None,
        tags: list[str] | None = None,
        owner: str | None = None,
    ) -> tuple[list[TaskOut], int]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if owner:
            params["owner"] = owner
        if tags:
            params["tag"] = list(tags)  # repeated: tasks carrying all of them
        if states:
            params["state"] = ",".join(states)
        if q:
            params["q"] = q
        for name, value in (("sort", sort), ("order", order), ("since", since), ("until", until)):
            if value:
                params[name] = value
        data = self._json("GET", "/api/v1/tasks", params=params)
        return self._read("/api/v1/tasks", lambda: (_tasks(data["tasks"]), int(data["total"])))

    def get_task(self, task_id: str) -> TaskOut:
        path = f"/api/v1/tasks/{_q(task_id)}"
        data = self._json("GET", path)
        return self._read(path, lambda: _task(data))

    def delete_task(self, task_id: str) -> None:
        self._request("DELETE", f"/api/v1/tasks/{_q(task_id)}")

    def kill(self, task_id: str) -> TaskOut:
        return self._task_action(task_id, "kill")

    def restart(self, task_id: str, *, with_dependents: bool = False) -> TaskOut:
        """Queue a copy; `with_dependents`: its dependents wait for the copy, and its ended
        dependents are restarted too (transitively)."""
        if not with_dependents:
            return self._task_action(task_id, "restart")
        path = f"/api/v1/tasks/{_q(task_id)}/restart"
        data = self._json("POST", path, params={"with_dependents": "true"})
        return self._read(path, lambda: _task(data))

    def promote(self, task_id: str) -> TaskOut:
        return self._task_action(task_id, "promote")

    def move(
        self,
        task_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        to: str | None = None,
    ) -> TaskOut:
        """Move a queued task: before or after another queued task, or `to` "top"/"bottom"."""
        place = {"before": before, "after": after, "to": to}
        body = {k: v for k, v in place.items() if v is not None}
        return self._task_action(task_id, "move", body)

    def rename(self, task_id: str, new_id: str) -> TaskOut:
        return self._task_action(task_id, "rename", {"new_id": new_id})

    def _task_action(
        self, task_id: str, action: str, body: dict[str, Any] | None = None
    ) -> TaskOut:
        path = f"/api/v1/tasks/{_q(task_id)}/{action}"
        data = self._json("POST", path, body=body)
        return self._read(path, lambda: _task(data))

    def log(
        self, task_id: str, lines: int | None = None, *, rank: int = 0, attempt: int | None = None
    ) -> LogOut:
        """The last lines of the task's output (of one rank of a gang: 0 is the first node), of
        its current attempt or of the one asked for (a retried task keeps each one's log)."""
        from ant_scheduler.wire import LogOut, parse

        path = f"/api/v1/tasks/{_q(task_id)}/log"
        params: dict[str, Any] = {"lines": lines} if lines is not None else {}
        if rank:
            params["rank"] = rank
        if attempt is not None:
            params["attempt"] = attempt
        data = self._json("GET", path, params=params)
        return self._read(path, lambda: parse(LogOut, data))

    def full_log(self, task_id: str, *, rank: int = 0, attempt: int | None = None) -> bytes:
        path = f"/api/v1/tasks/{_q(task_id)}/log"
        params: dict[str, Any] = {"full": "true"}
        if rank:
            params["rank"] = rank
        if attempt is not None:
            params["attempt"] = attempt
        return self._request("GET", path, params=params)[1]

    def terminal(self, task_id: str, lines: int | None = None, *, rank: int = 0) -> TerminalOut:
        from ant_scheduler.wire import TerminalOut, parse

        path = f"/api/v1/tasks/{_q(task_id)}/terminal"
        params: dict[str, Any] = {"lines": lines} if lines is not None else {}
        if rank:
            params["rank"] = rank
        data = self._json("GET", path, params=params)
        return self._read(path, lambda: parse(TerminalOut, data))

    def follow_log(
        self, task_id: str, offset: int | None = None, *, rank: int = 0
    ) -> Generator[SseEvent, None, None]:
        """`output` events ({text, offset}) as the log grows, then `end` ({state, exit_code})."""
        params: dict[str, Any] = {"offset": offset} if offset is not None else {}
        if rank:
            params["rank"] = rank
        yield from self._stream(f"/api/v1/tasks/{_q(task_id)}/log/stream", params, {})

    def gpus(self) -> list[GpuOut]:
        from ant_scheduler.wire import GpuOut, parse

        data = self._json("GET", "/api/v1/gpus")
        return self._read("/api/v1/gpus", lambda: [parse(GpuOut, g) for g in data])

    def set_gpu(self, index: int | str, enabled: bool) -> GpuOut:
        """Enable or disable a GPU, by index (3) or label (`node-b:1`)."""
        from ant_scheduler.wire import GpuOut, parse

        path = f"/api/v1/gpus/{_q(str(index))}"
        data = self._json("PATCH", path, body={"enabled": enabled})
        return self._read(path, lambda: parse(GpuOut, data))

    def set_paused(self, paused: bool, tag: str | None = None) -> QueueOut:
        """Pause (start no queued task; running ones go on) or resume the queue, or only the
        queued tasks carrying `tag`."""
        from ant_scheduler.wire import QueueOut, parse

        path = "/api/v1/queue/pause" if paused else "/api/v1/queue/resume"
        data = self._json("POST", path, body=None if tag is None else {"tag": tag})
        return self._read(path, lambda: parse(QueueOut, data))

    def tag_action(self, tag: str, action: str) -> BulkOut:
        """kill, restart, delete or restore every task carrying `tag` (what it did: BulkOut)."""
        from ant_scheduler.wire import BulkOut, parse

        path = f"/api/v1/tags/{_q(tag)}/{action}"
        data = self._json("POST", path)
        return self._read(path, lambda: parse(BulkOut, data))

    def tags(self) -> TagsOut:
        from ant_scheduler.wire import TagsOut, parse

        data = self._json("GET", "/api/v1/tags")
        return self._read("/api/v1/tags", lambda: parse(TagsOut, data))

    def me(self) -> dict[str, Any]:
        """Who this client's token signs in as (wire.UserOut)."""
        return self._dict("GET", "/api/v1/me")

    def users(self) -> dict[str, Any]:
        """wire.UsersOut (an admin's command)."""
        return self._dict("GET", "/api/v1/users")

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        max_gpus: int | None = None,
        max_queued: int | None = None,
    ) -> dict[str, Any]:
        """wire.UserCreated: the new user with its token (shown this once)."""
        body = {"name": name, "admin": admin, "max_gpus": max_gpus, "max_queued": max_queued}
        return self._dict("POST", "/api/v1/users", body=body)

    def set_user(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change fields sent (max_gpus, max_queued: None removes the limit; admin; new_token)."""
        return self._dict("PATCH", f"/api/v1/users/{_q(name)}", body=changes)

    def remove_user(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/users/{_q(name)}")

    def usage(self, window: str = "7d", by: str = "user") -> dict[str, Any]:
        """wire.UsageOut: GPU-hours by user or tag over the window."""
        return self._dict("GET", "/api/v1/usage", params={"window": window, "by": by})

    def _dict(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        data = self._json(method, path, body=body, params=params)
        if not isinstance(data, dict):
            raise BadResponse(f"{self.url} answered {path} with {type(data).__name__}")
        return data

    def recovery(self) -> RecoveryOut:
        from ant_scheduler.wire import RecoveryOut, parse

        data = self._json("GET", "/api/v1/recovery")
        return self._read("/api/v1/recovery", lambda: parse(RecoveryOut, data))

    def restore(self, task_ids: list[str]) -> list[TaskOut]:
        path = "/api/v1/recovery/restore"
        data = self._json("POST", path, body={"task_ids": task_ids})
        return self._read(path, lambda: _tasks(data["tasks"]))

    def forget(self, task_id: str) -> None:
        self._request("DELETE", f"/api/v1/recovery/{_q(task_id)}")

    def import_ant1(self, content: str, base_dirs: list[str] | None = None) -> ImportOut:
        """Bring an ANT 1.1 recovery file's tasks in (its text; relative log file names are
        looked for under `base_dirs` on the server's machine)."""
        from ant_scheduler.wire import ImportOut, parse

        path = "/api/v1/import/ant1"
        data = self._json("POST", path, body={"content": content, "base_dirs": base_dirs or []})
        return self._read(path, lambda: parse(ImportOut, data))

    def backup(self, target: BinaryIO) -> int:
        """Write a consistent copy of the server's database (GET /api/v1/backup) into `target`,
        as it arrives; the number of bytes written."""
        path = "/api/v1/backup"
        conn = self._connection()
        try:
            try:
                conn.send(self._head("GET", path, None, None, None))
                status, head = conn.read_head()
                if status >= 400:
                    raise _error_from(status, b"".join(conn.body("GET", status, head)))
                written = 0
                for piece in conn.body("GET", status, head):
                    target.write(piece)
                    written += len(piece)
                return written
            except (OSError, UnicodeError, _NoAnswer) as exc:
                raise ConnectionFailed(f"cannot back up from {self.url}: {_reason(exc)}") from None
        finally:
            conn.close()

    def doctor(self) -> dict[str, Any]:
        """The server's self-check: store vs memory vs live processes."""
        data = self._json("GET", "/api/v1/doctor")
        if not isinstance(data, dict):
            raise BadResponse(f"{self.url} answered /api/v1/doctor with {type(data).__name__}")
        return data

    def events(
        self, last_event_id: str | None = None, *, until: float | None = None
    ) -> Generator[SseEvent, None, None]:
        """The live event stream (docs/api.md): `hello` or `resync` first, then task, queue and
        GPU events. With `until` (a time.monotonic() deadline) it ends quietly at that time."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        yield from self._stream("/api/v1/events", {}, headers, until=until)


# ------------------------------------------------------------------------------ HTTP/1.1


class _NoAnswer(Exception):
    """The connection ended before a whole answer arrived. `unsent`: the request was not sent."""

    def __init__(self, reason: str, unsent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsent = unsent


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    import ssl

    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)  # only the certificates of this file
    if verify:
        return ssl.create_default_context()  # the system's trusted CAs
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect_unix(path: str, timeout: float) -> socket.socket | None:
    """A connection to the server's Unix socket; None when there is none to use: not there (no
    server, or an older one), not a socket of this user's (only those are given the token), or
    nobody listening (a server that died): then the URL is used, as without one."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        return None
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


class _Connection:
    """One HTTP/1.1 connection: opened on the first send (unless given open: `sock`), kept open
    while answers allow it."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        timeout: float,
        sock: socket.socket | None = None,
    ) -> None:
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.sock: socket.socket | None = sock
        self.file: Any = None if sock is None else sock.makefile("rb")
        self.keep = False  # the server keeps the connection open after this answer
        self.reusable = False  # ... and the answer was read whole: the next request can follow

    def close(self) -> None:
        self.reusable = False
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def idle_and_open(self) -> bool:
        """Can the next request go on this connection? (Not if the server closed it meanwhile:
        an idle connection with something to read has been closed, or is broken.)"""
        if self.sock is None or not self.reusable:
            return False
        import select

        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def send(self, request: bytes) -> None:
        if self.sock is None:
            import socket

            # An ASCII host as bytes: str would load the IDNA codec (~2 ms) to say the same.
            host: Any = self.host.encode() if self.host.isascii() else self.host
            sock = socket.create_connection((host, self.port), timeout=self.timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.context is not None:
                    sock = self.context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
            self.sock, self.file = sock, sock.makefile("rb")
        self.reusable = False
        try:
            self.sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _NoAnswer(_reason(exc), unsent=True) from None

    def _line(self) -> bytes:
        line: bytes = self.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise BadResponse("the server sent a line too long for HTTP")
        return line

    def read_head(self) -> tuple[int, dict[str, str]]:
        """The status and headers (names in lower case) of the next answer, 1xx skipped."""
        while True:
            try:
                line = self._line()
            except ConnectionResetError as exc:
                raise _NoAnswer(_reason(exc)) from None
            if not line:
                raise _NoAnswer("the server closed the connection without answering")
            version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise BadResponse(f"not an HTTP answer: {line[:60]!r}; is it an ANT server?")
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS):
                line = self._line()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, sep, value = line.decode("latin-1").partition(":")
                if not sep:
                    raise BadResponse(f"not an HTTP header: {line[:60]!r}")
                name, value = name.strip().lower(), value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            else:
                raise BadResponse("the server sent too many headers")
            status = int(code)
            if 100 <= status < 200 and status != 101:
                continue
            closing = "close" in headers.get("connection", "").lower()
            self.keep = version == "HTTP/1.1" and not closing
            return status, headers

    def body(
        self,
        method: str,
        status: int,
        headers: dict[str, str],
        *,
        stream: bool = False,
        until: float | None = None,
    ) -> Iterator[bytes]:
        """The answer's body in pieces as they arrive. A `stream` waits as long as it takes for
        the next piece, or until `until` (a monotonic deadline): then the pieces stop quietly and
        the connection is not kept."""
        if method == "HEAD" or status in (204, 304):
            self.reusable = self.keep
            return
        if stream:
            self.keep = False
            if self.sock is not None:
                self.sock.settimeout(None)
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                yield from self._chunks(until)
            elif "content-length" in headers:
                try:
                    size = int(headers["content-length"])
                except ValueError:
                    raise BadResponse("the server sent a bad Content-Length") from None
                while size > 0:
                    self._deadline(until)
                    piece = self.file.read1(min(size, 1 << 20))
                    if not piece:
                        raise _NoAnswer("the answer was cut short")
                    size -= len(piece)
                    yield piece
            else:  # HTTP/1.0 style: the body ends with the connection
                self.keep = False
                while True:
                    self._deadline(until)
                    piece = self.file.read1(1 << 16)
                    if not piece:
                        break
                    yield piece
        except _Deadline:
            return
        except TimeoutError:
            if until is not None and time.monotonic() >= until:
                return
            raise
        self.reusable = self.keep

    def _chunks(self, until: float | None) -> Iterator[bytes]:
        while True:
            self._deadline(until)
            line = self._line()
            if not line:
                raise _NoAnswer("the answer was cut short")
            digits = line.split(b";", 1)[0].strip()
            if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                raise BadResponse(f"bad chunk size in the answer: {line[:30]!r}")
            size = int(digits, 16)
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            while size > 0:
                self._deadline(until)
                piece = self.file.read1(min(size, 1 << 20))
                if not piece:
                    raise _NoAnswer("the answer was cut short")
                size -= len(piece)
                yield piece
            self._line()  # the CRLF after the chunk

    def _deadline(self, until: float | None) -> None:
        """Make the next read give up at `until` (raises _Deadline once it has passed)."""
        if until is None or self.sock is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            raise _Deadline
        self.sock.settimeout(left)


class _Deadline(Exception):
    pass


# ------------------------------------------------------------------------------ helpers


def _dependency(item: str) -> dict[str, str]:
    """`train-3`, `train-3:any` -> {"task_id", "condition"} (the server checks both)."""
    task_id, _, condition = item.strip().partition(":")
    return {"task_id": task_id.strip(), "condition": condition.strip() or "ok"}


def _task(data: Any) -> TaskOut:
    from ant_scheduler.wire import TaskOut, parse

    return parse(TaskOut, data)


def _tasks(items: Any) -> list[TaskOut]:
    from ant_scheduler.wire import TaskOut, parse

    return [parse(TaskOut, t) for t in items]


def _submission(
    command: str,
    mode: str,
    n_gpus: int | None,
    task_id: str | None,
    env: dict[str, str] | None,
    priority: int,
    n_nodes: int | None,
    timeout: float | None = None,
    notify: str | None = None,
    after: list[str] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """The body of POST /api/v1/tasks. `after`: `ID[:ok|any|fail]` items."""
    body: dict[str, Any] = {"command": command, "mode": mode, "priority": priority}
    if n_gpus is not None:
        body["n_gpus"] = n_gpus
    if n_nodes is not None:
        body["n_nodes"] = n_nodes
    if timeout is not None:
        body["timeout"] = timeout
    if notify is not None:
        body["notify"] = notify
    if after:
        body["after"] = [_dependency(item) for item in after]
    if task_id is not None:
        body["task_id"] = task_id
    if env:
        body["env"] = env
    if tags:
        body["tags"] = tags
    return body


# TaskOut's fields (wire.py) in their order; a test keeps the two equal. parse(TaskOut, ...) takes
# each value as it is, but copies lists and dicts (None stays None) and makes `state` a TaskState.
_TASK_FIELDS = (
    "task_id",
    "command",
    "submitted",
    "n_gpus",
    "env",
    "state",
    "priority",
    "created_at",
    "workdir",
    "gpu_ids",
    "queue_seq",
    "started_at",
    "finished_at",
    "exit_code",
    "log_path",
    "pid",
    "handle",
    "session_id",
    "reason",
    "restarted_as",
    "n_nodes",
    "nodes",
    "timeout",
    "restarted_from",
    "notify",
    "retries",
    "retry_on",
    "retry_backoff",
    "attempt",
    "attempts",
    "retry_at",
    "after",
    "tags",
    "gpu_mem",
    "placement",
    "gpu_mem_over",
    "owner",
    "queue_position",
    "pending_reason",
    "gpu_mem_used",
    "lingering_processes",
    "copy_command",
)
_TASK_LISTS = ("gpu_ids", "nodes", "retry_on", "attempts", "after", "tags")
_TASK_DICTS = ("env", "handle")
_TASK_STATES = frozenset(
    {
        "queued",
        "held",
        "running",
        "succeeded",
        "failed",
        "killed",
        "lost",
        "timed_out",
        "dependency_failed",
    }
)


def _is_task_out(item: Any) -> bool:
    """Whether `item` (JSON) equals `dataclasses.asdict(parse(TaskOut, item))` as JSON: TaskOut's
    keys in TaskOut's order, a state TaskState knows, lists and objects where TaskOut has them."""
    if not isinstance(item, dict) or tuple(item) != _TASK_FIELDS:
        return False
    state = item["state"]
    if state is not None and not (isinstance(state, str) and state in _TASK_STATES):
        return False
    if item["attempts"]:  # each one a dataclass of its own: parse() reads them (a new task has
        return False  # none, so `ant submit` is not slowed)
    lists = all(item[name] is None or isinstance(item[name], list) for name in _TASK_LISTS)
    return lists and all(item[name] is None or isinstance(item[name], dict) for name in _TASK_DICTS)


def _q(task_id: str) -> str:
    """One URL path segment; dots are escaped so '..' can never climb the path."""
    from urllib.parse import quote

    return quote(task_id, safe="").replace(".", "%2E") or "%20"


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _error_from(status: int, body: bytes) -> ClientError:
    try:
        err = json.loads(body)["error"]
        return ClientError(str(err["code"]), str(err["message"]), status)
    except (ValueError, KeyError, TypeError):
        return ClientError("http_error", f"HTTP {status}", status)


def _lines(pieces: Iterator[bytes]) -> Iterator[str]:
    """Text lines of a byte stream, whatever way it is cut into pieces (\\n or \\r\\n ends)."""
    pending: list[bytes] = []
    for piece in pieces:
        start = 0
        while (end := piece.find(b"\n", start)) >= 0:
            pending.append(piece[start:end])
            line = b"".join(pending)
            pending = []
            yield line.removesuffix(b"\r").decode("utf-8", "replace")
            start = end + 1
        if start < len(piece):
            pending.append(piece[start:])
    if pending:
        yield b"".join(pending).decode("utf-8", "replace")


def _parse_sse(lines: Iterator[str]) -> Generator[SseEvent, None, None]:
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
