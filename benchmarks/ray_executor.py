"""ANT on a Ray cluster next to plain Ray Jobs, on the same cluster, in the same run.

    make bench            (installs ray[default]: Ray Jobs needs the dashboard)
    python benchmarks/ray_executor.py [--quick]

One cluster on this machine, every listener on 127.0.0.1: a head with 0 GPUs (and the dashboard,
which serves Ray Jobs) plus 2 nodes × 2 fake GPUs (labels ant-name node-a / node-b). ANT runs with
RUNNER_executor "ray" against it; Ray Jobs are submitted to its dashboard with
JobSubmissionClient.submit_job(entrypoint_num_gpus=1).

- Submit-to-start, idle: from just before the submit call (ANT: POST /api/v1/tasks over one
  persistent httpx connection; Ray Jobs: submit_job) to the moment the command itself runs: it is
  `date +%s.%N > STAMP`, the same for both, on the same host (so the clocks agree). Every sample
  waits for the one before to have ended. ANT's agents hold all of their node's GPUs in Ray's
  accounting while ANT runs, so a Ray job asking for a GPU cannot start next to them: the two
  take turns in blocks (ANT up, a block of samples, ANT stopped and its agents gone, a block of
  Ray Jobs, …), so the machine's noise falls on both. The first sample of each block is a
  warm-up, kept apart, on every side.
- Drain: N `true` tasks at once (1 GPU each, so 4 run at a time) until all have ended: ANT in one
  multi-mode request and in N single POSTs; Ray Jobs N/5 jobs (they are slow), each
  submit_job counted in the time, until every job is SUCCEEDED (or failed).
- Where the time goes: the scheduler's own records (ANT's created_at, started_at, finished_at;
  Ray's JobInfo start_time and end_time) split each sample, and ANT with its local executor on 4
  fake GPUs (same machine, same blocks) is measured alongside as the reference: the difference
  is what the cluster adds.

Prints one table and writes benchmarks/results/ray_executor.json. Nothing is asserted; everything
is bounded in count and time, and the cluster is shut down even on failure.
"""

from __future__ import annotations

import os

# Before Ray is imported: keep every listener on loopback, and send nothing anywhere.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

import argparse
import json
import platform
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import AntServer, free_port, wait_for

from benchmarks.suite import pct

RESULTS = Path(__file__).resolve().parent / "results"
STAMP = "date +%s.%N > {path}"
GPUS = 4  # 2 nodes × 2 fake GPUs
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")


# ------------------------------------------------------------------------------ the cluster


