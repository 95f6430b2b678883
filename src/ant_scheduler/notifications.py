"""Delivers task-end notifications to webhooks without ever holding up the scheduler.

The scheduler hands each durable end to `Notifier.task_ended` (a few dict lookups on the loop);
a bounded queue holds what is to be sent, and WORKERS asyncio workers send it, each POST in a
daemon thread of its own (the stdlib's urllib: ANT adds no HTTP client for this; a daemon thread,
so a receiver that hangs never keeps ANT from exiting). A failed POST is
tried again after NOTIFY_backoff_seconds, doubled each time, NOTIFY_retries times, then given up;
every failed attempt is one line on the console (the URL masked). Counters go to the health.

Best effort, in memory: notifications waiting (or waiting to be retried) when ANT stops are not
sent — but for a short grace at the stop (STOP_GRACE at most), for those already queued.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ant_scheduler import __version__
from ant_scheduler.core.notification import TAIL_BYTES, body, log_tail, mask_url, wanted
from ant_scheduler.core.task import ENDED_STATES, Task
from ant_scheduler.executors.base import TaskOutput
from ant_scheduler.settings import Settings

WORKERS = 2  # POSTs at once: a slow receiver delays the other receivers' notifications less
STOP_GRACE = 5.0  # seconds a stopping ANT gives the queued notifications at most


@dataclass
class Delivery:
    url: str
    task: Task  # a copy, as it ended
    output: TaskOutput | None  # where the log's last lines are read from (in the thread)
    attempts: int = 0
    data: bytes | None = None  # the body, made at the first attempt


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answering with a redirect has not taken the POST: a failure, not a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Notifier:
    def __init__(
        self,
        settings: Settings,
        *,
        output: Callable[[Task], TaskOutput | None],
        say: Callable[[str], None],
        server: str | None = None,
    ) -> None:
        self.settings = settings
        self._output = output
        self._say = say
        self.server = server or socket.gethostname()
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(settings.NOTIFY_queue_size)
        self._waiting: dict[int, asyncio.TimerHandle] = {}  # retries due later, by delivery id
        self._workers: list[asyncio.Task[None]] = []
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._stopping = False
        self._sending = 0  # POSTs in flight
        self._dropping = False  # the last one was dropped: say so once per run of drops
        self.sent = 0
        self.failed = 0  # given up after every retry
        self.dropped = 0  # the queue was full
        self.last_error: str | None = None

    # ------------------------------------------------------------------ on the scheduler's side

    def task_ended(self, task: Task) -> None:
        """A task's end is durable: queue a notification for each webhook that wants it. Cheap
        and never blocking (the log is read later, in a thread)."""
        if task.state not in ENDED_STATES:
            return  # e.g. an attempt that will be retried: only the final end is told
        urls = []
        server_url = self.settings.NOTIFY_webhook_url
        if server_url and wanted(task.state, self.settings.NOTIFY_on, per_task=False):
            urls.append(server_url)
        if task.notify and task.notify not in urls:
            urls.append(task.notify)  # a task's own URL adds to the server's
        if not urls:
            return
        output = self._output(task) if task.handle is not None else None
        for url in urls:
            self._put(Delivery(url, task.copy(), output))

    def status(self) -> dict[str, Any]:
        """wire.NotificationsOut."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "pending": self._queue.qsize() + self._sending + len(self._waiting),
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    async def stop(self) -> None:
        """Send what is queued for NOTIFY_timeout_seconds, STOP_GRACE at most (retries are not
        waited for), then stop; say how many notifications were not sent."""
        grace = min(STOP_GRACE, self.settings.NOTIFY_timeout_seconds)
        self._stopping = True
        for timer in self._waiting.values():
            timer.cancel()
        lost = len(self._waiting)
        self._waiting.clear()
        if self._workers and (self._sending or not self._queue.empty()):
            try:
                await asyncio.wait_for(self._queue.join(), grace)  # in flight ones too
            except asyncio.TimeoutError:
                pass
        lost += self._queue.qsize() + self._sending
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if lost:
            self._say(
                f"{lost} notification(s) not sent: ANT stopped (they are kept in memory only)"
            )

    # ------------------------------------------------------------------ delivery

    def _put(self, delivery: Delivery) -> None:
        try:
            self._queue.put_nowait(delivery)
            self._dropping = False
        except asyncio.QueueFull:
            self.dropped += 1
            size = self.settings.NOTIFY_queue_size
            self.last_error = f"{size} notifications were waiting (NOTIFY_queue_size): dropped"
            if not self._dropping:  # a burst of ends to a dead receiver: one line, not thousands
                self._dropping = True
                self._say(
                    f"notification of task {delivery.task.task_id!r} to "
                    f"{mask_url(delivery.url)} dropped, and the next ones until there is room: "
                    f"{size} are waiting already (NOTIFY_queue_size; `ant health` counts them)"
                )

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            self._sending += 1
            try:
                error = await self._in_thread(delivery)
            finally:
                self._sending -= 1
                self._queue.task_done()
            delivery.attempts += 1
            if error is None:
                self.sent += 1
            else:
                self._failed(delivery, error)

    def _in_thread(self, delivery: Delivery) -> asyncio.Future[str | None]:
        """_send in a daemon thread; its answer comes back on the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()

        def answer(result: str | None) -> None:
            if not future.done():
                future.set_result(result)

        def run() -> None:
            try:
                result = self._send(delivery)
            except Exception as exc:  # a bug here must not lose the answer, nor print a trace
                result = f"{type(exc).__name__}: {exc}"
            try:
                loop.call_soon_threadsafe(answer, result)
            except RuntimeError:
                pass  # the loop is closed: ANT has stopped

        threading.Thread(target=run, name="ant-notify", daemon=True).start()
        return future

    def _send(self, delivery: Delivery) -> str | None:
        """One POST (in a worker thread): None when the receiver took it (2xx), else why not."""
        if delivery.data is None:
            tail: list[str] = []
            if delivery.output is not None:
                try:
                    tail = log_tail(delivery.output.tail_bytes(TAIL_BYTES))
                except Exception:  # a log that cannot be read: sent without it
                    tail = []
            payload = body(delivery.task, self.server, tail, self.settings.NOTIFY_format)
            delivery.data = json.dumps(payload).encode()
        request = urllib.request.Request(
            delivery.url,
            data=delivery.data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"ANT/{__version__}"},
        )
        try:
            with self._opener.open(request, timeout=self.settings.NOTIFY_timeout_seconds) as answer:
                answer.read(65536)
                return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            return _reason(exc.reason)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            return _reason(exc)
        except ValueError:
            return "invalid URL"

    def _failed(self, delivery: Delivery, error: str) -> None:
        """One line per failed attempt; again after the backoff, or given up."""
        total = self.settings.NOTIFY_retries + 1
        where = f"notification of task {delivery.task.task_id!r} to {mask_url(delivery.url)}"
        self.last_error = f"{where}: {error}"
        if delivery.attempts >= total or self._stopping:
            self.failed += 1
            self._say(f"{where} failed (attempt {delivery.attempts} of {total}): {error}; given up")
            return
        delay = self.settings.NOTIFY_backoff_seconds * 2 ** (delivery.attempts - 1)
        self._say(
            f"{where} failed (attempt {delivery.attempts} of {total}): {error}; "
            f"again in {delay:g} s"
        )
        key = id(delivery)
        loop = asyncio.get_running_loop()
        self._waiting[key] = loop.call_later(delay, self._retry, key, delivery)

    def _retry(self, key: int, delivery: Delivery) -> None:
        self._waiting.pop(key, None)
        if not self._stopping:
            self._put(delivery)


def _reason(exc: object) -> str:
    """A short reason without the URL (it may hold a token)."""
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, http.client.HTTPException):
        return f"bad answer ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
