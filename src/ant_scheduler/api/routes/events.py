"""/api/v1/events: the live event stream (SSE) with Last-Event-ID resume.

What each event's data holds is declared in wire.EventPayloads; document_events puts it in the
OpenAPI schema (and so in the UI's generated types).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import EventPayloads
from ant_scheduler.events import EventBus

router = APIRouter(prefix="/api/v1", tags=["events"])
KEEPALIVE_SECONDS = 15.0
PATH = "/api/v1/events"


def _resync(bus: EventBus) -> bytes:
    # Carries the current id, so the client's next reconnect resumes from here.
    return f"id: {bus.boot}:{bus.last_seq}\nevent: resync\ndata: {{}}\n\n".encode()


# The stream is written here, each event encoded once by the bus however many clients read it
# (FastAPI's own SSE, response_class=EventSourceResponse, would encode every event per client).
# The 200 model puts the payload shapes in the schema; document_events (called by the app's
# openapi()) describes the answer as the event stream it is.
@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"model": EventPayloads, "description": "the event stream"}},
)
async def events(
    request: Request,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
    since: Annotated[str | None, Query(max_length=100, description="same as Last-Event-ID")] = None,
) -> StreamingResponse:
    """Task, queue, GPU, terminal and monitoring events (each event's `data` is the JSON of the
    field of EventPayloads its type names). A client that missed events gets `resync`."""
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
            while not bus.closed and not await request.is_disconnected():
                if bus.is_gap(cursor):
                    cursor = bus.last_seq
                    yield _resync(bus)
                batch = bus.events_after(cursor)
                if batch:
                    cursor = batch[-1].seq
                    yield b"".join(e.encode() for e in batch)
                    continue
                await bus.wait(cursor, KEEPALIVE_SECONDS)
                if bus.last_seq == cursor and not bus.closed:
                    yield b": keepalive\n\n"
        finally:
            bus.subscribers -= 1

    return StreamingResponse(
        generate(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def document_events(openapi: dict[str, Any]) -> None:
    """Describe the stream's 200 answer in an OpenAPI schema built by FastAPI (in place).

    The route's `responses={200: {"model": EventPayloads}}` has FastAPI put EventPayloads and every
    shape it uses in components/schemas, like any response model; but FastAPI would describe the
    answer as that one object. Here it becomes a text/event-stream whose `itemSchema` (OpenAPI 3.2;
    FastAPI writes the same for its own SSE routes) has one alternative per event type, its
    `data` being JSON of the declared shape.
    """
    payloads = openapi["components"]["schemas"][EventPayloads.__name__]
    alternatives = []
    for f in dataclasses.fields(EventPayloads):
        data = {k: v for k, v in payloads["properties"][f.name].items() if k != "title"}
        alternatives.append(
            {
                "type": "object",
                "title": f.name,
                "required": ["id", "event", "data"],
                "properties": {
                    "id": {"type": "string", "description": "<boot>:<n>, for Last-Event-ID"},
                    "event": {"const": f.name},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": data,
                    },
                },
            }
        )
    answer = openapi["paths"][PATH]["get"]["responses"]["200"]
    answer["description"] = (
        "A text/event-stream: each event's `data` is the JSON of the field of EventPayloads "
        "named by its type."
    )
    answer["content"] = {
        "text/event-stream": {"schema": {"type": "string"}, "itemSchema": {"oneOf": alternatives}}
    }
