"""The API's answers: what a client receives, declared once, in plain dataclasses.

The server uses these as FastAPI response models (so they are the OpenAPI schema, and through it
the UI's generated TypeScript types); the Python client parses answers into them. Nothing here
imports pydantic or the server, so `ant` stays light. A task as shown is the stored Task (one
declaration, core/task.py) plus what is computed when it is read (TaskOut). The live event
stream's payloads are declared here too (EventPayloads), and added to the schema by the server.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ant_scheduler.core.task import ENDED_STATES, Attempt, Dependency, Task, TaskState

# Fields with a default are still always present in answers: the schema says they are required
# (pydantic reads this from plain dataclasses, so the UI's types do not make them optional).
_ALWAYS_SENT = {"json_schema_serialization_defaults_required": True}

T = TypeVar("T")


@dataclass
class TaskOut(Task):
    """A task as the API shows it: every stored field, and what is computed when it is read."""

    __pydantic_config__ = _ALWAYS_SENT

    queue_position: int | None = None  # queued tasks, counting from 1
    pending_reason: str | None = None  # why a queued task waits
    gpu_mem_used: int | None = None  # GPU memory its processes use now (running tasks)
    lingering_processes: int = 0  # processes it left running after it ended (they keep its GPUs)
    # [ant_task_id=<its template>] ant_n_gpus=… ant_envar=… <command>: submits it as a new task
    copy_command: str = ""


@dataclass
class TasksOut:
    tasks: list[TaskOut]


@dataclass
class PreviewTask:
    """A task as a submit would queue it (POST /api/v1/tasks/preview): nothing is stored."""

    __pydantic_config__ = _ALWAYS_SENT

    task_id: str  # after templates; a real submit draws random ones again
    n_gpus: int
    n_nodes: int
    command: str  # the final command (after ant_wd / conda wrapping and {rand})
    env: dict[str, str]
    priority: int
    timeout: float | None = None  # seconds
    notify: str | None = None  # the task's webhook URL, masked
    retries: int = 0
    retry_on: list[str] = field(default_factory=lambda: ["failure"])
    retry_backoff: float = 30.0  # seconds
    after: list[Dependency] = field(default_factory=list)  # the tasks it would wait for
    tags: list[str] = field(default_factory=list)
    gpu_mem: int | None = None  # bytes of one shared GPU (GPU memory packing)


@dataclass
class PreviewOut:
    tasks: list[PreviewTask]  # the first PREVIEW_MAX_TASKS of them
    total: int  # how many tasks the submission makes


@dataclass
class TaskPage:
    tasks: list[TaskOut]
    total: int


@dataclass
class LogOut:
    task_id: str
    text: str
    lines: int
    size: int  # the file's size in bytes when read; stream from here with ?offset=


@dataclass
class LogLinesOut:
    """Lines of a task's log by number (GET /tasks/{id}/log/lines); numbers are 0-based."""

    task_id: str
    rank: int
    start: int  # the number of the first line in `lines`
    lines: list[str]  # raw text (colour codes and carriage returns kept), without the newline
    cut: list[int]  # lines shown cut at max_line_bytes (the download has them whole)
    total_lines: int  # lines counted so far (all of them when counted_bytes == size)
    counted_bytes: int  # how far the count has read
    size: int  # the log's size in bytes now
    available: bool  # False: no output of this task here (not started, or no local log)
    max_line_bytes: int


@dataclass
class LogSearchOut:
    """Lines of a task's log holding a text (GET /tasks/{id}/log/search)."""

    task_id: str
    rank: int
    q: str
    lines: list[int]  # numbers (0-based) of the lines holding q, in order
    next_line: int | None  # not searched from this line on (limit or time ran out): go on there
    total_lines: int  # lines counted so far
    counted_bytes: int
    size: int


@dataclass
class TerminalOut:
    task_id: str
    lines: list[str]
    progress: float | None


