"""/api/v1/events: the live event stream (SSE) with Last-Event-ID resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ant_scheduler.api.deps import engine_of
from ant_scheduler.events import EventBus

router = APIRouter(prefix="/api/v1", tags=["events"])
KEEPALIVE_SECONDS = 15.0


def _resync(bus: EventBus) -> bytes:
    # Carries the current id, so the client's next reconnect resumes from here.
    return f"id: {bus.boot}:{bus.last_seq}\nevent: resync\ndata: {{}}\n\n".encode()


@router.get("/events", response_class=StreamingResponse)
async def events(
    request: Request,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
    since: Annotated[str | None, Query(max_length=100, description="same as Last-Event-ID")] = None,
) -> StreamingResponse:
    """Task, queue, GPU and terminal events. A client that missed events gets `resync`."""
    bus = engine_of(request).events
    cursor = bus.parse_cursor(last_event_id or since)

    async def generate() -> AsyncIterator[bytes]:
        nonlocal cursor
        bus.subscribers += 1
        try:
            if cursor is None:
                cursor = bus.last_seq
                yield _resync(bus)
            else:
                yield f"id: {bus.boot}:{cursor}\nevent: hello\ndata: {{}}\n\n".encode()
            while not await request.is_disconnected():
                if bus.is_gap(cursor):
                    cursor = bus.last_seq
                    yield _resync(bus)
                batch = bus.events_after(cursor)
                if batch:
                    cursor = batch[-1].seq
                    yield b"".join(e.encode() for e in batch)
                    continue
                await bus.wait(cursor, KEEPALIVE_SECONDS)
                if bus.last_seq == cursor:
                    yield b": keepalive\n\n"
        finally:
            bus.subscribers -= 1

    return StreamingResponse(
        generate(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
