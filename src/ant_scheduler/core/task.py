"""The task model: what a task is, its states, and the one table of allowed state changes."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from ant_scheduler.core.errors import InvalidTransition
from ant_scheduler.core.users import ADMIN_NAME


class TaskState(str, enum.Enum):
    QUEUED = "queued"
    HELD = "held"  # recovered after a restart, waiting for the user to restore or forget it
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"  # was running while ANT was down and vanished without an exit code
    TIMED_OUT = "timed_out"  # killed by ANT when it ran longer than its timeout
    # Never ran: a task it waited for (`after`) ended in a way its condition can never accept.
    DEPENDENCY_FAILED = "dependency_failed"

    # Shown as its value ("queued"), in f-strings too, as a str enum should be.
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATES

    @property
    def is_active(self) -> bool:
        """Queued or running: lives in the engine's memory, not only in the store."""
        return self in (TaskState.QUEUED, TaskState.RUNNING)


FINISHED_STATES = frozenset(
    {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.KILLED,
        TaskState.TIMED_OUT,
        TaskState.DEPENDENCY_FAILED,
    }
)
# Nothing more will happen to the task unless someone acts (restore, restart): what `ant wait`
# waits for, and what the UI lists as completed.
ENDED_STATES = FINISHED_STATES | {TaskState.LOST}
# Ends that count as failures where ANT sums them up (the dashboard's "failed in 24 h"): the
# command went wrong, not the user's own kill nor ANT losing it.
FAILURE_STATES = frozenset({TaskState.FAILED, TaskState.TIMED_OUT})

# The single source of truth for the lifecycle. Anything not listed is refused.
ALLOWED_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # FAILED: it could not be launched; KILLED: cancelled by the user before it started.
    # DEPENDENCY_FAILED: a task it waited for ended in a way its condition never accepts.
    TaskState.QUEUED: frozenset(
        {
            TaskState.RUNNING,
            TaskState.HELD,
            TaskState.FAILED,
            TaskState.KILLED,
            TaskState.DEPENDENCY_FAILED,
        }
    ),
    # A held task is restored to the queue (forgetting it deletes the row, not a transition).
    TaskState.HELD: frozenset({TaskState.QUEUED}),
    # QUEUED: an attempt ended and the task will be retried (core/retries.py): it goes straight
    # back to the queue, so no end is ever recorded for it (`ant wait` and dependents see none).
    TaskState.RUNNING: frozenset(
        {
            TaskState.QUEUED,
            TaskState.SUCCEEDED,
            TaskState.FAILED,
            TaskState.KILLED,
            TaskState.LOST,
            TaskState.TIMED_OUT,
        }
    ),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.KILLED: frozenset(),
    TaskState.TIMED_OUT: frozenset(),
    TaskState.DEPENDENCY_FAILED: frozenset(),
    # A lost task can be restored: it is queued again under the same id.
    TaskState.LOST: frozenset({TaskState.QUEUED}),
}


def check_transition(current: TaskState, new: TaskState) -> None:
    """Raise InvalidTransition unless `current -> new` is allowed."""
    if new not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a {current.value} task cannot become {new.value}")


Condition = Literal["ok", "any", "fail"]
CONDITIONS: tuple[Condition, ...] = ("ok", "any", "fail")


@dataclass(frozen=True)
class Dependency:
    """One entry of a task's `after`: start only once `task_id` ended as `condition` asks
    (ok: it succeeded; any: it ended, however; fail: it ended without succeeding)."""

    task_id: str
    condition: Condition = "ok"

    def __str__(self) -> str:
        return self.task_id if self.condition == "ok" else f"{self.task_id}:{self.condition}"


@dataclass
class TaskSpec:
    """What the parser produces from user input: a task that has not been accepted yet."""

    task_id: str
    command: str  # final command, after ant_wd / conda wrapping and {rand} substitution
    submitted: str  # the text the user typed for this task (one logical line in multi mode)
    n_gpus: int
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    workdir: str | None = None  # from ant_wd; None means the directory ANT was launched from
    n_nodes: int = 1  # n_gpus GPUs on each of n_nodes distinct nodes (a gang when more than 1)
    timeout: float | None = None  # seconds it may run before ANT kills it (timed_out)
    notify: str | None = None  # a webhook URL told when it ends (core/notification.py)
    retries: int = 0  # how many times it is run again after an attempt ends as `retry_on` says
    retry_on: list[str] = field(default_factory=lambda: ["failure"])  # failure, lost, timeout
    retry_backoff: float = 30.0  # seconds before the first retry; doubles each retry (retries.py)

    after: list[Dependency] = field(default_factory=list)  # tasks it waits for
    tags: list[str] = field(default_factory=list)  # labels to find, act on, pause a group by
    gpu_mem: int | None = None  # bytes of one GPU it shares with other such tasks (packing)
    owner: str = ADMIN_NAME  # the user submitting it (set by the engine, not parsed)


