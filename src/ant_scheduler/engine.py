"""The engine: the one owner of ANT's state (queue, running tasks, GPU pool).

How a change happens, in this order, so that memory and the store never disagree:
decide (from memory, pure policy) -> persist (one transaction, compare-and-set) -> apply in
memory -> publish the event -> act on the world (spawn, kill, free GPUs).

Each command runs as one *step*: a plain function with no await inside, so steps are atomic with
respect to each other (one event loop) and concurrent commands on one task behave as if
serialised. A step that finds the database locked has changed nothing and runs again a little
later; after STORE_retry_seconds, or on any other store failure, the command fails with 503
`store_unavailable` and memory is as it was. Changes ANT makes on its own (a task ended, a task
starts) are retried until they are durable: a task's GPUs are freed only once its end is
recorded, and a task is recorded as running, with its GPUs, before its process is spawned.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

from ant_scheduler.core import policy
from ant_scheduler.core.errors import (
    AntError,
    DuplicateTaskId,
    GpuNotFound,
    InvalidTransition,
    PayloadTooLarge,
    StoreBusy,
    StoreUnavailable,
    TaskNotFound,
)
from ant_scheduler.core.parsing import (
    SubmitDefaults,
    iter_submission,
    process_env,
)
from ant_scheduler.core.queue import QueueBatch, TaskQueue
from ant_scheduler.core.task import Task, TaskSpec, TaskState
from ant_scheduler.core.terminal import parse_progress, render_terminal
from ant_scheduler.events import EventBus
from ant_scheduler.executors.base import (
    Ended,
    Executor,
    ExitInfo,
    Follower,
    Handle,
    LaunchRequest,
    LeftBehind,
    Running,
    TaskOutput,
)
from ant_scheduler.metrics import Metrics
from ant_scheduler.monitor.adgs import AdgsConfig, AdgsTracker, external_use
from ant_scheduler.monitor.attribution import ProcessOwner, attribute
from ant_scheduler.monitor.base import GpuBackend, GpuInfo, GpuSample
from ant_scheduler.monitor.host import History, HostSample, host_dict, sample_host
from ant_scheduler.selfcheck import self_check
from ant_scheduler.settings import Settings
from ant_scheduler.store import Store
from ant_scheduler.views import task_json

T = TypeVar("T")
TERMINAL_TAIL_BYTES = 64 * 1024
# A submission of more tasks than this is written in chunks (see _add_in_chunks). Lines parsed
# and rows written between two yields to the event loop are sized to about 20-40 ms of work, so
# a 100,000-line submission never stalls other requests for long.
SUBMIT_CHUNK = 2000
PARSE_CHUNK = 500
WRITE_CHUNK = 1000
# Up to this many new tasks get an event each; a bigger submission gets one `queue` event.
EVENTS_PER_SUBMIT = 1000
RETRY_FIRST_DELAY = 0.02
RETRY_MAX_DELAY = 0.5
HANDLE_FLUSH_DELAY = 0.2  # a started task's handle is written with the next batch, or then


@dataclass
class GpuSlot:
    """One GPU as the engine sees it: static info, the user's toggle, who holds it, last sample."""

    info: GpuInfo
    enabled: bool = True
    task_ids: list[str] = field(default_factory=list)
    sample: GpuSample | None = None
    external: str | None = None  # who is using it outside ANT (set by ADGS)
    processes: list[ProcessOwner] = field(default_factory=list)
    last_assigned: float = float("-inf")  # when ANT last started a task on it

    @property
    def unavailable(self) -> str | None:
        return self.sample.error if self.sample is not None else None

    @property
    def state(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.unavailable:
            return "unavailable"
        if self.task_ids:
            return "allocated"
        if self.external:
            return "busy_external"
        return "free"


def _queued(task: Task) -> policy.QueuedTask:
    return policy.QueuedTask(task.task_id, task.n_gpus, task.priority, task.queue_seq)


class Engine:
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
        self.settings = settings
        self.store = store
        self.executor = executor
        self.gpu_backend = gpu_backend
        self.launch_dir = launch_dir or os.getcwd()
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.out = out or sys.stdout
        self.events = EventBus()
        self.log_dir = Path(settings.LOGGER_log_dir).resolve()
        # Tasks in memory, each in exactly one place: queued (+ its order in `queue`), running,
        # or lingering (ended, but processes it left behind still hold its GPUs).
        self.queued: dict[str, Task] = {}
        self.queue = TaskQueue()
        self.running: dict[str, Task] = {}
        self.lingering: dict[str, Task] = {}
        self.gpus: dict[int, GpuSlot] = {}
        self.session_id = 0
        self.session_dir_name = ""
        self.started_at = 0.0
        self.recovery_summary: dict[str, int] = {}
        self._plan: policy.Plan | None = (
            None  # the last scheduling decision (reasons are read here)
        )
        self._killing: set[str] = set()
        # Ended tasks whose end is not durable yet (written by the next pass, then applied).
        self._ended: dict[str, Task] = {}
        self._unsaved_handles: dict[str, Task] = {}  # running; handle not written yet (_launch)
        self._submitting: set[str] = set()  # ids of large submissions still being written
        self._end_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._stray_timers: dict[str, asyncio.TimerHandle] = {}
        self._next_seq = 1
        self._schedule_pending = False
        self._retry_delay = RETRY_FIRST_DELAY
        self._retry_handle: asyncio.TimerHandle | None = None
        self._handle_flush: asyncio.TimerHandle | None = None
        self._last_store_error = ""
        self._background: list[asyncio.Task[None]] = []
        self._chores: set[asyncio.Task[Any]] = set()
        self._followers: dict[str, Follower] = {}
        self._stopped = False
        self.history = History(settings.MONITORING_history_size)
        self.host: HostSample | None = None
        self.metrics = Metrics()
        self.metrics.add_state_collector(self._metrics_snapshot)
        self.adgs = AdgsTracker(
            AdgsConfig(
                usage_threshold=settings.ADGS_usage_threshold,
                mem_threshold=settings.ADGS_mem_threshold,
                window=settings.ADGS_window_seconds,
            )
        )
        self.task_gpu_mem: dict[str, int] = {}
        self._startable_since: dict[str, float] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open a new server session, recover what the last run left, start the loops."""
        self.started_at = self.clock()
        self.session_dir_name = datetime.fromtimestamp(self.started_at).strftime("%Y%m%d-%H%M%S")
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.session_id = await self._startup(
            lambda: self.store.begin_session(self.started_at, self.session_dir_name)
        )
        if self.gpu_backend is not None:
            for info in self.gpu_backend.gpus():
                self.gpus[info.index] = GpuSlot(info=info)
        self._next_seq = self.store.max_queue_seq() + 1
        self.executor.set_exit_callback(self._on_exit)
        self.executor.set_gone_callback(self._on_gone)
        dropped = await self._startup(self.store.drop_unfinished_submissions)
        if dropped:
            self._say(f"dropped {dropped} task(s) of a submission that was never acknowledged")
        await self._startup(self._recover)
        loop_makers: list[Callable[[], Any]] = [self._terminal_loop, self._monitor_loop]
        if self.settings.LOGGER_log_to_stdout:
            loop_makers.append(self._mirror_loop)
        self._background = [asyncio.create_task(make()) for make in loop_makers]
        self._request_schedule()

    async def _startup(self, step: Callable[[], T]) -> T:
        """Start-up writes wait for a locked database as commands do; then start-up fails."""
        return await self._command(step)

    async def stop(self) -> str:
        """Stop the loops; keep or end running tasks (RUNNER_on_shutdown); say what happened."""
        if self._stopped:
            return ""
        self._stopped = True
        for handle in (self._retry_handle, self._handle_flush, *self._stray_timers.values()):
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
            self._write_pending()
            self.store.end_session(self.session_id, self.clock())
        except StoreUnavailable as exc:  # what is not written is reconciled on the next start
            self._say(f"could not record the last changes: {exc.message}")
        if self.gpu_backend is not None:
            self.gpu_backend.close()
        return message

    def _recover(self) -> None:
        """Re-adopt live tasks, settle those that ended while ANT was down, hold the queue.

        What became of each task is the executor's answer (it looks at the processes, not at
        the store): a task recorded as starting whose process exists is adopted, one whose
        process does not is lost — never run again without the user asking — and processes a
        finished task left behind keep its GPUs.
        """
        rows = self.store.load_tasks([TaskState.RUNNING])
        recovery = self.executor.recover({t.task_id: t.handle for t in rows})
        counts = dict.fromkeys(("adopted", "finished_while_down", "lost"), 0)
        writes: list[Task] = []
        for task in rows:
            result = recovery.tasks[task.task_id]
            if isinstance(result, Running):
                self._set_handle(task, result.handle)
                self.running[task.task_id] = task
                self._reserve(task)
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
            writes.append(task)
        hold = self.settings.RECOVERY_enabled and not self.settings.RECOVERY_auto_restore
        held = requeued = 0
        for task in self.store.load_tasks([TaskState.QUEUED]):
            if hold:
                task.move_to(TaskState.HELD)
                task.reason = "queued when ANT stopped; restore it to run it"
                held += 1
            else:
                task.session_id = self.session_id
                self._enqueue(task)
                requeued += 1
            writes.append(task)
        self.store.update_tasks(writes)
        left = {**recovery.left_behind}
        for task in rows:
            result = recovery.tasks[task.task_id]
            if not isinstance(result, Running) and result.lingering:
                left[task.task_id] = LeftBehind(result.lingering, tuple(task.gpu_ids))
        for task_id, behind in left.items():
            task = self.store.get_task(task_id) or _ghost(task_id, behind, self.clock())
            if not task.gpu_ids:
                task.gpu_ids = list(behind.gpu_ids)
            self.lingering[task_id] = task
            self._reserve(task)
            self._arm_stray_timer(task_id)
            self._say(
                f"task {task_id!r} ({task.state.value}) left {behind.count} process(es) running; "
                "its GPUs stay reserved until they end"
            )
        self.recovery_summary = {**counts, "held": held, "requeued": requeued}
        self.recovery_summary["left_processes"] = len(left)

    def _set_handle(self, task: Task, handle: Handle) -> None:
        task.handle = handle
        task.pid, task.log_path = self.executor.describe(handle)

    # ------------------------------------------------------------------ queries

    def get(self, task_id: str) -> Task:
        """A task as it is now: from memory when it is active, else from the store."""
        task = self._in_memory(task_id)
        if task is None and task_id not in self._submitting:
            task = self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return task

    def _in_memory(self, task_id: str) -> Task | None:
        return self.running.get(task_id) or self.queued.get(task_id) or self.lingering.get(task_id)

    def list_tasks(
        self,
        states: Collection[TaskState] | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Task], int]:
        tasks, total = self.store.list_tasks(states=states, q=q, limit=limit, offset=offset)
        # Active tasks are shown as memory has them (a pid not written yet, say).
        return [self._in_memory(t.task_id) or t for t in tasks], total

    def queue_info(self, task: Task) -> tuple[int | None, str | None]:
        """(queue position counting from 1, pending reason) for a queued task, computed now."""
        if task.state is not TaskState.QUEUED or task.task_id not in self.queue:
            return None, None
        position = self.queue.position(task.task_id)
        queued = self.queue.get(task.task_id)
        if self._plan is None or queued is None:
            return position, policy.NOT_PLANNED
        return position, self._plan.reason(queued)

    def task_dict(self, task: Task) -> dict[str, Any]:
        """The Task JSON of the API (also carried by task events), computed now."""
        position, reason = self.queue_info(task)
        return task_json(
            task,
            queue_position=position,
            pending_reason=reason,
            gpu_mem_used=self.task_gpu_mem.get(task.task_id)
            if task.state is TaskState.RUNNING
            else None,
            lingering_processes=self.executor.lingering(task.task_id)
            if task.task_id in self.lingering
            else 0,
        )

    def gpu_dict(self, slot: GpuSlot) -> dict[str, Any]:
        sample = slot.sample
        return {
            "index": slot.info.index,
            "uuid": slot.info.uuid,
            "name": slot.info.name,
            "enabled": slot.enabled,
            "state": slot.state,
            "task_ids": list(slot.task_ids),
            "util": sample.util if sample else 0.0,
            "mem_used": sample.mem_used if sample else 0,
            "mem_total": slot.info.mem_total,
            "external": slot.external,
            "error": slot.unavailable,
            "note": self._gpu_note(slot),
            "pci_bus_id": slot.info.pci_bus_id,
            "temperature": sample.temperature if sample else None,
            "power_watts": sample.power_watts if sample else None,
            "processes": [
                {
                    "pid": p.pid,
                    "used_memory": p.used_memory,
                    "task_id": p.task_id,
                    "user": p.user,
                    "command": p.command,
                }
                for p in slot.processes
            ],
        }

    def _gpu_note(self, slot: GpuSlot) -> str | None:
        notes = []
        for task_id in slot.task_ids:
            if task_id in self.lingering:
                n = self.executor.lingering(task_id)
                notes.append(f"{n} stray process{'' if n == 1 else 'es'} of {task_id}")
        return "; ".join(notes) or None

    def gpu_list(self) -> list[GpuSlot]:
        return [self.gpus[i] for i in sorted(self.gpus)]

    def recovery(self) -> dict[str, list[Task]]:
        """Held and lost tasks, split into the previous server session and older ones."""
        previous = [s.session_id for s in self.store.sessions() if s.session_id != self.session_id]
        last = previous[0] if previous else None
        result: dict[str, list[Task]] = {"last_session": [], "earlier_sessions": []}
        for task in self.store.load_tasks([TaskState.HELD, TaskState.LOST]):
            key = "last_session" if task.session_id == last else "earlier_sessions"
            result[key].append(task)
        return result

    def output(self, task: Task) -> TaskOutput | None:
        """The task's output, as its executor keeps it (None before it started)."""
        return self.executor.output(task.handle) if task.handle is not None else None

    def terminal(self, task: Task, lines: int | None = None) -> list[str]:
        output = self.output(task)
        if output is None:
            return []
        height = lines or self.settings.VISUALIZER_terminal_win_height
        data = output.tail_bytes(TERMINAL_TAIL_BYTES)
        return render_terminal(data.decode("utf-8", errors="replace"), height)

    # ------------------------------------------------------------------ running steps

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

    def _write_pending(self) -> None:
        """Record task ends (and handles) not durable yet, then apply and publish them."""
        ended = list(self._ended.values())
        handles = [t for t in self._unsaved_handles.values() if t.task_id not in self._ended]
        if not ended and not handles:
            return
        missed = self.store.apply(updates=[(t, TaskState.RUNNING) for t in ended + handles])
        self._unsaved_handles.clear()
        self._ended.clear()
        for task in ended:
            self._finish(task, recorded=task.task_id not in missed)
        if ended:
            self._publish_tasks("task_changed", ended)
            self._publish_gpus()
            self._request_schedule()

    def _finish(self, task: Task, *, recorded: bool) -> None:
        """Apply a durable end: the task leaves `running`; its GPUs are freed unless processes
        it left behind still run."""
        self.running.pop(task.task_id, None)
        self._killing.discard(task.task_id)
        if not recorded:  # the row was no longer running (changed outside ANT): nothing to add
            self._say(f"the end of task {task.task_id!r} was not recorded: it changed meanwhile")
        if task.started_at is not None and task.finished_at is not None:
            self.metrics.task_duration.labels(task.state.value).observe(
                max(0.0, task.finished_at - task.started_at)
            )
        self._flush_follower(task)
        if recorded and self.executor.lingering(task.task_id) > 0:
            self.lingering[task.task_id] = task
            self._arm_stray_timer(task.task_id)
        else:
            self._release(task)
        for waiter in self._end_waiters.pop(task.task_id, []):
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ commands

    async def submit(
        self,
        text: str,
        *,
        mode: Literal["single", "multi"] = "single",
        n_gpus: int | None = None,
        task_id: str | None = None,
        env: dict[str, str] | None = None,
        priority: int = 0,
    ) -> list[Task]:
        """Parse, validate and durably store new tasks (all or nothing), then schedule."""
        defaults = SubmitDefaults(
            n_gpus=n_gpus,
            task_id=task_id,
            env=dict(env or {}),
            priority=priority,
            default_n_gpus=self.settings.RUNNER_default_n_gpus,
        )
        specs = await self._parse(text, mode, defaults)
        if len(specs) <= SUBMIT_CHUNK:
            return await self._command(lambda: self._add(specs))
        return await self._add_in_chunks(specs)

    async def _parse(
        self, text: str, mode: Literal["single", "multi"], defaults: SubmitDefaults
    ) -> list[TaskSpec]:
        limit = self.settings.SERVER_max_expanded_bytes
        specs: list[TaskSpec] = []
        size = 0
        parsed = iter_submission(
            text,
            mode=mode,
            defaults=defaults,
            rng=self.rng,
            now=datetime.fromtimestamp(self.clock()),
        )
        for spec in parsed:
            specs.append(spec)
            size += _expanded_size(spec)
            if size > limit:
                raise PayloadTooLarge(
                    f"the submission expands to more than {limit} bytes (after {len(specs)} "
                    "task(s)); share large values through a file, or submit in parts "
                    "(limit: SERVER_max_expanded_bytes)"
                )
            if len(specs) % PARSE_CHUNK == 0:
                await asyncio.sleep(0)
        return specs

    def _new_tasks(
        self, specs: list[TaskSpec], *, first_seq: int | None = None, now: float | None = None
    ) -> list[Task]:
        """Tasks for specs, in queue order from first_seq (default: the next free numbers)."""
        if first_seq is None:
            first_seq = self._next_seq
            self._next_seq += len(specs)
        created = self.clock() if now is None else now
        tasks = []
        for offset, spec in enumerate(specs):
            task = Task.from_spec(spec, created_at=created, queue_seq=first_seq + offset)
            task.session_id = self.session_id
            tasks.append(task)
        return tasks

    def _add(self, specs: list[TaskSpec]) -> list[Task]:
        taken = [s.task_id for s in specs if s.task_id in self._submitting]
        if taken:
            raise DuplicateTaskId(f"duplicate task id {taken[0]!r}")
        tasks = self._new_tasks(specs)
        self.store.insert_tasks(tasks)  # raises DuplicateTaskId, writes nothing on error
        self._enqueue_new(tasks)
        return tasks

    def _enqueue_new(self, tasks: list[Task], batch: QueueBatch | None = None) -> None:
        """Put new tasks in the queue and say so. A large submission comes with its queue
        entries prepared (batch), so this stays short however many tasks there are."""
        if batch is None:
            for task in tasks:
                self._enqueue(task)
        else:
            self.queue.merge(batch)
            self.queued.update(zip(batch.tasks, tasks, strict=True))
            self._startable_since.update(dict.fromkeys(batch.tasks, self.clock()))
        if len(tasks) <= EVENTS_PER_SUBMIT:
            self._publish_tasks("task_added", tasks)
        self._publish_queue(added=len(tasks))
        self._request_schedule()

    async def _add_in_chunks(self, specs: list[TaskSpec]) -> list[Task]:
        """A large submission: written in chunks (each a short transaction, the event loop
        serving others in between), provisional until the last one; all or nothing still."""
        ids = [s.task_id for s in specs]
        clash = next((i for i in ids if i in self._submitting or self._in_memory(i)), None)
        for start in range(0, len(ids), 500):
            if clash is not None:
                break
            taken = self.store.existing_ids(ids[start : start + 500])
            clash = min(taken) if taken else None
            await asyncio.sleep(0)
        if clash is not None:
            raise DuplicateTaskId(f"duplicate task id {clash!r}")
        token = secrets.token_hex(8)
        self._submitting.update(ids)  # nobody else may take these ids meanwhile
        first_seq, now = self._next_seq, self.clock()
        self._next_seq += len(specs)
        tasks: list[Task] = []
        batch = QueueBatch()
        opened = False
        try:
            await self._command(lambda: self.store.open_submission(token))
            opened = True
            for start in range(0, len(specs), WRITE_CHUNK):
                # Made here, a piece at a time: 100,000 Task objects at once are a long stall.
                chunk = self._new_tasks(
                    specs[start : start + WRITE_CHUNK], first_seq=first_seq + start, now=now
                )

                def write(chunk: list[Task] = chunk) -> None:
                    self.store.insert_tasks(chunk, staged=token)

                await self._command(write)
                tasks += chunk
                batch.add(_queued(t) for t in chunk)
                await asyncio.sleep(0)

            def finish() -> list[Task]:
                self.store.close_submission(token)
                self._submitting.difference_update(ids)
                self._enqueue_new(tasks, batch)
                return tasks

            return await self._command(finish)
        except BaseException:
            if opened:
                try:
                    self.store.drop_submission(token)
                except StoreUnavailable:
                    pass  # still recorded as open: the next start-up drops it
            raise
        finally:
            self._submitting.difference_update(ids)

    async def kill(self, task_id: str) -> Task:
        """Kill a running task (SIGTERM, then SIGKILL after the grace) or cancel a queued one.

        A task that ended but left processes behind: those are killed.
        """
        action = await self._command(lambda: self._kill_step(task_id))
        if isinstance(action, Task):
            return action
        grace = self.settings.RUNNER_kill_grace_seconds
        if action == "strays":
            await self.executor.kill(task_id, grace)
            return self.get(task_id)
        await self.executor.kill(task_id, grace)
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
            self._publish_tasks("task_changed", [done])
            self._publish_queue()
            self._request_schedule()
            return done
        if task.state is TaskState.RUNNING:
            self._killing.add(task_id)
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
        self.events.publish("task_removed", {"task_id": task_id})

    async def restart(self, task_id: str) -> Task:
        """Queue a copy of a finished or running task (a running one is killed).

        A task has at most one live copy: while the copy of its last restart is queued, held or
        running, restarting it again is refused (409, naming the copy).
        """
        new, kill_original = await self._command(lambda: self._restart_step(task_id))
        if kill_original:
            try:
                await self.kill(task_id)
            except InvalidTransition:
                pass  # it ended on its own meanwhile
        return new

    def _restart_step(self, task_id: str) -> tuple[Task, bool]:
        task = self.get(task_id)
        if task.state in (TaskState.QUEUED, TaskState.HELD):
            raise InvalidTransition(f"task {task_id!r} is {task.state.value}; it has not run yet")
        if task.restarted_as is not None:
            copy = self._in_memory(task.restarted_as) or self.store.get_task(task.restarted_as)
            alive = (TaskState.QUEUED, TaskState.RUNNING, TaskState.HELD)
            if task.restarted_as in self._submitting or (copy is not None and copy.state in alive):
                state = copy.state.value if copy is not None else "queued"
                raise InvalidTransition(
                    f"task {task_id!r} was already restarted as {task.restarted_as!r} ({state})"
                )
        new = task.copy()
        new.task_id = self._free_restart_id(task_id)
        new.state = TaskState.QUEUED
        new.created_at = self.clock()
        new.queue_seq = self._next_seq
        self._next_seq += 1
        new.session_id = self.session_id
        new.gpu_ids = []
        new.started_at = new.finished_at = new.exit_code = None
        new.log_path = new.pid = new.handle = new.reason = new.restarted_as = None
        original = task.copy()
        original.restarted_as = new.task_id
        self.store.apply(inserts=[new], updates=[(original, task.state)], strict=True)
        live = self._in_memory(task_id)
        if live is not None:
            live.restarted_as = new.task_id
        self._enqueue(new)
        self._publish_tasks("task_added", [new])
        self._publish_tasks("task_changed", [live or original])
        self._publish_queue(added=1)
        self._request_schedule()
        return new, task.state is TaskState.RUNNING

    def _free_restart_id(self, task_id: str) -> str:
        candidate = self.store.next_free_restart_id(task_id)
        while candidate in self._submitting:
            candidate = self.store.next_free_restart_id(candidate)
        return candidate

    async def promote(self, task_id: str) -> Task:
        """Move a queued task to the front of the queue (top priority, first position)."""
        return await self._command(lambda: self._promote_step(task_id))

    def _promote_step(self, task_id: str) -> Task:
        task = self.get(task_id)
        if task.state is not TaskState.QUEUED:
            raise InvalidTransition(
                f"task {task_id!r} is {task.state.value}; only queued tasks move"
            )
        moved = task.copy()
        moved.priority = self.queue.max_priority()
        moved.queue_seq = self.queue.min_seq() - 1
        self.store.apply(updates=[(moved, TaskState.QUEUED)], strict=True)
        self._dequeue(task_id)
        self._enqueue(moved)
        self._publish_tasks("task_changed", [moved])
        self._publish_queue()
        self._request_schedule()
        return moved

    def set_gpu_enabled(self, index: int, enabled: bool) -> GpuSlot:
        slot = self.gpus.get(index)
        if slot is None:
            raise GpuNotFound(f"no GPU with index {index} (known: {sorted(self.gpus)})")
        slot.enabled = enabled
        self._publish_gpus()
        self._request_schedule()
        return slot

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
        restored = []
        for task in tasks:
            new = task.copy()
            new.move_to(TaskState.QUEUED)
            new.session_id = self.session_id
            new.queue_seq = self._next_seq
            self._next_seq += 1
            new.gpu_ids = []
            new.started_at = new.finished_at = new.exit_code = None
            new.pid = new.handle = new.reason = None
            new.log_path = None
            restored.append(new)
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
        self.events.publish("task_removed", {"task_id": task_id})

    # ------------------------------------------------------------------ the queue

    def _enqueue(self, task: Task) -> None:
        self.queued[task.task_id] = task
        self.queue.add(_queued(task))
        self._startable_since.setdefault(task.task_id, self.clock())

    def _dequeue(self, task_id: str) -> Task:
        task = self.queued.pop(task_id)
        self.queue.remove(task_id)
        self._startable_since.pop(task_id, None)
        return task

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
            self._write_pending()
            self._start_what_fits()
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
        if self._retry_handle is None or self._retry_handle.cancelled():
            loop = asyncio.get_running_loop()
            self._retry_handle = loop.call_later(self._retry_delay, self._retry_schedule)
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_DELAY * 4)

    def _retry_schedule(self) -> None:
        self._retry_handle = None
        self._request_schedule()

    def _start_what_fits(self) -> None:
        decision = policy.plan(
            self.queue,
            [self._gpu_view(s) for s in self.gpu_list()],
            policy=self.settings.RUNNER_policy,  # type: ignore[arg-type]
            running_cpu_tasks=sum(1 for t in self.running.values() if t.n_gpus == 0),
            max_cpu_tasks=self.settings.RUNNER_max_cpu_tasks,
        )
        self._plan = decision
        if not decision.starts:
            return
        now = self.clock()
        starting: list[Task] = []
        refused: list[Task] = []  # the executor cannot take it (e.g. no log path): it fails alone
        for start in decision.starts:
            task = self.queued[start.task_id].copy()
            task.gpu_ids = list(start.gpu_ids)
            try:
                handle = self.executor.prepare(self._launch_request(task))
            except Exception as exc:
                task.move_to(TaskState.FAILED)
                task.finished_at = now
                task.reason = _failure_reason(exc)
                task.gpu_ids = []
                refused.append(task)
                continue
            task.move_to(TaskState.RUNNING)
            task.started_at = now
            task.session_id = self.session_id
            self._set_handle(task, handle)  # "starting": recover() settles it after a crash
            starting.append(task)
        # Durable before the spawn: a crash from here on finds the task recorded as running on
        # these GPUs, and looks for its process instead of handing the GPUs to someone else.
        missed = self.store.apply(updates=[(t, TaskState.QUEUED) for t in starting + refused])
        launched = []
        for task in starting + refused:
            self._dequeue(task.task_id)
            if task.task_id in missed:
                self._say(f"task {task.task_id!r} changed outside ANT; not starting it")
            elif task.state is TaskState.RUNNING:
                self.running[task.task_id] = task
                self._reserve(task)
                launched.append(task)
        self._publish_tasks("task_changed", [t for t in refused if t.task_id not in missed])
        started = [task for task in launched if self._launch(task)]
        self._tell_backend()  # now with the pids
        self._publish_tasks("task_changed", started)
        self._publish_gpus()
        self._publish_queue()
        if self._ended:  # launch failures: record them (and free their GPUs) at once
            self._request_schedule()
        if self._unsaved_handles and self._handle_flush is None:
            self._handle_flush = asyncio.get_running_loop().call_later(
                HANDLE_FLUSH_DELAY, self._flush_handles
            )

    def _flush_handles(self) -> None:
        self._handle_flush = None
        if self._unsaved_handles:
            self._request_schedule()

    def _launch(self, task: Task) -> bool:
        """Spawn one task. Any failure fails this task alone, with its reason; never the pass."""
        assert task.handle is not None
        try:
            handle = self.executor.start(self._launch_request(task), task.handle)
        except Exception as exc:  # a bad log path, a missing directory, anything: this task only
            failed = task.copy()
            failed.move_to(TaskState.FAILED)
            failed.finished_at = self.clock()
            failed.reason = _failure_reason(exc)
            self._ended[task.task_id] = failed
            return False
        self._set_handle(task, handle)
        self._unsaved_handles[task.task_id] = task
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
        )

    def _gpu_view(self, slot: GpuSlot) -> policy.GpuView:
        return policy.GpuView(
            index=slot.info.index,
            enabled=slot.enabled,
            allocated_to=tuple(slot.task_ids),
            external=slot.external,
            unavailable=slot.unavailable,
        )

    def _reserve(self, task: Task) -> None:
        for index in task.gpu_ids:
            slot = self.gpus.get(index)
            if slot is not None and task.task_id not in slot.task_ids:
                slot.task_ids.append(task.task_id)
                slot.last_assigned = self.clock()
        self._tell_backend()

    def _release(self, task: Task) -> None:
        for index in task.gpu_ids:
            slot = self.gpus.get(index)
            if slot is not None and task.task_id in slot.task_ids:
                slot.task_ids.remove(task.task_id)
        self.task_gpu_mem.pop(task.task_id, None)
        self._tell_backend()

    def _tell_backend(self) -> None:
        """A simulated backend shows ANT's tasks as GPU processes (real GPUs see them anyway)."""
        setter = getattr(self.gpu_backend, "set_ant_processes", None)
        if setter is None:
            return
        by_gpu: dict[int, list[int]] = {}
        for task in self.running.values():
            for index in task.gpu_ids:
                if task.pid is not None:
                    by_gpu.setdefault(index, []).append(task.pid)
        setter(by_gpu)

    # ------------------------------------------------------------------ process reports

    def _on_exit(self, info: ExitInfo) -> None:
        """The executor saw a task end: recorded by the next pass, which then frees its GPUs."""
        task = self.running.get(info.task_id)
        if task is None or info.task_id in self._ended:
            return
        done = task.copy()
        if info.killed or info.task_id in self._killing:
            done.move_to(TaskState.KILLED)
        elif info.exit_code == 0:
            done.move_to(TaskState.SUCCEEDED)
        else:
            done.move_to(TaskState.FAILED)
            if info.exit_code is None:
                done.reason = "ended with an unknown exit code"
        done.exit_code = info.exit_code
        done.finished_at = self.clock()
        if info.lingering:
            done.reason = _join(done.reason, f"left {info.lingering} process(es) running")
        self._ended[info.task_id] = done
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

    def _arm_stray_timer(self, task_id: str) -> None:
        if self.settings.RUNNER_wait_for_strays or task_id in self._stray_timers:
            return
        loop = asyncio.get_running_loop()
        self._stray_timers[task_id] = loop.call_later(
            self.settings.RUNNER_stray_grace_seconds, self._kill_strays, task_id
        )

    def _kill_strays(self, task_id: str) -> None:
        self._stray_timers.pop(task_id, None)
        if task_id not in self.lingering or self._stopped:
            return
        self._say(f"killing the processes task {task_id!r} left behind")
        self._chore(self.executor.kill(task_id, self.settings.RUNNER_kill_grace_seconds))

    def _chore(self, coro: Any) -> None:
        """Run a background job whose end nobody awaits (kept referenced until it is done)."""
        chore = asyncio.ensure_future(coro)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    # ------------------------------------------------------------------ self-check

    def doctor(self) -> dict[str, Any]:
        """Compare the store, memory and the live processes (see selfcheck.py)."""
        return self_check(self)

    @property
    def unwritten(self) -> tuple[set[str], set[str]]:
        """(tasks whose end, tasks whose pid, is not durable yet): pending, not disagreements."""
        return set(self._ended), set(self._unsaved_handles)

    # ------------------------------------------------------------------ background loops

    async def _terminal_loop(self) -> None:
        """Every step_interval, send the live terminal of each running task to listeners."""
        while True:
            await asyncio.sleep(self.settings.step_interval)
            if self.events.subscribers == 0 or not self.running:
                continue
            snapshots = {}
            for task in list(self.running.values()):
                lines = self.terminal(task)
                snapshots[task.task_id] = {"lines": lines, "progress": parse_progress(lines)}
            self.events.publish("terminal", snapshots)

    async def _monitor_loop(self) -> None:
        """Sample GPUs and the host every MONITORING_refresh_interval, off the event loop."""
        backend = self.gpu_backend
        while True:
            samples: list[GpuSample] = []
            try:
                if backend is not None:
                    samples = await asyncio.to_thread(backend.sample)
                self.host = await asyncio.to_thread(sample_host)
            except Exception as exc:  # a backend must never take the server down
                self._say(f"monitor sampling failed: {exc}")
            before = {i: (s.unavailable, s.external) for i, s in self.gpus.items()}
            self._apply_samples(samples)
            if any(before[i] != (s.unavailable, s.external) for i, s in self.gpus.items()):
                self._request_schedule()
            self._publish_gpus()
            point = self._system_point()
            self.history.add(point)
            self.events.publish("system", point)
            await asyncio.sleep(self.settings.MONITORING_refresh_interval)

    def _apply_samples(self, samples: list[GpuSample]) -> None:
        """Store readings, attribute GPU processes to tasks, and run ADGS."""
        task_pids = {t.pid: t.task_id for t in self.running.values() if t.pid is not None}
        memory: dict[str, int] = {}
        now = self.clock()
        for sample in samples:
            slot = self.gpus.get(sample.index)
            if slot is None:
                continue
            slot.sample = sample
            slot.processes = attribute(sample.processes, task_pids)
            outside = [p for p in slot.processes if p.task_id is None]
            for p in slot.processes:
                if p.task_id is not None:
                    memory[p.task_id] = memory.get(p.task_id, 0) + p.used_memory
            if not self.settings.ADGS_enabled or sample.error:
                slot.external = None
                continue
            grace = now - slot.last_assigned < self.settings.ADGS_grace_seconds
            use = external_use(
                util=sample.util,
                mem_used=sample.mem_used,
                mem_total=sample.mem_total or slot.info.mem_total,
                external_mem=sum(p.used_memory for p in outside),
                external_processes=bool(outside),
                ant_owned=bool(slot.task_ids) or grace,
            )
            if self.adgs.update(sample.index, now, use):
                biggest = max(outside, key=lambda p: p.used_memory, default=None)
                slot.external = biggest.describe() if biggest else "an unseen process"
            else:
                slot.external = None
        self.task_gpu_mem = memory

    def _metrics_snapshot(self) -> dict[str, Any]:
        counts = self.store.count_by_state()
        return {
            "tasks_by_state": {state.value: n for state, n in counts.items()},
            "queue_length": len(self.queued),
            "gpus": [
                {
                    "index": s.info.index,
                    "util": s.sample.util if s.sample else 0.0,
                    "mem_used": s.sample.mem_used if s.sample else 0,
                    "mem_total": s.info.mem_total,
                    "allocated": 1 if s.task_ids else 0,
                    "external": 1 if s.external else 0,
                    "enabled": 1 if s.enabled else 0,
                }
                for s in self.gpu_list()
            ],
        }

    def _system_point(self) -> dict[str, Any]:
        return {
            "time": self.clock(),
            "host": host_dict(self.host) if self.host else None,
            "gpus": [
                {
                    "index": s.info.index,
                    "util": self.gpu_dict(s)["util"],
                    "mem_used": self.gpu_dict(s)["mem_used"],
                    "mem_total": s.info.mem_total,
                }
                for s in self.gpu_list()
            ],
        }

    def system(self) -> dict[str, Any]:
        """Current host and GPU readings plus the recent history, for the dashboard."""
        return {
            "current": self.history.items()[-1] if self.history.items() else self._system_point(),
            "history": self.history.items(),
            "history_size": self.settings.MONITORING_history_size,
            "smoother_alpha": self.settings.MONITORING_smoother_alpha,
        }

    async def _mirror_loop(self) -> None:
        """Copy new task output to ANT's stdout (LOGGER_log_to_stdout), line-prefixed."""
        while True:
            await asyncio.sleep(0.25)
            for task in list(self.running.values()):
                self._flush_follower(task)
            for task_id in list(self._followers):
                if task_id not in self.running:
                    del self._followers[task_id]

    def _flush_follower(self, task: Task) -> None:
        output = self.output(task)
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

    # ------------------------------------------------------------------ events

    def _publish_tasks(self, kind: str, tasks: list[Task]) -> None:
        for task in tasks:
            self.events.publish(kind, self.task_dict(task))

    def _publish_gpus(self) -> None:
        self.events.publish("gpus", [self.gpu_dict(s) for s in self.gpu_list()])

    def _publish_queue(self, added: int = 0) -> None:
        """The queue changed: a small event (lists, positions and reasons are read on demand)."""
        self.events.publish("queue", {"queued": len(self.queued), "added": added})

    def _say(self, message: str) -> None:
        print(f"ant: {message}", file=sys.stderr, flush=True)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _expanded_size(spec: TaskSpec) -> int:
    env = sum(len(k) + len(v) for k, v in spec.env.items())
    return len(spec.command) + len(spec.submitted) + len(spec.task_id) + env


def _ghost(task_id: str, behind: LeftBehind, now: float) -> Task:
    """Stands in for a deleted task whose processes are still alive, so they keep their GPUs."""
    gpu_ids = list(behind.gpu_ids)
    return Task(
        task_id=task_id,
        command="",
        submitted="",
        n_gpus=len(gpu_ids),
        env={},
        state=TaskState.KILLED,
        priority=0,
        created_at=now,
        gpu_ids=gpu_ids,
        finished_at=now,
        reason="deleted, but its processes were still running",
    )


def _failure_reason(exc: Exception) -> str:
    if isinstance(exc, AntError):
        return exc.message
    return f"could not start: {type(exc).__name__}: {exc}"


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


__all__ = ["Engine", "GpuSlot"]
