"""The log viewer's routes against a real `ant serve`: a log by line number (/log/lines) and
search in it (/log/search), on real task logs; bad input is a 4xx JSON error."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.server import AntServer, wait_for

MAX_ANSWER_BYTES = 4 << 20  # api/routes/logs.py


def counted(c: httpx.Client, task_id: str, **params: Any) -> dict[str, Any]:
    """/log/lines once the whole log is counted (a big one takes a few answers)."""

    def check() -> dict[str, Any] | None:
        r = c.get(f"/api/v1/tasks/{task_id}/log/lines", params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["counted_bytes"] == body["size"] > 0 else None

    return wait_for(check, 60)  # type: ignore[no-any-return]


def test_lines_by_number_from_the_start_the_middle_and_the_end(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "seq 1 300000")
        tid = task["task_id"]
        wait_state(c, tid, "succeeded")
        first = counted(c, tid, start=0, count=3)
        assert first["lines"] == ["1", "2", "3"] and first["start"] == 0
        assert first["total_lines"] == 300_000 and first["available"] is True
        assert first["cut"] == [] and first["rank"] == 0
        middle = c.get(f"/api/v1/tasks/{tid}/log/lines", params={"start": 150_000, "count": 2})
        assert middle.json()["lines"] == ["150001", "150002"]
        end = c.get(f"/api/v1/tasks/{tid}/log/lines", params={"from_end": "true", "count": 3})
        assert end.json()["start"] == 299_997
        assert end.json()["lines"] == ["299998", "299999", "300000"]
        past = c.get(f"/api/v1/tasks/{tid}/log/lines", params={"start": 400_000}).json()
        assert past["lines"] == [] and past["total_lines"] == 300_000


def test_search_finds_lines_in_order_and_says_where_to_go_on(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "seq 1 300000; echo The End")
        tid = task["task_id"]
        wait_state(c, tid, "succeeded")
        url = f"/api/v1/tasks/{tid}/log/search"
        one = c.get(url, params={"q": "150000"}).json()
        assert one["lines"] == [149_999] and one["next_line"] is None
        first = c.get(url, params={"q": "99999", "limit": 2}).json()
        assert first["lines"] == [99_998, 199_998] and first["next_line"] == 199_999
        rest = c.get(url, params={"q": "99999", "start": first["next_line"]}).json()
        assert rest["lines"] == [299_998] and rest["next_line"] is None
        assert c.get(url, params={"q": "the end"}).json()["lines"] == [300_000]
        assert c.get(url, params={"q": "the end", "case": "true"}).json()["lines"] == []
        assert c.get(url, params={"q": "nowhere"}).json()["lines"] == []


def test_a_long_line_is_cut_and_named(server: AntServer) -> None:
    with server.client() as c:
        cmd = "python3 -c \"print('before'); print('x' * 200000); print('after')\""
        [task] = submit(c, cmd)
        tid = task["task_id"]
        wait_state(c, tid, "succeeded")
        body = counted(c, tid)
        assert [len(line) for line in body["lines"]] == [6, body["max_line_bytes"], 5]
        assert body["lines"][2] == "after" and body["cut"] == [1]


def test_a_50_mb_log_is_served_in_small_answers(server: AntServer) -> None:
    with server.client() as c:
        # 50 MB in lines of 1 KB (number, padding), written at once.
        cmd = (
            'python3 -c "import sys; w = sys.stdout.write\n'
            "for i in range(51200): w(f'{i:08d} ' + 'y' * 1014 + chr(10))\""
        )
        [task] = submit(c, cmd)
        tid = task["task_id"]
        wait_state(c, tid, "succeeded", timeout=60)
        whole = counted(c, tid, from_end="true", count=5)
        assert whole["size"] == 51_200 * 1024 and whole["total_lines"] == 51_200
        assert [line[:8] for line in whole["lines"]] == [f"{i:08d}" for i in range(51195, 51200)]
        # The most lines an answer may hold, 5 MB of them: it stops at MAX_ANSWER_BYTES.
        big = c.get(f"/api/v1/tasks/{tid}/log/lines", params={"start": 1000, "count": 5000})
        lines = big.json()["lines"]
        assert len(big.content) < MAX_ANSWER_BYTES + 64 * 1024
        assert 0 < len(lines) < 5000 and lines[0].startswith("00001000 ")
        assert lines[-1].startswith(f"{1000 + len(lines) - 1:08d} ")
        found = c.get(f"/api/v1/tasks/{tid}/log/search", params={"q": "00025600 "}).json()
        assert found["lines"] == [25_600]


def test_a_running_task_is_counted_on_as_it_writes(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "echo one; sleep 1.5; echo two; sleep 30")
        tid = task["task_id"]
        wait_state(c, tid, "running")

        def lines_now(n: int) -> list[str] | None:
            body = c.get(f"/api/v1/tasks/{tid}/log/lines").json()
            return body["lines"] if body["total_lines"] == n else None

        assert wait_for(lambda: lines_now(1), 10) == ["one"]
        assert wait_for(lambda: lines_now(2), 10) == ["one", "two"]
        c.post(f"/api/v1/tasks/{tid}/kill")


def test_bad_input_is_a_json_error(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "echo hi")
        tid = task["task_id"]
        wait_state(c, tid, "succeeded")
        lines, search = f"/api/v1/tasks/{tid}/log/lines", f"/api/v1/tasks/{tid}/log/search"
        assert_error(c.get(lines, params={"start": -1}), 400)
        assert_error(c.get(lines, params={"count": 0}), 400)
        assert_error(c.get(lines, params={"count": 5001}), 400)
        assert_error(c.get(lines, params={"start": "x"}), 400)
        assert_error(c.get(lines, params={"rank": 1}), 400)
        assert_error(c.get(search), 400)
        assert_error(c.get(search, params={"q": ""}), 400)
        assert_error(c.get(search, params={"q": "x" * 1001}), 400)
        assert_error(c.get(search, params={"q": "hi", "limit": 0}), 400)
        assert_error(c.get("/api/v1/tasks/nope/log/lines"), 404)
        assert_error(c.get("/api/v1/tasks/nope/log/search", params={"q": "a"}), 404)


def test_a_restart_records_where_it_came_from(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "exit 3", task_id="flaky")
        wait_state(c, "flaky", "failed")
        copy = c.post("/api/v1/tasks/flaky/restart").json()
        assert copy["task_id"] == "flaky-restart-1" and copy["restarted_from"] == "flaky"
        wait_state(c, "flaky-restart-1", "failed")
        again = c.post("/api/v1/tasks/flaky-restart-1/restart").json()
        assert again["restarted_from"] == "flaky-restart-1"
        assert c.get("/api/v1/tasks/flaky").json()["restarted_as"] == "flaky-restart-1"
        assert task["restarted_from"] is None
