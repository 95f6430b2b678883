"""The engine: the one owner of ANT's state. It starts and stops a server session, answers
queries, and carries out users' commands (submit, kill, delete, restart, promote, restore, forget,
GPU toggles; moving and renaming are in edits.py), each as one durable step (see scheduler.py for
how a change is made, the scheduling pass, task ends and recovery). The routes call only this.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ant_scheduler.ant1_import import import_ant1, offer_on_first_start
from ant_scheduler.core.errors import (
    AntError,
    Forbidden,
    InvalidQuery,
    InvalidTransition,
    StoreUnavailable,
    TaskNotFound,
)
from ant_scheduler.core.order_keys import GAP
from ant_scheduler.core.tags import check_tag
from ant_scheduler.core.task import ENDED_STATES, FAILURE_STATES, Dependency, Task, TaskState
from ant_scheduler.core.usage import gpu_hours
from ant_scheduler.core.users import NAME_PATTERN, NAME_RULE, User, check_may_act
from ant_scheduler.edits import Edits
from ant_scheduler.events import EventBus
from ant_scheduler.executors.base import Executor, TaskOutput
from ant_scheduler.gpu_pool import GpuPool
from ant_scheduler.gpu_timeline import MAX_BARS, timeline
from ant_scheduler.live_output import LiveOutput
from ant_scheduler.metrics import state_snapshot
from ant_scheduler.monitor.base import GpuBackend
from ant_scheduler.selfcheck import self_check
from ant_scheduler.settings import Settings
from ant_scheduler.store import Store
from ant_scheduler.submissions import Submissions

MIN_WINDOW = 60.0  # seconds: the shortest window of the charts and the GPU timeline
MAX_TIMELINE_WINDOW = 31 * 86400.0


class Engine(Edits, Submissions):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        executor: Executor,
        gpu_backend: GpuBackend | None,
        *,
        launch_dir: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        out: TextIO | None = None,
    ) -> None:
        events = EventBus()
        gpus = GpuPool(gpu_backend, settings, store, clock)
        live = LiveOutput(
            settings, events, lambda: list(self.running.values()), self.output, out or sys.stdout
        )
        super().__init__(
            settings, store, executor, gpus, live, events, clock, launch_dir or os.getcwd()
        )
        self.gpu_backend = gpu_backend
        self.rng = rng or random.SystemRandom()
        self.log_dir = Path(settings.LOGGER_log_dir).resolve()
        self.started_at = 0.0
        self._background: list[asyncio.Task[None]] = []
        self.metrics.add_state_collector(lambda: state_snapshot(self))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open a new server session, recover what the last run left, start the loops."""
        self.started_at = self.clock()
        self.session_dir_name = datetime.fromtimestamp(self.started_at).strftime("%Y%m%d-%H%M%S")
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.session_id = await self._command(
            lambda: self.store.begin_session(self.started_at, self.session_dir_name)
        )
        self.gpus.load()
        self.load_pause()
        self.users.load()
        self.load_usage()
        self._next_seq = self.store.max_queue_seq() + GAP
        self.executor.set_exit_callback(self._on_exit)
        self.executor.set_gone_callback(self._on_gone)
        self.executor.set_wake_callback(self._on_wake)
        dropped = await self._command(self.store.drop_unfinished_submissions)
        if dropped:
            self._say(f"dropped {dropped} task(s) of a submission that was never acknowledged")
        await self._command(self._recover)
        await self._command(lambda: offer_on_first_start(self))
        self.notifier.start()
        loops = [self.live.terminal_loop(), self.gpus.monitor(self._task_pids, self._sampled)]
        if self.settings.LOGGER_log_to_stdout:
            loops.append(self.live.mirror_loop())
        self._background = [asyncio.create_task(loop) for loop in loops]
        self._request_schedule()

    async def stop(self) -> str:
        """Stop the loops; keep or end running tasks (RUNNER_on_shutdown); say what happened."""
        if self._stopped:
            return ""
        self._stopped = True
        timers = (*self._stray_timers.values(), *self._timeouts.values(), *self._backoffs.values())
        for handle in (self._retry_handle, self._handle_flush, *timers):
            if handle is not None:
                handle.cancel()
        for bg in self._background:
            bg.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        n_running = len(self.running)
        if self.settings.RUNNER_on_shutdown == "terminate" and n_running:
            self._killing.update(self.running)
            await self.executor.terminate_all(self.settings.RUNNER_kill_grace_seconds)
            message = f"terminated {n_running} running task(s)"
        elif n_running:
            message = (
                f"left {n_running} running task(s) running; they will be re-adopted on next start"
            )
        else:
            message = "no task was running"
        for chore in list(self._chores):
            chore.cancel()
        self.executor.close()
        try:
            self._write_pending(all_handles=True)  # the tasks run on: a restart adopts them
            self.gpus.samples.write()  # the charts' last samples
            self.store.end_session(self.session_id, self.clock())
        except StoreUnavailable as exc:  # what is not written is reconciled on the next start
            self._say(f"could not record the last changes: {exc.message}")
        self._syncer.shutdown(wait=True)
        # Ends recorded just now (a terminate) are told too, for a moment at most.
        await self.notifier.stop()
        error: StoreUnavailable | None = None
        try:
            self.store.sync()  # even if the last durable commit above failed
        except StoreUnavailable as exc:
            error = exc
            self._say(f"could not flush the last changes: {exc.message}")
        self._wake_flush_waiters(error)
        self.gpus.close()
        return message

    def _task_pids(self) -> dict[int, str]:
        return {t.pid: t.task_id for t in self.running.values() if t.pid is not None}

    def _sampled(self, availability_changed: bool) -> None:
        self.check_gpu_memory()
        if availability_changed:
            self._request_schedule()
        self._publish_gpus()
        self.events.publish("system", self.gpus.point())
        self._publish_health(always=True)  # with each sample, as the GPUs: nodes come and go

    # ------------------------------------------------------------------ queries

    def get(self, task_id: str) -> Task:
        """A task as it is now: from memory when it is active, else from the store."""
        task = self._in_memory(task_id)
        if task is None and task_id not in self._submitting:
            task = self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return task

    def list_tasks(
        self,
        states: Collection[TaskState] | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        sort: str | None = None,
        descending: bool = True,
        ended_since: float | None = None,
        ended_before: float | None = None,
        tags: Sequence[str] = (),
        owner: str | None = None,
    ) -> tuple[list[Task], int]:
        if owner is not None and not NAME_PATTERN.fullmatch(owner):
            raise InvalidQuery(f"owner: {owner[:40]!r} is not a user name ({NAME_RULE})")
        for tag in tags:
            try:
                check_tag(tag)
            except AntError as exc:  # a filter, not a task: an invalid query
                raise InvalidQuery(exc.message) from None
        tasks, total = self.store.list_tasks(
            states=states,
            q=q,
            limit=limit,
            offset=offset,
            sort=sort,
            descending=descending,
            ended_since=ended_since,
            ended_before=ended_before,
            tags=tags,
            owner=owner,
        )
        # Active tasks are shown as memory has them (a handle not written yet, say).
        return [self._in_memory(t.task_id) or t for t in tasks], total

    # ------------------------------------------------------------------ users and their rights

    def authorize(self, user: User, task_id: str) -> Task:
        """The task, if `user` may act on it (an admin on all, a user on their own); else
        Forbidden (403). TaskNotFound (404) first: a user may see every task."""
        task = self.get(task_id)
        check_may_act(user, task.owner, task_id)
        return task

    def authorize_dependents(self, user: User, task_id: str) -> None:
        """`restart --with-dependents` re-runs or rewires every task waiting for this one,
        transitively: a user may only when all of them are their own."""
        task = self.authorize(user, task_id)
        if user.admin:
            return
        seen: set[str] = set()
        frontier = self._lineage(task)
        while frontier:
            parent = frontier.pop()
            if parent in seen:
                continue
            seen.add(parent)
            for child in self.store.dependents(parent):
                if child.owner != user.name:
                    raise Forbidden(
                        f"task {child.task_id!r} of {child.owner} depends on {task_id!r}; "
                        f"{user.name} may restart it with its dependents only when they are all "
                        "their own"
                    )
                frontier.append(child.task_id)

    def authorize_tag(self, user: User, tag: str) -> None:
        """A user acts on a tag only when every task carrying it is their own."""
        if user.admin:
            return
        check_tag(tag)
        others = sorted(self.store.tag_owners(tag) - {user.name})
        if others:
            raise Forbidden(
                f"tag {tag!r} is also on tasks of {', '.join(others)}; {user.name} may act only "
                "on their own tasks (an admin may act on the tag)"
            )

    async def add_user(
        self, name: str, *, admin: bool, max_gpus: int | None, max_queued: int | None
    ) -> tuple[User, str]:
        return await self._command(
            lambda: self.users.add(name, admin=admin, max_gpus=max_gpus, max_queued=max_queued)
        )

    async def set_user(self, name: str, **changes: Any) -> tuple[User, str | None]:
        result = await self._command(lambda: self.users.set(name, **changes))
        self._request_schedule()  # a new GPU limit may let tasks start (or hold them)
        self._publish_queue()
        return result

    async def remove_user(self, name: str) -> None:
        await self._command(lambda: self.users.remove(name))
        self._request_schedule()

    def usage(self, window: float, by: str) -> dict[str, Any]:
        """wire.UsageOut: GPU-hours by user or tag over the last `window` seconds."""
        if by not in ("user", "tag"):
            raise InvalidQuery(f"by: {by!r} is not one of user, tag")
        if not 60 <= window <= 366 * 86400:
            raise InvalidQuery("window: between 60 seconds and 366 days")
        now = self.clock()
        since = now - window
        runs = self.store.usage_rows(since)
        hours = gpu_hours(runs, since, now, by)
        rows = [
            {"key": key, "gpu_hours": value}
            for key, value in sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        # By tag a task with two tags is in two rows: the total counts it once (as by user).
        total = sum((hours if by == "user" else gpu_hours(runs, since, now, "user")).values())
        return {
            "window": window,
            "by": by,
            "since": since,
            "until": now,
            "rows": rows,
            "total": total,
        }

    def output(self, task: Task, rank: int = 0, attempt: int | None = None) -> TaskOutput | None:
        """The output of one rank of the task (0: its first node), as its executor keeps it
        (None before it started), of its current attempt or of the one asked for (1-based).
        InvalidQuery for a rank or an attempt the task does not have."""
        if not 0 <= rank < task.n_nodes:
            ranks = "rank 0 only" if task.n_nodes == 1 else f"ranks 0 to {task.n_nodes - 1}"
            raise InvalidQuery(f"rank: task {task.task_id!r} has {ranks}, not {rank}")
        handle = task.handle if attempt is None else attempt_handle(task, attempt)
        return self.executor.output(handle, rank) if handle is not None else None

    def terminal(self, task: Task, lines: int | None = None, rank: int = 0) -> list[str]:
        return self.live.terminal(task, lines, rank)

    def recovery(self) -> dict[str, list[Task]]:
        """Held and lost tasks, split into the previous server session (with the tasks lost in
        this one: their node died) and older ones."""
        previous = [s.session_id for s in self.store.sessions() if s.session_id != self.session_id]
        recent = {previous[0] if previous else None, self.session_id}
        result: dict[str, list[Task]] = {"last_session": [], "earlier_sessions": []}
        for task in self.store.load_tasks([TaskState.HELD, TaskState.LOST]):
            key = "last_session" if task.session_id in recent else "earlier_sessions"
            result[key].append(task)
        return result

    def system(self) -> dict[str, Any]:
        return self.gpus.system()

    def system_history(self, seconds: float) -> dict[str, Any]:
        """The charts' samples of the last `seconds` (kept across restarts, downsampled)."""
        keep = self.settings.MONITORING_keep_hours * 3600
        if not MIN_WINDOW <= seconds <= keep:
            raise InvalidQuery(
                f"window: between {MIN_WINDOW:g} and {keep:g} seconds "
                f"(MONITORING_keep_hours), not {seconds:g}"
            )
        return self.gpus.history_window(seconds)

    def gpu_timeline(self, seconds: float) -> dict[str, Any]:
        """Which task held each GPU over the last `seconds` (see gpu_timeline.py)."""
        if not MIN_WINDOW <= seconds <= MAX_TIMELINE_WINDOW:
            raise InvalidQuery(
                f"window: between {MIN_WINDOW:g} and {MAX_TIMELINE_WINDOW:g} seconds, "
                f"not {seconds:g}"
            )
        now = self.clock()
        since = now - seconds
        ended = self.store.gpu_intervals(since, MAX_BARS + 1)
        return timeline(
            ended[:MAX_BARS],
            self.running.values(),
            self.gpus.in_order(),
            since=since,
            now=now,
            truncated=len(ended) > MAX_BARS,
        )

    def summary(self) -> dict[str, Any]:
        """The dashboard's strip: tasks by state now, failures of the last day, busy GPUs."""
        counts = self.store.count_by_state()
        slots = self.gpus.in_order()
        return {
            "running": len(self.running),
            "queued": len(self.queued),
            "held": counts[TaskState.HELD],
            "lost": counts[TaskState.LOST],
            "failed_24h": self.store.count_ended_since(FAILURE_STATES, self.clock() - 86400),
            "gpus_busy": sum(1 for s in slots if s.task_ids),
            "gpus_total": len(slots),
        }

    def doctor(self) -> dict[str, Any]:
        """Compare the store, memory and the live processes (see selfcheck.py)."""
        return self_check(self)

    @property
    def unwritten(self) -> tuple[set[str], set[str]]:
        """(tasks whose end, tasks whose handle, is not durable yet): pending, not disagreements."""
        return set(self._ended), set(self._unsaved_handles)

    def _requeued(self, task: Task, task_id: str | None = None) -> Task:
        """A copy of the task back in the queue (restart: under a new id, a fresh series of
        attempts; restore: the same id, its next attempt, after those it ran)."""
        new = task.copy()
        new.retry_at = None
        if task_id is not None:
            new.attempt, new.attempts = 1, []
        elif task.attempts and task.attempts[-1].attempt == task.attempt:
            new.attempt = task.attempt + 1  # its last attempt ended (lost): this is the next
        new.task_id = task_id or task.task_id
        new.state = TaskState.QUEUED
        new.session_id = self.session_id
        new.queue_seq = self._take_seqs(1)
        new.gpu_ids = []
        new.started_at = new.finished_at = new.exit_code = None
        new.log_path = new.pid = new.handle = new.reason = None
        new.placement = new.gpu_mem_over = None
        return new

    # ------------------------------------------------------------------ commands on one task

    async def kill(self, task_id: str) -> Task:
        """Kill a running task (SIGTERM, then SIGKILL after the grace) or cancel a queued one.

        A task that ended but left processes behind: those are killed.
        """
        action = await self._command(lambda: self._kill_step(task_id))
        if isinstance(action, Task):
            return action
        await self.executor.kill(task_id, self.settings.RUNNER_kill_grace_seconds)
        if action == "running":
            await self._until_ended(task_id)
        return self.get(task_id)

    def _kill_step(self, task_id: str) -> Task | str:
        task = self.get(task_id)
        if task.state is TaskState.QUEUED:
            done = task.copy()
            done.move_to(TaskState.KILLED)
            done.finished_at = self.clock()
            done.reason = "cancelled before it started"
            self.store.apply(updates=[(done, TaskState.QUEUED)], strict=True)
            self._dequeue(task_id)
            self._parent_ends[task_id] = done.state
            self._publish_tasks("task_changed", [done])
            self._publish_queue()
            self._request_schedule()
            self._ended_for_good(done)
            return done
        if task.state is TaskState.RUNNING:
            self._killing.add(task_id)
            self._no_retry.add(task_id)  # a user's kill is final, whatever its retries say
            return "running"
        if task_id in self.lingering:
            return "strays"
        raise InvalidTransition(f"task {task_id!r} is {task.state.value}; nothing to kill")

    async def _until_ended(self, task_id: str) -> None:
        """Until the task's end is recorded (it may wait for a locked database)."""
        if task_id not in self.running:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._end_waiters.setdefault(task_id, []).append(waiter)
        self._request_schedule()
        try:
            await asyncio.wait_for(
                asyncio.shield(waiter), max(1.0, self.settings.STORE_retry_seconds)
            )
        except asyncio.TimeoutError:
            raise StoreUnavailable(
                f"task {task_id!r} was stopped but its end cannot be recorded yet (the database "
                "is unavailable); it will be recorded as soon as it can"
            ) from None

    async def delete(self, task_id: str) -> None:
        await self._command(lambda: self._delete_step(task_id))

    def _delete_step(self, task_id: str) -> None:
        task = self.get(task_id)
        if task.state is TaskState.RUNNING:
            raise InvalidTransition(f"task {task_id!r} is running; kill it first")
        if task_id in self.lingering:
            n = self.executor.lingering(task_id)
            raise InvalidTransition(
                f"task {task_id!r} has {n} process(es) still running; kill it first"
            )
        self.store.apply(deletes=[(task_id, task.state)], strict=True)
        if task_id in self.queued:
            self._dequeue(task_id)
            self._publish_queue()
            self._request_schedule()
        self._parent_deleted(task_id)
        self._forget_sent(task_id)
        self.events.publish("task_removed", {"task_id": task_id, "renamed_to": None})

    async def restart(self, task_id: str, *, with_dependents: bool = False) -> Task:
        """Queue a copy of a finished or running task (a running one is killed).

        A task has at most one live copy: while the copy of its last restart is queued, held or
        running, restarting it again is refused (409, naming the copy). The copy waits for the
        newest run of each task its original waited for (`after`, following their restarts).
        `with_dependents`: the tasks waiting for this one wait for the copy instead, and its
        ended dependents (transitively) are restarted too, waiting for the new runs.
        """
        new, kill_original = await self._command(
            lambda: self._restart_step(task_id, with_dependents)
        )
        if kill_original:
            try:
                await self.kill(task_id)
            except InvalidTransition:
                pass  # it ended on its own meanwhile
        return new

    def _restart_step(self, task_id: str, with_dependents: bool = False) -> tuple[Task, bool]:
        task = self.get(task_id)
        if task.state in (TaskState.QUEUED, TaskState.HELD):
            raise InvalidTransition(f"task {task_id!r} is {task.state.value}; it has not run yet")
        self._check_no_live_copy(task)
        taken: set[str] = set()
        new = self._restart_copy(task, {}, taken)
        original = task.copy()
        original.restarted_as = new.task_id
        copies: list[Task] = [new]
        originals: list[tuple[Task, TaskState]] = [(original, task.state)]
        rewired: list[Task] = []
        if with_dependents:
            copies, originals, rewired = self._with_dependents(task, new, taken, originals)
        self.store.apply(
            inserts=copies,
            updates=originals + [(t, TaskState.QUEUED) for t in rewired],
            strict=True,
        )
        changed = []
        for updated, _ in originals:
            live = self._in_memory(updated.task_id)
            if live is not None:
                live.restarted_as = updated.restarted_as
            changed.append(live or updated)
        for task_now in rewired:  # they wait for the new runs now
            self._dequeue(task_now.task_id)
            self._enqueue(task_now)
        for copy in copies:
            self._enqueue(copy)
        self._publish_tasks("task_added", copies)
        self._publish_tasks("task_changed", changed + rewired)
        self._publish_queue(added=len(copies))
        self._request_schedule()
        return new, task.state is TaskState.RUNNING

    def _check_no_live_copy(self, task: Task) -> None:
        task_id = task.task_id
        if task.restarted_as is not None:
            copy = self._in_memory(task.restarted_as) or self.store.get_task(task.restarted_as)
            alive = (TaskState.QUEUED, TaskState.RUNNING, TaskState.HELD)
            if task.restarted_as in self._submitting or (copy is not None and copy.state in alive):
                state = copy.state.value if copy is not None else "queued"
                raise InvalidTransition(
                    f"task {task_id!r} was already restarted as {task.restarted_as!r} ({state})"
                )

    def _restart_copy(self, task: Task, runs: dict[str, str], taken: set[str]) -> Task:
        """The copy a restart queues: a new id; each dependency on the newest run of its
        parent (`runs`: the copies made in this restart, else by following restarted_as)."""
        new = self._requeued(task, self._free_restart_id(task.task_id, taken))
        taken.add(new.task_id)
        new.created_at = self.clock()
        new.restarted_as = None
        new.restarted_from = task.task_id
        new.after = [
            Dependency(runs.get(d.task_id) or self._newest_run(d.task_id), d.condition)
            for d in task.after
        ]
        return new

    def _newest_run(self, task_id: str) -> str:
        """The last copy in the task's chain of restarts (itself if never restarted)."""
        seen = {task_id}
        current = self._in_memory(task_id) or self.store.get_task(task_id)
        while current is not None and current.restarted_as is not None:
            if current.restarted_as in seen:
                break
            seen.add(current.restarted_as)
            task_id = current.restarted_as
            current = self._in_memory(task_id) or self.store.get_task(task_id)
        return task_id

    def _with_dependents(
        self, task: Task, new: Task, taken: set[str], originals: list[tuple[Task, TaskState]]
    ) -> tuple[list[Task], list[tuple[Task, TaskState]], list[Task]]:
        """`restart --with-dependents`: (the copies to queue, the originals to mark restarted,
        the waiting tasks to point at the new runs), breadth first from `task`."""
        runs = dict.fromkeys(self._lineage(task), new.task_id)
        copies: list[Task] = [new]
        rewired: list[Task] = []
        frontier = list(runs)
        while frontier:
            parent = frontier.pop(0)
            # Queued ones (waiting, or queued after the parent ended) wait for the new run.
            stored = self.store.dependents(parent)
            queued = self.waits.children(parent)
            queued.update(t.task_id for t in stored if t.state is TaskState.QUEUED)
            for child_id in sorted(queued):
                if child_id in self.queued and all(t.task_id != child_id for t in rewired):
                    rewired.append(self.queued[child_id].copy())
            for child in stored:
                if child.task_id in runs or child.restarted_as is not None:
                    continue  # done already, or its newest run is another task
                if child.state not in ENDED_STATES:
                    continue  # queued (pointed at the new run above) or running
                copy = self._restart_copy(child, runs, taken)
                lineage = self._lineage(child)
                runs.update(dict.fromkeys(lineage, copy.task_id))
                original = child.copy()
                original.restarted_as = copy.task_id
                originals.append((original, child.state))
                copies.append(copy)
                frontier += lineage
        # A waiting task named by several restarted parents: every one of them is rewritten.
        for child in rewired:
            child.after = [
                Dependency(runs.get(d.task_id, d.task_id), d.condition) for d in child.after
            ]
        return copies, originals, rewired

    def _lineage(self, task: Task) -> list[str]:
        """The task and the runs it was restarted from (`restarted_from`), newest first: the
        dependents of any of them are the task's dependents."""
        ids = [task.task_id]
        current: Task | None = task
        while current is not None and current.restarted_from is not None:
            if current.restarted_from in ids:
                break
            ids.append(current.restarted_from)
            current = self.store.get_task(current.restarted_from)
        return ids

    def _free_restart_id(self, task_id: str, taken: Collection[str] = ()) -> str:
        return self.store.next_free_restart_id(task_id, skip=self._submitting.union(taken))

    async def promote(self, task_id: str) -> Task:
        """Move a queued task to the front of the queue (top priority, first position)."""
        return await self._command(lambda: self._promote_step(task_id))

    def _promote_step(self, task_id: str) -> Task:
        task = self.get(task_id)
        if task.state is not TaskState.QUEUED:
            raise InvalidTransition(
                f"task {task_id!r} is {task.state.value}; only queued tasks move"
            )
        if task_id in self.aside:  # a paused tag's: first once the tag resumes
            moved = task.copy()
            if len(self.queue):
                moved.priority = max(moved.priority, self.queue.max_priority())
                moved.queue_seq = min(moved.queue_seq, self.queue.min_seq() - GAP)
            self.store.apply(updates=[(moved, TaskState.QUEUED)], strict=True)
            self._dequeue(task_id)
            self._enqueue(moved)
            self._publish_tasks("task_changed", [moved])
            return moved
        return self._move_step(task_id, None, None, "top")

    async def restore(self, task_ids: Iterable[str]) -> list[Task]:
        """Put held or lost tasks back in the queue under the same id."""
        ids = list(dict.fromkeys(task_ids))
        return await self._command(lambda: self._restore_step(ids))

    def _restore_step(self, ids: list[str]) -> list[Task]:
        tasks = [self.get(i) for i in ids]
        for task in tasks:
            if task.state not in (TaskState.HELD, TaskState.LOST):
                raise InvalidTransition(
                    f"task {task.task_id!r} is {task.state.value}, not held/lost"
                )
        # Back in the order they had (ant move's too), after the tasks queued meanwhile.
        tasks.sort(key=Task.queue_order_key)
        restored = [self._requeued(task) for task in tasks]
        self.store.apply(
            updates=[(new, old.state) for new, old in zip(restored, tasks, strict=True)],
            strict=True,
        )
        for task in restored:
            self._enqueue(task)
        self._publish_tasks("task_changed", restored)
        self._publish_queue()
        self._request_schedule()
        return restored

    async def import_ant1(self, text: str, base_dirs: list[str]) -> dict[str, Any]:
        """Bring an ANT 1.1 recovery file's tasks in (ant1_import.py; wire.ImportOut)."""
        return await import_ant1(self, text, base_dirs)

    async def forget(self, task_id: str) -> None:
        """Delete a held or lost task from recovery history (its log file stays)."""
        await self._command(lambda: self._forget_step(task_id))

    def _forget_step(self, task_id: str) -> None:
        task = self.get(task_id)
        if task.state not in (TaskState.HELD, TaskState.LOST):
            raise InvalidTransition(f"task {task_id!r} is {task.state.value}, not held/lost")
        if task_id in self.lingering:
            raise InvalidTransition(f"task {task_id!r} has processes still running; kill it first")
        self.store.apply(deletes=[(task_id, task.state)], strict=True)
        self._parent_deleted(task_id)
        self._forget_sent(task_id)
        self.events.publish("task_removed", {"task_id": task_id, "renamed_to": None})

    def _parent_deleted(self, task_id: str) -> None:
        """Its outcome will never be known: the tasks still waiting for it end
        dependency_failed (with the next settlement, right after this step)."""
        if self.waits.children(task_id):
            self._parent_ends[task_id] = None
            self._request_schedule()

    async def set_gpu_enabled(self, index: int | str, enabled: bool) -> dict[str, Any]:
        """Toggle a GPU, by index or label (`node-b:1`), kept across restarts; running tasks
        keep it until they end."""

        def step() -> dict[str, Any]:
            slot = self.gpus.set_enabled(index, enabled)
            self._publish_gpus()
            self._request_schedule()
            return next(g for g in self.gpu_dicts() if g["index"] == slot.index)

        return await self._command(step)

    async def pause(self) -> dict[str, Any]:
        """Start no queued task until resume() (running ones go on); kept across restarts."""
        return await self._command(lambda: self.set_paused(True))

    async def resume(self) -> dict[str, Any]:
        return await self._command(lambda: self.set_paused(False))

    async def pause_tag(self, tag: str, paused: bool) -> dict[str, Any]:
        """Queued tasks carrying `tag` start no more (running ones go on), or again."""
        return await self._command(lambda: self.set_tag_paused(tag, paused))

    # ------------------------------------------------------------------ commands on a tag

    def tags(self, limit: int = 1000) -> list[dict[str, Any]]:
        """wire.TagOut: every tag in use (at most `limit`), with how many tasks carry it."""
        return [
            {"tag": tag, "tasks": n, "paused_at": self.paused_tags.get(tag)}
            for tag, n in self.store.tag_counts(limit)
        ]

    def _tagged(self, tag: str, states: Collection[TaskState] = ()) -> dict[str, TaskState]:
        check_tag(tag)
        found = self.store.tagged_ids(tag, states)
        for task_id in self._submitting & found.keys():  # not a task yet: a submission's rows
            del found[task_id]
        return found

    def _bulk(
        self, tag: str, action: str, done: list[str], tagged: int, **more: Any
    ) -> dict[str, Any]:
        """wire.BulkOut: what an action on a tag did, to how many of the `tagged` tasks."""
        return {
            "tag": tag,
            "action": action,
            "count": len(done),
            "task_ids": done,
            "skipped": max(0, tagged - len(done)),
            **more,
        }

    async def kill_tag(self, tag: str) -> dict[str, Any]:
        """Cancel the tag's queued tasks and kill its running ones (as `kill` does each)."""
        cancelled, running, tagged = await self._command(lambda: self._kill_tag_step(tag))
        grace = self.settings.RUNNER_kill_grace_seconds
        await asyncio.gather(*(self.executor.kill(i, grace) for i in running))
        await asyncio.gather(*(self._until_ended(i) for i in running))
        return self._bulk(tag, "kill", cancelled + running, tagged)

    def _kill_tag_step(self, tag: str) -> tuple[list[str], list[str], int]:
        tagged = len(self._tagged(tag))
        found = self._tagged(tag, [TaskState.QUEUED, TaskState.RUNNING])
        now = self.clock()
        done = []
        for task_id in found:
            task = self.queued.get(task_id)
            if task is not None:
                copy = task.copy()
                copy.move_to(TaskState.KILLED)
                copy.finished_at = now
                copy.reason = "cancelled before it started"
                done.append(copy)
        if done:
            missed = self.store.apply(updates=[(t, TaskState.QUEUED) for t in done])
            done = [t for t in done if t.task_id not in missed]
        for task in done:
            self._dequeue(task.task_id)
        running = [i for i in found if i in self.running]
        self._killing.update(running)
        if done:
            self._publish_tasks("task_changed", done)
            self._publish_queue()
            self._request_schedule()
        return [t.task_id for t in done], running, tagged

    async def delete_tag(self, tag: str) -> dict[str, Any]:
        """Delete the tag's tasks that are not running (queued, held, ended; log files stay).
        Running ones, and ended ones whose processes still run, are left (`skipped`)."""
        return await self._command(lambda: self._delete_tag_step(tag))

    def _delete_tag_step(self, tag: str) -> dict[str, Any]:
        found = self._tagged(tag)
        deletes = [
            (task_id, state)
            for task_id, state in found.items()
            if state is not TaskState.RUNNING and task_id not in self.lingering
        ]
        missed = self.store.apply(deletes=deletes) if deletes else set()
        done = [task_id for task_id, _ in deletes if task_id not in missed]
        dequeued = False
        for task_id in done:
            if task_id in self.queued:
                self._dequeue(task_id)
                dequeued = True
            self._forget_sent(task_id)
            self.events.publish("task_removed", {"task_id": task_id, "renamed_to": None})
        if dequeued:
            self._publish_queue()
            self._request_schedule()
        return self._bulk(tag, "delete", done, len(found))

    async def restart_tag(self, tag: str) -> dict[str, Any]:
        """Queue a copy of each of the tag's ended tasks that has none yet (a task restarted
        before is represented by its copy, so restarting a tag twice does not double it)."""
        return await self._command(lambda: self._restart_tag_step(tag))

    def _restart_tag_step(self, tag: str) -> dict[str, Any]:
        tagged = len(self._tagged(tag))
        ended = [s for s in TaskState if s in ENDED_STATES]
        found = self._tagged(tag, ended)
        originals = self.store.tagged(tag, ended) if found else []
        copies_alive = self.store.existing_ids(
            [t.restarted_as for t in originals if t.restarted_as is not None]
        )
        now, taken = self.clock(), set(self._submitting)
        pairs = []
        for task in originals:
            if task.task_id not in found or task.restarted_as in copies_alive:
                continue
            new = self._requeued(task, self.store.next_free_restart_id(task.task_id, taken))
            taken.add(new.task_id)
            new.created_at = now
            new.restarted_as = None
            new.restarted_from = task.task_id
            original = task.copy()
            original.restarted_as = new.task_id
            pairs.append((original, new))
        if pairs:
            self.store.apply(
                inserts=[new for _, new in pairs],
                updates=[(original, original.state) for original, _ in pairs],
                strict=True,
            )
        new_tasks = [new for _, new in pairs]
        for new in new_tasks:
            self._enqueue(new)
        self._publish_tasks("task_added", new_tasks)
        self._publish_tasks("task_changed", [original for original, _ in pairs])
        if pairs:
            self._publish_queue(added=len(pairs))
            self._request_schedule()
        return self._bulk(
            tag,
            "restart",
            [original.task_id for original, _ in pairs],
            tagged,
            queued_as=[new.task_id for new in new_tasks],
        )

    async def restore_tag(self, tag: str) -> dict[str, Any]:
        """Put the tag's held and lost tasks back in the queue (as `restore`)."""

        def step() -> dict[str, Any]:
            tagged = len(self._tagged(tag))
            found = self._tagged(tag, [TaskState.HELD, TaskState.LOST])
            restored = self._restore_step(list(found)) if found else []
            return self._bulk(tag, "restore", [t.task_id for t in restored], tagged)

        return await self._command(step)


def attempt_handle(task: Task, attempt: int) -> dict[str, Any] | None:
    """The executor's handle of one attempt of the task: one that ended, or the current one."""
    for ended in task.attempts:
        if ended.attempt == attempt:
            return ended.handle
    if attempt == task.attempt:
        return task.handle
    raise InvalidQuery(
        f"attempt: task {task.task_id!r} has attempts 1 to {task.attempt}, not {attempt}"
    )


__all__ = ["Engine"]
