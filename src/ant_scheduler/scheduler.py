"""The heart of the engine: the tasks in memory, how a change is made durable, the scheduling pass,
what happens when a task ends, and recovery after a restart. engine.py adds the commands.

How a change happens, in this order, so that memory and the store never disagree:
decide (from memory, pure policy) -> persist (one transaction, compare-and-set) -> apply in
memory -> publish the event -> act on the world (spawn, kill, free GPUs).

Each command runs as one *step*: a plain function with no await inside, so steps are atomic with
respect to each other (one event loop) and concurrent commands on one task behave as if
serialised. A step that finds the database locked has changed nothing and runs again a little
later; after STORE_retry_seconds, or on any other store failure, the command fails with 503
`store_unavailable` and memory is as it was. Changes ANT makes on its own (a task ended, a task
starts) are retried until they are recorded: a task's GPUs are freed only once its end is
recorded (and its last process is gone), and a task is recorded as running, with its GPUs,
before its process is spawned. Those records (starts, ends, handles) are committed without an
fsync, which survives any crash of ANT itself, and flushed to disk by a thread right after
(`_sync_soon`): a fsync per start would cap the drain at the disk's pace (P10). Everything a
user asks for (a submit, a kill, a delete) is fsync'd before the answer.

Nodes: the policy places each task on nodes (one per rank) and GPUs, and the executor gets that
placement in its LaunchRequest. While the executor says it cannot start tasks (`availability()`,
e.g. a cluster that is unreachable) no pass starts anything and queued tasks give its words as
their reason; when it wakes the scheduler (availability or nodes changed) the GPU pool re-reads
its GPUs and nodes, a pass runs, and a `health` event says what changed. A task whose node died
is reported lost by the executor: it ends `lost` (restorable) and its GPUs are freed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Collection, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ant_scheduler import __version__, gpu_memory
from ant_scheduler.core import policy, retries
from ant_scheduler.core.dependencies import Waits, describe_wait, initial_wait, never_reason
from ant_scheduler.core.durations import format_duration
from ant_scheduler.core.errors import AntError, StoreBusy, StoreUnavailable
from ant_scheduler.core.parsing import process_env
from ant_scheduler.core.queue import QueueBatch, TaskQueue
from ant_scheduler.core.tags import check_tag
from ant_scheduler.core.task import ENDED_STATES, Dependency, Task, TaskState
from ant_scheduler.core.usage import DecayedUsage
from ant_scheduler.events import EventBus
from ant_scheduler.executors.base import (
    Ended,
    Executor,
    ExitInfo,
    Handle,
    LaunchRequest,
    LeftBehind,
    RankPlacement,
    Running,
    TaskOutput,
)
from ant_scheduler.gpu_pool import GpuPool
from ant_scheduler.live_output import LiveOutput
from ant_scheduler.metrics import Metrics, queued_since
from ant_scheduler.monitor.fake import simulated_use
from ant_scheduler.notifications import Notifier
from ant_scheduler.settings import Settings
from ant_scheduler.store import Store
from ant_scheduler.users import UserBook
from ant_scheduler.views import gpu_json, task_json

T = TypeVar("T")
RETRY_FIRST_DELAY = 0.02
PAUSED_KEY = "queue_paused_at"  # meta: when `ant pause` was asked for ("" or none: not paused)
PAUSED_REASON = "the queue is paused: nothing new starts until `ant resume`"
PAUSED_TAGS_KEY = "paused_tags"  # meta: JSON {tag: when `ant pause --tag` was asked for}
RETRY_MAX_DELAY = 0.5
HANDLE_FLUSH_DELAY = 0.2  # a started task's handle is written with the next batch, or then


def tag_paused_reason(tag: str) -> str:
    return f"tag {tag} is paused: it starts after `ant resume --tag {tag}`"


def queued_entry(task: Task) -> policy.QueuedTask:
    return policy.QueuedTask(
        task.task_id,
        task.n_gpus,
        task.priority,
        task.queue_seq,
        task.n_nodes,
        task.gpu_mem or 0,
        task.owner,
    )


class Scheduler:
    """Tasks in memory, each in exactly one place: queued (with its order in `queue`), running,
    or lingering (ended, but processes it left behind still hold its GPUs)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        executor: Executor,
        gpus: GpuPool,
        live: LiveOutput,
        events: EventBus,
        clock: Callable[[], float],
        launch_dir: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.executor = executor
        self.gpus = gpus
        self.live = live
        self.events = events
        self.clock = clock
        self.launch_dir = launch_dir
        self.metrics = Metrics()
        self.notifier = Notifier(settings, output=self._output_for_notice, say=self._say)
        self.users = UserBook(store, clock)  # named users (users.py); loaded at start
        # Fair share's decayed GPU-hours of ended runs per owner (core/usage.py): loaded at start
        # when RUNNER_policy is fairshare, then added to as runs end.
        self.fair_usage = DecayedUsage(settings.RUNNER_fairshare_half_life_hours * 3600)
        self.queued: dict[str, Task] = {}
        self.queue = TaskQueue()
        self.running: dict[str, Task] = {}
        self.lingering: dict[str, Task] = {}
        # Queued tasks whose dependencies are unmet: in `queued`, not in `queue` (see
        # core/dependencies.py); released by their parents' ends, noted in _parent_ends.
        self.waits = Waits()
        self._parent_ends: dict[str, TaskState | None] = {}  # ended (None: deleted), unsettled
        self.session_id = 0
        self.session_dir_name = ""
        self.recovery_summary: dict[str, int] = {}
        self._plan: policy.Plan | None = None  # the last scheduling decision (reasons come from it)
        self._held_off: str | None = None  # why nothing could start at the last pass
        self.paused_at: float | None = None  # `ant pause`: nothing new starts (load_pause)
        self.paused_tags: dict[str, float] = {}  # `ant pause --tag T`: since when (load_pause)
        # Queued tasks carrying a paused tag: in `queued` but not in `queue`, so no pass reads
        # them (a paused sweep of 100,000 tasks costs the passes nothing); back on resume.
        self.aside: dict[str, policy.QueuedTask] = {}  # with their entries, for the way back
        self._last_health: dict[str, Any] | None = None  # as last published
        self._last_gpus: list[dict[str, Any]] | None = None  # as last published
        # The changing fields (TASK_CHANGING) of each unended task as its last event carried them:
        # a `task_changed` sends only what differs (P10, < 1 KB of events per task).
        self._sent: dict[str, tuple[Any, ...]] = {}
        self._submitting: set[str] = set()  # ids of large submissions still being written
        self._killing: set[str] = set()
        self._ended: dict[str, Task] = {}  # ends reported, not durable yet (next pass writes them)
        self._unsaved_handles: dict[str, Task] = {}  # running; handle not written yet (_launch)
        self._end_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._stray_timers: dict[str, asyncio.TimerHandle] = {}
        self._timeouts: dict[str, asyncio.TimerHandle] = {}  # running tasks with a timeout
        self._timing_out: set[str] = set()  # killed for their timeout: they end timed_out
        self._over_memory: set[str] = set()  # killed for using more GPU memory than declared
        self._no_retry: set[str] = set()  # killed by the user: that end is final (never retried)
        self._backoffs: dict[str, asyncio.TimerHandle] = {}  # queued, waiting out a retry backoff
        self._startable_since: dict[str, float] = {}
        self._next_seq = 1
        self._schedule_pending = False
        self._retry_delay = RETRY_FIRST_DELAY
        self._retry_handle: asyncio.TimerHandle | None = None
        self._handle_flush: asyncio.TimerHandle | None = None
        self._last_store_error = ""
        self._chores: set[asyncio.Task[Any]] = set()
        self._stopped = False
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="ant-store-sync")
        self._syncing = False
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []  # (commit count, ...)

    def _in_memory(self, task_id: str) -> Task | None:
        return self.running.get(task_id) or self.queued.get(task_id) or self.lingering.get(task_id)

    # ------------------------------------------------------------------ making changes durable

    async def _command(self, step: Callable[[], T]) -> T:
        """Run a step (decide, persist, apply, publish; no await inside) until the store takes it.

        Pending task ends are recorded first, so every step sees the world as it is: a task that
        ended before a command arrived has ended for that command (e.g. it can be deleted).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.STORE_retry_seconds
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                self._write_pending()
                return step()
            except StoreBusy as exc:
                if loop.time() >= deadline:
                    raise StoreUnavailable(
                        f"{exc.message} for more than {self.settings.STORE_retry_seconds:g} s; "
                        "nothing was changed, try again later"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)

    def _write_pending(self, *, all_handles: bool = False) -> None:
        """Record task ends not durable yet, then apply and publish them; with them the handles
        of tasks started HANDLE_FLUSH_DELAY ago or more (all of them if `all_handles`)."""
        self._record(self._pending(all_handles))
        self._settle_dependencies()

    def _record(self, pending: Pending) -> None:
        """Write what _pending gave on its own (a pass with starts writes it with them)."""
        if pending[0] or pending[1]:
            missed = self.store.apply(updates=_updates(pending), durable=False)
            self._sync_soon()
            self._pending_written(pending, missed)

    def _pending(self, all_handles: bool) -> Pending:
        """What to write: the ends (each with the processes it left, asked once, so that what a
        pass plans with is what _finish does) and the handles that are due."""
        ended = [(t, self.executor.lingering(t.task_id)) for t in self._ended.values()]
        return ended, self._due_handles(all_handles)

    def _pending_written(self, pending: Pending, missed: set[str]) -> None:
        """Apply and publish what _pending gave, now durable (but for the `missed` ids)."""
        ended, handles = pending
        for task in handles:
            del self._unsaved_handles[task.task_id]
        for task, _ in ended:
            self._unsaved_handles.pop(task.task_id, None)  # written with the end
            del self._ended[task.task_id]
        for task, lingering in ended:
            self._finish(task, recorded=task.task_id not in missed, lingering=lingering)
        if ended:
            self._publish_tasks("task_changed", [t for t, _ in ended])
            self._publish_gpus()
            self._request_schedule()

    def _due_handles(self, all_handles: bool) -> list[Task]:
        """Running tasks whose handle (pid) is to be written now. A short task's handle is
        written with its end only: until then a restart finds it by its marker instead (the
        record says "starting"), which saves a write and a /proc read per task (P10)."""
        if not self._unsaved_handles:
            return []
        due_at = self.clock() - HANDLE_FLUSH_DELAY
        handles = []
        later = False
        for task in self._unsaved_handles.values():
            if task.task_id in self._ended:
                continue
            if all_handles or task.started_at is None or task.started_at <= due_at:
                if task.handle is not None:
                    task.handle = self.executor.settle(task.handle)
                handles.append(task)
            else:
                later = True
        if later and self._handle_flush is None and not self._stopped:
            loop = asyncio.get_running_loop()
            self._handle_flush = loop.call_later(HANDLE_FLUSH_DELAY, self._flush_handles)
        return handles

    def _sync_soon(self) -> None:
        """Flush commits made without an fsync to disk, in a thread, right after this step (not
        in the middle of it: waking the thread costs the loop ~0.1 ms, better spent after the
        spawns). One flush at a time, the next one covering every commit made meanwhile. A
        power cut can cost only what was committed since the last flush began
        (docs/performance.md)."""
        if self._syncing or self._stopped or not self.store.unsynced:
            return
        self._syncing = True
        asyncio.get_running_loop().call_soon(self._start_sync)

    def _start_sync(self) -> None:
        if self._stopped:  # stop() flushes what is left itself
            self._syncing = False
            return
        flush = asyncio.get_running_loop().run_in_executor(self._syncer, self.store.sync)
        flush.add_done_callback(self._synced)

    def _synced(self, flush: asyncio.Future[None]) -> None:
        """A flush ended: wake who waited for it, and flush again what was committed since."""
        self._syncing = False
        error = flush.exception() if not flush.cancelled() else None
        self._wake_flush_waiters(error)
        if error is None:
            self._sync_soon()
        elif not self._stopped:  # a failing disk: say so once, try again a little later
            if isinstance(error, AntError) and error.message != self._last_store_error:
                self._say(f"{error.message}; retrying")
                self._last_store_error = error.message
            asyncio.get_running_loop().call_later(RETRY_MAX_DELAY, self._sync_soon)

    def _wake_flush_waiters(self, error: BaseException | None) -> None:
        waiting = []
        for seq, waiter in self._flush_waiters:
            if waiter.done():
                continue
            if seq <= self.store.flushed:
                waiter.set_result(None)
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiting.append((seq, waiter))
        self._flush_waiters = waiting

    async def _flushed(self) -> None:
        """Until every commit made so far is on disk (StoreUnavailable if the disk refuses)."""
        seq = self.store.committed
        if self.store.flushed >= seq:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((seq, waiter))
        self._sync_soon()
        await waiter

    def _finish(self, task: Task, *, recorded: bool, lingering: int) -> None:
        """Apply a durable end of a run: the task leaves `running`; its GPUs are freed unless
        processes it left behind still run (`lingering`). A retried task (recorded as queued
        again, core/retries.py) goes back to the queue after its backoff; any other task has
        ended for good (_ended_for_good)."""
        ran = self.running.pop(task.task_id, None)
        self._killing.discard(task.task_id)
        self._timing_out.discard(task.task_id)
        self._over_memory.discard(task.task_id)
        self._no_retry.discard(task.task_id)
        timer = self._timeouts.pop(task.task_id, None)
        if timer is not None:
            timer.cancel()
        if not recorded:  # the row was no longer running (changed outside ANT): nothing to add
            self._say(f"the end of task {task.task_id!r} was not recorded: it changed meanwhile")
        retry = task.state is TaskState.QUEUED
        run = _last_run(task) if retry else task  # the attempt that ended
        if run.started_at is not None and run.finished_at is not None:
            self.metrics.task_duration.labels(run.state.value).observe(
                max(0.0, run.finished_at - run.started_at)
            )
        self.live.flush(run)
        if recorded:
            self._count_usage(run)
        if recorded and not retry:
            self._parent_ends[task.task_id] = task.state  # its dependents may go on
        holder = task  # what holds the GPUs: a retried task's are its last run's
        if retry and ran is not None:
            holder = task.copy()
            holder.gpu_ids, holder.nodes = list(ran.gpu_ids), list(ran.nodes)
        if recorded and lingering > 0:
            self._hold(holder)
        else:
            self._release(holder)
        for waiter in self._end_waiters.pop(task.task_id, []):
            if not waiter.done():
                waiter.set_result(None)
        if retry and recorded:
            self._say(f"task {task.task_id!r}: {task.reason}")
            self._enqueue(task)
            self._publish_queue()
        elif not retry:
            self._ended_for_good(task)

    def load_usage(self) -> None:
        """Fair share's usage from the store: the runs of the last 30 half-lives (older ones
        weigh less than 1e-9 of their GPU-hours)."""
        if self.settings.RUNNER_policy != "fairshare":
            return
        now = self.clock()
        since = now - 30 * self.fair_usage.half_life
        rows = [r for r in self.store.usage_rows(since) if not r.running]
        self.fair_usage = DecayedUsage.from_rows(rows, now, self.fair_usage.half_life)

    def _count_usage(self, run: Task) -> None:
        """A run that held GPUs ended: its GPU-hours join its owner's fair-share usage."""
        if self.settings.RUNNER_policy != "fairshare" or run.n_gpus == 0:
            return
        if run.started_at is None or run.finished_at is None:
            return
        gpus = run.n_gpus * run.n_nodes
        self.fair_usage.add(run.owner, gpus, run.started_at, run.finished_at, self.clock())

    def owner_load(self, ended: Collection[str] = ()) -> tuple[dict[str, int], dict[str, float]]:
        """GPUs each owner's running tasks hold now (those of `ended` left out), and (fair
        share) each owner's decayed GPU-hours, running tasks counted up to now."""
        held: dict[str, int] = {}
        running: dict[str, list[tuple[int, float]]] = {}
        for task in self.running.values():
            if task.n_gpus and task.task_id not in ended:
                gpus = task.n_gpus * task.n_nodes
                held[task.owner] = held.get(task.owner, 0) + gpus
                if task.started_at is not None:
                    running.setdefault(task.owner, []).append((gpus, task.started_at))
        usage: dict[str, float] = {}
        if self.settings.RUNNER_policy == "fairshare":
            now = self.clock()
            for owner in {*self.queue.owners(), *running, *self.fair_usage.owners()}:
                usage[owner] = self.fair_usage.value(owner, now, running.get(owner, ()))
        return held, usage

    def _ended_for_good(self, task: Task) -> None:
        """The one place where a task's end is final, once it is recorded and applied: a run's
        end (_finish) that is not retried, a queued task cancelled (engine's _kill_step) or one
        the executor refused to start, an end found at recovery. Nothing more happens to the task
        unless someone acts. What should follow a task's end (a notification, dependents) hangs
        here; retried attempts never come here."""
        self.metrics.tasks_ended.labels(task.state.value).inc()
        self._announce_end([task])

    def _attempt_ended(self, done: Task, lingering: int) -> Task:
        """What an attempt's end becomes: the task queued again for a retry (RUNNING -> QUEUED,
        no end recorded) when its rules say so, else its end, with the attempt kept in
        `attempts`. `done` is the task moved to the state the attempt ended in."""
        if done.task_id not in self._no_retry and retries.wants_retry(done, lingering):
            return retries.retried(done, self.clock())
        retries.record_end(done)
        return done

    # ------------------------------------------------------------------ the queue

    def _enqueue(self, task: Task) -> None:
        """Queue a task: in start order, or aside — until its retry backoff is over (a timer of
        its own), its dependencies are met (waits) or its paused tag resumes (aside): no pass
        looks at tasks that cannot start yet."""
        self.queued[task.task_id] = task
        wait = 0.0 if task.retry_at is None else task.retry_at - self.clock()
        if wait > 0 and not self._stopped:
            loop = asyncio.get_running_loop()
            self._backoffs[task.task_id] = loop.call_later(wait, self._backoff_over, task.task_id)
            return
        self._startable_since.setdefault(task.task_id, self.clock())
        if task.after:
            unmet, never = initial_wait(task.after, self.state_of)
            if unmet:
                self.waits.wait(task.task_id, unmet)
                for dep, state in never:  # ended already: the next settlement fails it
                    self._parent_ends[dep.task_id] = state
                return
        self._place_ready(task)

    def _backoff_over(self, task_id: str) -> None:
        if self._backoffs.pop(task_id, None) is None or self._stopped:
            return
        task = self.queued[task_id]
        self._place_ready(task)
        self._startable_since.setdefault(task_id, self.clock())
        self._publish_queue()
        self._request_schedule()  # the pass publishes its new reason (or starts it)

    def _dequeue(self, task_id: str) -> Task:
        task = self.queued.pop(task_id)
        timer = self._backoffs.pop(task_id, None)
        if timer is not None:
            timer.cancel()
        elif task_id in self.queue:
            self.queue.remove(task_id)
        elif self.aside.pop(task_id, None) is None:
            self.waits.drop(task_id)
        self._startable_since.pop(task_id, None)
        return task

    def state_of(self, task_id: str) -> TaskState | None:
        """A task's state now (None: no such task), from memory when it is active."""
        task = self._in_memory(task_id)
        if task is not None:
            return task.state
        if task_id in self._submitting:
            return TaskState.QUEUED
        stored = self.store.get_task(task_id)
        return None if stored is None else stored.state

    def rename_in_after(self, old: str, new: str) -> list[Task]:
        """For `ant rename`: the tasks in memory whose `after` names `old` name `new` instead
        (else their next write would put the old id back), and the waits follow. The stored
        rows: Store.rename_in_after, in the same step. Returns the tasks changed."""
        changed = []
        for task in (*self.running.values(), *self.queued.values(), *self.lingering.values()):
            if any(d.task_id == old for d in task.after):
                task.after = [
                    Dependency(new, d.condition) if d.task_id == old else d for d in task.after
                ]
                changed.append(task)
        self.waits.rename(old, new)
        return changed

    def _settle_dependencies(self) -> None:
        """Parents ended (or were deleted): their waiting dependents are released to the queue
        or, when a condition can never be met, end dependency_failed, which cascades to their
        own dependents. Durable first (StoreBusy: nothing changed, the ends stay noted)."""
        if not self._parent_ends:
            return
        settlement = self.waits.settle(self._parent_ends)
        now = self.clock()
        failed = []
        for child, (dep, state) in settlement.failed.items():
            done = self.queued[child].copy()
            done.move_to(TaskState.DEPENDENCY_FAILED)
            done.finished_at = now
            done.reason = never_reason(dep, state)
            failed.append(done)
        missed: set[str] = set()
        if failed:
            updates = [(t, TaskState.QUEUED) for t in failed]
            missed = self.store.apply(updates=updates, durable=False)
            self._sync_soon()
        self._parent_ends.clear()
        self.waits.apply(settlement)
        for done in failed:
            self.queued.pop(done.task_id, None)
            self._startable_since.pop(done.task_id, None)
            if done.task_id in missed:
                self._say(f"task {done.task_id!r} changed outside ANT; not ending it")
        for child in settlement.ready:
            task = self.queued.get(child)
            if task is not None:
                self._place_ready(task)
                self._startable_since[child] = now
        self._publish_tasks("task_changed", [t for t in failed if t.task_id not in missed])
        if failed or settlement.ready:
            self._publish_queue()
            self._request_schedule()

    def paused_tag(self, task: Task) -> str | None:
        """The first of the task's tags that is paused, if any."""
        if not self.paused_tags:
            return None
        return next((tag for tag in task.tags if tag in self.paused_tags), None)

    def _place_ready(self, task: Task) -> None:
        """A queued task that may start (no backoff, no unmet dependency) into the queue order,
        or aside while it carries a paused tag."""
        if self.paused_tag(task) is None:
            self.queue.add(queued_entry(task))
        else:
            self.aside[task.task_id] = queued_entry(task)

    def _place(self, task: Task) -> None:
        """A queued task into the queue order, or aside while it carries a paused tag. Tasks
        waiting out a backoff or for their dependencies are placed once they are ready."""
        if task.task_id in self._backoffs or task.task_id in self.waits:
            return
        aside = self.paused_tag(task) is not None
        if aside and task.task_id not in self.aside:
            self.aside[task.task_id] = self.queue.remove(task.task_id)
        elif not aside and task.task_id in self.aside:
            self.queue.add(self.aside.pop(task.task_id))

    def _enqueue_new(
        self, tasks: list[Task], batch: QueueBatch | None = None, waiting: Sequence[Task] = ()
    ) -> None:
        """Put new tasks in the queue and say so. A large submission comes with its queue
        entries prepared (batch: the tasks without dependencies), so this stays short however
        many tasks there are; the `waiting` ones (with dependencies) are queued one by one."""
        if batch is None:
            for task in tasks:
                self._enqueue(task)
        else:
            self.queue.merge(batch)  # without dependencies, nor a tag paused then
            ready = [t for t in tasks if not t.after] if waiting else tasks
            self.queued.update((t.task_id, t) for t in ready)
            self._startable_since.update(dict.fromkeys((t.task_id for t in ready), self.clock()))
            if len(batch) != len(ready) or self.paused_tags:  # a tag's pause may have changed
                in_batch = set(batch.tasks)
                self.aside.update(
                    (t.task_id, queued_entry(t)) for t in ready if t.task_id not in in_batch
                )
                for task in ready:
                    self._place(task)
            for task in waiting:
                self._enqueue(task)
        if len(tasks) <= EVENTS_PER_SUBMIT:
            self._publish_tasks("task_added", tasks)
        self._publish_queue(added=len(tasks))
        self._request_schedule()

    # ------------------------------------------------------------------ scheduling

    def _request_schedule(self) -> None:
        """Coalesce triggers from one loop iteration into one pass, started at once."""
        if self._schedule_pending or self._stopped:
            return
        self._schedule_pending = True
        asyncio.get_running_loop().call_soon(self._schedule)

    def _schedule(self) -> None:
        """One pass: record what ended, then start what fits. Retried while the store fails."""
        self._schedule_pending = False
        if self._stopped:
            return
        try:
            self._start_what_fits()  # records the pending ends too, in the same transaction
        except StoreUnavailable as exc:
            self._store_trouble(exc)
            return
        except Exception as exc:  # a bug must not stop scheduling for good, nor print a trace
            self._store_trouble(StoreUnavailable(f"internal error in a scheduling pass: {exc!r}"))
            return
        if self._last_store_error:
            self._say("the database works again; pending changes are recorded")
            self._last_store_error = ""
        self._retry_delay = RETRY_FIRST_DELAY

    def _store_trouble(self, exc: StoreUnavailable) -> None:
        """Nothing was applied: try the pass again later, saying so once per kind of failure."""
        if exc.message != self._last_store_error:
            self._say(f"{exc.message}; retrying (pending changes are kept in memory)")
            self._last_store_error = exc.message
        if self._retry_handle is None:
            loop = asyncio.get_running_loop()
            self._retry_handle = loop.call_later(self._retry_delay, self._retry_schedule)
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_DELAY * 4)

    def _retry_schedule(self) -> None:
        self._retry_handle = None
        self._request_schedule()

    # ------------------------------------------------------------------ pause (a drain)

    def load_pause(self) -> None:
        """The pause outlives restarts: a drain asked for before one is still on after it."""
        text = self.store.get_meta(PAUSED_KEY)
        try:
            self.paused_at = float(text) if text else None
        except ValueError:
            self.paused_at = None
        try:
            tags = json.loads(self.store.get_meta(PAUSED_TAGS_KEY) or "{}")
            self.paused_tags = {str(t): float(at) for t, at in tags.items()}
        except (ValueError, TypeError, AttributeError):
            self.paused_tags = {}

    def set_paused(self, paused: bool) -> dict[str, Any]:
        """A step: stop starting queued tasks (running ones go on), or start them again. Durable
        first (StoreUnavailable: nothing changed). Pausing twice keeps the first time."""
        if paused == (self.paused_at is not None):
            return self.pause_state()
        at = self.clock() if paused else None
        self.store.set_meta(PAUSED_KEY, "" if at is None else repr(at))
        self.paused_at = at
        self._publish_health()
        self._request_schedule()  # the pass publishes the queue's new reasons (or starts them)
        return self.pause_state()

    def pause_state(self) -> dict[str, Any]:
        """wire.QueueOut."""
        return {
            "paused": self.paused_at is not None,
            "paused_at": self.paused_at,
            "paused_tags": [
                {"tag": tag, "paused_at": at} for tag, at in sorted(self.paused_tags.items())
            ],
        }

    def set_tag_paused(self, tag: str, paused: bool) -> dict[str, Any]:
        """A step: queued tasks carrying `tag` do not start (running ones go on), or start again.
        Durable first. Pausing sets the tag's queued tasks aside, resuming puts back those set
        aside that carry no other paused tag, each in one rebuild or merge of the queue order
        (not a removal or insertion per task); no pass reads the tasks set aside."""
        check_tag(tag)
        if paused == (tag in self.paused_tags):
            return self.pause_state()
        tags = dict(self.paused_tags)
        if paused:
            tags[tag] = self.clock()
        else:
            del tags[tag]
        self.store.set_meta(PAUSED_TAGS_KEY, json.dumps(tags))
        self.paused_tags = tags
        if paused:  # once per pause: a look at each queued task in memory (~10 ms per 100,000)
            out = [i for i, t in self.queued.items() if tag in t.tags and i in self.queue]
            self.aside.update((entry.task_id, entry) for entry in self.queue.remove_many(out))
        else:
            back = [i for i in self.aside if self.paused_tag(self.queued[i]) is None]
            batch = QueueBatch()
            batch.add(self.aside.pop(i) for i in back)
            self.queue.merge(batch)
        self._publish_health()
        self._publish_queue()  # positions and reasons changed: lists read them again
        self._request_schedule()
        return self.pause_state()

    def _start_what_fits(self) -> None:
        self._settle_dependencies()  # released tasks are planned in this very pass
        held_off = PAUSED_REASON if self.paused_at is not None else self.executor.availability()
        if held_off != self._held_off:
            self._held_off = held_off
            self._publish_health()
            self._publish_queue()  # the queued tasks' reasons changed
        if held_off is not None:
            self._write_pending()
            return  # start nothing; the queue's reason is the executor's
        # Ends not recorded yet are recorded with this pass's starts, in one transaction (one
        # commit per pass, not two): the plan already counts their GPUs as free, unless
        # processes they left behind hold them.
        pending = self._pending(False)
        ended = {t.task_id for t, _ in pending[0]}
        freed = {t.task_id for t, lingering in pending[0] if lingering == 0}
        held, usage = self.owner_load(ended)
        decision = policy.plan(
            self.queue,
            _without(self.gpus.policy_views(), freed),
            policy=self.settings.RUNNER_policy,  # type: ignore[arg-type]
            running_cpu_tasks=sum(
                1 for t in self.running.values() if t.n_gpus == 0 and t.task_id not in ended
            ),
            max_cpu_tasks=self.settings.RUNNER_max_cpu_tasks,
            nodes=self.gpus.nodes,
            node_load=self._node_load(ended),
            mem_reserve=self.settings.gpu_mem_reserve,
            usage=usage,
            held=held,
            max_gpus=self.users.limits(),
        )
        self._plan = decision
        if not decision.starts:
            self._record(pending)
            return
        now = self.clock()
        starting: list[Task] = []
        refused: list[Task] = []  # the executor cannot take it (e.g. no log path): it fails alone
        for start in decision.starts:
            task = self.queued[start.task_id].copy()
            task.gpu_ids = list(start.gpu_ids)
            task.nodes = list(start.nodes) if any(start.nodes) else []
            task.placement, task.gpu_mem_over = start.placement, None
            try:
                handle = self.executor.prepare(self._launch_request(task))
            except Exception as exc:
                task.move_to(TaskState.FAILED)
                task.finished_at = now
                task.reason = failure_reason(exc)
                task.gpu_ids = []
                task.nodes = []
                retries.record_end(task)  # a start the executor refuses is never retried
                refused.append(task)
                continue
            task.move_to(TaskState.RUNNING)
            task.started_at = now
            if task.retry_at is not None:  # a retry starts: its wait and reason are over
                task.retry_at = task.reason = None
            task.session_id = self.session_id
            self._set_handle(task, handle)  # "starting": recover() settles it after a crash
            starting.append(task)
        # Durable before the spawn: a crash from here on finds the task recorded as running on
        # these GPUs, and looks for its process instead of handing the GPUs to someone else.
        missed = self.store.apply(
            updates=_updates(pending) + [(t, TaskState.QUEUED) for t in starting + refused],
            durable=False,
        )
        self._sync_soon()
        self._pending_written(pending, missed)  # frees the GPUs the plan counted as free
        launched = []
        for task in starting + refused:
            self._dequeue(task.task_id)
            if task.task_id in missed:
                self._say(f"task {task.task_id!r} changed outside ANT; not starting it")
            elif task.state is TaskState.RUNNING:
                self.running[task.task_id] = task
                self._reserve(task)
                launched.append(task)
        for task in refused:
            if task.task_id not in missed:
                self._parent_ends[task.task_id] = task.state
        self._publish_tasks("task_changed", [t for t in refused if t.task_id not in missed])
        for task in refused:
            if task.task_id not in missed:
                self._ended_for_good(task)
        started = [task for task in launched if self._launch(task)]
        self._show_ant_processes()  # now with the pids
        self._publish_tasks("task_changed", started)
        self._publish_gpus()
        self._publish_queue()
        if self._ended:  # launch failures: record them (and free their GPUs) at once
            self._request_schedule()
        if self._unsaved_handles and self._handle_flush is None:
            loop = asyncio.get_running_loop()
            self._handle_flush = loop.call_later(HANDLE_FLUSH_DELAY, self._flush_handles)

    def _flush_handles(self) -> None:
        self._handle_flush = None
        if self._unsaved_handles:
            self._request_schedule()

    def _launch(self, task: Task) -> bool:
        """Spawn one task. Any failure fails this task alone, with its reason; never the pass."""
        assert task.handle is not None
        if task.started_at is not None:  # it leaves the queue, whether its spawn works or not
            self.metrics.task_wait.observe(max(0.0, task.started_at - queued_since(task)))
        self.live.begin(task)  # its log may hold an earlier run's output (a restore)
        try:
            handle = self.executor.start(self._launch_request(task), task.handle)
        except Exception as exc:  # a bad log path, a missing directory, anything: this task only
            failed = task.copy()
            failed.move_to(TaskState.FAILED)
            failed.finished_at = self.clock()
            failed.reason = failure_reason(exc)
            self._ended[task.task_id] = self._attempt_ended(failed, 0)
            return False
        self._set_handle(task, handle)
        self._unsaved_handles[task.task_id] = task
        self._arm_timeout(task)
        since = self._startable_since.pop(task.task_id, task.created_at)
        if task.started_at is not None:
            self.metrics.dispatch_latency.observe(max(0.0, task.started_at - since))
        return True

    def _launch_request(self, task: Task) -> LaunchRequest:
        env = task.env
        conda = None
        if env.get("ant_conda_env") or env.get("ant_conda_env_path"):
            conda = env.get("ant_conda_path") or "conda"
        return LaunchRequest(
            task_id=task.task_id,
            command=task.command,
            env=process_env(env),
            gpu_ids=tuple(task.gpu_ids),
            cwd=self.launch_dir,
            session=self.session_dir_name,
            workdir=env.get("ant_wd") or None,
            conda=conda,
            n_nodes=task.n_nodes,
            placement=self._placement(task),
            attempt=task.attempt,
            numa_nodes=self._numa_nodes(task),
        )

    def _numa_nodes(self, task: Task) -> tuple[int, ...]:
        """RUNNER_numa_affinity: the NUMA nodes of the task's GPUs, when each one's is known."""
        if not self.settings.RUNNER_numa_affinity or not task.gpu_ids:
            return ()
        nodes = {self.gpus.numa_node(index) for index in task.gpu_ids}
        if None in nodes:
            return ()
        return tuple(sorted(n for n in nodes if n is not None))

    def _placement(self, task: Task) -> tuple[RankPlacement, ...]:
        """Each rank's node and GPUs (ANT's ids and the node's own), rank 0 first."""
        nodes = task.nodes or [""] * task.n_nodes
        per_rank = task.n_gpus
        ranks = []
        for rank, node in enumerate(nodes):
            ids = tuple(task.gpu_ids[rank * per_rank : (rank + 1) * per_rank])
            ranks.append(RankPlacement(node, ids, tuple(self.gpus.local_index(i) for i in ids)))
        return tuple(ranks)

    def _node_load(self, ended: set[str]) -> dict[str, int]:
        """How many ANT tasks run on each node (where tasks needing no GPU go), but `ended`."""
        load: dict[str, int] = {}
        for task in self.running.values():
            if task.task_id in ended:
                continue
            for node in task.nodes or [""]:
                load[node] = load.get(node, 0) + 1
        return load

    def _set_handle(self, task: Task, handle: Handle) -> None:
        task.handle = handle
        task.pid, task.log_path = self.executor.describe(handle)

    # ------------------------------------------------------------------ GPUs

    def _reserve(self, task: Task) -> None:
        self.gpus.reserve(task.task_id, task.gpu_ids, task.gpu_mem)
        self._show_ant_processes()

    def _release(self, task: Task) -> None:
        self.gpus.release(task.task_id, task.gpu_ids)
        self._show_ant_processes()

    def _show_ant_processes(self) -> None:
        by_gpu: dict[int, list[int]] = {}
        memory: dict[int, int] = {}  # pid -> what it seems to use per GPU (fake GPUs only)
        for task in self.running.values():
            if task.pid is None:
                continue
            for index in task.gpu_ids:
                by_gpu.setdefault(index, []).append(task.pid)
            use = simulated_use(task.env, task.gpu_mem)
            if use is not None:
                memory[task.pid] = use
        self.gpus.show_ant_processes(by_gpu, memory)

    def check_gpu_memory(self) -> None:
        """After each sample: each memory task using more GPU memory than it declared is
        flagged (`gpu_mem_over`, a `gpu_mem_over` event, `task_changed`) and, with
        RUNNER_enforce_gpu_mem, killed: it ends failed, saying why (gpu_memory.py)."""
        flagged = []
        enforce = self.settings.RUNNER_enforce_gpu_mem
        for task in self.running.values():
            used = gpu_memory.over_use(task, self.gpus.task_gpu_mem.get(task.task_id))
            if used is None:
                continue
            first = task.gpu_mem_over is None
            if first or used > (task.gpu_mem_over or 0):
                task.gpu_mem_over = used
                flagged.append(task)
            if first:
                kill = enforce and task.task_id not in self._killing
                self._say(gpu_memory.over_message(task, kill))
                self.events.publish("gpu_mem_over", gpu_memory.event(task, kill))
                if kill:
                    self._over_memory.add(task.task_id)
                    self._killing.add(task.task_id)
                    self._chore(
                        self.executor.kill(task.task_id, self.settings.RUNNER_kill_grace_seconds)
                    )
        if flagged:
            self._publish_tasks("task_changed", flagged)

    def gpu_note(self, task_ids: list[str]) -> str | None:
        """What holds a GPU besides running tasks: processes an ended task left behind."""
        notes = []
        for task_id in task_ids:
            if task_id in self.lingering:
                n = self.executor.lingering(task_id)
                notes.append(f"{n} stray process{'' if n == 1 else 'es'} of {task_id}")
        return "; ".join(notes) or None

    # ------------------------------------------------------------------ reports from the executor

    def _on_exit(self, info: ExitInfo) -> None:
        """The executor saw a task end: recorded by the next pass, which then frees its GPUs."""
        task = self.running.get(info.task_id)
        if task is None or info.task_id in self._ended:
            return
        done = task.copy()
        if info.task_id in self._timing_out and info.lost is None:
            done.move_to(TaskState.TIMED_OUT)
            done.reason = f"ran longer than its timeout ({format_duration(task.timeout or 0)})"
        elif info.task_id in self._over_memory and info.lost is None:
            done.move_to(TaskState.FAILED)
            done.reason = gpu_memory.kill_reason(task)
        elif info.killed or info.task_id in self._killing:
            done.move_to(TaskState.KILLED)
            if info.lost is not None:
                done.reason = info.lost
        elif info.lost is not None:
            done.move_to(TaskState.LOST)  # restorable, like a task lost at recovery
            done.reason = info.lost
        elif info.exit_code == 0:
            done.move_to(TaskState.SUCCEEDED)
        else:
            done.move_to(TaskState.FAILED)
            if info.reason is not None:
                done.reason = info.reason
            elif info.exit_code is None:
                done.reason = "ended with an unknown exit code"
        done.exit_code = info.exit_code
        done.finished_at = self.clock()
        if info.lingering:
            done.reason = join(done.reason, f"left {info.lingering} process(es) running")
        self._ended[info.task_id] = self._attempt_ended(done, info.lingering)
        self._request_schedule()

    def _on_wake(self) -> None:
        """The executor's availability or its nodes changed: GPUs and nodes are read again, a
        pass runs (it publishes the health when availability changed), and so do the GPUs."""
        if self._stopped:
            return
        if self.gpus.refresh():
            self._publish_gpus()
        self._publish_health()
        self._request_schedule()

    def _on_gone(self, task_id: str) -> None:
        """The last process a task left behind has ended: its GPUs are free now."""
        task = self.lingering.pop(task_id, None)
        timer = self._stray_timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()
        if task is None:
            return
        self._release(task)
        self._publish_gpus()
        self._publish_tasks("task_changed", [task])
        self._request_schedule()

    def _hold(self, task: Task) -> None:
        """Processes the ended task left behind keep its GPUs (killed after the grace)."""
        self.lingering[task.task_id] = task
        self._reserve(task)
        if self.settings.RUNNER_wait_for_strays or task.task_id in self._stray_timers:
            return
        self._stray_timers[task.task_id] = asyncio.get_running_loop().call_later(
            self.settings.RUNNER_stray_grace_seconds, self._kill_strays, task.task_id
        )

    def _kill_strays(self, task_id: str) -> None:
        self._stray_timers.pop(task_id, None)
        if task_id not in self.lingering or self._stopped:
            return
        self._say(f"killing the processes task {task_id!r} left behind")
        self._chore(self.executor.kill(task_id, self.settings.RUNNER_kill_grace_seconds))

    def _arm_timeout(self, task: Task) -> None:
        """Kill the task once it has run `timeout` seconds (from its start, also when adopted
        after a restart of ANT: one that ran past it meanwhile is killed at once)."""
        if task.timeout is None or task.started_at is None:
            return
        left = task.started_at + task.timeout - self.clock()
        loop = asyncio.get_running_loop()
        self._timeouts[task.task_id] = loop.call_later(max(0.0, left), self._time_out, task.task_id)

    def _time_out(self, task_id: str) -> None:
        self._timeouts.pop(task_id, None)
        if task_id not in self.running or task_id in self._killing or self._stopped:
            return  # ended, or a kill (the user's) is on its way already
        self._say(f"task {task_id!r} ran longer than its timeout: killing it")
        self._timing_out.add(task_id)
        self._killing.add(task_id)
        self._chore(self.executor.kill(task_id, self.settings.RUNNER_kill_grace_seconds))

    # ------------------------------------------------------------------ notifications

    def _announce_end(self, tasks: list[Task]) -> None:
        """Tasks whose end is durable now: the webhooks hear of it (notifications.py queues it,
        never blocking). Called wherever a task reaches an ended state — a task going back to
        the queue (a retry) is not an end: the notifier skips states that are not ended."""
        for task in tasks:
            self.notifier.task_ended(task)

    def _output_for_notice(self, task: Task) -> TaskOutput | None:
        try:
            return self.executor.output(task.handle, 0) if task.handle is not None else None
        except Exception:  # no output to read: the notice goes without its log
            return None

    def _chore(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background job whose end nobody awaits (kept referenced until it is done)."""
        chore = asyncio.ensure_future(coro)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Re-adopt live tasks, settle those that ended while ANT was down, hold the queue.

        What became of each task is the executor's answer (it looks at the processes, not at
        the store): a task recorded as starting whose process exists is adopted, one whose
        process does not is lost — never run again without the user asking — and processes a
        finished task left behind keep its GPUs.
        """
        rows = self.store.load_tasks([TaskState.RUNNING])
        recovery = self.executor.recover({t.task_id: t.handle for t in rows})
        counts = dict.fromkeys(("adopted", "finished_while_down", "lost", "retried"), 0)
        left = dict(recovery.left_behind)
        writes: list[Task] = []
        for task in rows:
            result = recovery.tasks[task.task_id]
            if isinstance(result, Running):
                self._set_handle(task, result.handle)
                self.running[task.task_id] = task
                self._reserve(task)
                self.live.begin(task)  # mirror what it writes from now on, not its whole log
                self._arm_timeout(task)  # counted from its start: ANT's restart adds nothing
                counts["adopted"] += 1
            elif isinstance(result, Ended):
                task.move_to(TaskState.SUCCEEDED if result.exit_code == 0 else TaskState.FAILED)
                task.exit_code = result.exit_code
                task.finished_at = result.finished_at or self.clock()
                task.reason = "finished while ANT was down"
                counts["finished_while_down"] += 1
            else:
                task.move_to(TaskState.LOST)
                task.finished_at = self.clock()
                task.reason = result.reason
                counts["lost"] += 1
            if not isinstance(result, Running):
                # A lost task is retried only when no process of it is left (never run twice).
                task = self._attempt_ended(task, result.lingering)
                if result.lingering:
                    left[task.task_id] = LeftBehind(result.lingering, tuple(task.gpu_ids))
                if task.state is TaskState.QUEUED:
                    counts["retried"] += 1
                    task.session_id = self.session_id
                    self._enqueue(task)
            writes.append(task)
        hold = self.settings.RECOVERY_enabled and not self.settings.RECOVERY_auto_restore
        queued = self.store.load_tasks([TaskState.QUEUED])
        for task in queued:
            if hold and task.retry_at is None:  # a retry series goes on: its backoff is kept
                task.move_to(TaskState.HELD)
                task.reason = "queued when ANT stopped; restore it to run it"
            else:
                task.session_id = self.session_id
        # Written before queueing: a dependency reads its parent's state (ended while ANT was
        # down, say) from the store. Waits are not stored: `after` is, and rebuilds them here.
        self.store.update_tasks(writes + queued)
        for task in queued:
            if task.state is TaskState.QUEUED:  # restored, or a retry series going on
                self._enqueue(task)
        for task in writes:
            if task.state in ENDED_STATES:
                self._ended_for_good(task)
        for task_id, behind in left.items():
            task = self.store.get_task(task_id) or ghost(task_id, behind, self.clock())
            task.gpu_ids = task.gpu_ids or list(behind.gpu_ids)
            self._hold(task)
            self._say(
                f"task {task_id!r} ({task.state.value}) left {behind.count} process(es) running; "
                "its GPUs stay reserved until they end"
            )
        self.recovery_summary = {
            **counts,
            "held": sum(1 for t in queued if t.state is TaskState.HELD),
            "requeued": sum(1 for t in queued if t.state is TaskState.QUEUED),
            "left_processes": len(left),
        }

    # ------------------------------------------------------------------ events

    def task_dict(self, task: Task) -> dict[str, Any]:
        """The Task JSON of the API (also carried by task events), computed now."""
        position, reason = self.queue_info(task)
        return task_json(
            task,
            queue_position=position,
            pending_reason=reason,
            gpu_mem_used=self.gpus.task_gpu_mem.get(task.task_id)
            if task.state is TaskState.RUNNING
            else None,
            lingering_processes=self.executor.lingering(task.task_id)
            if task.task_id in self.lingering
            else 0,
        )

    def queue_info(self, task: Task) -> tuple[int | None, str | None]:
        """(queue position counting from 1, pending reason) for a queued task, computed now."""
        if task.task_id in self._backoffs and task.state is TaskState.QUEUED:
            return None, retries.waiting_reason(task, self.clock())
        if task.task_id in self.aside and task.state is TaskState.QUEUED:
            return None, tag_paused_reason(self.paused_tag(task) or "?")
        entry = self.queue.get(task.task_id)
        if task.state is not TaskState.QUEUED:
            return None, None
        if entry is None:  # waiting for its dependencies (no place in the start order yet)
            dep = self.waits.first_unmet(task.task_id)
            if dep is None:
                return None, None
            return None, describe_wait(dep, self.state_of(dep.task_id))
        position = self.queue.position(task.task_id)
        if self._held_off is not None:
            return position, self._held_off
        if self._plan is None:
            return position, policy.NOT_PLANNED
        return position, self._plan.reason(entry)

    def health(self) -> dict[str, Any]:
        """wire.HealthOut: ANT is up; can the executor start tasks now; the nodes."""
        detail = self.executor.availability()
        return {
            "status": "ok" if detail is None else "degraded",
            "version": __version__,
            "executor": {"name": self.executor.name, "available": detail is None, "detail": detail},
            "nodes": self.gpus.node_list(),
            **self.pause_state(),
            "notifications": self.notifier.status(),
        }

    def _publish_health(self, *, always: bool = False) -> None:
        """A `health` event, when it says something new (or always)."""
        health = self.health()
        if always or health != self._last_health:
            self._last_health = health
            self.events.publish("health", health)

    def gpu_dicts(self) -> list[dict[str, Any]]:
        return [gpu_json(slot, self.gpu_note(slot.task_ids)) for slot in self.gpus.in_order()]

    def _publish_tasks(self, kind: str, tasks: list[Task]) -> None:
        """`task_added` carries the whole task (wire.TaskOut); `task_changed` its id, its state and
        the fields of TASK_CHANGING that differ from its previous event (wire.TaskChange), or all
        of them when the previous one is not known here (the task was added in a big submission,
        before a restart, or has ended)."""
        for task in tasks:
            full = self.task_dict(task)
            values = tuple(full[k] for k in TASK_CHANGING)
            if kind == "task_added":
                self.events.publish(kind, full)
            else:
                before = self._sent.get(task.task_id)
                state = full["state"]
                change = {"task_id": task.task_id, "state": state}
                for i, key in enumerate(TASK_CHANGING[1:], 1):
                    changed = before is None or before[i] != values[i]
                    if changed and (before is None or STATE_ONLY.get(key, state) == state):
                        change[key] = values[i]
                self.events.publish(kind, change)
            if task.state in ENDED_STATES:
                self._sent.pop(task.task_id, None)
            else:
                self._sent[task.task_id] = values

    def _forget_sent(self, task_id: str) -> None:
        self._sent.pop(task_id, None)

    def _publish_gpus(self) -> None:
        """A `gpus` event, when the list differs from the one last sent (a task that holds no
        GPU starts and ends without one: P10, < 1 KB of events per task)."""
        gpus = self.gpu_dicts()
        if gpus != self._last_gpus:
            self._last_gpus = gpus
            self.events.publish("gpus", gpus)

    def _publish_queue(self, added: int = 0) -> None:
        """The queue changed: a small event (lists, positions and reasons are read on demand)."""
        self.events.publish("queue", {"queued": len(self.queued), "added": added})

    def _say(self, message: str) -> None:
        print(f"ant: {message}", file=sys.stderr, flush=True)


# The fields of a task that change after it was submitted, as `task_changed` carries them (state
# first). `handle` is not among them: it is the executor's, opaque to clients.
TASK_CHANGING = (
    "state",
    "priority",
    "gpu_ids",
    "queue_seq",
    "started_at",
    "finished_at",
    "exit_code",
    "log_path",
    "pid",
    "session_id",
    "reason",
    "restarted_as",
    "nodes",
    "after",
    "queue_position",
    "pending_reason",
    "gpu_mem_used",
    "lingering_processes",
    "attempt",
    "attempts",
    "retry_at",
    "placement",
    "gpu_mem_over",
)
# Fields only a task in the given state has (null in any other): computed when read, they change
# without an event (the queue moves, memory use varies). A client sets them to null when the task
# is in another state; `task_changed` does not send them then.
STATE_ONLY = {"queue_position": "queued", "pending_reason": "queued", "gpu_mem_used": "running"}

# Up to this many new tasks get an event each; a bigger submission gets one `queue` event.
EVENTS_PER_SUBMIT = 1000


# Task ends not recorded yet (each with how many processes it left behind) and due handles.
Pending = tuple[list[tuple[Task, int]], list[Task]]


def _updates(pending: Pending) -> list[tuple[Task, TaskState]]:
    """Store updates for what _pending gave: rows still recorded as running."""
    ended, handles = pending
    return [(t, TaskState.RUNNING) for t, _ in ended] + [(t, TaskState.RUNNING) for t in handles]


def _without(views: list[policy.GpuView], freed: set[str]) -> list[policy.GpuView]:
    """The GPU views as they will be once these tasks' ends are recorded."""
    if not freed:
        return views
    return [
        dataclasses.replace(
            v,
            allocated_to=tuple(t for t in v.allocated_to if t not in freed),
            shared=tuple((t, n) for t, n in v.shared if t not in freed),
        )
        if any(t in freed for t in v.allocated_to)
        else v
        for v in views
    ]


def _last_run(task: Task) -> Task:
    """A retried task as its last attempt ended (state, times, handle): for what reads a run."""
    run = task.copy()
    last = task.attempts[-1]
    run.state, run.started_at, run.finished_at = last.state, last.started_at, last.finished_at
    run.handle, run.exit_code, run.log_path = last.handle, last.exit_code, last.log_path
    return run


def failure_reason(exc: Exception) -> str:
    if isinstance(exc, AntError):
        return exc.message
    return f"could not start: {type(exc).__name__}: {exc}"


def join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


def ghost(task_id: str, behind: LeftBehind, now: float) -> Task:
    """Stands in for a deleted task whose processes are still alive, so they keep their GPUs."""
    return Task(
        task_id=task_id,
        command="",
        submitted="",
        n_gpus=len(behind.gpu_ids),
        env={},
        state=TaskState.KILLED,
        priority=0,
        created_at=now,
        gpu_ids=list(behind.gpu_ids),
        finished_at=now,
        reason="deleted, but its processes were still running",
    )