@dataclass
class GpuProcessOut:
    pid: int
    used_memory: int
    task_id: str | None  # the ANT task whose process tree holds it, or null
    user: str | None
    command: str | None


@dataclass
class GpuOut:
    __pydantic_config__ = _ALWAYS_SENT

    index: int  # ANT's id of the GPU (the cluster's, on several nodes)
    uuid: str
    name: str
    enabled: bool
    state: Literal["free", "allocated", "disabled", "busy_external", "unavailable"]
    task_ids: list[str]
    util: float
    mem_used: int
    mem_total: int
    external: str | None
    error: str | None
    note: str | None = None  # e.g. "2 stray processes of train-1" (they keep it busy)
    pci_bus_id: str = ""
    temperature: float | None = None
    power_watts: float | None = None
    processes: list[GpuProcessOut] = field(default_factory=list)
    node: str = ""  # the node it is on; "" = this machine
    local_index: int = 0  # its index on its node (= index on this machine)
    label: str = ""  # how to name it: "node-b:1" on a cluster, "3" on this machine
    # GPU memory packing: bytes the memory tasks sharing it declared (0: none shares it).
    mem_declared: int = 0


@dataclass
class RecoveryOut:
    last_session: list[TaskOut]
    earlier_sessions: list[TaskOut]


@dataclass
class Deleted:
    __pydantic_config__ = _ALWAYS_SENT

    task_id: str
    deleted: bool = True


@dataclass
class ImportOut:
    """What `POST /api/v1/import/ant1` did with an ANT 1.1 recovery file (docs/migration.md)."""

    __pydantic_config__ = _ALWAYS_SENT

    imported: int  # tasks added: ended ones to history, interrupted and queued ones held
    held: int  # of those, the ones held in recovery (restore them to run them)
    already_there: int  # skipped: ANT has that task already (same id, same command)
    clashes: list[str]  # skipped: the id is another task's in ANT (never overwritten)
    without_task_id: int  # entries without a task id: skipped
    older_copies: int  # entries of an id the file has a newer entry of: skipped
    invalid: list[str]  # "id: why" for entries ANT cannot take (an id it refuses, no command)
    logs_copied: int  # log files brought into ANT's log directory
    logs_missing: int  # entries naming a log file that is no longer there
    task_ids: list[str]  # the tasks imported


@dataclass
class Health:
    status: Literal["ok"]
    version: str


@dataclass
class ExecutorStatus:
    __pydantic_config__ = _ALWAYS_SENT

    name: str  # RUNNER_executor: "local", ...
    available: bool  # it can start tasks now
    detail: str | None = None  # why it cannot, e.g. "Ray cluster at ... unreachable since 17:32:01"


@dataclass
class NodeOut:
    name: str
    alive: bool  # in the cluster now (a node that left keeps its GPUs, offline)
    gpus: int  # GPUs ANT knows on it
    usable: int  # of them enabled and working


@dataclass
class NotificationsOut:
    """Webhook deliveries since ANT started (docs/workflows.md, Notifications)."""

    __pydantic_config__ = _ALWAYS_SENT

    sent: int = 0  # taken by the receiver (2xx)
    failed: int = 0  # given up after NOTIFY_retries retries
    dropped: int = 0  # not queued: NOTIFY_queue_size were waiting already
    pending: int = 0  # queued, being sent, or waiting to be retried
    last_error: str | None = None  # the last failure, its URL masked


@dataclass
class PausedTag:
    """A tag whose queued tasks do not start (`ant pause --tag T`); running ones go on."""

    tag: str
    paused_at: float  # since when (POSIX seconds)


@dataclass
class HealthOut:
    """GET /api/v1/health: ANT is up; can it start tasks; on which nodes."""

    __pydantic_config__ = _ALWAYS_SENT

    status: Literal["ok", "degraded"]  # degraded: the executor cannot start tasks now
    version: str
    executor: ExecutorStatus
    nodes: list[NodeOut] = field(default_factory=list)  # empty on this machine alone
    paused: bool = False  # `ant pause`: nothing new starts (running tasks go on)
    paused_at: float | None = None  # since when (POSIX seconds)
    notifications: NotificationsOut = field(default_factory=NotificationsOut)
    paused_tags: list[PausedTag] = field(default_factory=list)  # `ant pause --tag T`, by tag


