"""The Ray executor against a real Ray cluster on this machine (tests/ray/conftest.py): placement,
gang tasks, kill, exit codes, logs, Ray's own accounting, restarts on both sides, nodes leaving
and joining, an unreachable cluster. Every node runs on this host, so the tests also look at the
real processes: which node's agent started them (their ANT_SERVER_ID names the node) and whether
any is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cli.test_cli import Ant
from tests.ray.conftest import make_cluster
from tests.server import AntServer, free_port, wait_for

pytestmark = pytest.mark.timeout(240)


def ray_server(factory: type[AntServer], address: str, **config: Any) -> AntServer:
    server = factory(
        fake_gpus=None,
        # Agents of the test before (another ANT) go quickly and give the GPUs back.
        config={
            "RUNNER_executor": "ray",
            "RAY_address": address,
            "RAY_agent_idle_seconds": 1,
            **config,
        },
    ).start(timeout=60)
    return server


def wait_ready(server: AntServer, gpus: int, timeout: float = 90) -> None:
    """Until the cluster is connected and `gpus` GPUs are usable."""
    with server.client() as c:

        def ready() -> bool:
            health = c.get("/api/v1/health").json()
            usable = [g for g in c.get("/api/v1/gpus").json() if g["state"] == "free"]
            return bool(health["executor"]["available"]) and len(usable) >= gpus

        wait_for(ready, timeout=timeout, interval=0.2)


def submit(server: AntServer, command: str, **fields: Any) -> dict[str, Any]:
    with server.client() as c:
        r = c.post("/api/v1/tasks", json={"command": command, **fields})
        assert r.status_code == 201, r.text
        task: dict[str, Any] = r.json()["tasks"][0]
        return task


def task(server: AntServer, task_id: str) -> dict[str, Any]:
    with server.client() as c:
        got: dict[str, Any] = c.get(f"/api/v1/tasks/{task_id}").json()
        return got


def wait_state(
    server: AntServer, task_id: str, *states: str, timeout: float = 60
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        t = task(server, task_id)
        return t if t["state"] in states else None

    result: dict[str, Any] = wait_for(reached, timeout=timeout, interval=0.1)
    return result


def log(server: AntServer, task_id: str, rank: int = 0) -> str:
    with server.client() as c:
        r = c.get(f"/api/v1/tasks/{task_id}/log", params={"lines": 5000, "rank": rank})
        assert r.status_code == 200, r.text
        text: str = r.json()["text"]
        return text


def task_processes(task_id: str) -> list[tuple[int, str]]:
    """(pid, ANT_SERVER_ID) of every live process of the task on this host (any node)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("ANT_TASK_ID") == task_id:
            found.append((proc.pid, env.get("ANT_SERVER_ID", "")))
    return found


def node_id(cluster: Any, name: str) -> str:
    node_id: str = cluster.node_handles[name].node_id
    return node_id


def gpus_by_label(server: AntServer) -> dict[str, dict[str, Any]]:
    with server.client() as c:
        return {g["label"]: g for g in c.get("/api/v1/gpus").json()}


# ------------------------------------------------------------------------------ one cluster


