"""Hostile input gets a clean 4xx and changes nothing."""

from __future__ import annotations

import json

import httpx

from ant_scheduler.core.terminal import render_terminal
from tests.reliability.reality import check_reality
from tests.server import AntServer


def clean_4xx(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


def test_hostile_requests(server: AntServer) -> None:
    with server.client() as c:
        for task_id in [
            "../../etc/passwd",
            "..",
            "/abs",
            "a/b",
            "x\x00y",
            "-rf",
            ".hidden",
            "a" * 200,
        ]:
            clean_4xx(c.post("/api/v1/tasks", json={"command": "true", "task_id": task_id}))
        clean_4xx(c.post("/api/v1/tasks", json={"command": "ant_task_id=../../x true"}))
        for path in ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..", "a%00b"]:
            r = c.get(f"/api/v1/tasks/{path}/log", params={"full": "true"})
            assert r.status_code == 404, (path, r.status_code)
        clean_4xx(c.post("/api/v1/tasks", json={"command": "x" * (10 * 1024 * 1024)}))
        clean_4xx(c.post("/api/v1/tasks", content=b"x" * (20 * 1024 * 1024)))  # 413
        clean_4xx(
            c.post(
                "/api/v1/tasks",
                content=b'{"command": "\xc3\x28"}',
                headers={"content-type": "application/json"},
            )
        )
        clean_4xx(c.post("/api/v1/tasks", json={"command": "echo a\x00b"}))
        clean_4xx(c.post("/api/v1/tasks", json={"command": "true", "env": {"A": "b\x00"}}))
        clean_4xx(
            c.post(
                "/api/v1/tasks",
                json={"command": "true", "env": {f"V{i}": "x" for i in range(10_000)}},
            )
        )
        clean_4xx(
            c.post(
                "/api/v1/tasks",
                content=b'{"command": ',
                headers={"content-type": "application/json"},
            )
        )
        clean_4xx(
            c.post(
                "/api/v1/tasks",
                content=json.dumps({"command": ["a"]}),
                headers={"content-type": "application/json"},
            )
        )
        clean_4xx(c.post("/api/v1/tasks", json={"command": "true", "n_gpus": 10**30}))
        clean_4xx(c.post("/api/v1/tasks", json={"command": "true", "priority": "high"}))
        clean_4xx(c.get("/api/v1/tasks", params={"limit": "many"}))
        clean_4xx(c.patch("/api/v1/gpus/abc", json={"enabled": True}))
        clean_4xx(c.post("/api/v1/recovery/restore", json={"task_ids": "all"}))
        assert c.get("/api/v1/tasks").json()["total"] == 0
        check_reality(c, server.state_dir)
        assert not list(server.log_dir.rglob("*.log"))
        assert not (server.workdir.parent / "etc").exists()


def test_hostile_encodings_numbers_nesting_and_types(server: AntServer) -> None:
    """Each gets a 400 naming the field, and nothing is stored: lone surrogates (JSON escapes in
    bodies, %-encoded invalid UTF-8 in paths and queries), numbers past 64 bits, deep nesting,
    coerced types, and hostile command text."""
    digits = "9" * 5000
    deep = "[" * 5000 + "]" * 5000
    tasks = "/api/v1/tasks"
    raw_bodies = [
        (tasks, r'{"command": "true", "env": {"A": "\udc80"}}', "env.A"),
        (tasks, r'{"command": "\ud800 x"}', "command"),
        (tasks, r'{"command": "true", "task_id": "\udfff"}', "task_id"),
        ("/api/v1/recovery/restore", r'{"task_ids": ["\udc80"]}', "task_ids.0"),
        ("/api/v1/login", r'{"token": "\udc80"}', "token"),
        (tasks, f'{{"command": "true", "priority": {digits}}}', "priority"),
        (tasks, f'{{"command": "true", "n_gpus": {2**64}}}', "n_gpus"),
        (tasks, deep, "body"),
        (tasks, '{"command": "true", "env": ' + "[" * 50 + "]" * 50 + "}", "env"),
    ]
    typed = [
        ("POST", tasks, {"command": "true", "n_gpus": True}, "n_gpus"),
        ("POST", tasks, {"command": "true", "n_gpus": "2"}, "n_gpus"),
        ("POST", tasks, {"command": "true", "n_gpus": 2.0}, "n_gpus"),
        ("POST", tasks, {"command": "true", "priority": "3"}, "priority"),
        ("PATCH", "/api/v1/gpus/0", {"enabled": "yes"}, "enabled"),
    ]

    def refused(r: httpx.Response, field: str) -> None:
        clean_4xx(r)
        assert r.status_code == 400, r.text[:200]
        assert r.json()["error"]["message"].startswith(f"{field}:"), r.text[:200]

    with server.client() as c:
        for path, body, field in raw_bodies:
            r = c.post(path, content=body, headers={"content-type": "application/json"})
            refused(r, field)
        for method, path, json_body, field in typed:
            refused(c.request(method, path, json=json_body), field)
        refused(c.get(f"{tasks}/%ED%B2%80"), "task_id")
        refused(c.get(f"{tasks}?q=%ED%B2%80"), "q")
        envar = '{"A": ' + deep + "}"
        for command in [f"ant_envar={envar} true", f"ant_envar='{envar}' true"]:
            r = c.post(tasks, json={"command": command})
            clean_4xx(r)
            assert r.json()["error"]["code"] == "task_rejected"
        r = c.post(tasks, json={"command": f"ant_n_gpus={digits} true"})
        clean_4xx(r)
        assert r.json()["error"]["code"] == "task_rejected"
        assert c.get("/api/v1/gpus").json()[0]["enabled"] is True
        assert c.get(tasks).json()["total"] == 0


def test_hostile_terminal_output_is_neutralised() -> None:
    """8-bit C1 string sequences lose their payload and bidi controls are dropped, as the 7-bit
    forms always were: nothing a program prints can reorder or inject what the page shows."""
    text = (
        "a\x90dcs\x9cb\x9d0;osc\x07c\x9epm\x9cd\x9fapc\x1b\\e\x98sos\x9cf\x1bPq\x1b\\g\n"
        "report\u202egnp.exe\u202c \u2067iso\u2069 "
        "\u200e\u200f\u061c\u202a\u202b\u202d\u2066\u2068!\n"
        "\x9dunterminated OSC\nnext\n"
    )
    assert render_terminal(text, 10) == ["abcdefg", "reportgnp.exe iso !", "", "next"]


def test_a_large_env_copied_into_every_line_is_refused(server: AntServer) -> None:
    """Found: one 2 MB env value copied into each of 150 lines added 500 MB to the database
    and 1.2 GB of memory, and blocked the server for 24.6 s."""
    text = "\n".join(f"echo {i}" for i in range(150))
    with server.client() as c:
        r = c.post(
            "/api/v1/tasks",
            json={"command": text, "mode": "multi", "env": {"BIG": "x" * 2_000_000}},
        )
        clean_4xx(r)
        assert r.status_code == 413 and "SERVER_max_expanded_bytes" in r.json()["error"]["message"]
        assert c.get("/api/v1/tasks").json()["total"] == 0
        assert c.get("/api/").status_code == 200
        check_reality(c, server.state_dir)
