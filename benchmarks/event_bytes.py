"""Bytes of the live event stream per task lifecycle (P10): submit -> run -> end of `true` tasks,
one at a time, with one SSE client connected to /api/v1/events, by event type; then what an open
UI costs the server per task: the drain of N `true` tasks (submitted at once) timed with and
without an SSE client reading the stream, interleaved in the same run.

    python benchmarks/event_bytes.py [--tasks N] [--drain N] [--rounds R]

Prints a table and writes benchmarks/results/event_bytes.json. The targets of P10: a task's
lifecycle costs < 1 KB of event stream; an open UI costs < 0.1 ms per task.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import AntServer, wait_for

RESULTS = Path(__file__).resolve().parent / "results"


class EventCounter:
    """An SSE client in a thread: bytes and count of each event type."""

    def __init__(self, server: AntServer) -> None:
        self.server = server
        self.bytes: Counter[str] = Counter()
        self.count: Counter[str] = Counter()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with (
            self.server.client() as c,
            c.stream("GET", "/api/v1/events", timeout=None) as r,
        ):
            self.connected.set()
            block: list[str] = []
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line:
                    block.append(line)
                    continue
                kind = next((b[7:] for b in block if b.startswith("event: ")), "comment")
                self.bytes[kind] += sum(len(b.encode()) + 1 for b in block) + 1
                self.count[kind] += 1
                block = []

    def __enter__(self) -> EventCounter:
        self._thread.start()
        self.connected.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.bytes), Counter(self.count)


def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = AntServer(workdir=Path(tmp), fake_gpus=4).start()
        try:
            with server.client() as c, EventCounter(server) as events:
                time.sleep(1.0)  # past the hello and the first samples
                b0, n0 = events.snapshot()
                t0 = time.time()
                for i in range(n):
                    r = c.post("/api/v1/tasks", json={"command": "true", "task_id": f"t{i}"})
                    assert r.status_code == 201, r.text

                    def ended(task_id: str = f"t{i}") -> bool:
                        state = c.get(f"/api/v1/tasks/{task_id}").json()["state"]
                        return bool(state == "succeeded")

                    wait_for(ended, timeout=30, interval=0.005)
                time.sleep(0.3)  # the last events reach the client
                elapsed = time.time() - t0
                b1, n1 = events.snapshot()
        finally:
            server.stop()
    by_type = {
        kind: {"bytes": b1[kind] - b0[kind], "events": n1[kind] - n0[kind]}
        for kind in sorted(set(b1) | set(b0))
        if b1[kind] - b0[kind]
    }
    total = sum(v["bytes"] for v in by_type.values())
    return {"tasks": n, "seconds": elapsed, "bytes_per_task": total / n, "by_type": by_type}


def server_cpu(server: AntServer) -> float:
    """CPU seconds the server process has used (its own, not its tasks')."""
    assert server.proc is not None
    times = psutil.Process(server.proc.pid).cpu_times()
    return float(times.user + times.system)


def drain(server: AntServer, n: int) -> tuple[float, float]:
    """(seconds, server CPU seconds) from submitting n `true` tasks (one multi submission) until
    none is active."""
    with server.client() as c:
        cpu0 = server_cpu(server)
        t0 = time.perf_counter()
        r = c.post("/api/v1/tasks", json={"command": "\n".join(["true"] * n), "mode": "multi"})
        assert r.status_code == 201, r.text

        def drained() -> bool:
            for state in ("queued", "running"):
                page = c.get("/api/v1/tasks", params={"state": state, "limit": 1}).json()
                if page["total"]:
                    return False
            return True

        wait_for(drained, timeout=600, interval=0.01)
        return time.perf_counter() - t0, server_cpu(server) - cpu0


def ui_cost(n: int, rounds: int) -> dict[str, Any]:
    """Drains of n tasks with and without one SSE client, interleaved; per-task differences of
    the wall time and of the server's CPU time (the steadier of the two)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = AntServer(workdir=Path(tmp), fake_gpus=4).start()
        try:
            drain(server, n)  # warm-up
            without: list[tuple[float, float]] = []
            with_client: list[tuple[float, float]] = []
            for _ in range(rounds):
                without.append(drain(server, n))
                with EventCounter(server):
                    time.sleep(0.2)
                    with_client.append(drain(server, n))
        finally:
            server.stop()

    def per_task_ms(runs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(r[i] for r in runs) / n * 1000

    return {
        "tasks": n,
        "rounds": rounds,
        "without_client": without,
        "with_client": with_client,
        "ms_per_task_without": per_task_ms(without, 0),
        "ms_per_task_with": per_task_ms(with_client, 0),
        "ui_ms_per_task": per_task_ms(with_client, 0) - per_task_ms(without, 0),
        "cpu_ms_per_task_without": per_task_ms(without, 1),
        "cpu_ms_per_task_with": per_task_ms(with_client, 1),
        "ui_cpu_ms_per_task": per_task_ms(with_client, 1) - per_task_ms(without, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--drain", type=int, default=1000, help="tasks per drain (UI cost)")
    parser.add_argument("--rounds", type=int, default=5, help="drains with and without a client")
    args = parser.parse_args()
    result = run(args.tasks)
    result["ui_cost"] = ui_cost(args.drain, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "event_bytes.json").write_text(json.dumps(result, indent=2))
    n = result["tasks"]
    print(f"{n} `true` tasks, one at a time, one SSE client: {result['seconds']:.1f} s")
    print(f"event stream per task lifecycle: {result['bytes_per_task']:,.0f} bytes")
    for kind, v in result["by_type"].items():
        print(f"  {kind:<14} {v['events'] / n:6.2f} events/task  {v['bytes'] / n:9,.0f} bytes/task")
    print("(system/gpus/health samples arrive with time, not per task: they scale with seconds)")
    u = result["ui_cost"]
    print(
        f"drain of {u['tasks']} `true` tasks, median of {u['rounds']} (interleaved): "
        f"{u['ms_per_task_without']:.3f} ms/task without a client, "
        f"{u['ms_per_task_with']:.3f} ms/task with one"
    )
    print(
        f"server CPU: {u['cpu_ms_per_task_without']:.3f} ms/task without a client, "
        f"{u['cpu_ms_per_task_with']:.3f} ms/task with one"
    )
    print(
        f"an open UI costs {u['ui_ms_per_task']:+.3f} ms per task (wall), "
        f"{u['ui_cpu_ms_per_task']:+.3f} ms per task (server CPU)"
    )


if __name__ == "__main__":
    main()