def test_gpus_of_every_node_and_placement_on_one_node(
    ray_cluster: Any, server_factory: type[AntServer]
) -> None:
    server = ray_server(server_factory, ray_cluster.address)
    wait_ready(server, 4)
    gpus = gpus_by_label(server)
    assert {label for label in gpus if not label.startswith(("node-a", "node-b"))} == set()
    assert set(gpus) == {"node-a:0", "node-a:1", "node-b:0", "node-b:1"}
    assert {g["node"] for g in gpus.values()} == {"node-a", "node-b"}

    t = submit(
        server,
        "echo CVD=$CUDA_VISIBLE_DEVICES NODE=$ANT_NODE; sleep 30",
        task_id="two",
        n_gpus=2,
    )
    running = wait_state(server, t["task_id"], "running")
    (node,) = running["nodes"]
    assert node in ("node-a", "node-b")
    labels = {label for label, g in gpus_by_label(server).items() if "two" in g["task_ids"]}
    assert labels == {f"{node}:0", f"{node}:1"}
    wait_for(lambda: "CVD=" in log(server, "two"), timeout=20)
    assert f"CVD=0,1 NODE={node}" in log(server, "two")
    # Reality: the process runs under that node's agent (its marker names the node).
    ours = {node_id(ray_cluster, name)[:16] for name in ("node-a", "node-b")}
    procs = [(pid, m) for pid, m in task_processes("two") if m.rsplit(".", 1)[-1] in ours]
    assert procs and all(marker.endswith(node_id(ray_cluster, node)[:16]) for _, marker in procs)

    # The other node's two GPUs take a second 2-GPU task; a third waits, saying why.
    submit(server, "sleep 30", task_id="other", n_gpus=2)
    assert wait_state(server, "other", "running")["nodes"] != [node]
    submit(server, "true", task_id="third", n_gpus=2)
    time.sleep(0.5)
    waiting = task(server, "third")
    assert waiting["state"] == "queued"
    assert "node" in (waiting.get("pending_reason") or ""), waiting

    # Ray's own accounting agrees: no Ray task can be given these GPUs while ANT has them.
    probe = textwrap.dedent(
        f"""
        import ray
        ray.init(address={ray_cluster.address!r}, logging_level="ERROR")
        print("GPU", ray.available_resources().get("GPU", 0))
        ref = ray.remote(num_gpus=1)(lambda: 1).remote()
        ready, _ = ray.wait([ref], timeout=3)
        print("scheduled", bool(ready))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    ).stdout
    assert "GPU 0" in out and "scheduled False" in out, out

    with server.client() as c:
        for tid in ("two", "other", "third"):
            c.post(f"/api/v1/tasks/{tid}/kill")
    wait_state(server, "two", "killed")
    wait_for(lambda: not task_processes("two") and not task_processes("other"), timeout=20)


def test_exit_codes_logs_and_kill(ray_cluster: Any, server_factory: type[AntServer]) -> None:
    server = ray_server(server_factory, ray_cluster.address)
    wait_ready(server, 4)
    submit(
        server, "for i in $(seq 1 3000); do echo line $i; done; exit 7", task_id="seven", n_gpus=1
    )
    done = wait_state(server, "seven", "failed", "succeeded")
    assert done["state"] == "failed" and done["exit_code"] == 7
    text = log(server, "seven")
    assert text.splitlines()[-1] == "line 3000"
    with server.client() as c:
        full = c.get("/api/v1/tasks/seven/log", params={"full": "true"}).text
    assert full.splitlines() == [f"line {i}" for i in range(1, 3001)]

    submit(server, "echo ok", task_id="zero")
    assert wait_state(server, "zero", "succeeded", "failed")["exit_code"] == 0

    submit(server, "sleep 300 & sleep 300; echo never", task_id="long", n_gpus=1)
    wait_state(server, "long", "running")
    wait_for(lambda: len(task_processes("long")) >= 2, timeout=20)
    with server.client() as c:
        assert c.post("/api/v1/tasks/long/kill").status_code == 200
    assert wait_state(server, "long", "killed")["state"] == "killed"
    wait_for(lambda: not task_processes("long"), timeout=20)  # the whole tree, on its node
    assert "never" not in log(server, "long")


GANG = textwrap.dedent(
    """
    import os, socket, sys, time
    rank = int(os.environ["NODE_RANK"])
    keys = ["MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "NNODES", "NPROC_PER_NODE",
            "LOCAL_WORLD_SIZE", "WORLD_SIZE", "CUDA_VISIBLE_DEVICES", "ANT_NODE"]
    print(" ".join(f"{k}={os.environ.get(k)}" for k in keys), flush=True)
    addr = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
    if rank == 0:
        server = socket.create_server(("", addr[1]))
        conn, _ = server.accept()
        print("master got:", conn.recv(100).decode(), flush=True)
    else:
        for _ in range(200):
            try:
                socket.create_connection(addr, timeout=1).sendall(f"hello from {rank}".encode())
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(3)
        print("sent", flush=True)
    """
)


def test_gang_task_over_two_nodes(
    ray_cluster: Any, server_factory: type[AntServer], tmp_path: Path
) -> None:
    server = ray_server(server_factory, ray_cluster.address)
    wait_ready(server, 4)
    (tmp_path / "gang.py").write_text(GANG)
    ant = Ant(server)  # as a user would: `ant submit --nodes 2`, `ant logs --rank 1`
    ant("submit", "--nodes", "2", "-g", "1", "--id", "gang", "--", sys.executable, "gang.py")
    done = wait_state(server, "gang", "succeeded", "failed", timeout=60)
    assert done["state"] == "succeeded", (done, log(server, "gang"), log(server, "gang", 1))
    assert sorted(done["nodes"]) == ["node-a", "node-b"]
    rank0, rank1 = ant("logs", "gang").stdout, ant("logs", "--rank", "1", "gang").stdout
    assert "nodes" in ant("show", "gang").stdout
    assert "node-a:1" in ant("gpus").stdout
    assert "NODE_RANK=0 NNODES=2 NPROC_PER_NODE=1 LOCAL_WORLD_SIZE=1 WORLD_SIZE=2" in rank0
    assert "NODE_RANK=1 NNODES=2" in rank1
    assert f"ANT_NODE={done['nodes'][0]}" in rank0 and f"ANT_NODE={done['nodes'][1]}" in rank1
    assert "master got: hello from 1" in rank0 and "sent" in rank1
    assert "MASTER_ADDR=127.0.0.1" in rank1

    # One rank fails: the task fails with its code and the other rank is killed at once.
    script = 'if [ "$NODE_RANK" = 1 ]; then exit 9; fi; sleep 300'
    submit(server, script, task_id="gang-fail", n_gpus=1, n_nodes=2)
    failed = wait_state(server, "gang-fail", "failed", "succeeded", "killed", timeout=60)
    assert failed["state"] == "failed" and failed["exit_code"] == 9
    wait_for(lambda: not task_processes("gang-fail"), timeout=20)

    # More nodes than the cluster has: it says so and waits.
    submit(server, "true", task_id="too-many", n_nodes=5)
    time.sleep(0.5)
    assert "nodes" in (task(server, "too-many").get("pending_reason") or "")

    # A node's GPU is toggled by its label.
    assert "GPU node-b:1: disabled" in ant("gpus", "disable", "node-b:1").stdout
    assert gpus_by_label(server)["node-b:1"]["state"] == "disabled"
    ant("gpus", "enable", "node-b:1")
    assert gpus_by_label(server)["node-b:1"]["enabled"] is True


def test_ant_restart_reattaches_running_tasks(
    ray_cluster: Any, server_factory: type[AntServer]
) -> None:
    server = ray_server(server_factory, ray_cluster.address)
    wait_ready(server, 4)
    submit(server, "echo before; sleep 6; echo after; exit 5", task_id="survivor", n_gpus=1)
    wait_for(lambda: "before" in log(server, "survivor"), timeout=30)
    server.kill9()  # ANT and its bridge are gone; the agents and the task are not
    assert task_processes("survivor")
    again = server_factory(
        fake_gpus=None,
        workdir=server.workdir,
        config={
            "RUNNER_executor": "ray",
            "RAY_address": ray_cluster.address,
            "RAY_agent_idle_seconds": 1,
        },
    )
    again.start(timeout=60)
    assert task(again, "survivor")["state"] == "running"
    done = wait_state(again, "survivor", "failed", "succeeded", "lost", timeout=60)
    assert done["state"] == "failed" and done["exit_code"] == 5, done
    text = log(again, "survivor")
    assert text.split() == ["before", "after"], text  # written while ANT was down, kept once


def test_bridge_loss_is_reconciled(ray_cluster: Any, server_factory: type[AntServer]) -> None:
    """The Ray driver dies (as Ray makes it do when the head is unreachable): ANT stays up, says
    so, then reconciles through a new bridge; the task's exit code is exact."""
    server = ray_server(server_factory, ray_cluster.address)
    wait_ready(server, 4)
    submit(server, "sleep 4; echo done; exit 4", task_id="through", n_gpus=1)
    wait_state(server, "through", "running")
    assert server.proc is not None
    (bridge,) = [
        p
        for p in psutil.Process(server.proc.pid).children()
        if "ant_scheduler.executors.ray_bridge" in " ".join(p.cmdline())
    ]
    bridge.send_signal(signal.SIGKILL)
    with server.client() as c:
        down = wait_for(
            lambda: (h := c.get("/api/v1/health").json())["executor"]["available"] is False and h,
            timeout=10,
            interval=0.02,
        )
        assert "unreachable" in down["executor"]["detail"]
    done = wait_state(server, "through", "failed", "succeeded", "lost", timeout=60)
    assert done["state"] == "failed" and done["exit_code"] == 4
    assert log(server, "through").strip() == "done"
    wait_ready(server, 4)


def test_unreachable_cluster_keeps_ant_up(server_factory: type[AntServer]) -> None:
    server = ray_server(server_factory, f"127.0.0.1:{free_port()}")
    with server.client() as c:
        health = c.get("/api/v1/health").json()
        assert health["executor"]["available"] is False
        assert health["executor"]["name"] == "ray"
        submit(server, "true", task_id="waits")
        time.sleep(1)
        waiting = task(server, "waits")
        assert waiting["state"] == "queued"
        assert "Ray cluster" in (waiting.get("pending_reason") or ""), waiting
        assert c.get("/api/v1/tasks").status_code == 200
    health = Ant(server)("health", ok=False)
    assert health.returncode == 10 and "ray executor cannot start tasks" in health.stderr


def test_a_cluster_that_comes_later_is_joined(server_factory: type[AntServer]) -> None:
    """ANT starts before its cluster: it waits, saying why, then joins it and starts the task."""
    port = free_port()
    server = ray_server(server_factory, f"127.0.0.1:{port}", RAY_connect_timeout_seconds=3)
    submit(server, "echo late", task_id="early", n_gpus=1)
    time.sleep(2)
    assert task(server, "early")["state"] == "queued"
    cluster = make_cluster(head_port=port, node_a=2)
    try:
        done = wait_state(server, "early", "succeeded", "failed", timeout=120)
        assert done["state"] == "succeeded" and done["nodes"] == ["node-a"]
        assert log(server, "early").strip() == "late"
        server.stop()
    finally:
        cluster.shutdown()


# ------------------------------------------------------------------------------ nodes come and go


def test_nodes_join_and_leave(server_factory: type[AntServer]) -> None:
    cluster = make_cluster(node_a=2, node_b=2)
    try:
        server = ray_server(server_factory, cluster.address)
        wait_ready(server, 4)
        submit(server, "sleep 300", task_id="fill-a", n_gpus=2)
        submit(server, "echo up; sleep 300", task_id="on-b", n_gpus=2)
        on_b = wait_state(server, "on-b", "running")
        wait_for(lambda: "up" in log(server, "on-b"), timeout=30)
        gone = on_b["nodes"][0]
        cluster.remove_node(cluster.node_handles[gone])
        lost = wait_state(server, "on-b", "lost", timeout=60)
        assert gone in (lost.get("reason") or ""), lost
        gpus = gpus_by_label(server)
        assert all(
            g["state"] == "unavailable" for label, g in gpus.items() if label.startswith(gone)
        )

        # A node that joins shows up with its GPU, and the restored task can run there.
        cluster.node_handles["node-c"] = cluster.add_node(
            num_cpus=1, num_gpus=2, labels={"ant-name": "node-c"}
        )
        wait_for(lambda: "node-c:1" in gpus_by_label(server), timeout=60, interval=0.2)
        with server.client() as c:
            r = c.post("/api/v1/recovery/restore", json={"task_ids": ["on-b"]})
            assert r.status_code == 200, r.text
        assert wait_state(server, "on-b", "running", timeout=60)["nodes"] == ["node-c"]
        # Its second run is its attempt 2, with a log of its own (retries: each attempt keeps
        # its log); the lost first run's output stays readable as attempt 1.
        wait_for(lambda: log(server, "on-b").split() == ["up"], timeout=60)
        with server.client() as c:
            task = c.get("/api/v1/tasks/on-b").json()
            assert task["attempt"] == 2 and [a["state"] for a in task["attempts"]] == ["lost"]
            first = c.get("/api/v1/tasks/on-b/log", params={"attempt": 1}).json()["text"]
            assert first.split() == ["up"]
        with server.client() as c:
            c.post("/api/v1/tasks/on-b/kill")
            c.post("/api/v1/tasks/fill-a/kill")
        wait_state(server, "on-b", "killed")
        server.stop()
    finally:
        cluster.shutdown()
    os.environ.pop("RAY_ADDRESS", None)
