"""GPU memory packing and topology-aware placement through a real server with fake GPUs (16 GiB
each, RUNNER_gpu_mem_reserve 1G): the API's gpu_mem and placement, the CLI's --gpu-mem, ls and
show, real processes' CUDA_VISIBLE_DEVICES, the monitor's per-task memory, over-use flagged and,
with RUNNER_enforce_gpu_mem, killed; --fake-topology."""

from __future__ import annotations

import re
import subprocess

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import ANT, Ant
from tests.server import AntServer, wait_for

G = 2**30
TOPOLOGY = "nvlink=0-3,4-7; switch=0-1,2-3,4-5,6-7; socket=0-3,4-7"


def test_memory_tasks_share_a_gpu_over_the_api_and_the_cli(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=2).start()
    ant = Ant(server)
    cvd = server.workdir / "cvd"
    cvd.mkdir()
    with server.client() as c:
        [a] = submit(c, f"echo $CUDA_VISIBLE_DEVICES > {cvd}/a; sleep 60", gpu_mem="6G")
        [b] = submit(c, f"echo $CUDA_VISIBLE_DEVICES > {cvd}/b; sleep 60", gpu_mem=6 * G)
        assert (a["gpu_mem"], b["gpu_mem"], a["n_gpus"]) == (6 * G, 6 * G, 1)
        assert "ant_gpu_mem=6G" in a["copy_command"]
        a = wait_state(c, a["task_id"], "running")
        b = wait_state(c, b["task_id"], "running")
        assert a["gpu_ids"] == b["gpu_ids"] == [0]
        assert b["placement"] == (
            "GPU 0 shared: declares 6 GiB, 6 GiB declared there already; 3 GiB left of 16 GiB "
            "(1 GiB reserve)"
        )
        gpus = {g["index"]: g for g in c.get("/api/v1/gpus").json()}
        assert (gpus[0]["mem_declared"], gpus[1]["mem_declared"]) == (12 * G, 0)
        wait_for(lambda: (cvd / "a").exists() and (cvd / "b").exists())
        assert (cvd / "a").read_text().strip() == (cvd / "b").read_text().strip() == "0"
        # The monitor sees each task's own memory (the fake GPU simulates what it declared).
        wait_for(lambda: c.get(f"/api/v1/tasks/{a['task_id']}").json()["gpu_mem_used"] == 6 * G)
        # A third does not fit next to them (6 + 6 + 6 + 1 > 16): it opens GPU 1.
        [third] = ant.json("submit", "--gpu-mem", "6G", "--", "sleep", "60")["tasks"]
        assert wait_state(c, third["task_id"], "running")["gpu_ids"] == [1]
        # Whole-GPU tasks never share with them; the reason says why.
        [whole] = submit(c, "true", n_gpus=1)
        waiting = wait_for(
            lambda: c.get(f"/api/v1/tasks/{whole['task_id']}").json()["pending_reason"]
        )
        assert (
            "GPU 0 shared by memory tasks" in waiting and "GPU 1 shared by memory tasks" in waiting
        )
        ant("kill", whole["task_id"])  # under fifo the next task would wait behind it
        [big] = submit(c, "true", gpu_mem="10G")
        reason = wait_for(lambda: c.get(f"/api/v1/tasks/{big['task_id']}").json()["pending_reason"])
        assert reason.startswith(
            "needs 10 GiB of GPU memory; GPU 0 has 3 GiB left, GPU 1 has 9 GiB left"
        )
        listing = ant("ls").stdout
        assert re.search(rf"{a['task_id']} +running +0 6G", listing), listing
        shown = ant("show", b["task_id"]).stdout
        assert re.search(r"\ngpu memory +6 GiB declared \(shares one GPU\); using 6 GiB *\n", shown)
        assert re.search(r"\nplacement +GPU 0 shared: declares 6 GiB, 6 GiB declared", shown)
        # Bad input changes nothing: a JSON error, a one-line usage error.
        before = c.get("/api/v1/tasks").json()["total"]
        assert "gpu_mem must be a size" in assert_error(
            c.post("/api/v1/tasks", json={"command": "true", "gpu_mem": "lots"}), 400
        )
        assert "share of one GPU" in assert_error(
            c.post("/api/v1/tasks", json={"command": "true", "gpu_mem": "1G", "n_gpus": 2}), 400
        )
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "gpu_mem": True}), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "gpu_mem": 12}), 400)
        bad = ant("submit", "--gpu-mem", "lots", "--", "true", ok=False)
        assert bad.returncode == 2 and bad.stderr.splitlines()[-1].startswith(
            "ant: error: argument --gpu-mem: must be a size such as 20G"
        )
        assert c.get("/api/v1/tasks").json()["total"] == before
        preview = c.post("/api/v1/tasks/preview", json={"command": "ant_gpu_mem=2G true"}).json()
        assert preview["tasks"][0]["gpu_mem"] == 2 * G


