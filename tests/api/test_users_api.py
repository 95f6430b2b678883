"""Several users through the API and the CLI, on a real server: `ant users add` prints a token
that works (API, cookie login), users act only on their own tasks (403, nothing changes), an
admin on all, limits (a queued task waits with a reason, a submission over max_queued is 429),
the user filter, GPU-hours, and users kept across a restart."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer


def as_user(server: AntServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        verify=False,
        timeout=30,
    )


def add_user(ant: Ant, name: str, *options: str) -> str:
    r = ant("users", "add", name, *options)
    token = r.stdout.strip()
    assert token.startswith("ant_") and "\n" not in token
    assert f"user {name}" in r.stderr
    return token


def listed(c: httpx.Client, **params: Any) -> list[str]:
    page = c.get("/api/v1/tasks", params=params).json()
    return sorted(t["task_id"] for t in page["tasks"])


def test_users_tokens_ownership_and_403s(server: AntServer) -> None:
    ant = Ant(server)
    with server.client() as admin:
        # Single-token mode: the token is the admin; tasks are the admin's.
        assert admin.get("/api/v1/me").json()["name"] == "admin"
        [old] = submit(admin, "true", task_id="old")
        assert old["owner"] == "admin"
        assert admin.get("/api/v1/users").json()["several"] is False
    alice_token = add_user(ant, "alice", "--max-queued", "5")
    bob_token = add_user(ant, "bob")
    # Only a hash of each token is stored.
    db = sqlite3.connect(server.state_dir / "ant.db")
    stored = dict(db.execute("SELECT name, token_hash FROM users").fetchall())
    db.close()
    assert stored["alice"] == hashlib.sha256(alice_token.encode()).hexdigest()
    assert alice_token not in (server.state_dir / "ant.db").read_bytes().decode("latin-1")
    listing = ant("users", "ls").stdout
    assert "admin  admin" in listing and "alice  user  (max queued 5)" in listing
    assert ant.json("users", "set", "bob", "--max-gpus", "2")["max_gpus"] == 2
    changed = ant.json("users", "set", "bob", "--max-gpus", "none", "--max-queued", "9")
    assert (changed["max_gpus"], changed["max_queued"], changed["token"]) == (None, 9, None)
    assert ant("users", "set", "bob", ok=False).returncode == 2  # nothing to change
    assert ant("users", "set", "bob", "--max-gpus", "lots", ok=False).returncode == 2
    assert ant("users", "set", "nobody", "--max-gpus", "1", ok=False).returncode == 5
    wait = f"while [ ! -e {server.workdir / 'go'} ]; do sleep 0.05; done"
    with as_user(server, alice_token) as alice, as_user(server, bob_token) as bob:
        me = alice.get("/api/v1/me").json()
        assert (me["name"], me["admin"], me["max_gpus"], me["max_queued"]) == (
            "alice",
            False,
            None,
            5,
        )
        assert me["several"] is True and me["users"] == ["admin", "alice", "bob"]
        [mine] = submit(alice, wait, task_id="mine", n_gpus=1, tags=["a-sweep"])
        [his] = submit(bob, wait, task_id="his", n_gpus=1, tags=["b-sweep"])
        assert (mine["owner"], his["owner"]) == ("alice", "bob")
        wait_state(alice, "his", "running")
        # Everyone sees every task; the user filter narrows it.
        assert listed(alice) == ["his", "mine", "old"]
        assert listed(alice, owner="alice") == ["mine"]
        assert listed(alice, owner="admin") == ["old"]
        assert_error(alice.get("/api/v1/tasks", params={"owner": "Not Valid"}), 400)
        # Acting on bob's task: 403 with the error shape, and nothing changes.
        for method, path, body in [
            ("POST", "/api/v1/tasks/his/kill", None),
            ("POST", "/api/v1/tasks/his/restart", None),
            ("POST", "/api/v1/tasks/his/promote", None),
            ("POST", "/api/v1/tasks/his/rename", {"new_id": "stolen"}),
            ("POST", "/api/v1/tasks/his/move", {"to": "top"}),
            ("DELETE", "/api/v1/tasks/his", None),
            ("DELETE", "/api/v1/recovery/his", None),
            ("POST", "/api/v1/recovery/restore", {"task_ids": ["his"]}),
            ("POST", "/api/v1/tags/b-sweep/kill", None),
            ("POST", "/api/v1/queue/pause", {"tag": "b-sweep"}),
            ("POST", "/api/v1/queue/pause", None),
            ("PATCH", "/api/v1/gpus/0", {"enabled": False}),
            ("GET", "/api/v1/users", None),
            ("POST", "/api/v1/users", {"name": "mallory", "admin": True}),
            ("DELETE", "/api/v1/users/bob", None),
        ]:
            r = alice.request(method, path, json=body)
            message = assert_error(r, 403, "forbidden")
            assert "alice" in message, (path, message)
        assert wait_state(bob, "his", "running")["task_id"] == "his"
        assert bob.get("/api/v1/queue").json()["paused"] is False
        assert [g["enabled"] for g in bob.get("/api/v1/gpus").json()] == [True] * 4
        # Her own task: fine. The CLI says the same in one line, exit code 3 (unauthorized).
        r = Ant(server)
        r.env["ANT_TOKEN"] = alice_token
        refused = r("kill", "his", ok=False)
        assert refused.returncode != 0 and "belongs to bob" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert r.json("whoami")["name"] == "alice"
        assert "mine" in r("ls", "--user", "alice").stdout
        assert "his" not in r("ls", "--user", "alice").stdout
        assert alice.post("/api/v1/tags/a-sweep/kill").json()["task_ids"] == ["mine"]
        # The admin acts on anyone's.
        with server.client() as admin:
            assert admin.post("/api/v1/tasks/his/kill").json()["state"] == "killed"
            assert admin.get("/api/v1/tasks/his").json()["owner"] == "bob"
    # A removed user's token stops working at once.
    ant("users", "rm", "bob")
    with as_user(server, bob_token) as bob:
        assert_error(bob.get("/api/v1/tasks"), 401)
    assert_error(httpx.get(server.url + "/api/v1/users", headers={}), 401)
    users = ant.json("users", "ls")["users"]
    assert [u["name"] for u in users] == ["admin", "alice"]
    ant("users", "add", "alice", ok=False)  # taken: exit code, one line
    bad = ant("users", "add", "Bad Name", ok=False)
    assert bad.returncode != 0 and "not valid" in bad.stderr


def test_user_token_signs_in_to_the_ui(server: AntServer) -> None:
    token = add_user(Ant(server), "carol")
    with httpx.Client(base_url=server.url, verify=False) as browser:
        assert_error(browser.post("/api/v1/login", json={"token": "ant_nope"}), 401)
        assert browser.post("/api/v1/login", json={"token": token}).status_code == 204
        assert browser.get("/api/v1/me").json()["name"] == "carol"
        # A cookie session needs the CSRF header to change anything, as the admin's does.
        assert_error(browser.post("/api/v1/tasks", json={"command": "true"}), 403, "csrf_failed")
        r = browser.post("/api/v1/tasks", json={"command": "true"}, headers={"X-ANT-CSRF": "1"})
        assert r.status_code == 201 and r.json()["tasks"][0]["owner"] == "carol"
    # A new token ends the old one's sessions too.
    Ant(server)("users", "set", "carol", "--new-token")
    with httpx.Client(base_url=server.url, verify=False) as browser:
        assert_error(browser.post("/api/v1/login", json={"token": token}), 401)


def test_limits_and_usage(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=4, config={"RUNNER_policy": "fairshare"}).start()
    ant = Ant(server)
    token = add_user(ant, "alice", "--max-gpus", "2", "--max-queued", "2")
    flag = server.workdir / "go"
    wait = f"while [ ! -e {flag} ]; do sleep 0.05; done"
    with as_user(server, token) as alice, server.client() as admin:
        submit(alice, wait, task_id="a1", n_gpus=2, tags=["sweep"])
        wait_state(alice, "a1", "running")
        submit(alice, wait, task_id="a2", n_gpus=1)
        queued = wait_state(alice, "a2", "queued")
        wait_state(alice, "a2", "queued")
        assert "alice holds 2 of 2 GPUs (max_gpus)" in (
            alice.get("/api/v1/tasks/a2").json()["pending_reason"] or queued["pending_reason"]
        )
        submit(alice, "true", task_id="a3", n_gpus=4)  # queued too: 2 queued now
        message = assert_error(
            alice.post("/api/v1/tasks", json={"command": "true", "n_gpus": 1}), 429, "queue_limit"
        )
        assert "at most 2 queued tasks" in message
        assert listed(alice, owner="alice") == ["a1", "a2", "a3"]
        # The admin's tasks are not held by alice's limit.
        submit(admin, wait, task_id="b1", n_gpus=1)
        wait_state(admin, "b1", "running")
        # The admin raises her limit: a2 starts.
        r = admin.patch("/api/v1/users/alice", json={"max_gpus": 3})
        assert r.status_code == 200 and r.json()["max_gpus"] == 3 and r.json()["token"] is None
        wait_state(alice, "a2", "running")
        assert_error(admin.patch("/api/v1/users/nobody", json={"max_gpus": 3}), 404)
        assert_error(admin.patch("/api/v1/users/alice", json={"max_gpus": -1}), 400)
        assert_error(admin.post("/api/v1/users", json={"name": "admin"}), 409)
        # GPU-hours: running tasks count up to now.
        usage = admin.get("/api/v1/usage", params={"window": "7d", "by": "user"}).json()
        assert usage["by"] == "user" and usage["window"] == 7 * 86400
        hours = {row["key"]: row["gpu_hours"] for row in usage["rows"]}
        assert set(hours) == {"alice", "admin"} and hours["alice"] > 0
        by_tag = admin.get("/api/v1/usage", params={"by": "tag"}).json()
        assert {row["key"] for row in by_tag["rows"]} == {"sweep", ""}
        assert_error(admin.get("/api/v1/usage", params={"window": "forever"}), 400)
        assert_error(admin.get("/api/v1/usage", params={"by": "host"}), 400)
        text = ant("usage", "--window", "24h").stdout
        assert "alice" in text and "GPU-HOURS" in text and "total" in text
        assert ant.json("usage", "--by", "tag")["by"] == "tag"
        flag.touch()
        for task_id in ("a1", "a2", "b1"):
            wait_state(admin, task_id, "succeeded")
        submit(admin, "true", task_id="big", n_gpus=8)  # never fits: held after the restart
    # Users, owners and limits are kept across a restart.
    server.sigterm()
    server.start()
    with as_user(server, token) as alice, server.client() as admin:
        me = alice.get("/api/v1/me").json()
        assert (me["name"], me["max_gpus"], me["max_queued"]) == ("alice", 3, 2)
        assert alice.get("/api/v1/tasks/a1").json()["owner"] == "alice"
        # `ant recover restore --all` as alice restores her held task, not the admin's.
        assert wait_state(alice, "a3", "held")["owner"] == "alice"
        mine = Ant(server)
        mine.env["ANT_TOKEN"] = token
        restored = mine.json("recover", "restore", "--all")["tasks"]
        assert [t["task_id"] for t in restored] == ["a3"]
        assert admin.get("/api/v1/tasks/big").json()["state"] == "held"