def start_cluster() -> tuple[Any, str]:
    """(cluster, dashboard URL): a head with 0 GPUs and the dashboard, 2 nodes × 2 GPUs."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": 0,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": free_port(),
            # Not Ray's fixed default (52365): other clusters may run on this host.
            "dashboard_agent_listen_port": free_port(),
        },
    )
    try:
        for name in ("node-a", "node-b"):
            cluster.add_node(num_cpus=1, num_gpus=2, labels={"ant-name": name})
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    url = cluster.webui_url
    return cluster, url if url.startswith("http") else f"http://{url}"


def free_gpus(cluster: Any) -> float:
    return float(cluster.global_state.available_resources().get("GPU", 0))


def wait_gpus_back(cluster: Any, timeout: float = 60) -> None:
    """Until Ray has all 4 GPUs free again (ANT's agents gone, Ray's jobs ended)."""
    wait_for(lambda: free_gpus(cluster) >= GPUS, timeout=timeout, interval=0.1)


def read_stamp(path: Path, timeout: float = 60) -> float:
    def ready() -> str | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if text.endswith("\n") else None

    return float(wait_for(ready, timeout, 0.001))


# ------------------------------------------------------------------------------ ANT on Ray


@contextmanager
def ant_on_ray(work: Path, address: str, cluster: Any) -> Iterator[AntServer]:
    """ANT serving the cluster, until its agents are up and all 4 GPUs usable; on leaving, ANT
    stops cleanly (its idle agents go and give the GPUs back to Ray) and we wait for that."""
    work.mkdir(parents=True, exist_ok=True)
    server = AntServer(
        workdir=work,
        fake_gpus=None,
        config={
            "RUNNER_executor": "ray",
            "RAY_address": address,
            # A fallback: agents nobody pulls from leave by themselves after 2 s.
            "RAY_agent_idle_seconds": 2,
        },
    )
    t0 = time.time()
    children: list[int] = []
    try:
        server.start(timeout=60)
        with server.client() as c:

            def ready() -> bool:
                health = c.get("/api/v1/health").json()
                free = [g for g in c.get("/api/v1/gpus").json() if g["state"] == "free"]
                return bool(health["executor"]["available"]) and len(free) >= GPUS

            wait_for(ready, timeout=120, interval=0.2)
        children = server.task_pids()  # the bridge
        print(f"#   ANT on Ray ready in {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
        yield server
    finally:
        server.stop(kill_tasks=False)  # SIGTERM: the bridge releases the idle agents
        for pid in children:
            try:
                psutil.Process(pid).wait(15)
            except psutil.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
            except psutil.Error:
                pass
        wait_gpus_back(cluster)
        forget_spool(server)


def forget_spool(server: AntServer) -> None:
    """The agents' spool directories of this ANT (under the nodes' temp dir: this host)."""
    try:
        with closing(sqlite3.connect(server.state_dir / "ant.db")) as db:
            (server_id,) = db.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()
    except (sqlite3.Error, TypeError):
        return
    shutil.rmtree(Path(tempfile.gettempdir()) / "ant-agent" / server_id, ignore_errors=True)


def ant_latency_block(
    server: AntServer, work: Path, first: int, count: int, out: dict[str, list[float]]
) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with server.client() as c:
        for k in range(first, first + count + 1):  # + the warm-up
            stamp = work / f"ant-{k}"
            task_id = f"lat-{k}"
            t0 = time.time()
            r = c.post(
                "/api/v1/tasks",
                json={"command": STAMP.format(path=stamp), "n_gpus": 1, "task_id": task_id},
            )
            answered = time.time()
            r.raise_for_status()
            started = read_stamp(stamp)

            def ended(task_id: str = task_id) -> dict[str, Any] | None:
                task: dict[str, Any] = c.get(f"/api/v1/tasks/{task_id}").json()
                return task if task["state"] in ("succeeded", "failed", "lost") else None

            task = wait_for(ended, timeout=60, interval=0.01)
            if k == first:  # the warm-up: kept apart
                out["warm_up"].append(started - t0)
                continue
            out["start"].append(started - t0)
            out["answer"].append(answered - t0)
            out["to_record"].append(task["created_at"] - t0)
            out["record_to_command"].append(started - task["created_at"])
            out["decided"].append(task["started_at"] - task["created_at"])
            out["started_to_command"].append(started - task["started_at"])
            out["command_to_end_record"].append(task["finished_at"] - started)
            out["ended_seen"].append(time.time() - t0)
            time.sleep(0.2)


def ant_drain(server: AntServer, n: int, multi: bool, tag: str) -> dict[str, Any]:
    with server.client() as c:
        finished: dict[str, str | int] = {"state": "succeeded,failed,lost", "limit": 1}
        before = c.get("/api/v1/tasks", params=finished).json()["total"]
        t0 = time.time()
        if multi:
            text = "\n".join(f"ant_task_id={tag}-{i} true" for i in range(n))
            r = c.post("/api/v1/tasks", json={"command": text, "mode": "multi", "n_gpus": 1})
            r.raise_for_status()
        else:
            for i in range(n):
                r = c.post(
                    "/api/v1/tasks", json={"command": "true", "n_gpus": 1, "task_id": f"{tag}-{i}"}
                )
                r.raise_for_status()
        submitted = time.time() - t0

        def drained() -> bool:
            page = c.get("/api/v1/tasks", params=finished).json()
            return bool(page["total"] - before >= n)

        wait_for(drained, timeout=300, interval=0.05)
        elapsed = time.time() - t0
        tasks = c.get("/api/v1/tasks", params={"q": f"{tag}-", "limit": 1000}).json()["tasks"]
    held = [t["finished_at"] - t["started_at"] for t in tasks if t.get("finished_at")]
    return {
        "tasks": n,
        "seconds": elapsed,
        "submit_seconds": submitted,
        "per_s": n / elapsed,
        "succeeded": sum(1 for t in tasks if t["state"] == "succeeded"),
        # From ANT's record of the start to its record of the end: how long a `true` task
        # holds its GPU, which with 4 GPUs bounds the drain at 4 / held tasks/s.
        "held_ms_p50": statistics.median(held) * 1000 if held else None,
    }


# ------------------------------------------------------------------------------ Ray Jobs


def wait_job(client: Any, job_id: str, timeout: float = 120) -> str:
    def ended() -> str | None:
        status = str(client.get_job_status(job_id).value)
        return status if status in ENDED else None

    return str(wait_for(ended, timeout=timeout, interval=0.01))


def jobs_latency_block(
    client: Any, work: Path, first: int, count: int, out: dict[str, list[float]]
) -> None:
    for k in range(first, first + count + 1):  # + the warm-up
        stamp = work / f"job-{k}"
        t0 = time.time()
        job_id = client.submit_job(
            entrypoint=STAMP.format(path=stamp), entrypoint_num_gpus=1, submission_id=f"lat-{k}"
        )
        answered = time.time()
        started = read_stamp(stamp)
        wait_job(client, job_id)
        ended_seen = time.time()
        if k == first:  # the warm-up: kept apart
            out["warm_up"].append(started - t0)
            continue
        info = client.get_job_info(job_id)
        recorded = info.start_time / 1000  # Ray's record of the job (ms)
        out["start"].append(started - t0)
        out["answer"].append(answered - t0)
        out["to_record"].append(recorded - t0)
        out["record_to_command"].append(started - recorded)
        out["command_to_end_record"].append(info.end_time / 1000 - started)
        out["ended_seen"].append(ended_seen - t0)
        time.sleep(0.2)


def jobs_drain(client: Any, n: int, tag: str) -> dict[str, Any]:
    t0 = time.time()
    ids = {
        client.submit_job(entrypoint="true", entrypoint_num_gpus=1, submission_id=f"{tag}-{i}")
        for i in range(n)
    }
    submitted = time.time() - t0

    def drained() -> dict[str, str] | None:
        states = {j.submission_id: str(j.status.value) for j in client.list_jobs()}
        mine = {i: states.get(i, "") for i in ids}
        return mine if all(s in ENDED for s in mine.values()) else None

    states = wait_for(drained, timeout=300, interval=0.2)
    elapsed = time.time() - t0
    return {
        "tasks": n,
        "seconds": elapsed,
        "submit_seconds": submitted,
        "per_s": n / elapsed,
        "succeeded": sum(1 for s in states.values() if s == "SUCCEEDED"),
    }


# ------------------------------------------------------------------------------ main


def summary(values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {"p50_ms": statistics.median(ms), "p90_ms": pct(ms, 0.9), "n": len(ms), "ms": ms}


def machine() -> dict[str, Any]:
    import ray

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "ray": ray.__version__,
        "nodes": "head (0 GPUs, dashboard) + 2 nodes × 2 fake GPUs, all on this host",
        "load_avg_before": list(os.getloadavg()),
    }


ANT_KEYS = (
    "start",
    "answer",
    "to_record",
    "record_to_command",
    "decided",
    "started_to_command",
    "command_to_end_record",
    "ended_seen",
    "warm_up",
)
JOBS_KEYS = (
    "start",
    "answer",
    "to_record",
    "record_to_command",
    "command_to_end_record",
    "ended_seen",
    "warm_up",
)


@contextmanager
def ant_local(work: Path) -> Iterator[AntServer]:
    """The reference: ANT with its local executor and 4 fake GPUs, on the same machine."""
    work.mkdir(parents=True, exist_ok=True)
    server = AntServer(workdir=work, fake_gpus=GPUS).start()
    try:
        yield server
    finally:
        server.stop()


def run(work: Path, samples: int, block: int, drain_n: int, jobs_n: int, rounds: int) -> Any:
    from ray.job_submission import JobSubmissionClient

    t0 = time.time()
    cluster, dashboard = start_cluster()
    print(f"# cluster up in {time.time() - t0:.1f}s ({dashboard})", file=sys.stderr, flush=True)
    try:
        client = wait_for(lambda: _jobs_client(JobSubmissionClient, dashboard), 60, 0.5)
        address = cluster.address
        lat: dict[str, dict[str, list[float]]] = {
            "ant": {k: [] for k in ANT_KEYS},
            "ray_jobs": {k: [] for k in JOBS_KEYS},
            "ant_local": {k: [] for k in ANT_KEYS},
        }
        drains: dict[str, list[dict[str, Any]]] = {
            "ant_multi": [],
            "ant_single": [],
            "jobs": [],
            "local_multi": [],
            "local_single": [],
        }
        steps: list[tuple[str, Callable[[], None]]] = []
        blocks = -(-samples // block)
        for b in range(blocks):
            count = min(block, samples - b * block)
            first = b * (block + 1)

            def ant_block(first: int = first, count: int = count, b: int = b) -> None:
                with ant_on_ray(work / f"ant-lat-{b}", address, cluster) as server:
                    ant_latency_block(server, work / "ray", first, count, lat["ant"])

            def jobs_block(first: int = first, count: int = count) -> None:
                wait_gpus_back(cluster)
                jobs_latency_block(client, work, first, count, lat["ray_jobs"])

            def local_block(first: int = first, count: int = count, b: int = b) -> None:
                with ant_local(work / f"local-lat-{b}") as server:
                    ant_latency_block(server, work / "local", first, count, lat["ant_local"])

            steps += [(f"latency block {b + 1}/{blocks}: ANT on Ray", ant_block)]
            steps += [(f"latency block {b + 1}/{blocks}: Ray Jobs", jobs_block)]
            steps += [(f"latency block {b + 1}/{blocks}: ANT local", local_block)]
        for r in range(rounds):

            def ant_drains(r: int = r) -> None:
                with ant_on_ray(work / f"ant-drain-{r}", address, cluster) as server:
                    drains["ant_multi"].append(ant_drain(server, drain_n, True, f"m{r}"))
                    drains["ant_single"].append(ant_drain(server, drain_n, False, f"s{r}"))

            def jobs_drains(r: int = r) -> None:
                wait_gpus_back(cluster)
                drains["jobs"].append(jobs_drain(client, jobs_n, f"d{r}"))

            def local_drains(r: int = r) -> None:
                with ant_local(work / f"local-drain-{r}") as server:
                    drains["local_multi"].append(ant_drain(server, drain_n, True, f"m{r}"))
                    drains["local_single"].append(ant_drain(server, drain_n, False, f"s{r}"))

            steps += [(f"drain round {r + 1}/{rounds}: ANT on Ray", ant_drains)]
            steps += [(f"drain round {r + 1}/{rounds}: Ray Jobs", jobs_drains)]
            steps += [(f"drain round {r + 1}/{rounds}: ANT local", local_drains)]
        for name, step in steps:
            t1 = time.time()
            step()
            print(f"# {name} done in {time.time() - t1:.1f}s", file=sys.stderr, flush=True)
    finally:
        cluster.shutdown()
    return {
        "latency": {
            **{side: {k: summary(v) for k, v in values.items()} for side, values in lat.items()},
            "blocks": blocks,
            "warm_up_per_block": 1,
        },
        "drain": drains,
    }


def _jobs_client(factory: Any, url: str) -> Any:
    try:
        return factory(url)
    except Exception:  # the dashboard is still starting
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--samples", type=int, default=30, help="latency samples on each side")
    args = parser.parse_args()
    try:
        import aiohttp  # noqa: F401  (what the dashboard serves with)
        from ray.job_submission import JobSubmissionClient  # noqa: F401
    except ImportError:
        sys.exit("Ray Jobs needs ray[default]: run `make bench`, which installs it")
    # A SIGTERM (a timeout, make being stopped) unwinds like Ctrl+C: ANT and the cluster stop.
    # (Once the cluster is up, Ray's own handler first stops its processes, then does the same.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quick = args.quick
    samples = 10 if quick else max(20, args.samples)
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    with tempfile.TemporaryDirectory(prefix="antray-") as tmp:
        results.update(
            run(
                Path(tmp),
                samples=samples,
                block=5,
                drain_n=50 if quick else 200,
                jobs_n=10 if quick else 40,
                rounds=1 if quick else 2,
            )
        )
    results["machine"]["load_avg_after"] = list(os.getloadavg())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_executor.json").write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(r: dict[str, Any]) -> None:
    ant, jobs, local = (r["latency"][k] for k in ("ant", "ray_jobs", "ant_local"))
    d = r["drain"]

    def ms(side: dict[str, Any], key: str, q: str = "p50_ms") -> str:
        return f"{side[key][q]:.1f}" if key in side else "-"

    def rate(runs: list[dict[str, Any]]) -> str:
        low, high = min(x["per_s"] for x in runs), max(x["per_s"] for x in runs)
        return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}"

    def held(runs: list[dict[str, Any]]) -> str:
        values = [x["held_ms_p50"] for x in runs if x["held_ms_p50"] is not None]
        return f"{min(values):.0f}-{max(values):.0f}" if values else "-"

    def p50(key: str, label: str) -> tuple[str, str, str, str]:
        return (label, ms(ant, key), ms(jobs, key), ms(local, key))

    n_ant, n_jobs = d["ant_multi"][0]["tasks"], d["jobs"][0]["tasks"]
    rows = [
        p50("start", "submit-to-start p50 (ms)"),
        ("submit-to-start p90 (ms)", *(ms(x, "start", "p90_ms") for x in (ant, jobs, local))),
        p50("answer", "  submit call answered p50 (ms)"),
        p50("to_record", "  submit -> recorded by the scheduler p50 (ms)"),
        p50("record_to_command", "  recorded -> command runs p50 (ms)"),
        p50("decided", "    ANT: created_at -> started_at p50 (ms)"),
        p50("started_to_command", "    ANT: started_at -> command runs p50 (ms)"),
        p50("warm_up", "  first of a block (warm-up) p50 (ms)"),
        p50("command_to_end_record", "command runs -> its end recorded p50 (ms)"),
        p50("ended_seen", "submit -> end seen by the client p50 (ms)"),
        (
            f"drain, one submit per task (/s; {n_ant} / {n_jobs})",
            rate(d["ant_single"]),
            rate(d["jobs"]),
            rate(d["local_single"]),
        ),
        (
            f"drain, one multi-mode request (/s; {n_ant})",
            rate(d["ant_multi"]),
            "-",
            rate(d["local_multi"]),
        ),
        (
            "  a `true` task holds its GPU, p50 (ms)",
            held(d["ant_multi"] + d["ant_single"]),
            "-",
            held(d["local_multi"] + d["local_single"]),
        ),
    ]
    print(f"{'measure':<56}{'ANT on Ray':>14}{'Ray Jobs':>14}{'ANT local':>14}")
    for name, a, b, c in rows:
        print(f"{name:<56}{a:>14}{b:>14}{c:>14}")
    print(
        f"latency: {ant['start']['n']} samples each side, in {r['latency']['blocks']} blocks "
        f"taking turns (the first of each block not counted); drains: {len(d['jobs'])} round(s)"
    )
    load = r["machine"]["load_avg_before"][0], r["machine"]["load_avg_after"][0]
    print(f"load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f}")


if __name__ == "__main__":
    main()
