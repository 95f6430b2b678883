"""Hostile input gets a clean 4xx and changes nothing."""

from __future__ import annotations

import json

import httpx

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
        assert not list(server.log_dir.rglob("*.log"))
        assert not (server.workdir.parent / "etc").exists()
