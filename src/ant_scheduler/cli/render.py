"""Rich tables for the CLI. Colour only on a terminal and never when NO_COLOR is set."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

STATE_STYLE = {
    "queued": "yellow",
    "held": "magenta",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "killed": "red",
    "lost": "magenta",
}


def console() -> Console:
    plain = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return Console(
        no_color=plain, highlight=False, soft_wrap=False, width=None if not plain else 200
    )


def age(since: float | None, now: float) -> str:
    if since is None:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _info(task: Any) -> str:
    if task.state == "queued":
        position = f"#{task.queue_position} " if task.queue_position else ""
        return position + (task.pending_reason or "")
    if task.exit_code is not None:
        return f"exit {task.exit_code}"
    return task.reason or ""


def _time(task: Any, now: float) -> str:
    if task.state == "running":
        return age(task.started_at, now)
    if task.started_at is not None and task.finished_at is not None:
        return age(task.started_at, task.finished_at)
    return age(task.created_at, now)


def task_table(tasks: Sequence[Any], now: float) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "STATE", "GPUS", "TIME", "INFO", "COMMAND"):
        table.add_column(column, overflow="fold" if column == "COMMAND" else "ellipsis")
    for task in tasks:
        gpus = ",".join(map(str, task.gpu_ids)) if task.gpu_ids else f"({task.n_gpus})"
        command = task.submitted if len(task.submitted) <= 60 else task.submitted[:57] + "..."
        table.add_row(
            task.task_id,
            f"[{STATE_STYLE.get(task.state, '')}]{task.state}[/]",
            gpus,
            _time(task, now),
            _info(task),
            command.replace("\n", " "),
        )
    return table


def task_detail(task: Any, now: float) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("id", task.task_id),
        ("state", f"[{STATE_STYLE.get(task.state, '')}]{task.state}[/]"),
        ("command", task.command),
        ("submitted", task.submitted),
        ("gpus", f"{task.n_gpus} requested; assigned {task.gpu_ids or '-'}"),
        ("env", " ".join(f"{k}={v}" for k, v in task.env.items()) or "-"),
        ("priority", str(task.priority)),
        ("queue", _info(task) if task.state == "queued" else "-"),
        ("created", age(task.created_at, now) + " ago"),
        ("ran for", _time(task, now) if task.started_at else "-"),
        ("exit code", "-" if task.exit_code is None else str(task.exit_code)),
        ("reason", task.reason or "-"),
        ("log", task.log_path or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def gpu_table(gpus: Sequence[Any]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GPU", "NAME", "STATE", "TASKS", "UTIL", "MEMORY"):
        table.add_column(column)
    for gpu in gpus:
        state = gpu.state if not gpu.external else f"{gpu.state} ({gpu.external})"
        table.add_row(
            str(gpu.index),
            gpu.name,
            state,
            ",".join(gpu.task_ids) or "-",
            f"{gpu.util * 100:.0f}%",
            f"{gpu.mem_used / 2**30:.1f}/{gpu.mem_total / 2**30:.1f} GiB",
        )
    return table
