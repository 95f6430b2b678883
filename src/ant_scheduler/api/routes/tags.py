"""/api/v1/tags: the tags in use, and actions on every task carrying one (kill, restart,
delete, restore). Pausing a tag is POST /api/v1/queue/pause with {"tag": T}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ant_scheduler.api.deps import engine_of
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
    return await engine_of(request).kill_tag(tag)


@router.post("/{tag}/restart", response_model=BulkOut)
async def restart_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Queue a copy of each of the tag's ended tasks not restarted yet (copies keep the tag)."""
    return await engine_of(request).restart_tag(tag)


@router.post("/{tag}/delete", response_model=BulkOut)
async def delete_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Delete the tag's queued, held and ended tasks; running ones are left (`skipped`)."""
    return await engine_of(request).delete_tag(tag)


@router.post("/{tag}/restore", response_model=BulkOut)
async def restore_tag(tag: TagPath, request: Request) -> dict[str, Any]:
    """Put the tag's held and lost tasks back in the queue."""
    return await engine_of(request).restore_tag(tag)
