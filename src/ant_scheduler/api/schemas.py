"""Request and response shapes of the REST API. Field names here are a public contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_COMMAND_CHARS = 1_000_000  # a multi submission of ~10,000 long commands fits


class Strict(BaseModel):
    """A request body: no unknown fields, and no type coercion. An int comes only from a JSON
    integer (not `true`, `"2"` or `2.0`), a bool only from `true`/`false` (not `"yes"` or `1`),
    a string only from a JSON string. Query parameters stay lenient: they are text by nature."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SubmitRequest(Strict):
    command: str = Field(
        max_length=MAX_COMMAND_CHARS, description="one command, or multi-queue text"
    )
    mode: Literal["single", "multi"] = "single"
    n_gpus: int | None = Field(default=None, ge=0, le=1024)
    task_id: str | None = Field(default=None, max_length=1024, description="id or id template")
    env: dict[str, str] = Field(default_factory=dict, max_length=4096)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)


class TaskOut(BaseModel):
    task_id: str
    command: str
    submitted: str
    n_gpus: int
    gpu_ids: list[int]
    env: dict[str, str]
    state: Literal["queued", "held", "running", "succeeded", "failed", "killed", "lost"]
    priority: int
    queue_position: int | None
    pending_reason: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    log_path: str | None
    reason: str | None
    pid: int | None
    session_id: int | None
    gpu_mem_used: int | None = Field(
        default=None, description="GPU memory its processes use now (running tasks)"
    )
    restarted_as: str | None = Field(
        default=None, description="the copy its last restart queued (one live copy at a time)"
    )
    lingering_processes: int = Field(
        default=0, description="processes it left running after it ended (they keep its GPUs)"
    )
    copy_command: str = Field(description="ant_task_id=… ant_n_gpus=… ant_envar=… <command>")


class TasksOut(BaseModel):
    tasks: list[TaskOut]


class TaskPage(BaseModel):
    tasks: list[TaskOut]
    total: int


class LogOut(BaseModel):
    task_id: str
    text: str
    lines: int
    size: int = Field(description="file size in bytes when read; stream from here with ?offset=")


class TerminalOut(BaseModel):
    task_id: str
    lines: list[str]
    progress: float | None


class GpuProcessOut(BaseModel):
    pid: int
    used_memory: int
    task_id: str | None = Field(description="the ANT task whose process tree holds it, or null")
    user: str | None
    command: str | None


class GpuOut(BaseModel):
    index: int
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
    note: str | None = Field(
        default=None, description="e.g. '2 stray processes of train-1' (they keep it busy)"
    )
    pci_bus_id: str = ""
    temperature: float | None = None
    power_watts: float | None = None
    processes: list[GpuProcessOut] = Field(default_factory=list)


class GpuPatch(Strict):
    enabled: bool


class RecoveryOut(BaseModel):
    last_session: list[TaskOut]
    earlier_sessions: list[TaskOut]


class RestoreRequest(Strict):
    task_ids: list[str] = Field(min_length=1, max_length=100_000)


class Deleted(BaseModel):
    task_id: str
    deleted: bool = True


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class LoginRequest(Strict):
    token: str = Field(max_length=4096)


class ServerInfo(BaseModel):
    version: str
    session_id: int
    started_at: float
    gpu_backend: str
    policy: str
    recovery: dict[str, int]
    ui: dict[str, int | bool]


class HostOut(BaseModel):
    cpu_percent: float
    per_core: list[float]
    mem_used: int
    mem_total: int
    load_avg: list[float]


class GpuPoint(BaseModel):
    index: int
    util: float
    mem_used: int
    mem_total: int


class SystemPoint(BaseModel):
    time: float
    host: HostOut | None
    gpus: list[GpuPoint]


class SystemOut(BaseModel):
    current: SystemPoint
    history: list[SystemPoint]
    history_size: int
    smoother_alpha: float


class DoctorOut(BaseModel):
    ok: bool
    problems: list[str] = Field(description="each difference found, in words; empty when ok")
    checked: dict[str, int] = Field(description="how many tasks, processes and GPUs were compared")