@dataclass
class QueueOut:
    """POST /api/v1/queue/pause and /resume, GET /api/v1/queue: whether new tasks start."""

    __pydantic_config__ = _ALWAYS_SENT

    paused: bool  # nothing new starts; running tasks go on
    paused_at: float | None = None  # since when (POSIX seconds)
    paused_tags: list[PausedTag] = field(default_factory=list)  # only these tags' tasks wait


@dataclass
class TagOut:
    """A tag in use: how many tasks carry it, and since when it is paused (null: it is not)."""

    __pydantic_config__ = _ALWAYS_SENT

    tag: str
    tasks: int
    paused_at: float | None = None


@dataclass
class TagsOut:
    tags: list[TagOut]  # by name


@dataclass
class BulkOut:
    """What an action on a tag (POST /api/v1/tags/{tag}/kill|restart|delete|restore) did."""

    __pydantic_config__ = _ALWAYS_SENT

    tag: str
    action: Literal["kill", "restart", "delete", "restore"]
    count: int  # tasks it acted on
    task_ids: list[str]  # those tasks (for restart: the tasks copied)
    skipped: int = 0  # tasks with the tag it left as they were (e.g. running ones on delete)
    queued_as: list[str] = field(default_factory=list)  # restart: the new copies, in order


@dataclass
class UserOut:
    """A user (GET /api/v1/users, /api/v1/me): `admin` acts on every task, others on their own.
    The admin of the state directory's token is listed as `admin` with no limits."""

    __pydantic_config__ = _ALWAYS_SENT

    name: str
    admin: bool
    max_gpus: int | None = None  # GPUs its running tasks may hold at once (null: no limit)
    max_queued: int | None = None  # its queued tasks at most (null: no limit)
    created_at: float = 0.0


@dataclass
class UserCreated(UserOut):
    """POST /api/v1/users (and a new token by PATCH): the token, shown this once only."""

    token: str | None = None


@dataclass
class MeOut(UserOut):
    """GET /api/v1/me: who is signed in, and the names of all users (for a user filter)."""

    several: bool = False  # named users exist (else ANT runs with the one token of today)
    users: list[str] = field(default_factory=list)  # every user's name, the admin first


@dataclass
class UsersOut:
    users: list[UserOut]  # the admin first, then by name
    several: bool  # named users exist (else ANT runs with the one token of today)


@dataclass
class UserRemoved:
    name: str
    deleted: bool


@dataclass
class UsageRowOut:
    __pydantic_config__ = _ALWAYS_SENT

    key: str  # the user, or the tag ("" for tasks without a tag)
    gpu_hours: float


@dataclass
class UsageOut:
    """GET /api/v1/usage: GPU-hours (GPUs x hours held) over the window, most first."""

    __pydantic_config__ = _ALWAYS_SENT

    window: float  # seconds
    by: Literal["user", "tag"]
    since: float
    until: float
    rows: list[UsageRowOut]
    total: float  # by tag a task with two tags counts in both rows, once here


# A state after which nothing more happens to a task unless someone acts (restore, restart):
# what `ant wait` waits for and what the UI lists as completed. Made from core's ENDED_STATES,
# as an enum of its own so that the schema (and through it the UI's types) carries the set.
EndedState = enum.Enum(  # type: ignore[misc]
    "EndedState", [(s.name, s.value) for s in TaskState if s in ENDED_STATES], type=str
)


@dataclass
class ServerInfo:
    __pydantic_config__ = _ALWAYS_SENT

    version: str
    session_id: int
    started_at: float
    gpu_backend: str
    policy: str
    recovery: dict[str, int]
    ui: dict[str, int | bool]
    ended_states: list[EndedState] = field(default_factory=lambda: list(EndedState))


