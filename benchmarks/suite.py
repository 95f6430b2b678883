"""ANT next to task-spooler, measured in the same run on the same machine.

    make bench            (installs task-spooler, then runs this and benchmarks/dispatch.py)
    python benchmarks/suite.py [--quick]

Prints one table and writes benchmarks/results/suite.json. Every figure is measured here and now;
nothing is asserted (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from tests.server import AntServer, wait_for

from ant_scheduler.core.task import Task, TaskState
from ant_scheduler.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
ANT_BIN = str(Path(sys.executable).parent / "ant")
STAMP = 'echo "T=$EPOCHREALTIME" > {path}'


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def read_stamp(path: Path, timeout: float = 30) -> float:
    def ready() -> str | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if text.endswith("\n") else None

    return float(wait_for(ready, timeout, 0.001).split("=")[1])


def submit_and_wait(c: httpx.Client, text: str, n: int, timeout: float) -> None:
    """Submit multi-mode text (1 GPU per task) and wait until n tasks have succeeded."""
    c.post("/api/v1/tasks", json={"command": text, "mode": "multi", "n_gpus": 1})

    def succeeded() -> bool:
        page = c.get("/api/v1/tasks", params={"state": "succeeded", "limit": 1}).json()
        return bool(page["total"] == n)

    wait_for(succeeded, timeout=timeout, interval=0.05)


class Tsp:
    """task-spooler with a private socket, so runs do not mix."""

    def __init__(self, workdir: Path, slots: int) -> None:
        self.env = {
            **os.environ,
            "TS_SOCKET": str(workdir / "tsp.sock"),
            "TMPDIR": str(workdir),
            "TS_MAXFINISHED": "100000",  # tsp forgets finished jobs past 1000 by default
        }
        self.run("-K", check=False)
        self.run("-S", str(slots))

    def run(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["tsp", *args], env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"tsp {args}: {r.stderr}")
        return r.stdout

    def finished(self) -> int:
        return self.run("-l").count(" finished ")

    def close(self) -> None:
        self.run("-K", check=False)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# ------------------------------------------------------------------------------ benchmarks


def bench_latency(work: Path, samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    (work / "lat").mkdir()
    server = AntServer(workdir=work / "lat", fake_gpus=8).start()
    try:
        api: list[float] = []
        cli: list[float] = []
        with server.client() as c:
            for i in range(samples):
                stamp = work / f"api-{i}"
                t0 = time.time()
                c.post("/api/v1/tasks", json={"command": STAMP.format(path=stamp), "n_gpus": 1})
                api.append(read_stamp(stamp) - t0)
        env = {**os.environ, "ANT_URL": server.url, "ANT_TOKEN": server.token or ""}
        for i in range(samples if samples >= 200 else 20):
            stamp = work / f"cli-{i}"
            t0 = time.time()
            subprocess.run(
                [ANT_BIN, "submit", "-g", "1", "--", STAMP.format(path=stamp)],
                env=env,
                capture_output=True,
                check=True,
            )
            cli.append(read_stamp(stamp) - t0)
    finally:
        server.stop()
    tsp = Tsp(work, 8)
    try:
        tsp_lat: list[float] = []
        for i in range(samples):
            stamp = work / f"tsp-{i}"
            t0 = time.time()
            tsp.run("bash", "-c", STAMP.format(path=stamp))
            tsp_lat.append(read_stamp(stamp) - t0)
    finally:
        tsp.close()
    for name, values in (("ant_api", api), ("ant_cli", cli), ("tsp", tsp_lat)):
        out[name] = {
            "p50_ms": pct(values, 0.5) * 1000,
            "p99_ms": pct(values, 0.99) * 1000,
            "n": len(values),
        }
    return out


def bench_drain(work: Path, n: int, slots: int) -> dict[str, Any]:
    root = work / f"drain-{slots}"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=slots).start()
    try:
        text = "\n".join(f"ant_task_id=d{i} true" for i in range(n))
        with server.client() as c:
            t0 = time.time()
            submit_and_wait(c, text, n, timeout=900)
            ant_rate = n / (time.time() - t0)
    finally:
        server.stop()
    tsp = Tsp(root, slots)
    try:
        t0 = time.time()
        for _ in range(n):
            tsp.run("true")
        wait_for(lambda: tsp.finished() == n, timeout=900, interval=0.2)
        tsp_rate = n / (time.time() - t0)
    finally:
        tsp.close()
    return {"ant_tasks_per_s": ant_rate, "tsp_tasks_per_s": tsp_rate, "ratio": ant_rate / tsp_rate}


def bench_bulk_submit(work: Path, n: int) -> dict[str, Any]:
    root = work / "bulk"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=1).start()
    try:
        text = "\n".join(
            f"ant_task_id=bulk-{i} ant_n_gpus=2 python train.py --seed {i}" for i in range(n)
        )
        with server.client() as c:
            t0 = time.time()
            r = c.post("/api/v1/tasks", json={"command": text, "mode": "multi"}, timeout=600)
            elapsed = time.time() - t0
            assert r.status_code == 201, r.text[:200]
    finally:
        server.stop()
    return {"commands": n, "seconds_to_accept": elapsed, "per_s": n / elapsed}


def _fill_history(db: Path, n: int) -> None:
    with Store(db) as store:
        now = time.time()
        batch = []
        for i in range(n):
            batch.append(
                Task(
                    task_id=f"hist-{i:06d}",
                    command=f"python train.py --run {i}",
                    submitted=f"python train.py --run {i}",
                    n_gpus=1,
                    env={},
                    state=TaskState.SUCCEEDED if i % 10 else TaskState.FAILED,
                    priority=0,
                    created_at=now - n + i,
                    started_at=now - n + i,
                    finished_at=now - n + i + 1,
                    exit_code=0 if i % 10 else 1,
                    queue_seq=i,
                )
            )
            if len(batch) == 10_000:
                store.insert_tasks(batch)
                batch = []
        if batch:
            store.insert_tasks(batch)


def timed(fn: Callable[[], Any], repeat: int) -> float:
    values = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        values.append(time.perf_counter() - t0)
    return statistics.median(values) * 1000


def bench_history(work: Path, n: int) -> dict[str, Any]:
    root = work / "history"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=4)
    _fill_history(server.log_dir / "ant.db", n)
    t0 = time.time()
    server.start()
    startup = time.time() - t0
    try:
        assert server.proc is not None
        rss = psutil.Process(server.proc.pid).memory_info().rss
        with server.client() as c:
            k = iter(range(10**9))
            submit = timed(
                lambda: c.post(
                    "/api/v1/tasks", json={"command": "true", "task_id": f"new-{next(k)}"}
                ),
                50,
            )
            page1 = timed(lambda: c.get("/api/v1/tasks", params={"limit": 50}), 20)
            deep = timed(
                lambda: c.get("/api/v1/tasks", params={"limit": 50, "offset": n - 100}), 20
            )
            search = timed(
                lambda: c.get("/api/v1/tasks", params={"q": "hist-04242", "limit": 50}), 20
            )
            total = c.get("/api/v1/tasks", params={"limit": 1}).json()["total"]
    finally:
        server.stop()
    return {
        "finished_tasks": total,
        "startup_s": startup,
        "rss_mib": rss / 2**20,
        "submit_ms_p50": submit,
        "list_page1_ms_p50": page1,
        "list_deep_page_ms_p50": deep,
        "search_ms_p50": search,
    }


def bench_log_tail(work: Path, size_gib: float) -> dict[str, Any]:
    root = work / "logtail"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=1).start()
    try:
        with server.client() as c:
            task = c.post("/api/v1/tasks", json={"command": "true", "task_id": "big"}).json()[
                "tasks"
            ][0]
            log = Path(wait_for(lambda: c.get("/api/v1/tasks/big").json()["log_path"]))
            wait_for(lambda: c.get("/api/v1/tasks/big").json()["state"] == "succeeded")
            line = b"epoch 1 step 123456 loss 0.123456 lr 0.000300 grad-norm 1.2345 ok\n"
            block = line * (16 * 1024 * 1024 // len(line))
            with log.open("wb") as f:
                for _ in range(int(size_gib * 1024 / 16)):
                    f.write(block)
            size = log.stat().st_size
            ms = timed(
                lambda: c.get(f"/api/v1/tasks/{task['task_id']}/log", params={"lines": 200}), 20
            )
            log.unlink()
    finally:
        server.stop()
    return {"log_bytes": size, "last_200_lines_ms_p50": ms}


LOUD = f"python3 {Path(__file__).resolve().parent / 'loud.py'} 10000 {{secs}}"


def bench_live_output(work: Path, tasks: int, seconds: int, mirror: bool) -> dict[str, Any]:
    root = work / f"live-{int(mirror)}"
    root.mkdir()
    server = AntServer(
        workdir=root, fake_gpus=tasks, config={"LOGGER_log_to_stdout": mirror, "step_interval": 1}
    )
    server.output_path = Path(os.devnull) if mirror else server.output_path
    server.start()
    stop = threading.Event()
    try:
        assert server.proc is not None
        pid = server.proc.pid

        def listen() -> None:  # one browser watching the Ongoing page
            with server.client() as c, c.stream("GET", "/api/v1/events") as r:
                for _ in r.iter_lines():
                    if stop.is_set():
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        with server.client() as c:
            for i in range(tasks):
                c.post(
                    "/api/v1/tasks",
                    json={
                        "command": LOUD.format(secs=seconds),
                        "n_gpus": 1,
                        "task_id": f"loud-{i}",
                    },
                )
            wait_for(
                lambda: (
                    len(c.get("/api/v1/tasks", params={"state": "running"}).json()["tasks"])
                    == tasks
                )
            )
            time.sleep(1)
            c0, t0 = cpu_seconds(pid), time.time()
            time.sleep(max(1, seconds - 3))
            cpu = (cpu_seconds(pid) - c0) / (time.time() - t0) * 100
            lines = sum(
                Path(t["log_path"]).read_bytes().count(b"\n")
                for t in c.get("/api/v1/tasks", params={"state": "running"}).json()["tasks"]
            )
    finally:
        stop.set()
        server.stop()
    return {
        "tasks": tasks,
        "lines_per_s_each": 10_000,
        "mirror_to_stdout": mirror,
        "ant_cpu_percent": cpu,
        "lines_written": lines,
    }


def bench_fanout(work: Path, clients: int, n: int) -> dict[str, Any]:
    root = work / "fanout"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=8, config={"step_interval": 1}).start()
    received: list[list[int]] = [[] for _ in range(clients)]
    resyncs = [0] * clients
    done = threading.Event()
    ready = threading.Barrier(clients + 1)

    def listen(k: int) -> None:
        with (
            httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {server.token}"},
                timeout=None,
            ) as c,
            c.stream("GET", "/api/v1/events") as r,
        ):
            ready.wait()
            fields: dict[str, str] = {}
            for line in r.iter_lines():
                if line == "":
                    event = fields.get("event", "")
                    if event == "resync":
                        resyncs[k] += 1
                    elif event and event != "hello" and "id" in fields:
                        received[k].append(int(fields["id"].split(":")[-1]))
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    fields[key] = value
                if done.is_set():
                    return

    threads = [threading.Thread(target=listen, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    try:
        assert server.proc is not None
        ready.wait(timeout=60)
        pid = server.proc.pid
        c0, t0 = cpu_seconds(pid), time.time()
        with server.client() as c:
            text = "\n".join(f"ant_task_id=f{i} true" for i in range(n))
            submit_and_wait(c, text, n, timeout=600)
        elapsed = time.time() - t0
        cpu = (cpu_seconds(pid) - c0) / elapsed * 100
        time.sleep(1.5)
        done.set()
    finally:
        server.stop()
    gaps = 0
    for ids in received:
        gaps += sum(1 for a, b in itertools.pairwise(ids) if b != a + 1)
    counts = [len(ids) for ids in received]
    return {
        "clients": clients,
        "tasks": n,
        "events_per_client_min": min(counts),
        "events_per_client_max": max(counts),
        "id_gaps": gaps,
        "resyncs": sum(resyncs),
        "server_cpu_percent": cpu,
        "seconds": elapsed,
    }


# ------------------------------------------------------------------------------ main


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "tsp": shutil.which("tsp") is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    quick = args.quick
    if shutil.which("tsp") is None:
        sys.exit("task-spooler (tsp) is not installed: run `make bench`, which installs it")
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("latency", lambda: bench_latency(work, 50 if quick else 200)),
            ("drain_2", lambda: bench_drain(work, 500 if quick else 2000, 2)),
            ("drain_8", lambda: bench_drain(work, 500 if quick else 2000, 8)),
            ("bulk_submit", lambda: bench_bulk_submit(work, 2000 if quick else 10_000)),
            ("history", lambda: bench_history(work, 20_000 if quick else 100_000)),
            ("log_tail", lambda: bench_log_tail(work, 0.125 if quick else 1.0)),
            ("live_output", lambda: bench_live_output(work, 16, 6 if quick else 10, mirror=False)),
            (
                "live_output_mirrored",
                lambda: bench_live_output(work, 16, 6 if quick else 10, mirror=True),
            ),
            ("fanout", lambda: bench_fanout(work, 50, 200 if quick else 1000)),
        ]
        for name, step in steps:
            t0 = time.time()
            results[name] = step()
            print(f"# {name} done in {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "suite.json").write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(r: dict[str, Any]) -> None:
    rows = [
        (
            "submit-to-start p50, HTTP API (ms)",
            r["latency"]["ant_api"]["p50_ms"],
            r["latency"]["tsp"]["p50_ms"],
        ),
        (
            "submit-to-start p99, HTTP API (ms)",
            r["latency"]["ant_api"]["p99_ms"],
            r["latency"]["tsp"]["p99_ms"],
        ),
        (
            "submit-to-start p50, `ant submit` CLI (ms)",
            r["latency"]["ant_cli"]["p50_ms"],
            r["latency"]["tsp"]["p50_ms"],
        ),
        (
            "drain, 2 slots (tasks/s)",
            r["drain_2"]["ant_tasks_per_s"],
            r["drain_2"]["tsp_tasks_per_s"],
        ),
        (
            "drain, 8 slots (tasks/s)",
            r["drain_8"]["ant_tasks_per_s"],
            r["drain_8"]["tsp_tasks_per_s"],
        ),
    ]
    print(f"{'measure':<46}{'ANT':>12}{'tsp':>12}")
    for name, ant, tsp in rows:
        print(f"{name:<46}{ant:>12.1f}{tsp:>12.1f}")
    b, h, lt, fo = r["bulk_submit"], r["history"], r["log_tail"], r["fanout"]
    print(
        f"bulk submit: {b['commands']} commands accepted durably in {b['seconds_to_accept']:.2f} s"
    )
    print(
        f"history {h['finished_tasks']} tasks: start-up {h['startup_s']:.2f} s, RSS {h['rss_mib']:.0f} MiB, "
        f"submit {h['submit_ms_p50']:.1f} ms, page 1 {h['list_page1_ms_p50']:.1f} ms, "
        f"deep page {h['list_deep_page_ms_p50']:.1f} ms, search {h['search_ms_p50']:.1f} ms"
    )
    print(
        f"log tail: last 200 lines of {lt['log_bytes'] / 2**30:.2f} GiB in {lt['last_200_lines_ms_p50']:.1f} ms"
    )
    for key in ("live_output", "live_output_mirrored"):
        lo = r[key]
        print(
            f"live output ({'mirrored to stdout' if lo['mirror_to_stdout'] else 'log files only'}): "
            f"{lo['tasks']} tasks x 10,000 lines/s -> ANT CPU {lo['ant_cpu_percent']:.1f}%"
        )
    print(
        f"event fan-out: {fo['clients']} SSE clients, {fo['tasks']} tasks, "
        f"{fo['events_per_client_min']}-{fo['events_per_client_max']} events each, "
        f"{fo['id_gaps']} id gaps, {fo['resyncs']} resyncs, server CPU {fo['server_cpu_percent']:.0f}%"
    )


if __name__ == "__main__":
    main()
