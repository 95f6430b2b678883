"""/api/v1/tasks/{id}/log/lines and /log/search: a task's log by line number, and search in it,
for the UI's log viewer (log_lines.py counts the lines; reading runs in worker threads, each
answer bounded in time and size). The whole file is GET /log?full=true (routes/tasks.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.routes.tasks import AttemptQuery, RankQuery
from ant_scheduler.api.schemas import LogLinesOut, LogSearchOut
from ant_scheduler.core.task import Task
from ant_scheduler.executors.base import TaskOutput
from ant_scheduler.log_lines import MAX_LINE_BYTES, LineIndex, LineIndexes, search

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

MAX_LINES = 5000  # lines per answer
MAX_ANSWER_BYTES = 4 << 20  # text per answer (fewer lines then; the viewer asks again)
COUNT_SECONDS = 2.0  # counting per answer: a huge log is counted over several answers
SEARCH_SECONDS = 5.0  # searching per answer: the answer says where to go on


def _indexes(request: Request) -> LineIndexes:
    state = request.app.state
    if not hasattr(state, "log_indexes"):
        state.log_indexes = LineIndexes()
    indexes: LineIndexes = state.log_indexes
    return indexes


def _index_of(request: Request, task: Task, rank: int, attempt: int | None) -> LineIndex:
    # A restored task writes another log under the same id: the start time tells them apart.
    log, started = task.log_path, task.started_at
    for ended in task.attempts:  # each attempt of a retried task has a log of its own
        if ended.attempt == attempt:
            log, started = ended.log_path, ended.started_at
    return _indexes(request).get((task.task_id, rank, log, started))


def _counted(index: LineIndex) -> dict[str, int]:
    return {"total_lines": index.total, "counted_bytes": index.counted, "size": index.size}


@router.get("/{task_id}/log/lines", response_model=LogLinesOut)
async def log_lines(
    task_id: str,
    request: Request,
    start: Annotated[int, Query(ge=0, description="first line (0-based)")] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_LINES)] = 1000,
    from_end: Annotated[bool, Query(description="the last `count` lines; start ignored")] = False,
    rank: RankQuery = 0,
    attempt: AttemptQuery = None,
) -> dict[str, Any]:
    """Lines of the log by number; the log is counted on as far as COUNT_SECONDS allow
    (`counted_bytes` < `size`: ask again for the rest)."""
    engine = engine_of(request)
    task = engine.get(task_id)
    output = engine.output(task, rank, attempt)
    answer: dict[str, Any] = {
        "task_id": task_id,
        "rank": rank,
        "max_line_bytes": MAX_LINE_BYTES,
        "available": output is not None,
    }
    if output is None:
        empty = {"total_lines": 0, "counted_bytes": 0, "size": 0}
        return answer | {"start": 0, "lines": [], "cut": []} | empty
    index = _index_of(request, task, rank, attempt)

    def work(out: TaskOutput) -> dict[str, Any]:
        with index.lock:
            index.count(out, time.monotonic() + COUNT_SECONDS)
            first = max(0, index.total - count) if from_end else start
            lines = index.read(out, first, count, MAX_ANSWER_BYTES)
            return {"start": first, "lines": lines.lines, "cut": lines.cut} | _counted(index)

    return answer | await asyncio.to_thread(work, output)


@router.get("/{task_id}/log/search", response_model=LogSearchOut)
async def log_search(
    task_id: str,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="text to find")],
    start: Annotated[int, Query(ge=0, description="first line searched (0-based)")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many lines")] = 1000,
    case: Annotated[bool, Query(description="match case (default: ASCII case ignored)")] = False,
    rank: RankQuery = 0,
    attempt: AttemptQuery = None,
) -> dict[str, Any]:
    """Numbers of the lines holding `q`, in order. The search stops at `limit` lines or after
    SEARCH_SECONDS, and `next_line` says where to go on (null: searched to the end)."""
    engine = engine_of(request)
    task = engine.get(task_id)
    output = engine.output(task, rank, attempt)
    answer: dict[str, Any] = {"task_id": task_id, "rank": rank, "q": q}
    if output is None:
        empty = {"total_lines": 0, "counted_bytes": 0, "size": 0}
        return answer | {"lines": [], "next_line": None} | empty
    index = _index_of(request, task, rank, attempt)
    needle = (q if case else q.lower()).encode()

    def work(out: TaskOutput) -> dict[str, Any]:
        deadline = time.monotonic() + SEARCH_SECONDS
        with index.lock:
            index.count(out, time.monotonic() + COUNT_SECONDS)
            at = index.search_from(start)
            counted = _counted(index)
        found = search(
            out, needle, start=start, at=at, limit=limit, fold=not case, deadline=deadline
        )
        return {"lines": found.lines, "next_line": found.next_line} | counted

    return answer | await asyncio.to_thread(work, output)
