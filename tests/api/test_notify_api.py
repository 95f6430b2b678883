"""Notifications through a real `ant serve` to a real HTTP receiver on 127.0.0.1: the payloads of
real ends, per-task URLs (API, inline, CLI), validation, a hung receiver and a dead one."""

from __future__ import annotations

import re
import socket

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer, free_port, wait_for
from tests.webhook_receiver import webhook_receiver


def notifications(server: AntServer) -> dict[str, object]:
    with server.client() as c:
        status: dict[str, object] = c.get("/api/v1/health").json()["notifications"]
        return status


def test_real_ends_are_posted_with_their_state_exit_code_and_last_lines(
    server_factory: type[AntServer],
) -> None:
    with webhook_receiver() as hook:
        server = server_factory(config={"NOTIFY_webhook_url": hook.url + "/all"}).start()
        ant = Ant(server)
        with server.client() as c:
            submit(c, "echo fine", n_gpus=1, task_id="ok")
            [bad] = submit(
                c,
                "ant_notify=" + hook.url + "/mine/t0ken sh -c 'seq 1 30; exit 3'",
                n_gpus=1,
                task_id="bad",
            )
            assert bad["notify"] == hook.url + "/…" and "t0ken" not in str(bad)
            assert bad["command"] == "sh -c 'seq 1 30; exit 3'"
            submit(c, "sleep 60", n_gpus=1, task_id="slow", notify=hook.url + "/api")
            wait_state(c, "slow", "running")
            assert c.post("/api/v1/tasks/slow/kill").status_code == 200
            for task_id in ("ok", "bad", "slow"):
                wait_state(c, task_id, "succeeded", "failed", "killed")
            wait_for(lambda: len(hook.received) == 5)
            # A restart keeps the task's own URL: its copy's end is told there too.
            [copy] = [c.post("/api/v1/tasks/bad/restart").json()]
            assert copy["notify"] == hook.url + "/…"
            wait_state(c, copy["task_id"], "failed")
            wait_for(lambda: len(hook.received) == 7)
        everyone = hook.by_task("/all")
        assert {
            k: (v["state"], v["exit_code"]) for k, v in everyone.items() if k != copy["task_id"]
        } == {
            "ok": ("succeeded", 0),
            "bad": ("failed", 3),
            "slow": ("killed", 143),
        }
        assert everyone["ok"]["log_tail"] == ["fine"] and everyone["ok"]["command"] == "echo fine"
        assert everyone["bad"]["log_tail"] == [str(i) for i in range(11, 31)]  # the last 20
        assert everyone["bad"]["server"] == socket.gethostname()
        assert len(everyone["slow"]["gpu_ids"]) == 1 and everyone["slow"]["duration_seconds"] > 0
        assert set(everyone) == {"ok", "bad", "slow", copy["task_id"]}
        assert hook.by_task("/mine/t0ken") == {
            "bad": everyone["bad"],
            copy["task_id"]: everyone[copy["task_id"]],
        }
        assert hook.by_task("/api") == {"slow": everyone["slow"]}
        wait_for(lambda: notifications(server)["sent"] == 7)  # counted once answered
        with server.client() as c:
            metrics = c.get("/metrics").text
        assert 'ant_notifications_total{result="sent"} 7.0' in metrics
        assert 'ant_notifications_total{result="failed"} 0.0' in metrics
        assert "ant_notifications_pending 0.0" in metrics
        health = ant("health").stdout
        assert "notifications: 7 sent, 0 failed, 0 dropped, 0 pending" in health
        # The CLI's --notify, shown masked by `ant show`.
        [cli] = ant.json("submit", "--notify", hook.url + "/cli?token=x", "--", "true")["tasks"]
        assert cli["notify"] == hook.url + "/…"
        assert re.search(
            r"\nnotify +http://127\.0\.0\.1:\d+/… *\n", ant("show", cli["task_id"]).stdout
        )
        wait_for(lambda: hook.by_task("/cli?token=x"))
        wait_for(lambda: notifications(server)["sent"] == 9)  # /all and /cli
        assert "t0ken" not in server.output()


