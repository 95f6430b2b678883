"""What a notification says (core/notification.py, pure): the URL checks, the masked URL, the log's
last lines and both payloads."""

from __future__ import annotations

import json

import pytest

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.notification import (
    TAIL_BYTES,
    check_webhook_url,
    headline,
    json_body,
    log_tail,
    mask_url,
    slack_body,
    wanted,
)
from ant_scheduler.core.task import Task, TaskState


def ended(state: TaskState = TaskState.FAILED, **changes: object) -> Task:
    task = Task(
        task_id="train-3",
        command="python train.py --lr 3e-4",
        submitted="python train.py --lr 3e-4",
        n_gpus=2,
        env={},
        state=state,
        priority=0,
        created_at=1000.0,
        gpu_ids=[0, 1],
        started_at=1010.0,
        finished_at=1010.0 + 3780,
        exit_code=1,
    )
    for key, value in changes.items():
        setattr(task, key, value)
    return task


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T0/B0/XYZ",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:9000/",
        "  https://example.com  ",
    ],
)
def test_good_urls_are_taken(url: str) -> None:
    assert check_webhook_url(url) == url.strip()


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com/hook",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "https://",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "javascript:alert(1)",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_bad_urls_are_refused_without_repeating_them(url: str) -> None:
    with pytest.raises(TaskRejected) as info:
        check_webhook_url(url, "ant_notify")
    assert info.value.message.startswith("ant_notify: the webhook URL ")
    assert "example" not in info.value.message  # it may hold a token: never echoed


def test_a_masked_url_says_where_but_not_the_token() -> None:
    assert mask_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/…"
    assert mask_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert mask_url("https://user:secret@example.com") == "https://example.com/…"
    assert mask_url("https://example.com?token=abc") == "https://example.com/…"
    assert mask_url(None) is None


def test_which_ends_are_told() -> None:
    for state in (TaskState.FAILED, TaskState.KILLED, TaskState.TIMED_OUT, TaskState.LOST):
        assert wanted(state, "failures", per_task=False)
    assert not wanted(TaskState.SUCCEEDED, "failures", per_task=False)
    assert wanted(TaskState.SUCCEEDED, "all", per_task=False)
    assert wanted(TaskState.SUCCEEDED, "failures", per_task=True)  # a task's own URL hears all


def test_the_log_tail_is_bounded_and_shown_as_a_terminal_would() -> None:
    assert log_tail(b"") == []
    lines = "".join(f"line {i}\n" for i in range(100)).encode()
    assert log_tail(lines) == [f"line {i}" for i in range(80, 100)]
    assert log_tail(b"epoch 1\repoch 2\repoch 3\ndone") == ["epoch 3", "done"]
    long = b"x" * 10_000 + b"\nlast\n"
    tail = log_tail(long[-TAIL_BYTES:])
    assert tail == ["last"]  # the piece of a line cut by the byte bound is dropped
    assert sum(len(line) + 1 for line in log_tail(b"y" * 100 + b"\n" * 5000)) <= TAIL_BYTES
    assert log_tail("é\n".encode() * 3 + b"\xff\n") == ["é", "é", "é", "\ufffd"]


def test_the_json_payload() -> None:
    body = json_body(ended(), "gpu-box", ["epoch 9", "Traceback: boom"])
    assert body == {
        "event": "task_ended",
        "server": "gpu-box",
        "task_id": "train-3",
        "state": "failed",
        "exit_code": 1,
        "reason": None,
        "duration_seconds": 3780.0,
        "created_at": 1000.0,
        "started_at": 1010.0,
        "finished_at": 4790.0,
        "command": "python train.py --lr 3e-4",
        "n_gpus": 2,
        "gpu_ids": [0, 1],
        "nodes": [],
        "tags": [],
        "attempt": 1,
        "log_tail": ["epoch 9", "Traceback: boom"],
    }
    json.dumps(body)  # as sent
    never_ran = json_body(
        ended(TaskState.KILLED, started_at=None, exit_code=None, gpu_ids=[]), "h", []
    )
    assert never_ran["duration_seconds"] is None and never_ran["exit_code"] is None
    long = json_body(ended(command="x" * 5000), "h", [])["command"]
    assert len(long) == 1000 and long.endswith("…")


def test_the_slack_payload_is_one_readable_line_and_a_code_block() -> None:
    body = slack_body(ended(reason="ran out of <memory> & died"), "gpu-box", ["a", "```b```"])
    assert list(body) == ["text"]
    first, command, *block = body["text"].split("\n")
    assert first == (
        "ANT on gpu-box: task train-3 failed (exit 1) after 1h3m on GPUs 0,1: "
        "ran out of &lt;memory&gt; &amp; died"
    )
    assert command == "`python train.py --lr 3e-4`"
    assert block == ["```", "a", "'''b'''", "```"]
    quiet = slack_body(ended(TaskState.SUCCEEDED, exit_code=0, gpu_ids=[3]), "h", [])["text"]
    assert quiet.split("\n")[0] == "ANT on h: task train-3 succeeded (exit 0) after 1h3m on GPU 3"
    assert "```" not in quiet
    timed_out = ended(TaskState.TIMED_OUT, started_at=None, gpu_ids=[], exit_code=None)
    assert headline(timed_out, "h") == "ANT on h: task train-3 timed out"
