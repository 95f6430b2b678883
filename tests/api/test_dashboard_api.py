"""The dashboard's routes against a real `ant serve` with fake GPUs: the charts' history (units,
kept across a SIGTERM and a kill -9), the GPU timeline and the summary strip."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.server import AntServer, wait_for

FAST = {"MONITORING_refresh_interval": 0.2}
GIB = 1 << 30


def history(c: httpx.Client, window: float = 900) -> dict[str, Any]:
    r = c.get("/api/v1/system/history", params={"window": window})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def spanning(c: httpx.Client, seconds: float) -> dict[str, Any]:
    """The 15-minute history once it spans `seconds` of samples."""

    def check() -> dict[str, Any] | None:
        data = history(c)
        times = data["times"]
        return data if times and times[-1] - times[0] >= seconds else None

    return wait_for(check, timeout=60)  # type: ignore[no-any-return]


def test_history_has_units_and_survives_sigterm_and_kill_9(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=2, config=FAST).start()
    with server.client() as c:
        # Samples are written every 5 s: spanning 7 s, the first one is on disk.
        first = spanning(c, 7)
        assert first["window"] == 900 and first["step"] == 0.2
        assert first["now"] >= first["times"][-1]
        series = {s["key"]: s for s in first["series"]}
        assert list(series) == ["cpu", "ram", "gpu0.util", "gpu0.mem", "gpu1.util", "gpu1.mem"]
        assert [series[k]["unit"] for k in ("cpu", "gpu0.util")] == ["percent", "percent"]
        assert [series[k]["unit"] for k in ("ram", "gpu1.mem")] == ["bytes", "bytes"]
        assert series["gpu1.mem"]["total"] == 16 * GIB and series["gpu1.mem"]["name"] == "GPU 1"
        assert series["ram"]["total"] > 0
        cpu = [v for v in series["cpu"]["values"] if v is not None]
        assert cpu and all(0 <= v <= 100 for v in cpu)
        assert all(len(s["values"]) == len(first["times"]) for s in first["series"])
        for window, step in ((3600, 10), (86400, 60)):
            longer = history(c, window)
            assert (longer["window"], longer["step"]) == (window, step) and longer["times"]

    server.kill9()
    server.start()
    with server.client() as c:
        after = wait_for(lambda: (d := history(c))["times"][-1] > first["now"] + 1 and d)
        assert after["times"][0] == first["times"][0]  # what was written before the crash
        cpu = after["series"][0]["values"]
        restart = next(i for i, t in enumerate(after["times"]) if t > first["now"])
        assert None in cpu[: restart + 1]  # a gap where the server was down, not a line across
        before_stop = history(c)["times"][-1]

    assert server.sigterm() == 0
    server.start()
    with server.client() as c:
        kept = history(c)
        assert kept["times"][0] == first["times"][0]
        assert before_stop in kept["times"]  # a stop writes the samples still waiting


def test_history_refuses_windows_out_of_range(server: AntServer) -> None:
    with server.client() as c:
        # The longest window there is, for the UI to offer (MONITORING_keep_hours, 24 h).
        assert c.get("/api/v1/server").json()["ui"]["history_keep_seconds"] == 86400
        assert history(c, 86400)["window"] == 86400
        for bad in ("10", "90000", "abc", "nan"):
            r = c.get("/api/v1/system/history", params={"window": bad})
            assert_error(r, 400, "invalid_request")
        for bad in ("0", "40000000"):
            r = c.get("/api/v1/gpus/timeline", params={"window": bad})
            assert_error(r, 400, "invalid_request")


def test_timeline_bars_and_summary(server: AntServer) -> None:
    with server.client() as c:
        submit(c, "exit 3", n_gpus=1, task_id="bad")
        wait_state(c, "bad", "failed")
        submit(c, "sleep 60", n_gpus=2, task_id="long")
        wait_state(c, "long", "running")
        submit(c, "sleep 1", n_gpus=3, task_id="waits")

        r = c.get("/api/v1/gpus/timeline", params={"window": 900})
        assert r.status_code == 200, r.text
        line = r.json()
        assert line["now"] - line["since"] == 900 and line["truncated"] is False
        assert [(g["index"], g["label"], g["node"]) for g in line["gpus"]] == [
            (i, str(i), "") for i in range(4)
        ]
        bars = {(g["index"], b["task_id"]): b for g in line["gpus"] for b in g["bars"]}
        bad = c.get("/api/v1/tasks/bad").json()
        long = c.get("/api/v1/tasks/long").json()
        [bad_gpu] = bad["gpu_ids"]
        assert bars[bad_gpu, "bad"] == {
            "task_id": "bad",
            "command": "exit 3",
            "state": "failed",
            "start": bad["started_at"],
            "end": bad["finished_at"],
            "exit_code": 3,
        }
        for index in long["gpu_ids"]:
            assert bars[index, "long"]["end"] is None and bars[index, "long"]["state"] == "running"
        assert len(bars) == 3  # nothing else ran

        summary = c.get("/api/v1/system/summary").json()
        assert summary == {
            "running": 1,
            "queued": 1,
            "held": 0,
            "lost": 0,
            "failed_24h": 1,
            "gpus_busy": 2,
            "gpus_total": 4,
        }
