"""The REST API against a real `ant serve` process with fake GPUs and real task processes."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.server import AntServer, wait_for


def submit(c: httpx.Client, command: str, **fields: Any) -> list[dict[str, Any]]:
    r = c.post("/api/v1/tasks", json={"command": command, **fields})
    assert r.status_code == 201, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


def wait_state(c: httpx.Client, task_id: str, *states: str, timeout: float = 20) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = c.get(f"/api/v1/tasks/{task_id}").json()
        return task if task.get("state") in states else None

    return wait_for(check, timeout)  # type: ignore[no-any-return]


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    if code is not None:
        assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def test_health_needs_no_token(server: AntServer) -> None:
    r = httpx.get(server.url + "/api/")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert "version" in r.json()


def test_single_task_runs_with_its_gpus_and_logs(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(
            c,
            'echo "cvd=$CUDA_VISIBLE_DEVICES id=$ANT_TASK_ID foo=$FOO order=$CUDA_DEVICE_ORDER"',
            n_gpus=2,
            task_id="hello-[uuid8]",
            env={"FOO": "bar baz"},
        )
        assert task["task_id"].startswith("hello-")
        assert task["state"] in ("queued", "running", "succeeded")
        done = wait_state(c, task["task_id"], "succeeded", "failed")
        assert done["state"] == "succeeded" and done["exit_code"] == 0
        assert len(done["gpu_ids"]) == 2
        log = c.get(f"/api/v1/tasks/{task['task_id']}/log").json()["text"]
        cvd = ",".join(map(str, done["gpu_ids"]))
        assert f"cvd={cvd} id={task['task_id']} foo=bar baz order=PCI_BUS_ID" in log
        log_path = Path(done["log_path"])
        assert log_path.parent.parent == server.log_dir
        assert log_path.name == f"{task['task_id']}.log"


def test_cpu_task_gets_empty_cuda_visible_devices(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"', n_gpus=0)
        done = wait_state(c, task["task_id"], "succeeded")
        assert done["gpu_ids"] == []
        assert "[]" in c.get(f"/api/v1/tasks/{task['task_id']}/log").json()["text"]


def test_failed_exit_code_is_recorded(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "echo oops >&2; exit 7")
        done = wait_state(c, task["task_id"], "failed")
        assert done["exit_code"] == 7
        assert "oops" in c.get(f"/api/v1/tasks/{task['task_id']}/log").json()["text"]


def test_multi_submit_is_all_or_nothing(server: AntServer) -> None:
    with server.client() as c:
        text = "ant_task_id=ok-1 echo a\nant_task_id=ok-2 echo b\nant_n_gpus=abc echo c\n"
        msg = assert_error(c.post("/api/v1/tasks", json={"command": text, "mode": "multi"}), 400)
        assert "line 3" in msg
        assert c.get("/api/v1/tasks").json()["total"] == 0
        tasks = submit(c, "ant_task_id=ok-1 echo a\n# comment\n\necho b \\\n  c\n", mode="multi")
        assert next(t["task_id"] for t in tasks) == "ok-1"
        assert len(tasks) == 2
        second = wait_state(c, tasks[1]["task_id"], "succeeded")
        assert "b c" in c.get(f"/api/v1/tasks/{second['task_id']}/log").json()["text"]


def test_duplicate_id_is_409_and_changes_nothing(server: AntServer) -> None:
    with server.client() as c:
        submit(c, "sleep 30", task_id="dup")
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "task_id": "dup"}), 409)
        r = c.post(
            "/api/v1/tasks",
            json={"command": "ant_task_id=new-one true\nant_task_id=dup true", "mode": "multi"},
        )
        assert_error(r, 409, "duplicate_task_id")
        assert_error(c.get("/api/v1/tasks/new-one"), 404, "task_not_found")
        c.post("/api/v1/tasks/dup/kill")


def test_gpu_exclusivity_under_concurrent_submits(server: AntServer) -> None:
    """No GPU is ever given to two running tasks; CUDA_VISIBLE_DEVICES matches gpu_ids."""
    script = (
        'echo "start $(date +%s.%N) $CUDA_VISIBLE_DEVICES"; sleep 0.3; echo "end $(date +%s.%N)"'
    )
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with server.client() as c:
            for k in range(5):
                tasks = submit(c, script, n_gpus=1 + (n + k) % 2, task_id=f"t{n}-{k}")
                with lock:
                    ids.extend(t["task_id"] for t in tasks)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 30
    intervals: dict[int, list[tuple[float, float, str]]] = {}
    with server.client() as c:
        for task_id in ids:
            done = wait_state(c, task_id, "succeeded", "failed", timeout=60)
            assert done["state"] == "succeeded", done
            log = c.get(f"/api/v1/tasks/{task_id}/log").json()["text"].split("\n")
            start_line = next(line for line in log if line.startswith("start "))
            end_line = next(line for line in log if line.startswith("end "))
            _, t0, cvd = start_line.split(" ")
            t1 = float(end_line.split(" ")[1])
            assert cvd == ",".join(map(str, done["gpu_ids"]))
            assert len(done["gpu_ids"]) == done["n_gpus"]
            for gpu in done["gpu_ids"]:
                intervals.setdefault(gpu, []).append((float(t0), t1, task_id))
    for gpu, spans in intervals.items():
        spans.sort()
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
            assert end_a <= start_b, f"GPU {gpu} shared by {a} and {b}"


def test_kill_takes_down_grandchildren(server: AntServer) -> None:
    import psutil

    with server.client() as c:
        [task] = submit(
            c, "bash -c 'sleep 1000 & echo $! > pids; sleep 1000 & echo $! >> pids; wait'"
        )
        pid_file = server.workdir / "pids"
        wait_for(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2)
        grandchildren = [int(p) for p in pid_file.read_text().split()]
        assert all(psutil.pid_exists(p) for p in grandchildren)
        r = c.post(f"/api/v1/tasks/{task['task_id']}/kill")
        assert r.status_code == 200, r.text
        done = wait_state(c, task["task_id"], "killed")
        assert done["finished_at"] is not None

        def gone(pid: int) -> bool:
            try:
                return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_for(lambda: all(gone(p) for p in grandchildren))


def test_kill_of_queued_task_cancels_it(server: AntServer) -> None:
    with server.client() as c:
        [blocker] = submit(c, "sleep 30", n_gpus=4)
        [waiting] = submit(c, "echo never", n_gpus=1)
        wait_state(c, blocker["task_id"], "running")
        r = c.post(f"/api/v1/tasks/{waiting['task_id']}/kill")
        assert r.json()["state"] == "killed"
        c.post(f"/api/v1/tasks/{blocker['task_id']}/kill")
        wait_state(c, blocker["task_id"], "killed")
        assert c.get(f"/api/v1/tasks/{waiting['task_id']}").json()["started_at"] is None


def test_queue_order_pending_reason_and_promote(server: AntServer) -> None:
    with server.client() as c:
        [_blocker] = submit(c, "sleep 30", n_gpus=4, task_id="blocker")
        wait_state(c, "blocker", "running")
        a, b, cc = (submit(c, "echo x", n_gpus=1, task_id=i)[0] for i in ("qa", "qb", "qc"))
        listed = c.get("/api/v1/tasks", params={"state": "queued"}).json()
        assert [t["task_id"] for t in listed["tasks"]] == ["qa", "qb", "qc"]
        assert [t["queue_position"] for t in listed["tasks"]] == [1, 2, 3]
        assert "needs 1 GPU" in listed["tasks"][0]["pending_reason"]
        assert "waiting behind qa" in listed["tasks"][1]["pending_reason"]
        r = c.post("/api/v1/tasks/qc/promote")
        assert r.status_code == 200
        listed = c.get("/api/v1/tasks", params={"state": "queued"}).json()
        assert [t["task_id"] for t in listed["tasks"]] == ["qc", "qa", "qb"]
        assert_error(c.post("/api/v1/tasks/blocker/promote"), 409, "invalid_state")
        c.post("/api/v1/tasks/blocker/kill")
        for t in (a, b, cc):
            wait_state(c, t["task_id"], "succeeded")
        started = {t: c.get(f"/api/v1/tasks/{t}").json()["started_at"] for t in ("qa", "qc")}
        assert started["qc"] <= started["qa"]


def test_too_many_gpus_stays_queued_with_reason(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "true", n_gpus=6)
        got = wait_for(lambda: c.get(f"/api/v1/tasks/{task['task_id']}").json()["pending_reason"])
        assert "6" in got and "4" in got
        assert c.get(f"/api/v1/tasks/{task['task_id']}").json()["state"] == "queued"


def test_gpu_toggle(server: AntServer) -> None:
    with server.client() as c:
        gpus = c.get("/api/v1/gpus").json()
        assert [g["index"] for g in gpus] == [0, 1, 2, 3]
        assert {
            "uuid",
            "name",
            "enabled",
            "state",
            "task_ids",
            "util",
            "mem_used",
            "mem_total",
        } <= set(gpus[0])
        for i in range(4):
            r = c.patch(f"/api/v1/gpus/{i}", json={"enabled": False})
            assert r.json()["state"] == "disabled"
        [task] = submit(c, "true", n_gpus=1)
        reason = wait_for(
            lambda: c.get(f"/api/v1/tasks/{task['task_id']}").json()["pending_reason"]
        )
        assert "disabled" in reason
        c.patch("/api/v1/gpus/2", json={"enabled": True})
        done = wait_state(c, task["task_id"], "succeeded")
        assert done["gpu_ids"] == [2]
        assert_error(c.patch("/api/v1/gpus/9", json={"enabled": True}), 404)
        assert_error(c.patch("/api/v1/gpus/1", json={"enabled": "maybe"}), 400)


def test_restart_and_delete(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "echo once", task_id="job", n_gpus=1, env={"A": "1"})
        wait_state(c, "job", "succeeded")
        r = c.post("/api/v1/tasks/job/restart")
        assert r.status_code == 201
        again = r.json()
        assert again["task_id"] == "job-restart-1"
        assert again["command"] == task["command"]
        assert again["env"] == {"A": "1"} and again["n_gpus"] == 1
        wait_state(c, "job-restart-1", "succeeded")
        assert c.post("/api/v1/tasks/job/restart").json()["task_id"] == "job-restart-2"
        [_running] = submit(c, "sleep 30", task_id="busy")
        wait_state(c, "busy", "running")
        assert_error(c.delete("/api/v1/tasks/busy"), 409, "invalid_state")
        c.post("/api/v1/tasks/busy/kill")
        wait_state(c, "busy", "killed")
        assert c.delete("/api/v1/tasks/busy").json() == {"task_id": "busy", "deleted": True}
        assert_error(c.get("/api/v1/tasks/busy"), 404)
        assert_error(c.delete("/api/v1/tasks/busy"), 404)


def test_listing_search_and_paging(server: AntServer) -> None:
    with server.client() as c:
        for i in range(12):
            submit(c, f"echo item{i}", task_id=f"page-{i:02d}")
        submit(c, "echo needle_in_haystack", task_id="other")
        wait_for(
            lambda: c.get("/api/v1/tasks", params={"state": "succeeded"}).json()["total"] == 13
        )
        page = c.get("/api/v1/tasks", params={"limit": 5, "offset": 0, "q": "page-"}).json()
        assert page["total"] == 12 and len(page["tasks"]) == 5
        finished = [t["finished_at"] for t in page["tasks"]]
        assert finished == sorted(finished, reverse=True)
        found = c.get("/api/v1/tasks", params={"q": "NEEDLE"}).json()
        assert [t["task_id"] for t in found["tasks"]] == ["other"]
        assert c.get("/api/v1/tasks", params={"q": "100%"}).json()["total"] == 0
        assert_error(c.get("/api/v1/tasks", params={"state": "sleeping"}), 400)
        assert_error(c.get("/api/v1/tasks", params={"limit": 0}), 400)
        assert_error(c.get("/api/v1/tasks", params={"offset": -1}), 400)


def test_search_through_the_index_and_short_queries(server: AntServer) -> None:
    """Substring search as LIKE answers it: literal % _ \\, ASCII case folded (not É/é), one or
    two characters (scanned), three or more (the trigram index); totals by state stay right."""
    with server.client() as c:
        submit(c, "echo 'Café_50%' done", task_id="cafe")
        submit(c, "echo a\\b", task_id="slash")
        submit(c, "echo ÉCOLE", task_id="ecole")
        submit(c, "sleep 30", task_id="held-up", n_gpus=9)  # queued: more GPUs than exist
        wait_for(lambda: c.get("/api/v1/tasks", params={"state": "succeeded"}).json()["total"] == 3)

        def ids(q: str, **params: Any) -> list[str]:
            page = c.get("/api/v1/tasks", params={"q": q, **params}).json()
            assert page["total"] == len(page["tasks"])
            return sorted(t["task_id"] for t in page["tasks"])

        assert ids("CAFÉ_5") == [] and ids("CAFé_5") == ["cafe"] and ids("café_50%") == ["cafe"]
        assert ids("_5") == ["cafe"] and ids("%") == ["cafe"] and ids("é") == ["cafe"]
        assert ids("\\b") == ["slash"] and ids("a\\") == ["slash"]
        assert ids("école") == [] and ids("ÉCO") == ["ecole"] and ids("col") == ["ecole"]
        assert ids("c_f") == [] and ids("e") == ["cafe", "ecole", "held-up", "slash"]
        assert ids("SLEEP", state="queued") == ["held-up"]
        assert ids("sleep", state="succeeded") == []
        assert c.get("/api/v1/tasks", params={"state": "queued"}).json()["total"] == 1
        c.post("/api/v1/tasks/held-up/kill")
        wait_state(c, "held-up", "killed")
        assert c.get("/api/v1/tasks", params={"state": "queued"}).json()["total"] == 0
        assert c.get("/api/v1/tasks", params={"state": "killed"}).json()["total"] == 1


def test_log_tail_full_download_and_stream(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "for i in $(seq 1 500); do echo line$i; done")
        wait_state(c, task["task_id"], "succeeded")
        tail = c.get(f"/api/v1/tasks/{task['task_id']}/log", params={"lines": 3}).json()
        assert tail["text"].split() == ["line498", "line499", "line500"]
        capped = c.get(f"/api/v1/tasks/{task['task_id']}/log", params={"lines": 100000}).json()
        assert len(capped["text"].split()) == 200  # VISUALIZER_view_log_max_lines
        full = c.get(f"/api/v1/tasks/{task['task_id']}/log", params={"full": "true"})
        assert full.status_code == 200
        assert len(full.text.split()) == 500
        assert "attachment" in full.headers["content-disposition"]

        [live] = submit(c, "for i in 1 2 3; do echo tick$i; sleep 0.3; done; exit 4")
        seen = ""
        end: dict[str, Any] = {}
        with c.stream("GET", f"/api/v1/tasks/{live['task_id']}/log/stream?offset=0") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if event == "output":
                        seen += data["text"]
                    elif event == "end":
                        end = data
                        break
        assert seen.split() == ["tick1", "tick2", "tick3"]
        assert end == {"state": "failed", "exit_code": 4}


def test_terminal_applies_carriage_returns(server: AntServer) -> None:
    with server.client() as c:
        cmd = "printf 'a\\n'; for i in 10 50 100; do printf '\\r%s%%|##| %s/100' $i $i; done; echo"
        [task] = submit(c, cmd)
        wait_state(c, task["task_id"], "succeeded")
        term = c.get(f"/api/v1/tasks/{task['task_id']}/terminal").json()
        assert term["lines"][:2] == ["a", "100%|##| 100/100"]
        assert term["progress"] == 1.0


def test_error_shapes(server: AntServer) -> None:
    with server.client() as c:
        assert_error(
            c.post(
                "/api/v1/tasks", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
        )
        assert_error(c.post("/api/v1/tasks", json={"command": ""}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "n_gpus": -1}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "mode": "bulk"}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "junk": 1}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "task_id": "../etc"}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "task_id": "[nope]"}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "env": {"1BAD": "x"}}), 400)
        assert_error(c.post("/api/v1/tasks", json=[1, 2]), 400)
        assert_error(c.get("/api/v1/tasks/nope"), 404)
        assert_error(c.get("/api/v1/tasks/nope/log"), 404)
        assert_error(c.post("/api/v1/tasks/nope/kill"), 404)
        assert_error(c.post("/api/v1/tasks/nope/restart"), 404)
        assert_error(c.post("/api/v1/tasks/nope/promote"), 404)
        assert_error(c.get("/api/v1/nothing-here"), 404)
        assert_error(c.put("/api/v1/tasks"), 405)
        big = "x" * (17 * 1024 * 1024)
        assert_error(c.post("/api/v1/tasks", json={"command": big}), 413, "payload_too_large")
        assert c.get("/api/v1/tasks").json()["total"] == 0
