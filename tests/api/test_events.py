"""/api/v1/events: task events arrive live, and Last-Event-ID resumes without gaps."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.api.test_tasks_api import submit, wait_state
from tests.server import AntServer


def read_events(
    client: httpx.Client, stop_when: Any, headers: dict[str, str] | None = None
) -> list[tuple[str, str, Any]]:
    """(id, type, data) until stop_when(events) is true."""
    events: list[tuple[str, str, Any]] = []
    current: dict[str, str] = {}
    with client.stream("GET", "/api/v1/events", headers=headers or {}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line:
                if "event" in current:
                    data = json.loads(current.get("data", "null"))
                    events.append((current.get("id", ""), current["event"], data))
                    if stop_when(events):
                        return events
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value
    return events


def test_events_stream_and_resume(server: AntServer) -> None:
    with server.client() as c:
        got: list[tuple[str, str, Any]] = []

        def listen() -> None:
            got.extend(
                read_events(
                    c,
                    lambda ev: any(
                        t == "task_changed" and d.get("state") == "succeeded" for _, t, d in ev
                    ),
                )
            )

        listener = threading.Thread(target=listen)
        listener.start()
        import time

        time.sleep(0.5)
        [task] = submit(c, "echo hi", task_id="ev-1")
        listener.join(20)
        types = [t for _, t, _ in got]
        assert types[0] == "hello"
        assert "task_added" in types and "task_changed" in types
        added = next(d for _, t, d in got if t == "task_added")
        assert added["task_id"] == "ev-1" and added["command"] == task["command"]
        # task_changed carries what changed (P10: < 1 KB of events per task), not the whole task.
        changes = [d for _, t, d in got if t == "task_changed" and d["task_id"] == "ev-1"]
        assert [d["state"] for d in changes] == ["running", "succeeded"]
        start, end = changes
        assert "command" not in start and "handle" not in start
        assert start["started_at"] and start["pid"] and start["log_path"]
        assert "queue_position" not in start  # null outside the queue: the client clears it
        assert "started_at" not in end and end["exit_code"] == 0 and end["finished_at"]
        # A task holding no GPU changes none (the monitor's samples may send the list anyway).
        gpu_lists = [d for _, t, d in got if t == "gpus"]
        assert not [g for gpus in gpu_lists for g in gpus if "ev-1" in g["task_ids"]]
        final = c.get("/api/v1/tasks/ev-1").json()
        applied = {**added, **start, **end, "queue_position": None, "pending_reason": None}
        assert {k: applied[k] for k in final if k != "handle"} == {
            k: v for k, v in final.items() if k != "handle"
        }
        # Resume from the hello id: the same events come again, none missing, in order.
        first_id = got[0][0]
        again = read_events(
            c,
            lambda ev: any(t == "task_changed" and d.get("state") == "succeeded" for _, t, d in ev),
            headers={"Last-Event-ID": first_id},
        )
        seqs = [int(i.split(":")[1]) for i, t, _ in again if t != "hello"]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert [d.get("task_id") for _, t, d in again if t == "task_added"] == ["ev-1"]
        # An id from another server run (or garbage) means: resync.
        stale = read_events(c, lambda ev: len(ev) >= 1, headers={"Last-Event-ID": "zzzz:5"})
        assert stale[0][1] == "resync"
        wait_state(c, "ev-1", "succeeded")