@dataclass
class HostOut:
    cpu_percent: float
    per_core: list[float]
    mem_used: int
    mem_total: int
    load_avg: list[float]


@dataclass
class GpuPoint:
    index: int
    util: float | None  # None: not read this time (a gap in the charts, not a 0)
    mem_used: int | None
    mem_total: int


@dataclass
class SystemPoint:
    time: float
    host: HostOut | None
    gpus: list[GpuPoint]


@dataclass
class SystemOut:
    current: SystemPoint
    history: list[SystemPoint]
    history_size: int
    smoother_alpha: float


@dataclass
class HistorySeries:
    """One line of a chart: a value per time of SystemHistoryOut.times (null: not read)."""

    __pydantic_config__ = _ALWAYS_SENT

    key: str  # "cpu", "ram", "gpu<index>.util", "gpu<index>.mem"
    name: str  # "CPU", "RAM", "GPU 0", "GPU node-b:1"
    unit: Literal["percent", "bytes"]  # percent: 0 to 100
    values: list[float | None]
    gpu: int | None = None  # the GPU's index, for a GPU's series
    total: float | None = None  # the most there is (RAM, a GPU's memory): the chart's top


@dataclass
class SystemHistoryOut:
    """GET /api/v1/system/history: the monitor samples of a window, kept across restarts."""

    window: float  # seconds
    now: float
    step: float  # seconds each point stands for: the sampling interval, or 10 s / 60 s averages
    times: list[float]  # POSIX seconds, oldest first
    series: list[HistorySeries]


@dataclass
class TimelineBar:
    """A task holding a GPU from start to end (null: still running)."""

    __pydantic_config__ = _ALWAYS_SENT

    task_id: str
    command: str  # cut to 300 characters
    state: TaskState
    start: float
    end: float | None
    exit_code: int | None = None


@dataclass
class TimelineGpu:
    index: int
    label: str  # "3" on this machine, "node-b:1" on a cluster
    node: str
    bars: list[TimelineBar]  # by start


@dataclass
class GpuTimelineOut:
    """GET /api/v1/gpus/timeline: which task held each GPU over the window."""

    since: float
    now: float
    gpus: list[TimelineGpu]
    truncated: bool  # more tasks ended in the window than are listed (the oldest are left out)


@dataclass
class SummaryOut:
    """GET /api/v1/system/summary: the dashboard's strip."""

    running: int
    queued: int
    held: int
    lost: int
    failed_24h: int  # tasks that ended failed in the last 24 hours
    gpus_busy: int  # held by ANT tasks now
    gpus_total: int


@dataclass
class DoctorOut:
    ok: bool
    problems: list[str]  # each difference found, in words; empty when ok
    checked: dict[str, int]  # how many tasks, processes and GPUs were compared


# ---------------------------------------------------------------------------- live events


@dataclass
class Empty:
    """An event that carries no data: `{}`."""


@dataclass
class TaskRemoved:
    task_id: str
    renamed_to: str | None = None  # set when the task was renamed: it lives on under this id


@dataclass
class TaskChange:
    """`task_changed`: a task's id and state, and each of its other changing fields whose value
    differs from the task's previous event (all of them when the server does not know that one).
    A field not sent has not changed: apply the event onto the task as the client knows it (from
    `task_added` or a read); a client that does not know the task reads it (GET /api/v1/tasks/ID).
    The fields fixed at submission (command, env, …) and the executor's `handle` are not sent."""

    task_id: str
    state: TaskState
    priority: int = 0
    gpu_ids: list[int] = field(default_factory=list)
    queue_seq: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    log_path: str | None = None
    pid: int | None = None
    session_id: int | None = None
    reason: str | None = None
    restarted_as: str | None = None
    nodes: list[str] = field(default_factory=list)
    after: list[Dependency] = field(default_factory=list)  # restart --with-dependents repoints it
    queue_position: int | None = None
    pending_reason: str | None = None
    gpu_mem_used: int | None = None
    lingering_processes: int = 0
    attempt: int = 1
    attempts: list[Attempt] = field(default_factory=list)
    retry_at: float | None = None
    placement: str | None = None
    gpu_mem_over: int | None = None


