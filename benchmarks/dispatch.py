"""Dispatch benchmark: submit-to-start latency on an idle queue, and drain throughput.

Runs a real `ant serve --fake-gpus 8` on 127.0.0.1 and prints a table; results also go to
benchmarks/results/dispatch.json. Targets (issue P2): median latency < 10 ms; >= 300 tasks/s.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import AntServer, wait_for

SAMPLES = 200
DRAIN_TASKS = 2000


def measure_latency(server: AntServer, samples: int) -> list[float]:
    """Seconds from just before the POST to the moment the task's shell runs its command."""
    out: list[float] = []
    with server.client() as c:
        for i in range(samples):
            t0 = time.time()
            r = c.post(
                "/api/v1/tasks",
                json={"command": 'echo "T=$EPOCHREALTIME"', "task_id": f"lat-{i}", "n_gpus": 1},
            )
            r.raise_for_status()
            task_id = f"lat-{i}"

            def finished(task_id: str = task_id) -> str | None:
                task = c.get(f"/api/v1/tasks/{task_id}").json()
                return task["log_path"] if task["state"] == "succeeded" else None

            log_path = wait_for(finished, timeout=30, interval=0.005)
            text = Path(log_path).read_text()
            t_start = float(text.split("T=")[1].split()[0])
            out.append(t_start - t0)
    return out


def measure_drain(server: AntServer, n: int) -> float:
    """Tasks per second for n `true` tasks submitted at once, 1 GPU each, 8 GPUs."""
    text = "\n".join(f"ant_task_id=drain-{i} true" for i in range(n))
    with server.client() as c:
        # Count finished tasks from the state index only: a substring search on every poll
        # would cost the server more than the tasks do.
        finished = {"state": "succeeded,failed", "limit": 1}
        before = c.get("/api/v1/tasks", params=finished).json()["total"]
        t0 = time.time()
        r = c.post("/api/v1/tasks", json={"command": text, "mode": "multi", "n_gpus": 1})
        r.raise_for_status()

        def drained() -> bool:
            page = c.get("/api/v1/tasks", params=finished)
            return bool(page.json()["total"] - before == n)

        wait_for(drained, timeout=600, interval=0.05)
        return n / (time.time() - t0)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = AntServer(workdir=Path(tmp), fake_gpus=8).start()
        try:
            lat = measure_latency(server, SAMPLES)
            rate = measure_drain(server, DRAIN_TASKS)
        finally:
            server.stop()
    lat_ms = sorted(x * 1000 for x in lat)
    result = {
        "latency_ms_p50": statistics.median(lat_ms),
        "latency_ms_p99": lat_ms[int(len(lat_ms) * 0.99) - 1],
        "latency_samples": len(lat_ms),
        "drain_tasks": DRAIN_TASKS,
        "drain_tasks_per_s": rate,
    }
    print(f"{'metric':<34}{'value':>12}")
    print(f"{'submit-to-start p50 (ms)':<34}{result['latency_ms_p50']:>12.2f}")
    print(f"{'submit-to-start p99 (ms)':<34}{result['latency_ms_p99']:>12.2f}")
    print(f"{f'drain {DRAIN_TASKS} true tasks (tasks/s)':<34}{rate:>12.1f}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "dispatch.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
