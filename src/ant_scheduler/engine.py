"""The engine: the one owner of ANT's state (queue, running tasks, GPU pool).

Every change is persisted through the store before it is published, the policy decides what starts,
the executor runs it. All methods run on the event loop thread; nothing here blocks for long except
the store's fsync, which is the price of "an acknowledged task is never lost".
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from ant_scheduler.core import policy
from ant_scheduler.core.errors import AntError, InvalidTransition, TaskNotFound, TaskRejected
from ant_scheduler.core.parsing import (
    SubmitDefaults,
    format_copy_command,
    parse_submission,
    process_env,
)
from ant_scheduler.core.task import Task, TaskState
from ant_scheduler.core.terminal import parse_progress, render_terminal
from ant_scheduler.events import EventBus
from ant_scheduler.executors.base import Executor, ExitInfo, LaunchError, LaunchRequest
from ant_scheduler.executors.local import read_exit_file
from ant_scheduler.logs import LogFollower, exit_path_for, log_path_for, read_tail_bytes
from ant_scheduler.metrics import Metrics
from ant_scheduler.monitor.adgs import AdgsConfig, AdgsTracker, external_use
from ant_scheduler.monitor.attribution import ProcessOwner, attribute
from ant_scheduler.monitor.base import GpuBackend, GpuInfo, GpuSample
from ant_scheduler.monitor.host import History, HostSample, host_dict, sample_host
from ant_scheduler.settings import Settings
from ant_scheduler.store import Store

TERMINAL_TAIL_BYTES = 64 * 1024


class GpuNotFound(AntError):
    code = "gpu_not_found"
    status = 404


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
        self.queued: dict[str, Task] = {}
        self.running: dict[str, Task] = {}
        self.gpus: dict[int, GpuSlot] = {}
        self.pending_reasons: dict[str, str] = {}
        self.queue_positions: dict[str, int] = {}
        self.session_id = 0
        self.session_dir_name = ""
        self.started_at = 0.0
        self.recovery_summary: dict[str, int] = {}
        self._killing: set[str] = set()
        self._next_seq = 1
        self._schedule_pending = False
        self._background: list[asyncio.Task[None]] = []
        self._followers: dict[str, LogFollower] = {}
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
        self._ended: dict[str, Task] = {}  # finished tasks not yet written (see _on_exit)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open a new server session, recover what the last run left, start the loops."""
        self.started_at = self.clock()
        self.session_dir_name = datetime.fromtimestamp(self.started_at).strftime("%Y%m%d-%H%M%S")
        self.session_id = self.store.begin_session(self.started_at, self.session_dir_name)
        if self.gpu_backend is not None:
            for info in self.gpu_backend.gpus():
                self.gpus[info.index] = GpuSlot(info=info)
        self._next_seq = self.store.max_queue_seq() + 1
        self.executor.set_exit_callback(self._on_exit)
        self._recover()
        loop_makers: list[Callable[[], Any]] = [self._terminal_loop, self._monitor_loop]
        if self.settings.LOGGER_log_to_stdout:
            loop_makers.append(self._mirror_loop)
        self._background = [asyncio.create_task(make()) for make in loop_makers]
        self._request_schedule()

    async def stop(self) -> str:
        """Stop the loops; keep or end running tasks (RUNNER_on_shutdown); say what happened."""
        if self._stopped:
            return ""
        self._stopped = True
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
        self.executor.close()
        self._write(list(self._ended.values()))
        self.store.end_session(self.session_id, self.clock())
        if self.gpu_backend is not None:
            self.gpu_backend.close()
        return message

    def _recover(self) -> None:
        """Re-adopt live tasks, settle those that ended while ANT was down, hold the queue."""
        adopted = finished = lost = held = requeued = 0
        for task in self.store.load_tasks([TaskState.RUNNING]):
            exit_path = exit_path_for(Path(task.log_path)) if task.log_path else None
            if (
                task.pid is not None
                and task.pid_start_time is not None
                and exit_path is not None
                and self.executor.adopt(task.task_id, task.pid, task.pid_start_time, exit_path)
            ):
                self.running[task.task_id] = task
                self._reserve(task)
                adopted += 1
                continue
            code = read_exit_file(exit_path) if exit_path is not None else None
            if code is not None and exit_path is not None:
                task.move_to(TaskState.SUCCEEDED if code == 0 else TaskState.FAILED)
                task.exit_code = code
                task.finished_at = _mtime(exit_path) or self.clock()
                task.reason = "finished while ANT was down"
                finished += 1
            else:
                task.move_to(TaskState.LOST)
                task.finished_at = self.clock()
                task.reason = "the process vanished while ANT was down (exit code unknown)"
                lost += 1
            self.store.update_task(task)
        hold = self.settings.RECOVERY_enabled and not self.settings.RECOVERY_auto_restore
        to_write = []
        for task in self.store.load_tasks([TaskState.QUEUED]):
            if hold:
                task.move_to(TaskState.HELD)
                task.reason = "queued when ANT stopped; restore it to run it"
                to_write.append(task)
                held += 1
            else:
                task.session_id = self.session_id
                to_write.append(task)
                self.queued[task.task_id] = task
                self._startable_since[task.task_id] = self.clock()
                requeued += 1
        self.store.update_tasks(to_write)
        self.recovery_summary = {
            "adopted": adopted,
            "finished_while_down": finished,
            "lost": lost,
            "held": held,
            "requeued": requeued,
        }

    # ------------------------------------------------------------------ queries

    def get(self, task_id: str) -> Task:
        task = (
            self.running.get(task_id)
            or self.queued.get(task_id)
            or self._ended.get(task_id)
            or self.store.get_task(task_id)
        )
        if task is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return task

    def list_tasks(
        self,
        states: Collection[TaskState] | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Task], int]:
        return self.store.list_tasks(states=states, q=q, limit=limit, offset=offset)

    def queue_info(self, task: Task) -> tuple[int | None, str | None]:
        """(queue position counting from 1, pending reason) for a queued task."""
        if task.state is not TaskState.QUEUED:
            return None, None
        return self.queue_positions.get(task.task_id), self.pending_reasons.get(task.task_id)

    def task_dict(self, task: Task) -> dict[str, Any]:
        """The Task JSON of the API (also carried by task events)."""
        position, reason = self.queue_info(task)
        return {
            "task_id": task.task_id,
            "command": task.command,
            "submitted": task.submitted,
            "n_gpus": task.n_gpus,
            "gpu_ids": list(task.gpu_ids),
            "env": dict(task.env),
            "state": task.state.value,
            "priority": task.priority,
            "queue_position": position,
            "pending_reason": reason,
            "created_at": task.created_at,
            "started_at": task.started_at,
            "finished_at": task.finished_at,
            "exit_code": task.exit_code,
            "log_path": task.log_path,
            "reason": task.reason,
            "pid": task.pid,
            "session_id": task.session_id,
            "gpu_mem_used": self.task_gpu_mem.get(task.task_id)
            if task.state is TaskState.RUNNING
            else None,
            "copy_command": format_copy_command(
                task.task_id, task.n_gpus, task.env, task.submitted
            ),
        }

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

    def terminal(self, task: Task, lines: int | None = None) -> list[str]:
        if not task.log_path:
            return []
        height = lines or self.settings.VISUALIZER_terminal_win_height
        data = read_tail_bytes(Path(task.log_path), TERMINAL_TAIL_BYTES)
        return render_terminal(data.decode("utf-8", errors="replace"), height)

    # ------------------------------------------------------------------ commands

    def submit(
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
        specs = parse_submission(
            text,
            mode=mode,
            defaults=defaults,
            rng=self.rng,
            now=datetime.fromtimestamp(self.clock()),
        )
        now = self.clock()
        tasks = []
        for spec in specs:
            task = Task.from_spec(spec, created_at=now, queue_seq=self._next_seq)
            task.session_id = self.session_id
            self._next_seq += 1
            tasks.append(task)
        self.store.insert_tasks(tasks)  # raises DuplicateTaskId, writes nothing on error
        for task in tasks:
            self.queued[task.task_id] = task
            self._startable_since[task.task_id] = self.clock()
        self._refresh_positions()
        self._publish_tasks("task_added", tasks)
        self._request_schedule()
        return tasks

    async def kill(self, task_id: str) -> Task:
        """Kill a running task (SIGTERM, then SIGKILL after the grace) or cancel a queued one."""
        task = self.get(task_id)
        if task.state is TaskState.QUEUED:
            task.move_to(TaskState.KILLED)
            task.finished_at = self.clock()
            task.reason = "cancelled before it started"
            del self.queued[task_id]
            self._startable_since.pop(task_id, None)
            self.store.update_task(task)
            self._publish_tasks("task_changed", [task])
            self._request_schedule()
            return task
        if task.state is not TaskState.RUNNING:
            raise InvalidTransition(f"task {task_id!r} is {task.state.value}; nothing to kill")
        self._killing.add(task_id)
        await self.executor.kill(task_id, self.settings.RUNNER_kill_grace_seconds)
        return self.get(task_id)

    def delete(self, task_id: str) -> None:
        task = self.get(task_id)
        if task.state is TaskState.RUNNING:
            raise InvalidTransition(f"task {task_id!r} is running; kill it first")
        self.store.delete_task(task_id)
        self._startable_since.pop(task_id, None)
        if self.queued.pop(task_id, None) is not None:
            self._request_schedule()
        self.events.publish("task_removed", {"task_id": task_id})

    async def restart(self, task_id: str) -> Task:
        """Queue a copy of a finished or running task (a running one is killed first)."""
        task = self.get(task_id)
        if task.state in (TaskState.QUEUED, TaskState.HELD):
            raise InvalidTransition(f"task {task_id!r} is {task.state.value}; it has not run yet")
        if task.state is TaskState.RUNNING:
            await self.kill(task_id)
        new = task.copy()
        new.task_id = self.store.next_free_restart_id(task_id)
        new.state = TaskState.QUEUED
        new.created_at = self.clock()
        new.queue_seq = self._next_seq
        self._next_seq += 1
        new.session_id = self.session_id
        new.gpu_ids = []
        new.started_at = new.finished_at = new.exit_code = None
        new.log_path = new.pid = new.pid_start_time = new.reason = None
        self.store.insert_tasks([new])
        self.queued[new.task_id] = new
        self._startable_since[new.task_id] = self.clock()
        self._refresh_positions()
        self._publish_tasks("task_added", [new])
        self._request_schedule()
        return new

    def promote(self, task_id: str) -> Task:
        """Move a queued task to the front of the queue (top priority, first position)."""
        task = self.get(task_id)
        if task.state is not TaskState.QUEUED:
            raise InvalidTransition(
                f"task {task_id!r} is {task.state.value}; only queued tasks move"
            )
        others = [t for t in self.queued.values() if t.task_id != task_id]
        task.priority = max([task.priority, *(t.priority for t in others)])
        task.queue_seq = min([task.queue_seq, *(t.queue_seq for t in others)]) - 1
        self.store.update_task(task)
        self._refresh_positions()
        self._request_schedule()
        self._publish_tasks("task_changed", [task])
        return task

    def set_gpu_enabled(self, index: int, enabled: bool) -> GpuSlot:
        slot = self.gpus.get(index)
        if slot is None:
            raise GpuNotFound(f"no GPU with index {index} (known: {sorted(self.gpus)})")
        slot.enabled = enabled
        self._publish_gpus()
        self._request_schedule()
        return slot

    def restore(self, task_ids: Iterable[str]) -> list[Task]:
        """Put held or lost tasks back in the queue under the same id."""
        ids = list(dict.fromkeys(task_ids))
        tasks = [self.get(i) for i in ids]
        for task in tasks:
            if task.state not in (TaskState.HELD, TaskState.LOST):
                raise InvalidTransition(
                    f"task {task.task_id!r} is {task.state.value}, not held/lost"
                )
        for task in tasks:
            task.move_to(TaskState.QUEUED)
            task.session_id = self.session_id
            task.queue_seq = self._next_seq
            self._next_seq += 1
            task.gpu_ids = []
            task.started_at = task.finished_at = task.exit_code = None
            task.pid = task.pid_start_time = task.reason = None
            task.log_path = None
        self.store.update_tasks(tasks)
        for task in tasks:
            self.queued[task.task_id] = task
            self._startable_since[task.task_id] = self.clock()
        self._refresh_positions()
        self._publish_tasks("task_changed", tasks)
        self._request_schedule()
        return tasks

    def forget(self, task_id: str) -> None:
        """Delete a held or lost task from recovery history (its log file stays)."""
        task = self.get(task_id)
        if task.state not in (TaskState.HELD, TaskState.LOST):
            raise InvalidTransition(f"task {task_id!r} is {task.state.value}, not held/lost")
        self.store.delete_task(task_id)
        self.events.publish("task_removed", {"task_id": task_id})

    # ------------------------------------------------------------------ scheduling

    def _request_schedule(self) -> None:
        """Coalesce triggers from one loop iteration into one policy run, started at once."""
        if self._schedule_pending or self._stopped:
            return
        self._schedule_pending = True
        asyncio.get_running_loop().call_soon(self._schedule)

    def _schedule(self) -> None:
        self._schedule_pending = False
        if self._stopped:
            return
        queue = [
            policy.QueuedTask(t.task_id, t.n_gpus, t.priority, t.queue_seq)
            for t in self.queued.values()
        ]
        gpus = [
            policy.GpuView(
                index=s.info.index,
                enabled=s.enabled,
                allocated_to=tuple(s.task_ids),
                external=s.external,
                unavailable=s.unavailable,
            )
            for s in self.gpu_list()
        ]
        running_cpu = sum(1 for t in self.running.values() if t.n_gpus == 0)
        decision = policy.plan(
            queue,
            gpus,
            policy=self.settings.RUNNER_policy,  # type: ignore[arg-type]
            running_cpu_tasks=running_cpu,
            max_cpu_tasks=self.settings.RUNNER_max_cpu_tasks,
        )
        changed: list[Task] = []
        for start in decision.starts:
            task = self.queued.pop(start.task_id)
            changed.append(self._launch(task, list(start.gpu_ids)))
        ended = list(self._ended.values())
        self._write([*ended, *changed])
        changed = ended + changed
        self.pending_reasons = dict(decision.pending)
        self._refresh_positions()
        if changed:
            self._publish_tasks("task_changed", changed)
            self._publish_gpus()
        if queue and (changed or decision.pending):
            self.events.publish(
                "queue",
                {"positions": self.queue_positions, "pending_reasons": self.pending_reasons},
            )

    def _write(self, tasks: list[Task]) -> None:
        if not tasks:
            return
        try:
            self.store.update_tasks(tasks)
        except Exception as exc:  # the disk went away: say so, keep the server up, retry later
            self._say(f"could not record {len(tasks)} task change(s): {exc}")
            return
        for task in tasks:
            if self._ended.get(task.task_id) is task:
                del self._ended[task.task_id]

    def _refresh_positions(self) -> None:
        order = sorted(self.queued.values(), key=Task.queue_order_key)
        self.queue_positions = {t.task_id: n for n, t in enumerate(order, 1)}

    def _launch(self, task: Task, gpu_ids: list[int]) -> Task:
        log_path = log_path_for(self.log_dir, self.session_dir_name, task.task_id)
        request = LaunchRequest(
            task_id=task.task_id,
            command=task.command,
            env=process_env(task.env),
            gpu_ids=tuple(gpu_ids),
            cwd=self.launch_dir,
            log_path=log_path,
            exit_path=exit_path_for(log_path),
        )
        task.log_path = str(log_path)
        try:
            proc = self.executor.start(request)
        except LaunchError as exc:
            task.move_to(TaskState.FAILED)
            task.finished_at = self.clock()
            task.reason = exc.message
            return task
        task.move_to(TaskState.RUNNING)
        task.gpu_ids = gpu_ids
        task.started_at = self.clock()
        task.pid = proc.pid
        task.pid_start_time = proc.start_time
        task.session_id = self.session_id
        self.running[task.task_id] = task
        since = self._startable_since.pop(task.task_id, task.created_at)
        self.metrics.dispatch_latency.observe(max(0.0, task.started_at - since))
        self._reserve(task)
        return task

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

    def _on_exit(self, info: ExitInfo) -> None:
        task = self.running.pop(info.task_id, None)
        if task is None:
            return
        killed = info.killed or info.task_id in self._killing
        self._killing.discard(info.task_id)
        if killed:
            task.move_to(TaskState.KILLED)
        elif info.exit_code == 0:
            task.move_to(TaskState.SUCCEEDED)
        else:
            task.move_to(TaskState.FAILED)
            if info.exit_code is None:
                task.reason = "ended with an unknown exit code"
        task.exit_code = info.exit_code
        task.finished_at = self.clock()
        if task.started_at is not None:
            self.metrics.task_duration.labels(task.state.value).observe(
                max(0.0, task.finished_at - task.started_at)
            )
        self._release(task)
        self._flush_follower(task)
        # Written by the next _schedule, in one transaction with every other exit of this loop
        # iteration: one fsync for a burst of exits instead of one each.
        self._ended[task.task_id] = task
        self._request_schedule()

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
        if not self.settings.LOGGER_log_to_stdout or not task.log_path:
            return
        follower = self._followers.get(task.task_id)
        if follower is None:
            follower = self._followers[task.task_id] = LogFollower(Path(task.log_path))
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

    def _say(self, message: str) -> None:
        print(f"ant: {message}", file=sys.stderr, flush=True)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


__all__ = ["Engine", "GpuNotFound", "GpuSlot", "TaskRejected"]
