"""A real webhook receiver on 127.0.0.1 for the notification tests: an http.server in a thread
that records every POST, and answers as told (200, an error status, or not until released)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    status: int = 200  # what it answers
    hold: threading.Event | None = None  # answer only once this is set (a hung receiver)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str | None = None) -> list[Any]:
        with self.lock:
            return [r.body for r in self.received if path is None or r.path == path]

    def by_task(self, path: str | None = None) -> dict[str, Any]:
        return {b["task_id"]: b for b in self.bodies(path) if "task_id" in b}


@contextmanager
def webhook_receiver(status: int = 200, *, hang: bool = False) -> Iterator[Receiver]:
    release = threading.Event()
    receiver = Receiver(url="", status=status, hold=release if hang else None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with receiver.lock:
                receiver.received.append(
                    Received(self.path, dict(self.headers), json.loads(raw or b"null"))
                )
            if receiver.hold is not None:
                receiver.hold.wait(30)
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads what it received

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        release.set()
        server.shutdown()
        server.server_close()
