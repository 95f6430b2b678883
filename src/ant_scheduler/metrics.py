"""Prometheus metrics: counters kept as things happen, gauges read from the engine at scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DURATION_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600)


if TYPE_CHECKING:
    from ant_scheduler.engine import Engine


def state_snapshot(engine: Engine) -> dict[str, Any]:
    """What the gauges show, read from the engine at each scrape."""
    counts = engine.store.count_by_state()
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
            for s in engine.gpus.in_order()
        ],
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

    def add_state_collector(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_StateCollector(snapshot))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        data = self.snapshot()
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
