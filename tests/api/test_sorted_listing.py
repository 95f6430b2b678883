"""GET /api/v1/tasks sorted and limited to a range of end times (the Completed table)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.server import AntServer

ENDED = "succeeded,failed,killed,lost"


def page(c: httpx.Client, **params: Any) -> dict[str, Any]:
    r = c.get("/api/v1/tasks", params=params)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def ids(c: httpx.Client, **params: Any) -> list[str]:
    return [t["task_id"] for t in page(c, **params)["tasks"]]


def duration(task: dict[str, Any]) -> float:
    return float(task["finished_at"] - task["started_at"])


def finished_history(c: httpx.Client) -> dict[str, dict[str, Any]]:
    """Tasks that end one after the other, of known relative durations and exit codes."""
    runs = [
        ("quick-ok", "true"),
        ("slow-fail", "sleep 0.6; exit 3"),
        ("quick-fail", "exit 1"),
        ("slow-ok", "sleep 0.4"),
        ("mid-fail", "sleep 0.2; exit 2"),
    ]
    for task_id, command in runs:
        submit(c, command, task_id=task_id)
        wait_state(c, task_id, "succeeded", "failed")
    submit(c, "sleep 60", task_id="never-ran", n_gpus=9)  # queued: more GPUs than exist
    c.post("/api/v1/tasks/never-ran/kill")
    wait_state(c, "never-ran", "killed")
    submit(c, "sleep 60", task_id="still-running")
    wait_state(c, "still-running", "running")
    return {t["task_id"]: t for t in page(c, state=ENDED, limit=100)["tasks"]}


def test_sort_by_each_column_both_ways_with_state_filters(server: AntServer) -> None:
    with server.client() as c:
        tasks = finished_history(c)
        assert len(tasks) == 6

        failed = ids(c, state="failed", sort="duration")
        assert failed == ["slow-fail", "mid-fail", "quick-fail"]
        assert ids(c, state="failed", sort="duration", order="asc") == failed[::-1]
        assert ids(c, state="failed", sort="exit_code", order="asc") == [
            "quick-fail",
            "mid-fail",
            "slow-fail",
        ]
        # Never started: no start time and no duration, so the smallest.
        assert ids(c, state=ENDED, sort="started_at")[-1] == "never-ran"
        assert ids(c, state=ENDED, sort="duration", order="asc")[0] == "never-ran"
        assert ids(c, state=ENDED, sort="task_id", order="asc") == sorted(tasks)
        by_end = ids(c, state=ENDED, sort="finished_at")
        assert by_end == sorted(tasks, key=lambda i: tasks[i]["finished_at"], reverse=True)
        assert_error(c.get("/api/v1/tasks", params={"sort": "created_at"}), 400)

        # Paging through a sorted listing gives the same order, with the total.
        first = page(c, state=ENDED, sort="duration", limit=4)
        rest = page(c, state=ENDED, sort="duration", limit=4, offset=4)
        assert first["total"] == rest["total"] == 6
        whole = [t["task_id"] for t in first["tasks"] + rest["tasks"]]
        assert whole == ids(c, state=ENDED, sort="duration")
        durations = [duration(t) for t in first["tasks"] + rest["tasks"] if t["started_at"]]
        assert durations == sorted(durations, reverse=True)

        # Every state, the running task included (its end is unknown: the smallest).
        everything = ids(c, sort="finished_at")
        assert len(everything) == 7 and everything[-1] == "still-running"
        c.post("/api/v1/tasks/still-running/kill")


def test_the_range_of_end_times_in_seconds_or_iso(server: AntServer) -> None:
    with server.client() as c:
        tasks = finished_history(c)
        ends = sorted(t["finished_at"] for t in tasks.values())
        since, until = ends[1], ends[4]  # the 2nd to the 4th end (until is exclusive)
        want = {i for i, t in tasks.items() if since <= t["finished_at"] < until}
        assert len(want) == 3
        inside = page(c, state=ENDED, since=since, until=until, sort="finished_at")
        assert {t["task_id"] for t in inside["tasks"]} == want and inside["total"] == 3
        # The listing order takes the range too, and so does a search.
        assert set(ids(c, state=ENDED, since=since, until=until)) == want
        found = ids(c, state=ENDED, since=since, until=until, q="fail", sort="task_id")
        assert found == sorted((i for i in want if "fail" in i), reverse=True)  # desc: default

        def iso(ts: float, zone: timezone = timezone.utc, naive: bool = False) -> str:
            moment = datetime.fromtimestamp(ts, zone)
            return (moment.replace(tzinfo=None) if naive else moment).isoformat()

        # ISO times have microseconds: bounds between two ends, where rounding cannot matter.
        low, high = (ends[0] + ends[1]) / 2, (ends[3] + ends[4]) / 2
        plus_two = timezone(timedelta(hours=2))
        same = [
            {"since": iso(low), "until": iso(high)},
            {"since": iso(low, plus_two), "until": iso(high, plus_two)},
            {"since": iso(low, naive=True), "until": iso(high, naive=True)},  # naive: UTC
        ]
        for params in same:
            assert set(ids(c, state=ENDED, **params)) == want, params
        # Only a start or only an end.
        assert page(c, state=ENDED, since=ends[-1])["total"] == 1
        assert page(c, state=ENDED, until=ends[0])["total"] == 0
        day = datetime.fromtimestamp(ends[0], timezone.utc).date()
        assert page(c, state=ENDED, since=day.isoformat())["total"] == 6
        assert page(c, state=ENDED, until=day.isoformat())["total"] == 0


def test_bad_sort_order_and_times_are_refused_with_the_error_shape(server: AntServer) -> None:
    with server.client() as c:
        cases: list[dict[str, Any]] = [
            {"sort": "command"},
            {"sort": "finished_at; DROP TABLE tasks"},
            {"order": "up"},
            {"since": "yesterday"},
            {"until": "2026-13-01"},
            {"since": "nan"},
            {"until": "inf"},
            {"since": "9" * 80},
        ]
        for params in cases:
            message = assert_error(c.get("/api/v1/tasks", params=params), 400, "invalid_request")
            assert next(iter(params)) in message, (params, message)
        assert page(c, sort="task_id", order="asc", since="", until=" ")["total"] == 0


def test_the_api_and_the_cli_offer_the_store_s_sort_keys() -> None:
    from typing import get_args

    from ant_scheduler.api.routes.tasks import SortKey
    from ant_scheduler.cli.commands import SORT_KEYS as CLI_KEYS
    from ant_scheduler.store import SORT_KEYS

    assert get_args(SortKey) == tuple(SORT_KEYS) == CLI_KEYS
