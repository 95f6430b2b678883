"""Prometheus metrics: counters kept as things happen, gauges read from the engine at scrape.

Names follow Prometheus' conventions (the unit in the name, `_total` on counters, `_ratio` for
0-1), `promtool check metrics` passes on them (tests/api/test_metrics_promtool.py), and
contrib/grafana/ant.json charts them (a test checks it names only metrics served here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ant_scheduler import __version__
from ant_scheduler.core.task import ENDED_STATES, Task

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DURATION_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600)
WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)


if TYPE_CHECKING:
    from ant_scheduler.engine import Engine


def queued_since(task: Task) -> float:
    """When a task that starts now joined the queue: its submission (or restart), or for a
    retry the end of its previous attempt (backoff included: it is waiting, too)."""
    if task.attempt > 1 and task.attempts and task.attempts[-1].finished_at is not None:
        return task.attempts[-1].finished_at
    return task.created_at


def state_snapshot(engine: Engine) -> dict[str, Any]:
    """What the gauges show, read from the engine at each scrape."""
    counts = engine.store.count_by_state()
    slots = engine.gpus.in_order()
    return {
        "tasks_by_state": {state.value: n for state, n in counts.items()},
        "queue_length": len(engine.queued),
        "notifications": engine.notifier.status(),
        "gpus": [
            {
                "index": s.info.index,
                "util": s.sample.util if s.sample else 0.0,
                "mem_used": s.sample.mem_used if s.sample else 0,
                "mem_total": s.info.mem_total,
                "allocated": 1 if s.task_ids else 0,
                "external": 1 if s.external else 0,
                "enabled": 1 if s.enabled else 0,
            }
            for s in slots
        ],
        # Running tasks that hold GPUs (at most a few per GPU): each GPU they hold, and the GPU
        # memory their processes use (attributed by process, docs/monitoring.md).
        "task_gpus": [
            {"task_id": task_id, "gpu": s.info.index, "util": s.sample.util if s.sample else 0.0}
            for s in slots
            for task_id in s.task_ids
        ],
        "task_gpu_mem": dict(engine.gpus.task_gpu_mem),
    }


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.dispatch_latency = Histogram(
            "ant_dispatch_latency_seconds",
            "Time from a task becoming startable (submitted or restored) to its process start.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.task_duration = Histogram(
            "ant_task_duration_seconds",
            "Run time of finished tasks.",
            ["state"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.task_wait = Histogram(
            "ant_task_wait_seconds",
            "Time tasks waited in the queue: from queued (submitted, restarted, or a retry's "
            "previous attempt ended) to started.",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.tasks_ended = Counter(
            "ant_tasks_ended",
            "Tasks that ended for good (retried attempts not counted), by final state.",
            ["state"],
            registry=self.registry,
        )
        for state in sorted(s.value for s in ENDED_STATES):  # every series from the start
            self.tasks_ended.labels(state)

    def add_state_collector(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_StateCollector(snapshot))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        data = self.snapshot()
        info = GaugeMetricFamily("ant_build_info", "ANT's version (always 1).", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        tasks = GaugeMetricFamily("ant_tasks", "Tasks by state.", labels=["state"])
        for state, n in data["tasks_by_state"].items():
            tasks.add_metric([state], n)
        yield tasks
        yield GaugeMetricFamily("ant_queue_length", "Queued tasks.", value=data["queue_length"])
        notes = data["notifications"]
        told = CounterMetricFamily(
            "ant_notifications", "Webhook notifications since ANT started.", labels=["result"]
        )
        for result in ("sent", "failed", "dropped"):
            told.add_metric([result], notes[result])
        yield told
        yield GaugeMetricFamily(
            "ant_notifications_pending", "Notifications waiting to be sent.", value=notes["pending"]
        )
        specs = {
            "util": ("ant_gpu_utilization_ratio", "GPU utilisation, 0-1."),
            "mem_used": ("ant_gpu_memory_used_bytes", "GPU memory in use."),
            "mem_total": ("ant_gpu_memory_total_bytes", "GPU memory size."),
            "allocated": ("ant_gpu_allocated", "1 when an ANT task holds the GPU."),
            "external": ("ant_gpu_busy_external", "1 when ADGS sees it busy outside ANT."),
            "enabled": ("ant_gpu_enabled", "1 when ANT may schedule on the GPU."),
        }
        for key, (name, doc) in specs.items():
            family = GaugeMetricFamily(name, doc, labels=["gpu"])
            for gpu in data["gpus"]:
                family.add_metric([str(gpu["index"])], float(gpu[key]))
            yield family
        util = GaugeMetricFamily(
            "ant_task_gpu_utilization_ratio",
            "Utilisation (0-1) of each GPU a running task holds (a shared GPU: under each task).",
            labels=["task_id", "gpu"],
        )
        for held in data["task_gpus"]:
            util.add_metric([held["task_id"], str(held["gpu"])], float(held["util"]))
        yield util
        mem = GaugeMetricFamily(
            "ant_task_gpu_memory_used_bytes",
            "GPU memory the processes of a running task use.",
            labels=["task_id"],
        )
        for task_id, used in data["task_gpu_mem"].items():
            mem.add_metric([task_id], float(used))
        yield mem
