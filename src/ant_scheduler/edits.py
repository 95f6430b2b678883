"""Commands that change where a task stands or what it is called, not what it runs: moving a
queued task in the queue (`ant move`) and renaming a task (`ant rename`). Each is one durable step
(scheduler.py): decide from memory, store in one transaction, apply in memory, publish.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ant_scheduler.core.errors import (
    DuplicateTaskId,
    InvalidQuery,
    InvalidTransition,
    RenameFailed,
    TaskNotFound,
)
from ant_scheduler.core.order_keys import GAP
from ant_scheduler.core.task import Dependency, Task, TaskState
from ant_scheduler.core.templates import validate_task_id
from ant_scheduler.executors.base import Handle
from ant_scheduler.scheduler import Scheduler

Where = Literal["top", "bottom"]
RENAMABLE = "queued, held or ended"  # the states rename accepts (all but running), for messages


class Edits(Scheduler):
    # ------------------------------------------------------------------ moving

    async def move(
        self,
        task_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        to: Where | None = None,
    ) -> Task:
        """Move a queued task before or after another queued task, or to the top or bottom.

        The task takes the priority of its new place (its neighbour's; the highest at the top,
        the lowest at the bottom), so the queue as listed is the order tasks start in, under
        either policy. Cheap with any queue length: usually only the moved task's queue_seq
        changes (core/order_keys.py).
        """
        return await self._command(lambda: self._move_step(task_id, before, after, to))

    def _move_step(
        self, task_id: str, before: str | None, after: str | None, to: Where | None
    ) -> Task:
        if sum(x is not None for x in (before, after, to)) != 1:
            raise InvalidQuery("say where to move the task: one of before, after or to")
        for tid in (task_id, before, after):
            if tid is not None:
                self._must_be_queued(tid)
        if task_id in (before, after):
            raise InvalidQuery(f"task {task_id!r} cannot move before or after itself")
        plan = self.queue.plan_move(task_id, before=before, after=after, to=to)
        if not plan:
            return self.queued[task_id]
        changed = []
        for entry in plan:
            task = self.queued[entry.task_id].copy()
            task.priority, task.queue_seq = entry.priority, entry.queue_seq
            changed.append(task)
        self.store.apply(updates=[(t, TaskState.QUEUED) for t in changed], strict=True)
        self.queue.reorder(plan)
        for task in changed:
            self.queued[task.task_id] = task
        # New tasks join the end of their priority, after the tasks moved to the bottom too.
        self._next_seq = max(self._next_seq, max(t.queue_seq for t in changed) + GAP)
        self._publish_tasks("task_changed", changed)
        self._publish_queue()
        self._request_schedule()
        return self.queued[task_id]

    def _must_be_queued(self, task_id: str) -> None:
        if task_id in self.queue:
            return
        if task_id in self.queued:  # set aside: a retry's backoff, or its dependencies
            raise InvalidTransition(
                f"task {task_id!r} is waiting ({self.queued[task_id].reason or 'set aside'}); "
                "it takes its place in the queue once it may start, and can be moved then"
            )
        if task_id in self._submitting:
            raise InvalidTransition(f"task {task_id!r} is still being submitted; try again")
        task = self._in_memory(task_id) or self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        raise InvalidTransition(
            f"task {task_id!r} is {task.state.value}; only queued tasks are moved (or moved "
            "next to)"
        )

    # ------------------------------------------------------------------ renaming

    async def rename(self, task_id: str, new_id: str) -> Task:
        """Give a queued, held or ended task a new id (validated as at submit, and unique).

        Its log and exit files take the new name, references to it (a restart's copy and
        original) follow, and open UIs see the old id go and the new one come (`task_removed`
        with `renamed_to`, then `task_added`). A running task is refused: its processes and
        files carry the id until it ends.
        """
        return await self._command(lambda: self._rename_step(task_id, new_id))

    def _rename_step(self, task_id: str, new_id: str) -> Task:
        validate_task_id(new_id)
        old = self._in_memory(task_id)
        if old is None and task_id not in self._submitting:
            old = self.store.get_task(task_id)
        if old is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        if new_id == task_id:
            raise InvalidQuery(f"task {task_id!r} already has that id")
        if old.state is TaskState.RUNNING:
            raise InvalidTransition(
                f"task {task_id!r} is running; a task can be renamed while it is {RENAMABLE}"
            )
        if task_id in self.lingering:
            raise InvalidTransition(
                f"task {task_id!r} has processes still running; kill them first"
            )
        if task_id in self._submitting:
            raise InvalidTransition(f"task {task_id!r} is still being submitted; try again")
        if new_id in self._submitting or self._in_memory(new_id) or self.store.exists(new_id):
            raise DuplicateTaskId(f"task id {new_id!r} is taken")
        renamed = old.copy()
        renamed.task_id = new_id
        moved = self._rename_files(old, renamed)  # every attempt's files, the current one's too
        try:
            self.store.rename_task(task_id, renamed, old.state)
        except BaseException:
            for _, new_handle in moved:
                self.executor.drop_names(new_handle, new_id)
            raise
        for old_handle, _ in moved:
            self.executor.drop_names(old_handle, task_id)
        # Dependencies: the stored `after`s were rewritten with the row; those in memory follow.
        waiting = self.rename_in_after(task_id, new_id)
        if old.state is TaskState.QUEUED:
            since = self._startable_since.get(task_id)
            self._dequeue(task_id)
            self._enqueue(renamed)
            if since is not None:
                self._startable_since[new_id] = since
        self._follow_references(task_id, new_id)
        self._forget_sent(task_id)
        self.events.publish("task_removed", {"task_id": task_id, "renamed_to": new_id})
        self._publish_tasks("task_added", [renamed])
        if waiting:
            self._publish_tasks("task_changed", waiting)
        if old.state is TaskState.QUEUED:
            self._publish_queue()
        return renamed

    def _rename_files(self, old: Task, renamed: Task) -> list[tuple[Handle, Handle]]:
        """Give the files of `old` (its handle's, and each earlier attempt's) the new id's names
        too, into `renamed`; the (old, new) handles to drop names of once the store has the
        rename. RenameFailed (nothing left behind) if a file cannot take its new name."""
        old_id, new_id = old.task_id, renamed.task_id
        moved: list[tuple[Handle, Handle]] = []

        def rename(handle: Handle) -> Handle:
            for before, after in moved:  # an attempt shares the task's handle once it ended
                if before == handle:
                    return after
            after = self.executor.rename_files(handle, old_id, new_id)
            moved.append((handle, after))
            return after

        try:
            if old.handle:
                renamed.handle = rename(old.handle)
                renamed.log_path = self.executor.describe(renamed.handle)[1] or old.log_path
            attempts = []
            for attempt in old.attempts:
                if attempt.handle:
                    handle = rename(attempt.handle)
                    log = self.executor.describe(handle)[1] or attempt.log_path
                    attempt = dataclasses.replace(attempt, handle=handle, log_path=log)
                attempts.append(attempt)
            renamed.attempts = attempts
        except OSError as exc:
            for _, after in moved:
                self.executor.drop_names(after, new_id)
            raise RenameFailed(
                f"the files of task {old_id!r} cannot take the new name: {exc}"
            ) from None
        return [(before, after) for before, after in moved if before != after]

    def _follow_references(self, old_id: str, new_id: str) -> None:
        """The tasks in memory that name the renamed one (the store's rows were updated with
        it): one pass over the unended tasks, done only on a rename."""
        for tasks in (self.queued, self.running, self.lingering, self._ended):
            for task in tasks.values():
                if task.restarted_as == old_id:
                    task.restarted_as = new_id
                if task.restarted_from == old_id:
                    task.restarted_from = new_id
        for task in self._ended.values():  # the unended ones: rename_in_after
            if any(d.task_id == old_id for d in task.after):
                task.after = [
                    Dependency(new_id, d.condition) if d.task_id == old_id else d
                    for d in task.after
                ]


__all__ = ["Edits"]
