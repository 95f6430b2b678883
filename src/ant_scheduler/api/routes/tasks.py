"""/api/v1/tasks: submit, list, inspect, kill, restart, promote, move, rename, delete, logs."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from ant_scheduler.api.deps import engine_of, tasks_json, user_of
from ant_scheduler.api.schemas import (
    Deleted,
    LogOut,
    MoveRequest,
    PreviewOut,
    RenameRequest,
    SubmitRequest,
    TaskOut,
    TaskPage,
    TasksOut,
    TerminalOut,
)
from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.core.notification import mask_url
from ant_scheduler.core.task import Dependency, Task, TaskState
from ant_scheduler.core.terminal import parse_progress
from ant_scheduler.engine import Engine
from ant_scheduler.executors.base import Follower

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


def parse_states(text: str | None) -> list[TaskState] | None:
    if not text:
        return None
    states = []
    for part in text.split(","):
        try:
            states.append(TaskState(part.strip()))
        except ValueError:
            valid = ", ".join(s.value for s in TaskState)
            raise InvalidQuery(f"unknown state {part.strip()!r}; valid: {valid}") from None
    return states


# Which rank's output (0: the task's first node; a gang has one per node).
RankQuery = Annotated[int, Query(ge=0, le=1000, description="rank: 0 is the first node")]
# Which attempt's output (a retried task keeps each attempt's log); default: the current one.
AttemptQuery = Annotated[
    int | None, Query(ge=1, le=1000, description="attempt (1-based); default: the current one")
]

FULL_LOG_MAX_BYTES = 1 << 30  # an executor without a local file: at most this much at once
# Above this many tasks the answer is streamed in pieces, the event loop serving others between.
STREAM_ABOVE = 1000
PREVIEW_MAX_TASKS = 1000  # a preview lists at most this many tasks (and says how many in all)


def _options(body: SubmitRequest) -> dict[str, Any]:
    """The body's fields but the command: submit()'s and preview()'s keyword arguments (the same
    names, so a new field reaches both)."""
    options = body.model_dump(exclude={"command", "after"})
    options["after"] = [Dependency(d.task_id, d.condition) for d in body.after]
    return options


@router.post("", status_code=201, response_model=TasksOut)
async def submit(body: SubmitRequest, request: Request) -> Any:
    engine = engine_of(request)
    tasks = await engine.submit(body.command, **_options(body), user=user_of(request))
    if len(tasks) <= STREAM_ABOVE:
        return {"tasks": tasks_json(engine, tasks)}
    return StreamingResponse(
        _task_list_chunks(engine, tasks), status_code=201, media_type="application/json"
    )


@router.post("/preview", response_model=PreviewOut)
async def preview(body: SubmitRequest, request: Request) -> dict[str, Any]:
    """What `POST /api/v1/tasks` with this body would queue, or its error; nothing is stored."""
    specs = await engine_of(request).preview(body.command, **_options(body))
    tasks = [
        {
            "task_id": s.task_id,
            "n_gpus": s.n_gpus,
            "n_nodes": s.n_nodes,
            "command": s.command,
            "env": s.env,
            "priority": s.priority,
            "timeout": s.timeout,
            "notify": mask_url(s.notify),
            "retries": s.retries,
            "retry_on": s.retry_on,
            "retry_backoff": s.retry_backoff,
            "after": [{"task_id": d.task_id, "condition": d.condition} for d in s.after],
            "tags": s.tags,
            "gpu_mem": s.gpu_mem,
        }
        for s in specs[:PREVIEW_MAX_TASKS]
    ]
    return {"tasks": tasks, "total": len(specs)}


async def _task_list_chunks(engine: Engine, tasks: list[Task]) -> AsyncIterator[bytes]:
    """`{"tasks": [...]}` in pieces of STREAM_ABOVE tasks (the same JSON as a short answer)."""
    yield b'{"tasks":['
    for start in range(0, len(tasks), STREAM_ABOVE):
        part = json.dumps(tasks_json(engine, tasks[start : start + STREAM_ABOVE]))[1:-1]
        yield (b"," if start else b"") + part.encode()
        await asyncio.sleep(0)
    yield b"]}"


def parse_time(name: str, text: str | None) -> float | None:
    """POSIX seconds, or an ISO 8601 date or time (UTC unless it names its offset)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidQuery(
                f"{name}: {text[:40]!r} is neither POSIX seconds nor an ISO 8601 date or time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if not math.isfinite(value):
        raise InvalidQuery(f"{name}: {text[:40]!r} is not a finite number of seconds")
    return value


SortKey = Literal["finished_at", "started_at", "task_id", "duration", "exit_code"]
SORT_HELP = (
    "sort by this field instead of the listing order (duration: finished_at - started_at; "
    "tasks without the value sort as the smallest)"
)
TIME_HELP = "POSIX seconds, or ISO 8601 (UTC unless it names its offset)"


@router.get("", response_model=TaskPage)
async def list_tasks(
    request: Request,
    state: Annotated[str | None, Query(description="comma-separated states")] = None,
    q: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    sort: Annotated[SortKey | None, Query(description=SORT_HELP)] = None,
    order: Annotated[Literal["asc", "desc"], Query(description="with sort")] = "desc",
    since: Annotated[
        str | None, Query(max_length=64, description=f"ended at or after: {TIME_HELP}")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=64, description=f"ended before: {TIME_HELP}")
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(max_length=16, description="carrying this tag; repeated: carrying all of them"),
    ] = None,
    owner: Annotated[str | None, Query(max_length=32, description="only this user's tasks")] = None,
) -> dict[str, Any]:
    engine = engine_of(request)
    tasks, total = engine.list_tasks(
        parse_states(state),
        q,
        limit,
        offset,
        sort=sort,
        descending=order == "desc",
        ended_since=parse_time("since", since),
        ended_before=parse_time("until", until),
        tags=tag or (),
        owner=owner or None,
    )
    return {"tasks": tasks_json(engine, tasks), "total": total}


