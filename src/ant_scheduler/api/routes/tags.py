"""/api/v1/tags: the tags in use, and actions on every task carrying one (kill, restart,
delete, restore). Pausing a tag is POST /api/v1/queue/pause with {"tag": T}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ant_scheduler.api.deps import engine_of, user_of
from ant_scheduler.api.schemas import BulkOut, TagsOut
from ant_scheduler.core.tags import MAX_TAG_LENGTH

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])

TagPath = Annotated[str, Path(max_length=MAX_TAG_LENGTH, description="the tag")]


@router.get("", response_model=TagsOut)
async def list_tags(
    request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> dict[str, Any]:
    """Every tag carried by a stored task, with how many carry it and whether it is paused."""
    return {"tags": engine_of(request).tags(limit)}


@router.post("/{tag}/kill", response_model=BulkOut)
async def kill_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Cancel the tag's queued tasks and kill its running ones (answers once they ended)."""
    engine = engine_of(request)
    engine.authorize_tag(user_of(request), tag)
    return await engine.kill_tag(tag)


@router.post("/{tag}/restart", response_model=BulkOut)
async def restart_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Queue a copy of each of the tag's ended tasks not restarted yet (copies keep the tag)."""
    engine = engine_of(request)
    engine.authorize_tag(user_of(request), tag)
    return await engine.restart_tag(tag)


@router.post("/{tag}/delete", response_model=BulkOut)
async def delete_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Delete the tag's queued, held and ended tasks; running ones are left (`skipped`)."""
    engine = engine_of(request)
    engine.authorize_tag(user_of(request), tag)
    return await engine.delete_tag(tag)


@router.post("/{tag}/restore", response_model=BulkOut)
async def restore_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Put the tag's held and lost tasks back in the queue."""
    engine = engine_of(request)
    engine.authorize_tag(user_of(request), tag)
    return await engine.restore_tag(tag)