@dataclass
class GpuMemOver:
    """`gpu_mem_over`: a task that declared GPU memory (gpu_mem) uses more, first seen now."""

    task_id: str
    gpu_mem: int  # bytes it declared
    used: int  # bytes its processes use
    gpu_ids: list[int]
    killed: bool  # RUNNER_enforce_gpu_mem: ANT kills it (it ends failed)


@dataclass
class QueueChanged:
    """The queue changed: positions and pending reasons are read on demand (GET ?state=queued)."""

    queued: int  # tasks in the queue now
    added: int  # how many of them were just submitted (0 when the queue changed otherwise)


@dataclass
class TerminalSnapshot:
    lines: list[str]  # the last lines of its terminal, as a terminal shows them
    progress: float | None  # 0..1 from the last progress bar printed, if any


@dataclass
class EventPayloads:
    """The `data` (JSON) of each event of GET /api/v1/events, by its type (the SSE `event:`)."""

    hello: Empty  # the stream (re)started where the client's Last-Event-ID left it
    resync: Empty  # events were missed (new server, or too far behind): read the state again
    task_added: TaskOut
    task_changed: TaskChange  # only what changed (P10): applied onto the known task
    task_removed: TaskRemoved
    queue: QueueChanged
    gpus: list[GpuOut]  # every GPU, on each sample and each allocation change
    terminal: dict[str, TerminalSnapshot]  # by task id: each running task, every step_interval
    system: SystemPoint  # one monitoring sample (host CPU/RAM and GPUs)
    health: HealthOut  # each monitoring sample, and when availability or the nodes change
    gpu_mem_over: GpuMemOver  # a memory task uses more GPU memory than it declared


EVENT_TYPES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EventPayloads))


# ---------------------------------------------------------------------------- reading answers


class AnswerError(ValueError):
    """An answer that does not have the shape its route promises (not an ANT server?)."""


def parse(cls: type[T], data: Any) -> T:
    """An answer's JSON as `cls` (a dataclass above), nested dataclasses and enums included.

    Unknown keys are ignored, so a newer server's extra fields do not break an older client;
    missing ones, or values of the wrong kind, raise AnswerError.
    """
    try:
        return typing.cast(T, _convert(cls, data))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise AnswerError(f"not a valid {cls.__name__}: {exc}") from None


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(hint)
        return {k: _convert(item, v) for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        known = {f.name for f in dataclasses.fields(hint) if f.init}
        return hint(**{k: _convert(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


__all__ = [
    "EVENT_TYPES",
    "AnswerError",
    "Attempt",
    "BulkOut",
    "Deleted",
    "DoctorOut",
    "Empty",
    "EndedState",
    "EventPayloads",
    "ExecutorStatus",
    "GpuOut",
    "GpuPoint",
    "GpuProcessOut",
    "GpuTimelineOut",
    "Health",
    "HealthOut",
    "HistorySeries",
    "HostOut",
    "ImportOut",
    "LogLinesOut",
    "LogOut",
    "LogSearchOut",
    "NodeOut",
    "PausedTag",
    "PreviewOut",
    "PreviewTask",
    "QueueChanged",
    "QueueOut",
    "RecoveryOut",
    "ServerInfo",
    "SummaryOut",
    "SystemHistoryOut",
    "SystemOut",
    "SystemPoint",
    "TagOut",
    "TagsOut",
    "TaskOut",
    "TaskPage",
    "TaskRemoved",
    "TaskState",
    "TasksOut",
    "TerminalOut",
    "TerminalSnapshot",
    "TimelineBar",
    "TimelineGpu",
    "parse",
]
