"""ANT next to task-spooler on P10's measures, interleaved in the same run, with ANT/tsp ratios.

    python benchmarks/versus_tsp.py [--quick] [--rounds N] [--no-profile]

- idle submit-to-start: one HTTP request on a persistent connection (the standard library's
  http.client: a light client, as tsp's is) over TCP and over ANT's Unix socket, against `tsp
  bash -c ...`; samples interleaved one by one. Measured from just before the request to the
  moment the task's shell runs (`$EPOCHREALTIME` written by the task).
- drains of 2,000 `true` tasks with 2 and 8 slots (fake GPUs / `tsp -S`), ANT given them in one
  multi submission and as one POST each, tsp as one `tsp true` each; rounds alternate the order.
- the floor of a single POST: its p50 when nothing starts, an empty HTTP round trip and an
  fsync'd commit (what each 201 waits for), which bound any drain by one POST per task.
- a long queue: 100,000 queued GPU tasks that cannot start (every GPU is held), then submits
  (p50) and 2,000 CPU tasks (`true`, 2 at a time) run through behind them.
- where a drained task's time goes: py-spy samples of ANT's event loop during a 2-slot drain,
  sorted into parts (ms per task), with the server's and the tasks' CPU per task.

Prints tables and writes benchmarks/results/versus_tsp.json. Nothing is asserted: these
machines are shared and noisy; compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import AntServer, wait_for

from benchmarks.suite import STAMP, Tsp, read_stamp

RESULTS = Path(__file__).resolve().parent / "results"
PY_SPY = Path(sys.executable).parent / "py-spy"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over ANT's Unix socket (<state dir>/ant.sock)."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class Api:
    """A persistent HTTP connection to ANT (TCP or the Unix socket)."""

    def __init__(self, server: AntServer, *, unix: bool = False) -> None:
        if unix:
            self.conn: http.client.HTTPConnection = UnixHTTPConnection(
                str(server.state_dir / "ant.sock")
            )
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", server.port)
        self.headers = {
            "Authorization": f"Bearer {server.token}",
            "Content-Type": "application/json",
        }

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
        return json.loads(payload) if payload else None

    def count(self, state: str) -> int:
        return int(self.request("GET", f"/api/v1/tasks?state={state}&limit=1")["total"])

    def close(self) -> None:
        self.conn.close()


def p50_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


# ------------------------------------------------------------------------------ measures


def bench_latency(work: Path, samples: int) -> dict[str, Any]:
    root = work / "latency"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=8).start()
    tsp = Tsp(root, 8)
    tcp, unix = Api(server), Api(server, unix=True)
    out: dict[str, list[float]] = {"ant_tcp": [], "ant_unix": [], "tsp": []}
    try:
        for i in range(samples):
            for name, api in (("ant_tcp", tcp), ("ant_unix", unix)):
                stamp = root / f"{name}-{i}"
                t0 = time.time()
                task = {"command": STAMP.format(path=stamp), "n_gpus": 1}
                api.request("POST", "/api/v1/tasks", task)
                out[name].append(read_stamp(stamp) - t0)
            stamp = root / f"tsp-{i}"
            t0 = time.time()
            tsp.run("bash", "-c", STAMP.format(path=stamp))
            out["tsp"].append(read_stamp(stamp) - t0)
    finally:
        tcp.close()
        unix.close()
        server.stop()
        tsp.close()
    return {name: {"p50_ms": p50_ms(v), "n": len(v)} for name, v in out.items()}


def ant_drain(work: Path, n: int, slots: int, how: str) -> float:
    root = Path(tempfile.mkdtemp(prefix=f"ant-{how}-{slots}-", dir=work))
    server = AntServer(workdir=root, fake_gpus=slots).start()
    api = Api(server)
    try:
        t0 = time.time()
        if how == "multi":
            text = "\n".join(f"ant_task_id=d{i} true" for i in range(n))
            api.request("POST", "/api/v1/tasks", {"command": text, "mode": "multi", "n_gpus": 1})
        else:
            for i in range(n):
                task = {"command": "true", "task_id": f"d{i}", "n_gpus": 1}
                api.request("POST", "/api/v1/tasks", task)
        wait_for(lambda: api.count("succeeded") == n, timeout=900, interval=0.05)
        return n / (time.time() - t0)
    finally:
        api.close()
        server.stop()


def tsp_drain(work: Path, n: int, slots: int) -> float:
    root = Path(tempfile.mkdtemp(prefix=f"tsp-{slots}-", dir=work))
    tsp = Tsp(root, slots)
    try:
        t0 = time.time()
        for _ in range(n):
            tsp.run("true")
        wait_for(lambda: tsp.finished() == n, timeout=900, interval=0.05)
        return n / (time.time() - t0)
    finally:
        tsp.close()


def bench_drains(work: Path, n: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for slots in (2, 8):
        runs: dict[str, list[float]] = collections.defaultdict(list)
        for r in range(rounds):
            order = ["multi", "single", "tsp"]
            for how in order[r % 3 :] + order[: r % 3]:  # each goes first once in 3 rounds
                rate = tsp_drain(work, n, slots) if how == "tsp" else ant_drain(work, n, slots, how)
                runs[how].append(rate)
        out[f"slots_{slots}"] = {
            how: {"median_per_s": statistics.median(v), "runs": v} for how, v in runs.items()
        }
    return out


def bench_long_queue(work: Path, queued: int, n: int, samples: int) -> dict[str, Any]:
    root = work / "long-queue"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=4, config={"RUNNER_max_cpu_tasks": 2}).start()
    api = Api(server)
    try:
        api.request("POST", "/api/v1/tasks", {"command": "sleep 3600", "n_gpus": 4})
        for start in range(0, queued, 20_000):
            text = "\n".join(
                f"ant_task_id=q{i} ant_n_gpus={1 + i % 4} true"
                for i in range(start, min(queued, start + 20_000))
            )
            api.request("POST", "/api/v1/tasks", {"command": text, "mode": "multi"})
        submits = []
        for i in range(samples):
            t0 = time.perf_counter()
            task = {"command": "true", "task_id": f"s{i}", "n_gpus": 1}  # cannot start either
            api.request("POST", "/api/v1/tasks", task)
            submits.append(time.perf_counter() - t0)
        # Runnable tasks behind the long queue: CPU tasks, which never wait on GPU tasks.
        text = "\n".join(f"ant_task_id=c{i} true" for i in range(n))
        t0 = time.time()
        api.request("POST", "/api/v1/tasks", {"command": text, "mode": "multi", "n_gpus": 0})
        wait_for(lambda: api.count("succeeded") == n, timeout=900, interval=0.05)
        rate = n / (time.time() - t0)
        return {
            "queued": queued,
            "submit_p50_ms": p50_ms(submits),
            "runnable_per_s": rate,
            "runnable_tasks": n,
        }
    finally:
        api.close()
        server.stop()


def bench_post_floor(work: Path, samples: int) -> dict[str, Any]:
    """What one POST costs when nothing starts (every GPU held), next to its parts' floors: an
    HTTP round trip that does nothing (`GET /api/`) and one fsync'd SQLite commit in the same
    directory (what a 201 must wait for: the task is durable). A client that waits for each
    answer, as `tsp` does, can submit at most 1000/p50 tasks per second."""
    root = work / "post-floor"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=1).start()
    api = Api(server)
    out: dict[str, list[float]] = {"post": [], "health": [], "commit": []}
    db = sqlite3.connect(root / "floor.sqlite3", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        api.request("POST", "/api/v1/tasks", {"command": "sleep 3600", "n_gpus": 1})
        for i in range(samples):
            t0 = time.perf_counter()
            api.request(
                "POST", "/api/v1/tasks", {"command": "true", "task_id": f"p{i}", "n_gpus": 1}
            )
            out["post"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            api.request("GET", "/api/")
            out["health"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
            out["commit"].append(time.perf_counter() - t0)
    finally:
        db.close()
        api.close()
        server.stop()
    return {name: {"p50_ms": p50_ms(v), "n": len(v)} for name, v in out.items()}


# Parts of a drained task's time on ANT's event loop, by the first matching frame (innermost
# first); the order of checks matters (a spawn happens inside a scheduling pass).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("spawn (fork/exec of the wrapper)", ("Popen.__init__",)),
    ("log and exit files", ("_open_file", "SpareFiles.claim", "_open_dir")),
    ("store (SQLite)", ("Store.",)),
    ("seeing a task end (pidfd, reap, exit file)", ("_on_wrapper_end", "_wrapper_exited")),
    ("policy", ("policy.py",)),
    ("events and views", ("_publish", "EventBus", "task_json", "views.py")),
    ("HTTP and API (the submission, the benchmark's polls)", ("h11_impl", "routing.py")),
    ("rest of a scheduling pass", ("Scheduler.",)),
    ("waiting for work (event loop idle)", ("select (selectors",)),
]


def part_of(stack: str) -> str:
    frames = stack.split(";")
    for name, marks in PARTS:
        if any(mark in frame for frame in frames for mark in marks):
            return name
    return "other"


def bench_profile(work: Path, n: int) -> dict[str, Any]:
    """py-spy (sampling, 500 Hz, idle included) on ANT's main thread during a 2-slot drain."""
    root = work / "profile"
    root.mkdir()
    server = AntServer(workdir=root, fake_gpus=2).start()
    assert server.proc is not None
    api = Api(server)
    raw = root / "py-spy.txt"
    try:
        proc = psutil.Process(server.proc.pid)
        spy = subprocess.Popen(
            [
                *(str(PY_SPY), "record", "-p", str(proc.pid), "-f", "raw", "-o", str(raw)),
                *("-r", "500", "--idle", "--nonblocking"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.5)  # py-spy attached
        cpu0 = proc.cpu_times()
        t0 = time.time()
        text = "\n".join(f"ant_task_id=d{i} true" for i in range(n))
        api.request("POST", "/api/v1/tasks", {"command": text, "mode": "multi", "n_gpus": 1})
        wait_for(lambda: api.count("succeeded") == n, timeout=900, interval=0.05)
        seconds = time.time() - t0
        cpu1 = proc.cpu_times()
        spy.send_signal(2)
        spy.wait(timeout=60)
    finally:
        api.close()
        server.stop()
    parts: collections.Counter[str] = collections.Counter()
    total = 0
    if not raw.exists():  # py-spy could not attach (ptrace not allowed for this user)
        return {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.startswith("_run_module_as_main"):  # the event loop's thread only
            continue
        parts[part_of(stack)] += int(count)
        total += int(count)
    if total == 0:
        return {}
    loop_ms = seconds * 1000 / n  # wall time of the loop per task: what the samples split
    return {
        "tasks": n,
        "tasks_per_s": n / seconds,
        "server_cpu_ms_per_task": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000 / n,
        "tasks_cpu_ms_per_task": (
            cpu1.children_user + cpu1.children_system - cpu0.children_user - cpu0.children_system
        )
        * 1000
        / n,
        "loop_ms_per_task": {name: loop_ms * c / total for name, c in parts.most_common()},
    }


# ------------------------------------------------------------------------------ report


def print_report(r: dict[str, Any]) -> None:
    lat = r["latency"]
    rows: list[tuple[str, float, float | None, str]] = [
        ("idle submit->start p50, HTTP over TCP (ms)", lat["ant_tcp"]["p50_ms"], None, "lat"),
        (
            "idle submit->start p50, HTTP over the Unix socket (ms)",
            lat["ant_unix"]["p50_ms"],
            None,
            "lat",
        ),
    ]
    tsp_lat = lat["tsp"]["p50_ms"]
    print(f"{'measure':<58}{'ANT':>9}{'tsp':>9}{'ANT/tsp':>9}")
    for name, ant, _, _ in rows:
        print(f"{name:<58}{ant:>9.2f}{tsp_lat:>9.2f}{ant / tsp_lat:>9.2f}")
    for slots in (2, 8):
        d = r["drains"][f"slots_{slots}"]
        tsp = d["tsp"]["median_per_s"]
        for how, label in (("multi", "one multi submit"), ("single", "single POSTs")):
            ant = d[how]["median_per_s"]
            name = f"drain {r['drain_tasks']:,} true, {slots} slots, {label} (/s)"
            print(f"{name:<58}{ant:>9.0f}{tsp:>9.0f}{ant / tsp:>9.2f}")
    floor = r.get("post_floor")
    if floor:
        post = floor["post"]["p50_ms"]
        tsp_best = max(r["drains"][f"slots_{n}"]["tsp"]["median_per_s"] for n in (2, 8))
        print(
            f"one POST that starts nothing: p50 {post:.2f} ms, so at most {1000 / post:.0f} "
            f"tasks/s from a client that waits for each answer (tsp drained {tsp_best:.0f}/s); "
            f"its floors: an empty HTTP round trip {floor['health']['p50_ms']:.2f} ms, "
            f"an fsync'd commit {floor['commit']['p50_ms']:.2f} ms"
        )
    q = r.get("long_queue")
    if q:
        print(
            f"with {q['queued']:,} queued: submit p50 {q['submit_p50_ms']:.2f} ms (goal < 2); "
            f"{q['runnable_tasks']:,} runnable tasks started at {q['runnable_per_s']:.0f}/s "
            "(goal >= 400)"
        )
    prof = r.get("profile")
    if prof:
        print(
            f"\nwhere a drained task's time goes (2 slots, {prof['tasks']:,} tasks, "
            f"{prof['tasks_per_s']:.0f}/s under py-spy): server CPU "
            f"{prof['server_cpu_ms_per_task']:.2f} ms/task (all its threads), the tasks' "
            f"processes {prof['tasks_cpu_ms_per_task']:.2f} ms/task; the event loop's time:"
        )
        for name, ms in prof["loop_ms_per_task"].items():
            print(f"  {name:<56}{ms:>7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=3, help="drain rounds (default 3)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy breakdown")
    args = parser.parse_args()
    if shutil.which("tsp") is None:
        sys.exit("task-spooler (tsp) is not installed: run `make bench`, which installs it")
    quick = args.quick
    n = 500 if quick else 2000
    results: dict[str, Any] = {"quick": quick, "drain_tasks": n}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        steps = [
            ("latency", lambda: bench_latency(work, 50 if quick else 200)),
            ("drains", lambda: bench_drains(work, n, 1 if quick else args.rounds)),
            ("post_floor", lambda: bench_post_floor(work, 50 if quick else 300)),
            (
                "long_queue",
                lambda: bench_long_queue(
                    work, 20_000 if quick else 100_000, n, 50 if quick else 200
                ),
            ),
        ]
        if not args.no_profile and PY_SPY.exists():
            steps.append(("profile", lambda: bench_profile(work, n)))
        for name, step in steps:
            t0 = time.time()
            results[name] = step()
            print(f"# {name} done in {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "versus_tsp.json").write_text(json.dumps(results, indent=2))
    print_report(results)


if __name__ == "__main__":
    main()
