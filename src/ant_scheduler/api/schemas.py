"""Request bodies of the REST API (strict pydantic models). Field names are a public contract.

What the API answers is declared in ant_scheduler.wire (plain dataclasses, shared with the
client), re-exported here so routes find every shape in one place.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ant_scheduler.core.tags import MAX_TAG_LENGTH, MAX_TAGS, TAG_RULE
from ant_scheduler.wire import (
    BulkOut,
    Deleted,
    DoctorOut,
    EndedState,
    EventPayloads,
    ExecutorStatus,
    GpuOut,
    GpuPoint,
    GpuProcessOut,
    GpuTimelineOut,
    Health,
    HealthOut,
    HistorySeries,
    HostOut,
    LogLinesOut,
    LogOut,
    LogSearchOut,
    NodeOut,
    PausedTag,
    PreviewOut,
    PreviewTask,
    QueueOut,
    RecoveryOut,
    ServerInfo,
    SummaryOut,
    SystemHistoryOut,
    SystemOut,
    SystemPoint,
    TagOut,
    TagsOut,
    TaskChange,
    TaskOut,
    TaskPage,
    TasksOut,
    TerminalOut,
    TimelineBar,
    TimelineGpu,
)

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
    n_gpus: int | None = Field(default=None, ge=0, le=1024, description="GPUs on each node")
    n_nodes: int | None = Field(
        default=None, ge=1, le=64, description="nodes, n_gpus GPUs on each (default 1)"
    )
    task_id: str | None = Field(default=None, max_length=1024, description="id or id template")
    env: dict[str, str] = Field(default_factory=dict, max_length=4096)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=366 * 86400,
        description="seconds it may run; then it is killed and ends timed_out (inline: "
        "ant_timeout=2h)",
    )
    tags: list[Annotated[str, Field(max_length=MAX_TAG_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"labels to filter, act on and pause the tasks by: {TAG_RULE} "
        "(inline: ant_tags=a,b; tags add up)",
    )


class PauseRequest(Strict):
    tag: str | None = Field(
        default=None,
        max_length=MAX_TAG_LENGTH,
        description="pause or resume only the queued tasks carrying this tag",
    )


class GpuPatch(Strict):
    enabled: bool


class RestoreRequest(Strict):
    task_ids: list[str] = Field(min_length=1, max_length=100_000)


class LoginRequest(Strict):
    token: str = Field(max_length=4096)


__all__ = [
    "MAX_COMMAND_CHARS",
    "BulkOut",
    "Deleted",
    "DoctorOut",
    "EndedState",
    "EventPayloads",
    "ExecutorStatus",
    "GpuOut",
    "GpuPatch",
    "GpuPoint",
    "GpuProcessOut",
    "GpuTimelineOut",
    "Health",
    "HealthOut",
    "HistorySeries",
    "HostOut",
    "LogLinesOut",
    "LogOut",
    "LogSearchOut",
    "LoginRequest",
    "NodeOut",
    "PauseRequest",
    "PausedTag",
    "PreviewOut",
    "PreviewTask",
    "QueueOut",
    "RecoveryOut",
    "RestoreRequest",
    "ServerInfo",
    "Strict",
    "SubmitRequest",
    "SummaryOut",
    "SystemHistoryOut",
    "SystemOut",
    "SystemPoint",
    "TagOut",
    "TagsOut",
    "TaskChange",
    "TaskOut",
    "TaskPage",
    "TasksOut",
    "TerminalOut",
    "TimelineBar",
    "TimelineGpu",
]
