"""Live output of running tasks: the terminal snapshots the UI shows (sent every step_interval
while someone listens) and the copy of task output on ANT's own stdout (LOGGER_log_to_stdout).

It reads output only through the executor (TaskOutput), and only the tail of it: what a task
writes never passes through ANT otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TextIO

from ant_scheduler.core.task import Task
from ant_scheduler.core.terminal import parse_progress, render_terminal
from ant_scheduler.events import EventBus
from ant_scheduler.executors.base import Follower, TaskOutput
from ant_scheduler.settings import Settings

TERMINAL_TAIL_BYTES = 64 * 1024
MIRROR_SECONDS = 0.25


class LiveOutput:
    def __init__(
        self,
        settings: Settings,
        events: EventBus,
        running: Callable[[], Iterable[Task]],
        output: Callable[[Task, int], TaskOutput | None],  # (task, rank)
        out: TextIO,
    ) -> None:
        self.settings = settings
        self.events = events
        self.running = running
        self.output = output
        self.out = out
        self._followers: dict[str, Follower] = {}

    def terminal(self, task: Task, lines: int | None = None, rank: int = 0) -> list[str]:
        """The last lines a terminal would show for the task (carriage returns applied), of one
        rank of a gang (0, the first node, by default: what the live terminals show)."""
        output = self.output(task, rank)
        if output is None:
            return []
        height = lines or self.settings.VISUALIZER_terminal_win_height
        data = output.tail_bytes(TERMINAL_TAIL_BYTES)
        return render_terminal(data.decode("utf-8", errors="replace"), height)

    async def terminal_loop(self) -> None:
        """Every step_interval, send the live terminal of each running task to listeners."""
        while True:
            await asyncio.sleep(self.settings.step_interval)
            tasks = list(self.running())
            if self.events.subscribers == 0 or not tasks:
                continue
            snapshots = {}
            for task in tasks:
                lines = self.terminal(task)
                snapshots[task.task_id] = {"lines": lines, "progress": parse_progress(lines)}
            self.events.publish("terminal", snapshots)

    async def mirror_loop(self) -> None:
        """Copy new task output to ANT's stdout, each line prefixed with its task id."""
        while True:
            await asyncio.sleep(MIRROR_SECONDS)
            running = {task.task_id: task for task in self.running()}
            for task in running.values():
                self.flush(task)
            for task_id in list(self._followers):
                if task_id not in running:
                    del self._followers[task_id]

    def begin(self, task: Task) -> None:
        """Mirror the task's output from what its log holds now on (called as it starts, and
        for a task adopted after a restart: its earlier output was mirrored before)."""
        if not self.settings.LOGGER_log_to_stdout:
            return
        output = self.output(task, 0)
        if output is not None:
            self._followers[task.task_id] = output.follower(None)

    def flush(self, task: Task) -> None:
        """Mirror what the task wrote since the last look (also once more when it ends)."""
        output = self.output(task, 0)
        if not self.settings.LOGGER_log_to_stdout or output is None:
            return
        follower = self._followers.get(task.task_id)
        if follower is None:
            follower = self._followers[task.task_id] = output.follower(0)
        text = follower.read_new_text()
        if text:
            prefix = f"[{task.task_id}] "
            body = "".join(prefix + line for line in text.splitlines(keepends=True))
            self.out.write(body if body.endswith("\n") else body + "\n")
            self.out.flush()
