"""The event bus: every state change is published once, kept in a ring, and read by SSE clients.

Subscribers do not get their own queues: each keeps a cursor into the shared ring and waits for a
wake-up, so a slow client costs nothing until it reads, and one that fell too far behind is told to
resync instead of silently missing events. Ids are `<boot>:<n>` so a reconnect after a server
restart is recognised as a gap too.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class Event:
    seq: int
    type: str
    data: Any
    boot: str

    @property
    def id(self) -> str:
        return f"{self.boot}:{self.seq}"

    @functools.cached_property
    def wire(self) -> bytes:
        """Server-sent-events wire format, encoded once however many clients read it."""
        payload = json.dumps(self.data, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.type}\ndata: {payload}\n\n".encode()

    def encode(self) -> bytes:
        return self.wire


class EventBus:
    def __init__(self, capacity: int = 20_000) -> None:
        self.boot = secrets.token_hex(4)
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._next_seq = 1
        self._wakeup = asyncio.Event()  # binds to a loop on first use (Python >= 3.10)
        self.subscribers = 0
        self.closed = False  # the server is shutting down: streams end (their clients reconnect)

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def publish(self, type_: str, data: Any) -> Event:
        event = Event(self._next_seq, type_, data, self.boot)
        self._next_seq += 1
        self._ring.append(event)
        self._wakeup.set()
        self._wakeup = asyncio.Event()
        return event

    def close(self) -> None:
        """End every stream now, so a shutdown does not wait for them (and cancel them)."""
        self.closed = True
        self._wakeup.set()

    def parse_cursor(self, last_event_id: str | None) -> int | None:
        """The seq to resume after, or None when the client must resync (unknown/old id)."""
        if not last_event_id:
            return self.last_seq
        boot, _, seq_text = last_event_id.partition(":")
        if boot != self.boot or not seq_text.isdigit():
            return None
        seq = int(seq_text)
        oldest = self._ring[0].seq if self._ring else self._next_seq
        if seq > self.last_seq or seq < oldest - 1:
            return None
        return seq

    def events_after(self, seq: int) -> list[Event]:
        if not self._ring or seq >= self.last_seq:
            return []
        oldest = self._ring[0].seq
        start = max(0, seq + 1 - oldest)
        return [self._ring[i] for i in range(start, len(self._ring))]

    def is_gap(self, seq: int) -> bool:
        """True when events after `seq` have already fallen out of the ring."""
        return bool(self._ring) and seq < self._ring[0].seq - 1

    async def wait(self, seq: int, timeout: float) -> None:
        """Return when an event newer than `seq` exists, or after `timeout` seconds."""
        if self.last_seq > seq:
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except asyncio.TimeoutError:
            pass
