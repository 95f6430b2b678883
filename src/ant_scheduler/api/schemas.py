"""Request bodies of the REST API (strict pydantic models). Field names are a public contract.

What the API answers is declared in ant_scheduler.wire (plain dataclasses, shared with the
client), re-exported here so routes find every shape in one place.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    ImportOut,
    LogLinesOut,
    LogOut,
    LogSearchOut,
    MeOut,
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
    UsageOut,
    UsageRowOut,
    UserCreated,
    UserOut,
    UserRemoved,
    UsersOut,
)

MAX_COMMAND_CHARS = 1_000_000  # a multi submission of ~10,000 long commands fits


class Strict(BaseModel):
    """A request body: no unknown fields, and no type coercion. An int comes only from a JSON
    integer (not `true`, `"2"` or `2.0`), a bool only from `true`/`false` (not `"yes"` or `1`),
    a string only from a JSON string. Query parameters stay lenient: they are text by nature."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DependencyIn(Strict):
    task_id: str = Field(max_length=128, description="a task id, or [prev] in multi mode")
    condition: Literal["ok", "any", "fail"] = Field(
        default="ok", description="ok: it succeeded; any: it ended; fail: it did not succeed"
    )


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
    notify: str | None = Field(
        default=None,
        max_length=2048,
        description="a webhook URL (http/https) POSTed to when the task ends, besides the "
        "server's NOTIFY_webhook_url (inline: ant_notify=URL)",
    )

    retries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="run it again up to this many times when an attempt ends as retry_on says "
        "(inline: ant_retries=3; default 0)",
    )
    retry_on: list[Literal["failure", "lost", "timeout"]] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="which ends of an attempt are retried (default: failure only; inline: "
        "ant_retry_on=failure,lost,timeout). A user's kill never is",
    )
    retry_backoff: float | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="seconds to wait before the first retry, doubling each retry up to an hour "
        "(default 30; inline: ant_retry_backoff=30s)",
    )

    after: list[DependencyIn] = Field(
        default_factory=list,
        max_length=256,
        description="tasks it waits for, each with its condition (inline: ant_after=a,b:any; "
        "in multi mode [prev] is the line before)",
    )

    tags: list[Annotated[str, Field(max_length=MAX_TAG_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"labels to filter, act on and pause the tasks by: {TAG_RULE} "
        "(inline: ant_tags=a,b; tags add up)",
    )

    gpu_mem: int | Annotated[str, Field(max_length=40)] | None = Field(
        default=None,
        description="GPU memory it needs of one GPU it shares with other such tasks, instead of "
        'whole GPUs: bytes (an integer) or a size such as "20G", "512M", "20GiB" (binary '
        "units); answers give bytes. Implies one GPU on one node (inline: ant_gpu_mem=20G)",
    )


class MoveRequest(Strict):
    """Where to move a queued task: exactly one of before, after, to."""

    before: str | None = Field(default=None, max_length=1024, description="a queued task's id")
    after: str | None = Field(default=None, max_length=1024, description="a queued task's id")
    to: Literal["top", "bottom"] | None = None

    @model_validator(mode="after")
    def _one_place(self) -> MoveRequest:
        if sum(x is not None for x in (self.before, self.after, self.to)) != 1:
            raise ValueError("give exactly one of before, after, to")
        return self


class RenameRequest(Strict):
    new_id: str = Field(max_length=1024, description="validated as a submitted task id")


class PauseRequest(Strict):
    tag: str | None = Field(
        default=None,
        max_length=MAX_TAG_LENGTH,
        description="pause or resume only the queued tasks carrying this tag",
    )


class ImportRequest(Strict):
    content: str = Field(description="the ANT 1.1 recovery file's text (JSON, version 1 or 2)")
    base_dirs: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list,
        max_length=8,
        description="where relative log file names are looked for (the server's file system)",
    )


class GpuPatch(Strict):
    enabled: bool


class RestoreRequest(Strict):
    task_ids: list[str] = Field(min_length=1, max_length=100_000)


class UserRequest(Strict):
    name: str = Field(min_length=1, max_length=32)
    admin: bool = False
    max_gpus: int | None = Field(default=None, ge=0, le=1_000_000)
    max_queued: int | None = Field(default=None, ge=0, le=1_000_000)


class UserPatch(Strict):
    """Only the fields sent change; null removes a limit."""

    admin: bool | None = None
    max_gpus: int | None = Field(default=None, ge=0, le=1_000_000)
    max_queued: int | None = Field(default=None, ge=0, le=1_000_000)
    new_token: bool = Field(default=False, description="replace the token (the old one stops)")


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
    "ImportOut",
    "ImportRequest",
    "LogLinesOut",
    "LogOut",
    "LogSearchOut",
    "LoginRequest",
    "MeOut",
    "MoveRequest",
    "NodeOut",
    "PauseRequest",
    "PausedTag",
    "PreviewOut",
    "PreviewTask",
    "QueueOut",
    "RecoveryOut",
    "RenameRequest",
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
    "UsageOut",
    "UsageRowOut",
    "UserCreated",
    "UserOut",
    "UserPatch",
    "UserRemoved",
    "UserRequest",
    "UsersOut",
]