def test_bad_urls_are_refused_and_change_nothing(server: AntServer) -> None:
    ant = Ant(server)
    with server.client() as c:
        for body in (
            {"command": "true", "notify": "ftp://example.com/x"},
            {"command": "true", "notify": "hooks.example.com"},
            {"command": "ant_notify=nope true"},
            {"command": "true\nant_notify=http:// true", "mode": "multi"},
        ):
            message = assert_error(c.post("/api/v1/tasks", json=body), 400, "task_rejected")
            assert "webhook URL" in message
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "notify": 3}), 400)
        assert c.get("/api/v1/tasks").json()["total"] == 0
    bad = ant("submit", "--notify", "slack.com/hook", "--", "true", ok=False)
    assert bad.returncode == 2 and bad.stderr.splitlines()[-1] == (
        "ant: error: argument --notify: the webhook URL must be an http:// or https:// URL with "
        "a host"
    )


def test_a_hung_receiver_does_not_hold_up_the_next_tasks(server_factory: type[AntServer]) -> None:
    """Three tasks that each need every GPU run one after the other and all end while the
    receiver has not answered the first POST; then it answers, and every end is told."""
    with webhook_receiver(hang=True) as hook:
        config = {"NOTIFY_webhook_url": hook.url, "NOTIFY_timeout_seconds": 60}
        server = server_factory(config=config).start()
        with server.client() as c:
            for name in ("one", "two", "three"):
                submit(c, "true", n_gpus=4, task_id=name)
            for name in ("one", "two", "three"):
                wait_state(c, name, "succeeded")
            status = notifications(server)
            assert status["sent"] == 0 and status["failed"] == 0 and status["pending"] == 3
            assert hook.received  # the first POSTs are in the receiver's hands, unanswered
            assert hook.hold is not None
            hook.hold.set()
            wait_for(lambda: notifications(server)["sent"] == 3)
        assert [b["task_id"] for b in hook.bodies()][:1] == ["one"]
        assert sorted(b["task_id"] for b in hook.bodies()) == ["one", "three", "two"]


def test_a_stop_does_not_wait_for_a_hung_receiver(server_factory: type[AntServer]) -> None:
    """ANT stops although a POST hangs (its timeout is a minute), saying what it did not send."""
    with webhook_receiver(hang=True) as hook:
        config = {"NOTIFY_webhook_url": hook.url, "NOTIFY_timeout_seconds": 60}
        server = server_factory(config=config).start()
        with server.client() as c:
            submit(c, "true", n_gpus=1, task_id="t")
            wait_state(c, "t", "succeeded")
        wait_for(lambda: hook.received)
        assert server.sigterm(timeout=30) == 0
    assert "ant: 1 notification(s) not sent: ANT stopped" in server.output()


def test_a_dead_receiver_is_retried_then_given_up(server_factory: type[AntServer]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook/secret-token"  # nothing listens there
    config = {"NOTIFY_webhook_url": dead, "NOTIFY_retries": 2, "NOTIFY_backoff_seconds": 0.1}
    server = server_factory(config=config).start()
    with server.client() as c:
        submit(c, "false", n_gpus=1, task_id="f")
        wait_state(c, "f", "failed")
        submit(c, "true", n_gpus=1, task_id="next")  # runs as ever
        wait_state(c, "next", "succeeded")
    wait_for(lambda: notifications(server)["failed"] == 2)
    status = notifications(server)
    assert status["sent"] == 0 and status["pending"] == 0
    assert str(status["last_error"]).endswith(": Connection refused")
    lines = [line for line in server.output().splitlines() if "notification of task 'f'" in line]
    where = dead.rsplit("/hook", 1)[0] + "/…"
    assert lines == [
        f"ant: notification of task 'f' to {where} failed (attempt 1 of 3): Connection refused; "
        "again in 0.1 s",
        f"ant: notification of task 'f' to {where} failed (attempt 2 of 3): Connection refused; "
        "again in 0.2 s",
        f"ant: notification of task 'f' to {where} failed (attempt 3 of 3): Connection refused; "
        "given up",
    ]
    assert "secret-token" not in server.output() and "Traceback" not in server.output()
