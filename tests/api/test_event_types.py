"""The live events are typed: each payload the engine really sends is the shape wire.EventPayloads
declares for its type, and those shapes are in the OpenAPI schema (so in the UI's types)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import typing
from typing import Any

from pydantic import TypeAdapter

from ant_scheduler.api.openapi import app_openapi
from ant_scheduler.wire import EVENT_TYPES, EventPayloads
from tests.api.test_events import read_events
from tests.api.test_tasks_api import submit, wait_state
from tests.server import AntServer

ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(hint) for name, hint in typing.get_type_hints(EventPayloads).items()
}


def check_payload(event_type: str, data: Any) -> None:
    """`data` parses as the declared type, strictly (no coercion), and nothing in it is left out
    (dumping the parsed value gives the same JSON back)."""
    assert event_type in ADAPTERS, f"undeclared event type {event_type!r}"
    adapter = ADAPTERS[event_type]
    value = adapter.validate_json(json.dumps(data), strict=True)
    dumped = adapter.dump_python(value, mode="json")
    if event_type == "task_changed":  # only what changed: the fields sent come back the same
        assert set(data) <= set(dumped), (event_type, data)
        dumped = {k: v for k, v in dumped.items() if k in data}
    assert dumped == data, (event_type, data)


def test_every_event_the_engine_sends_has_its_declared_type(server: AntServer) -> None:
    got: list[tuple[str, str, Any]] = []
    live = set(EVENT_TYPES) - {"resync"}  # resync: only for a client that missed events

    def seen_all(events: list[tuple[str, str, Any]]) -> bool:
        # and a terminal event with the task's output (under load the first may come before it)
        return live <= {t for _, t, _ in events} and any(
            t == "terminal" and d.get("typed", {}).get("lines") for _, t, d in events
        )

    with server.client() as c:
        listener = threading.Thread(target=lambda: got.extend(read_events(c, seen_all)))
        listener.start()
        time.sleep(0.5)
        submit(c, "printf 'step\\n50%%|#|\\n'; sleep 1.5", task_id="typed", n_gpus=1)
        # gpu_mem_over: a memory task the fake GPU shows using more than it declared.
        submit(c, "sleep 5", task_id="hog", gpu_mem="1G", env={"ANT_FAKE_GPU_MEM": "2G"})
        wait_state(c, "typed", "succeeded")
        assert c.delete("/api/v1/tasks/typed").status_code == 200
        listener.join(30)
        assert not listener.is_alive(), f"missing: {live - {t for _, t, _ in got}}"
        stale = read_events(c, lambda ev: len(ev) >= 1, headers={"Last-Event-ID": "zzzz:5"})
    got += stale
    assert {t for _, t, _ in got} == set(EVENT_TYPES)
    for _, event_type, data in got:
        check_payload(event_type, data)
    terminal = next(d for _, t, d in got if t == "terminal" and d.get("typed", {}).get("lines"))
    assert terminal["typed"]["lines"][0] == "step"
    removed = next(d for _, t, d in got if t == "task_removed")
    assert removed == {"task_id": "typed", "renamed_to": None}  # deleted, not renamed


def test_event_payloads_are_in_the_openapi_schema() -> None:
    schema = app_openapi()
    components = schema["components"]["schemas"]
    payloads = components["EventPayloads"]
    assert list(payloads["properties"]) == list(EVENT_TYPES)
    assert set(payloads["required"]) == set(EVENT_TYPES)
    for name in ("TaskRemoved", "QueueChanged", "TerminalSnapshot", "Empty", "EndedState"):
        assert name in components, name
    assert payloads["properties"]["task_changed"] == {"$ref": "#/components/schemas/TaskChange"}
    assert set(components["TaskChange"]["required"]) == {"task_id", "state"}
    stream = schema["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    items = stream["text/event-stream"]["itemSchema"]["oneOf"]
    assert [i["properties"]["event"]["const"] for i in items] == list(EVENT_TYPES)
    queue = next(i for i in items if i["title"] == "queue")
    assert queue["properties"]["data"]["contentSchema"] == {
        "$ref": "#/components/schemas/QueueChanged"
    }


def test_event_types_are_the_fields_of_event_payloads() -> None:
    assert tuple(f.name for f in dataclasses.fields(EventPayloads)) == EVENT_TYPES
    assert {"hello", "resync", "task_added", "task_changed", "task_removed"} <= set(EVENT_TYPES)