def test_over_use_is_flagged_then_killed_when_enforced(server_factory: type[AntServer]) -> None:
    flagged = server_factory(fake_gpus=1).start()
    ant = Ant(flagged)
    with flagged.client() as c:
        [hog] = submit(c, "sleep 60", gpu_mem="4G", env={"ANT_FAKE_GPU_MEM": "9G"})
        over = wait_for(
            lambda: c.get(f"/api/v1/tasks/{hog['task_id']}").json()["gpu_mem_over"], timeout=20
        )
        assert over == 9 * G
        assert c.get(f"/api/v1/tasks/{hog['task_id']}").json()["state"] == "running"
        assert "GPU memory over: 9 GiB of 4 GiB declared" in ant("ls").stdout
        assert "OVER: used up to 9 GiB" in ant("show", hog["task_id"]).stdout
    flagged.stop()
    enforced = type(flagged)(fake_gpus=1, config={"RUNNER_enforce_gpu_mem": True}).start()
    with enforced.client() as c:
        [hog] = submit(c, "sleep 60", gpu_mem="4G", env={"ANT_FAKE_GPU_MEM": "9G"})
        [fine] = submit(c, "sleep 60", gpu_mem="4G")
        done = wait_state(c, hog["task_id"], "failed", timeout=30)
        assert done["reason"] == (
            "used 9 GiB of GPU memory, more than the 4 GiB it declared (RUNNER_enforce_gpu_mem)"
        )
        assert done["gpu_mem_over"] == 9 * G
        assert c.get(f"/api/v1/tasks/{fine['task_id']}").json()["state"] == "running"


def test_multi_gpu_tasks_get_the_best_linked_set(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=8, extra_args=["--fake-topology", TOPOLOGY]).start()
    ant = Ant(server)
    with server.client() as c:
        [one] = submit(c, "sleep 60", n_gpus=1)
        assert wait_state(c, one["task_id"], "running")["gpu_ids"] == [0]
        [pair] = submit(c, "sleep 60", n_gpus=2)
        pair = wait_state(c, pair["task_id"], "running")
        # Island 0 has 3 free, island 1 has 4: best fit keeps island 1 whole; in island 0 the
        # two GPUs on one PCIe switch.
        assert pair["gpu_ids"] == [2, 3]
        assert pair["placement"] == "GPUs 2, 3: one NVLink island 0"
        [four] = submit(c, "sleep 60", n_gpus=4)
        four = wait_state(c, four["task_id"], "running")
        assert four["gpu_ids"] == [4, 5, 6, 7]
        assert four["placement"] == "GPUs 4, 5, 6, 7: one NVLink island 1"
        assert "one NVLink island 1" in ant("show", four["task_id"]).stdout
    bad = subprocess.run(
        [ANT, "serve", "--fake-gpus", "2", "--fake-topology", "island=0-1", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.workdir,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "bad fake topology 'island=0-1'" in bad.stderr
