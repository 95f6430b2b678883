"""What a task-end notification says (pure): the webhook URL's checks and its masked form, the
log's last lines, and the two bodies — ANT's JSON and a Slack-compatible `{"text": ...}`.
notifications.py delivers them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from ant_scheduler.core.durations import format_duration
from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.task import Task, TaskState

MAX_URL_CHARS = 2048
TAIL_LINES = 20  # the log's last lines a notification carries...
TAIL_BYTES = 4096  # ...and at most this many bytes of them
COMMAND_CHARS = 1000  # a longer command is cut (the task page has it whole)
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")

Format = Literal["json", "slack"]


def check_webhook_url(text: str, what: str = "notify") -> str:
    """The URL as given (stripped), if it is an http or https URL with a host. The message never
    repeats the URL: it may hold a token."""
    url = text.strip()
    problem = None
    if not url:
        problem = "is empty"
    elif len(url) > MAX_URL_CHARS:
        problem = f"is longer than {MAX_URL_CHARS} characters"
    elif _UNSAFE.search(url):
        problem = "contains spaces or control characters"
    else:
        try:
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port  # .port raises on a bad port
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            problem = "must be an http:// or https:// URL with a host"
    if problem is not None:
        raise TaskRejected(f"{what}: the webhook URL {problem}")
    return url


def mask_url(url: str | None) -> str | None:
    """`https://hooks.example.com/…`: scheme, host and port only — a path, a query or user info
    may hold a token, and a masked URL still says where notifications go."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "…"
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    hidden = parts.username or parts.password or parts.path.strip("/") or parts.query
    return shown + ("/…" if hidden or parts.fragment else "")


def wanted(state: TaskState, on: str, *, per_task: bool) -> bool:
    """Whether an end is notified: a task's own URL hears every end; the server-wide one every
    end (NOTIFY_on "all") or every end but a success ("failures")."""
    return per_task or on == "all" or state is not TaskState.SUCCEEDED


def log_tail(data: bytes, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The last `lines` lines of the end of a log (at most `max_bytes` of them), as a terminal
    shows them: a progress bar's carriage returns keep the last redraw of its line."""
    data = data[-max_bytes:]
    text = data.decode("utf-8", errors="replace")
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()  # the log's last line ended
    if len(data) == max_bytes and len(rows) > 1:
        rows = rows[1:]  # cut in the middle of a line: drop that piece
    # "\r\n" ends a line; a lone "\r" redraws it (keep what was drawn last).
    shown = [row.rstrip("\r").rsplit("\r", 1)[-1] for row in rows]
    return shown[-lines:] if lines > 0 else []


def duration(task: Task) -> float | None:
    if task.started_at is None or task.finished_at is None:
        return None
    return max(0.0, task.finished_at - task.started_at)


def json_body(task: Task, server: str, tail: Sequence[str]) -> dict[str, Any]:
    """ANT's own payload (docs/workflows.md, Notifications)."""
    return {
        "event": "task_ended",
        "server": server,
        "task_id": task.task_id,
        "state": task.state.value,
        "exit_code": task.exit_code,
        "reason": task.reason,
        "duration_seconds": duration(task),
        "created_at": task.created_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "command": _cut(task.command),
        "n_gpus": task.n_gpus,
        "gpu_ids": list(task.gpu_ids),
        "nodes": list(task.nodes),
        "tags": list(task.tags),
        "attempt": task.attempt,  # the last one's number: retries (1 when it never retried)
        "log_tail": list(tail),
    }


def slack_body(task: Task, server: str, tail: Sequence[str]) -> dict[str, Any]:
    """`{"text": ...}`, which Slack's incoming webhooks and the chat tools that copy them
    (Mattermost, Rocket.Chat, Discord's /slack, Teams workflows) accept: a line that says what
    happened, the command, and the log's last lines in a code block."""
    text = f"{_escape(headline(task, server))}\n`{_escape(_cut(task.command, 300))}`"
    if tail:
        block = "\n".join(tail).replace("```", "'''")
        text += f"\n```\n{_escape(block)}\n```"
    return {"text": text}


def headline(task: Task, server: str) -> str:
    """`ANT on gpu-box: task train-3 failed (exit 1) after 1h3m on GPUs 0,1: reason`."""
    words = [f"ANT on {server}: task {task.task_id} {task.state.value.replace('_', ' ')}"]
    if task.exit_code is not None:
        words.append(f"(exit {task.exit_code})")
    took = duration(task)
    if took is not None:
        words.append(f"after {format_duration(float(round(took))) if took >= 1 else '0s'}")
    if task.gpu_ids:
        words.append("on GPU" + ("s " if len(task.gpu_ids) > 1 else " "))
        words[-1] += ",".join(map(str, task.gpu_ids))
    line = " ".join(words)
    return f"{line}: {task.reason}" if task.reason else line


def body(task: Task, server: str, tail: Sequence[str], fmt: str) -> dict[str, Any]:
    return slack_body(task, server, tail) if fmt == "slack" else json_body(task, server, tail)


def _cut(text: str, limit: int = COMMAND_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack's three control characters, so that a log line cannot become a link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
