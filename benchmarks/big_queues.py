"""Big queues: memory while 20,000 queued tasks drain, submit latency with 100,000 queued, how
long the event loop stalls during a 100,000-line submit, a large env copied into many lines, and
the queries (P10): the queued page at 100,000 queued, substring search over 100,000 finished,
and (P11) sorted pages of the 100,000 finished tasks, as the Completed table asks.

    python benchmarks/big_queues.py [--quick] [--only queries]

Prints a table and writes benchmarks/results/big_queues.json. Figures, not assertions: the
targets (P7) are RSS < 300 MB, submit p50 < 20 ms at 100,000 queued, stalls < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import AntServer, wait_for

from benchmarks.suite import _fill_history, timed

RESULTS = Path(__file__).resolve().parent / "results"


class RssSampler:
    """Peak resident memory of a process, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class StallProbe:
    """Health requests back to back in a thread: the longest answer is the longest stall."""

    def __init__(self, server: AntServer) -> None:
        self.server = server
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.client() as c:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                c.get("/api/", timeout=120)
                self.times.append(time.perf_counter() - t0)
                time.sleep(0.005)

    def __enter__(self) -> StallProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_mib(server: AntServer) -> float:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss / 2**20


def bench_drain_memory(work: Path, n: int) -> dict[str, Any]:
    root = work / "drain-memory"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=4).start()
    assert server.proc is not None
    try:
        with server.client() as c, RssSampler(server.proc.pid) as rss:
            before = rss_mib(server)
            text = "\n".join(f"ant_task_id=m{i} ant_n_gpus=1 true" for i in range(n))
            t0 = time.time()
            r = c.post("/api/v1/tasks", json={"command": text, "mode": "multi"}, timeout=600)
            assert r.status_code == 201, r.text[:200]
            accepted = time.time() - t0

            def drained() -> bool:
                page = c.get("/api/v1/tasks", params={"state": "queued,running", "limit": 1})
                return page.json()["total"] == 0

            wait_for(drained, timeout=1800, interval=0.5)
            elapsed = time.time() - t0
        return {
            "tasks": n,
            "rss_before_mib": before,
            "rss_peak_mib": rss.peak / 2**20,
            "seconds_to_accept": accepted,
            "drain_tasks_per_s": n / elapsed,
        }
    finally:
        server.stop()


def bench_submit_with_big_queue(work: Path, queued: int, samples: int) -> dict[str, Any]:
    root = work / "big-queue"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=4).start()
    assert server.proc is not None
    try:
        with server.client() as c:
            # Tasks that cannot start (all GPUs are kept busy by the first four).
            c.post("/api/v1/tasks", json={"command": "sleep 3600", "mode": "single", "n_gpus": 4})
            # Built first: the probe thread must not wait for this process's own work.
            texts = [
                "\n".join(
                    f"ant_task_id=q{i} ant_n_gpus={1 + i % 4} true"
                    for i in range(start, min(queued, start + 20_000))
                )
                for start in range(0, queued, 20_000)
            ]
            with StallProbe(server) as probe:
                t0 = time.time()
                for text in texts:
                    r = c.post(
                        "/api/v1/tasks", json={"command": text, "mode": "multi"}, timeout=900
                    )
                    assert r.status_code == 201, r.text[:200]
                accepted = time.time() - t0
            stall = max(probe.times) if probe.times else float("nan")
            latencies = []
            for i in range(samples):
                t0 = time.perf_counter()
                r = c.post(
                    "/api/v1/tasks", json={"command": "true", "task_id": f"s{i}", "n_gpus": 1}
                )
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 201
            t0 = time.perf_counter()
            c.get("/api/v1/tasks", params={"state": "queued", "limit": 50})
            page = time.perf_counter() - t0
            return {
                "queued": queued,
                "seconds_to_accept": accepted,
                "health_max_during_submit_ms": stall * 1000,
                "health_p50_during_submit_ms": statistics.median(probe.times) * 1000
                if probe.times
                else float("nan"),
                "submit_p50_ms": statistics.median(latencies) * 1000,
                "submit_p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000,
                "queued_page_ms": page * 1000,
                "rss_mib": rss_mib(server),
            }
    finally:
        server.stop()