@router.get("/{task_id}", response_model=TaskOut)
async def get_task(task_id: str, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    return engine.task_dict(engine.get(task_id))


@router.delete("/{task_id}", response_model=Deleted)
async def delete_task(task_id: str, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    engine.authorize(user_of(request), task_id)
    await engine.delete(task_id)
    return {"task_id": task_id, "deleted": True}


@router.post("/{task_id}/kill", response_model=TaskOut)
async def kill_task(task_id: str, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    engine.authorize(user_of(request), task_id)
    return engine.task_dict(await engine.kill(task_id))


@router.post("/{task_id}/restart", status_code=201, response_model=TaskOut)
async def restart_task(
    task_id: str,
    request: Request,
    with_dependents: Annotated[
        bool,
        Query(
            description="also the tasks that wait for it: the waiting ones wait for the copy, "
            "the ended ones are restarted too (transitively)"
        ),
    ] = False,
) -> dict[str, Any]:
    engine = engine_of(request)
    if with_dependents:
        engine.authorize_dependents(user_of(request), task_id)
    else:
        engine.authorize(user_of(request), task_id)
    return engine.task_dict(await engine.restart(task_id, with_dependents=with_dependents))


@router.post("/{task_id}/promote", response_model=TaskOut)
async def promote_task(task_id: str, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    engine.authorize(user_of(request), task_id)
    return engine.task_dict(await engine.promote(task_id))


@router.post("/{task_id}/move", response_model=TaskOut)
async def move_task(task_id: str, body: MoveRequest, request: Request) -> dict[str, Any]:
    """Move a queued task before or after another queued one, or to the top or bottom. It
    takes the priority of its new place, so the queue's order stays the order of starts."""
    engine = engine_of(request)
    engine.authorize(user_of(request), task_id)
    moved = await engine.move(task_id, before=body.before, after=body.after, to=body.to)
    return engine.task_dict(moved)


@router.post("/{task_id}/rename", response_model=TaskOut)
async def rename_task(task_id: str, body: RenameRequest, request: Request) -> dict[str, Any]:
    """Give a queued, held or ended task a new id (not a running one): 409 if it is taken."""
    engine = engine_of(request)
    engine.authorize(user_of(request), task_id)
    return engine.task_dict(await engine.rename(task_id, body.new_id))


@router.get("/{task_id}/terminal", response_model=TerminalOut)
async def terminal(
    task_id: str,
    request: Request,
    lines: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    rank: RankQuery = 0,
) -> dict[str, Any]:
    engine = engine_of(request)
    rendered = engine.terminal(engine.get(task_id), lines, rank)
    return {"task_id": task_id, "lines": rendered, "progress": parse_progress(rendered)}


@router.get(
    "/{task_id}/log",
    response_model=LogOut,
    responses={200: {"content": {"text/plain": {}}, "description": "JSON, or the file if full"}},
)
async def get_log(
    task_id: str,
    request: Request,
    lines: Annotated[int | None, Query(ge=0)] = None,
    full: bool = False,
    rank: RankQuery = 0,
    attempt: AttemptQuery = None,
) -> Any:
    engine = engine_of(request)
    task = engine.get(task_id)
    output = engine.output(task, rank, attempt)
    if full:
        path = output.file() if output is not None else None
        if path is not None:
            name = task.task_id if rank == 0 else f"{task.task_id}.rank{rank}"
            if attempt is not None and attempt > 1:
                name += f".attempt{attempt}"
            return FileResponse(
                path, media_type="text/plain; charset=utf-8", filename=f"{name}.log"
            )
        data = output.tail_bytes(FULL_LOG_MAX_BYTES) if output is not None else b""
        return Response(data, media_type="text/plain; charset=utf-8")
    cap = engine.settings.VISUALIZER_view_log_max_lines
    n = cap if lines is None else min(lines, cap)
    if output is None:
        return {"task_id": task_id, "text": "", "lines": n, "size": 0}
    text, size = output.last_lines(n)
    return {"task_id": task_id, "text": text, "lines": n, "size": size}


@router.get("/{task_id}/log/stream", response_class=StreamingResponse)
async def stream_log(
    task_id: str,
    request: Request,
    offset: Annotated[int | None, Query(ge=0, description="byte offset; default: end")] = None,
    rank: RankQuery = 0,
) -> StreamingResponse:
    """SSE: `output` events with new text as it is written, then one `end` event."""
    engine = engine_of(request)
    engine.output(engine.get(task_id), rank)  # 404 or 400 (no such rank) before the stream

    async def generate() -> AsyncIterator[bytes]:
        follower: Follower | None = None
        n = 0
        idle = 0.0
        while True:
            task = engine.get(task_id)
            output = engine.output(task, rank) if follower is None else None
            if output is not None:
                follower = output.follower(offset)
            text = follower.read_new_text() if follower is not None else ""
            if text:
                n += 1
                data = json.dumps({"text": text, "offset": follower.offset if follower else 0})
                yield f"id: {n}\nevent: output\ndata: {data}\n\n".encode()
                idle = 0.0
                continue
            if task.state not in (TaskState.QUEUED, TaskState.RUNNING):
                end = {"state": task.state.value, "exit_code": task.exit_code}
                yield f"event: end\ndata: {json.dumps(end)}\n\n".encode()
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.1)
            idle += 0.1
            if idle >= 15:
                idle = 0.0
                yield b": keepalive\n\n"

    return StreamingResponse(generate(), media_type="text/event-stream", headers=_SSE_HEADERS)


_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
