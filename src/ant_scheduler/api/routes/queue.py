"""/api/v1/queue: pause and resume starting queued tasks (a drain; running tasks go on)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import QueueOut

router = APIRouter(prefix="/api/v1/queue", tags=["queue"])


@router.get("", response_model=QueueOut)
async def queue_state(request: Request) -> dict[str, Any]:
    """Whether queued tasks start (also in GET /api/v1/health and its `health` event)."""
    return engine_of(request).pause_state()


@router.post("/pause", response_model=QueueOut)
async def pause(request: Request) -> dict[str, Any]:
    """Start no queued task until resume; running tasks go on. Kept across restarts; pausing a
    paused queue changes nothing (it keeps its first `paused_at`)."""
    return await engine_of(request).pause()


@router.post("/resume", response_model=QueueOut)
async def resume(request: Request) -> dict[str, Any]:
    """Start queued tasks again, as GPUs allow."""
    return await engine_of(request).resume()