@dataclass(frozen=True)
class Attempt:
    """One run of a task that ended: each keeps its own log and exit code."""

    attempt: int  # 1-based
    state: TaskState  # how it ended (succeeded, failed, killed, lost, timed_out)
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    log_path: str | None  # read it with GET /api/v1/tasks/{id}/log?attempt=N
    reason: str | None = None
    handle: dict[str, Any] | None = None  # the executor's, to read this attempt's output

    def as_json(self) -> dict[str, Any]:
        """As stored and sent (dataclasses.asdict is ~10x slower: a deep copy; every end pays)."""
        return {
            "attempt": self.attempt,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "log_path": self.log_path,
            "reason": self.reason,
            "handle": self.handle,
        }


@dataclass
class Task:
    """An accepted task. Times are POSIX seconds (floats), set by the engine's clock."""

    task_id: str
    command: str
    submitted: str
    n_gpus: int
    env: dict[str, str]
    state: TaskState
    priority: int
    created_at: float
    workdir: str | None = None
    gpu_ids: list[int] = field(default_factory=list)
    queue_seq: int = 0  # position key within a priority: lower starts first
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    log_path: str | None = None
    pid: int | None = None  # shown to users, when the executor has one
    # How the executor finds the task again after a restart (opaque to everyone else).
    handle: dict[str, Any] | None = None
    session_id: int | None = None  # server session in which the task was last queued or running
    reason: str | None = None  # why it failed/was lost/held, when ANT knows
    restarted_as: str | None = None  # the copy its last restart queued (one live copy at a time)
    n_nodes: int = 1  # n_gpus GPUs on each of n_nodes distinct nodes, all at once
    # The node of each rank (rank 0 first), set when it starts; empty on this machine alone.
    nodes: list[str] = field(default_factory=list)
    timeout: float | None = None  # seconds it may run; then ANT kills it and it ends timed_out
    restarted_from: str | None = None  # the task whose restart queued this one (its lineage)
    # A webhook URL (http/https) that gets a POST when the task ends, besides NOTIFY_webhook_url.
    # It may hold a token: the API shows it masked (core/notification.py mask_url).
    notify: str | None = None
    retries: int = 0  # runs again (up to this many times) after an attempt ends as retry_on says
    retry_on: list[str] = field(default_factory=lambda: ["failure"])  # failure, lost, timeout
    retry_backoff: float = 30.0  # seconds before the first retry, doubling each retry
    attempt: int = 1  # the current (or last) attempt, 1-based
    attempts: list[Attempt] = field(default_factory=list)  # the attempts that ended, in order
    retry_at: float | None = None  # queued for a retry: it may not start before this time
    after: list[Dependency] = field(default_factory=list)  # tasks it waits for (dependencies)
    tags: list[str] = field(default_factory=list)  # core/tags.py's rule; a restart copy keeps them
    # GPU memory packing (P13): the bytes of one shared GPU it declared instead of whole GPUs.
    gpu_mem: int | None = None
    placement: str | None = None  # which GPUs it got and why (shared GPU, links), at its start
    # The most GPU memory its processes were seen using while over gpu_mem (bytes); None: never.
    gpu_mem_over: int | None = None
    owner: str = ADMIN_NAME  # the user who submitted it (core/users.py); a restart copy keeps it

    @classmethod
    def from_spec(cls, spec: TaskSpec, *, created_at: float, queue_seq: int) -> Task:
        return cls(
            task_id=spec.task_id,
            command=spec.command,
            submitted=spec.submitted,
            n_gpus=spec.n_gpus,
            env=dict(spec.env),
            state=TaskState.QUEUED,
            priority=spec.priority,
            created_at=created_at,
            workdir=spec.workdir,
            queue_seq=queue_seq,
            n_nodes=spec.n_nodes,
            timeout=spec.timeout,
            notify=spec.notify,
            retries=spec.retries,
            retry_on=list(spec.retry_on),
            retry_backoff=spec.retry_backoff,
            after=list(spec.after),
            tags=list(spec.tags),
            gpu_mem=spec.gpu_mem,
            owner=spec.owner,
        )

    def move_to(self, new: TaskState) -> None:
        """Change state, enforcing ALLOWED_TRANSITIONS."""
        check_transition(self.state, new)
        self.state = new

    def copy(self) -> Task:
        handle = dict(self.handle) if self.handle is not None else None
        return dataclasses.replace(
            self,
            env=dict(self.env),
            gpu_ids=list(self.gpu_ids),
            handle=handle,
            nodes=list(self.nodes),
            retry_on=list(self.retry_on),
            attempts=list(self.attempts),
            after=list(self.after),
            tags=list(self.tags),
        )

    def queue_order_key(self) -> tuple[int, int]:
        """Higher priority first, then lower queue_seq (earlier submission or promoted)."""
        return (-self.priority, self.queue_seq)