def bench_queries(work: Path, finished: int, queued: int) -> dict[str, Any]:
    """P10: `finished` tasks in history (written to the store first), `queued` tasks that cannot
    start; the p50 of 20 requests each, over HTTP, as the UI's pages ask."""
    root = work / "queries"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=4)
    _fill_history(server.log_dir / "ant.db", finished)
    server.start()
    try:
        with server.client() as c:
            c.post("/api/v1/tasks", json={"command": "sleep 3600", "mode": "single", "n_gpus": 4})
            for start in range(0, queued, 20_000):
                text = "\n".join(
                    f"ant_task_id=q{i} ant_n_gpus={1 + i % 4} python t.py {i}"
                    for i in range(start, min(queued, start + 20_000))
                )
                r = c.post("/api/v1/tasks", json={"command": text, "mode": "multi"}, timeout=900)
                assert r.status_code == 201, r.text[:200]
            done = "succeeded,failed,killed"

            def get(**params: Any) -> dict[str, Any]:
                r = c.get("/api/v1/tasks", params=params)
                assert r.status_code == 200, r.text[:200]
                page: dict[str, Any] = r.json()
                return page

            assert get(state="queued", limit=1)["total"] == queued
            assert get(state=done, q="hist-04242")["total"] == 10
            # The Completed table (P11): ended tasks sorted by a column, a range of end times.
            ended = "succeeded,failed,killed,lost"
            now = time.time()
            window = {"since": now - finished * 0.6, "until": now - finished * 0.4}
            assert get(state=ended, limit=1, **window)["total"] >= finished // 5
            return {
                "sorted_duration_ms_p50": timed(
                    lambda: get(state=ended, sort="duration", limit=50), 20
                ),
                "sorted_duration_deep_ms_p50": timed(
                    lambda: get(state=ended, sort="duration", limit=50, offset=finished // 2), 20
                ),
                "sorted_failed_ms_p50": timed(
                    lambda: get(state="failed", sort="started_at", order="asc", limit=50), 20
                ),
                "sorted_range_ms_p50": timed(
                    lambda: get(state=ended, sort="exit_code", limit=50, **window), 20
                ),
                "sorted_page_1000_ms_p50": timed(
                    lambda: get(state=ended, sort="task_id", limit=1000), 10
                ),
                "finished": finished,
                "queued": queued,
                "queued_page_ms_p50": timed(lambda: get(state="queued", limit=50), 20),
                "queued_page_deep_ms_p50": timed(
                    lambda: get(state="queued", limit=50, offset=queued // 2), 20
                ),
                "search_finished_ms_p50": timed(
                    lambda: get(state=done, q="hist-04242", limit=50), 20
                ),
                "search_all_ms_p50": timed(lambda: get(q="hist-04242", limit=50), 20),
                "search_none_ms_p50": timed(lambda: get(q="no such text", limit=50), 20),
                "search_2_chars_ms_p50": timed(lambda: get(state=done, q="%x", limit=50), 20),
                "finished_page_ms_p50": timed(lambda: get(state=done, limit=50), 20),
            }
    finally:
        server.stop()


def bench_big_env(work: Path) -> dict[str, Any]:
    root = work / "big-env"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=1).start()
    try:
        with server.client() as c:
            before = rss_mib(server)
            text = "\n".join(f"echo {i}" for i in range(150))
            t0 = time.perf_counter()
            r = c.post(
                "/api/v1/tasks",
                json={"command": text, "mode": "multi", "env": {"BIG": "x" * 2_000_000}},
                timeout=120,
            )
            elapsed = time.perf_counter() - t0
            return {
                "status": r.status_code,
                "answer_ms": elapsed * 1000,
                "rss_growth_mib": rss_mib(server) - before,
                "db_mib": (server.state_dir / "ant.db").stat().st_size / 2**20,
            }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", choices=["queries"], help="run only these figures")
    args = parser.parse_args()
    quick = args.quick
    results: dict[str, Any] = {"quick": quick}
    n = 10_000 if quick else 100_000
    if args.only == "queries":
        with tempfile.TemporaryDirectory() as tmp:
            results["queries"] = bench_queries(Path(tmp), n, n)
        print_queries(results["queries"])
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["queries"] = bench_queries(work, n, n)
        results["drain_memory"] = bench_drain_memory(work, 2000 if quick else 20_000)
        results["big_queue"] = bench_submit_with_big_queue(
            work, 10_000 if quick else 100_000, 50 if quick else 200
        )
        results["big_env"] = bench_big_env(work)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "big_queues.json").write_text(json.dumps(results, indent=2))
    d, q, e = results["drain_memory"], results["big_queue"], results["big_env"]
    rows = [
        (
            f"{d['tasks']:,} queued 1-GPU tasks draining on 4 fake GPUs: peak server RSS",
            f"{d['rss_peak_mib']:.0f} MiB (before: {d['rss_before_mib']:.0f} MiB)",
        ),
        (
            "… accepted in / drained at",
            f"{d['seconds_to_accept']:.1f} s / {d['drain_tasks_per_s']:.0f} tasks/s",
        ),
        (
            f"submit p50 / p99 with {q['queued']:,} queued",
            f"{q['submit_p50_ms']:.1f} / {q['submit_p99_ms']:.1f} ms",
        ),
        (
            f"longest health answer while {q['queued']:,} lines are submitted",
            f"{q['health_max_during_submit_ms']:.0f} ms (p50 {q['health_p50_during_submit_ms']:.1f})",
        ),
        ("… accepted in", f"{q['seconds_to_accept']:.1f} s"),
        (f"queued page of 50 at {q['queued']:,} queued", f"{q['queued_page_ms']:.1f} ms"),
        (f"server RSS at {q['queued']:,} queued", f"{q['rss_mib']:.0f} MiB"),
        (
            "150 lines × 2 MB env",
            f"HTTP {e['status']} in {e['answer_ms']:.0f} ms, RSS "
            f"+{e['rss_growth_mib']:.0f} MiB, database {e['db_mib']:.1f} MiB",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print_queries(results["queries"])


def print_queries(r: dict[str, Any]) -> None:
    rows = [
        (f"page of 50 queued at {r['queued']:,} queued (p50)", r["queued_page_ms_p50"]),
        (f"… {r['queued'] // 2:,} deep", r["queued_page_deep_ms_p50"]),
        (f"page of 50 finished, {r['finished']:,} finished", r["finished_page_ms_p50"]),
        ("search of finished, 10 matches (hist-04242)", r["search_finished_ms_p50"]),
        ("… of all states", r["search_all_ms_p50"]),
        ("… no match (no such text)", r["search_none_ms_p50"]),
        ("… two characters (%x: scanned, no index)", r["search_2_chars_ms_p50"]),
        (f"ended sorted by duration, page of 50 of {r['finished']:,}", r["sorted_duration_ms_p50"]),
        (f"… {r['finished'] // 2:,} deep", r["sorted_duration_deep_ms_p50"]),
        ("… failed only (1 in 10), by start time, oldest first", r["sorted_failed_ms_p50"]),
        ("… by exit code, ended in a window of 20% of them", r["sorted_range_ms_p50"]),
        ("… by id, page of 1,000 (the UI's largest)", r["sorted_page_1000_ms_p50"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:.1f} ms")


if __name__ == "__main__":
    main()
