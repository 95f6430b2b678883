"""/api/v1/queue: pause and resume starting queued tasks (a drain; running tasks go on) — all of
them, or only those carrying a tag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ant_scheduler.api.deps import engine_of, user_of
from ant_scheduler.api.schemas import PauseRequest, QueueOut
from ant_scheduler.core.users import check_admin

router = APIRouter(prefix="/api/v1/queue", tags=["queue"])


@router.get("", response_model=QueueOut)
async def queue_state(request: Request) -> dict[str, Any]:
    """Whether queued tasks start (also in GET /api/v1/health and its `health` event)."""
    return engine_of(request).pause_state()


@router.post("/pause", response_model=QueueOut)
async def pause(request: Request, body: PauseRequest | None = None) -> dict[str, Any]:
    """Start no queued task until resume; running tasks go on. Kept across restarts; pausing a
    paused queue changes nothing (it keeps its first `paused_at`). With `{"tag": T}`: only the
    queued tasks carrying T wait (their reason says so); the rest of the queue goes on."""
    return await _set_paused(request, body, True)


@router.post("/resume", response_model=QueueOut)
async def resume(request: Request, body: PauseRequest | None = None) -> dict[str, Any]:
    """Start queued tasks again, as GPUs allow (with `{"tag": T}`: that tag's)."""
    return await _set_paused(request, body, False)


async def _set_paused(request: Request, body: PauseRequest | None, paused: bool) -> dict[str, Any]:
    engine = engine_of(request)
    user = user_of(request)
    if body is not None and body.tag is not None:
        engine.authorize_tag(user, body.tag)
        return await engine.pause_tag(body.tag, paused)
    check_admin(user, "pause or resume the whole queue")
    return await (engine.pause() if paused else engine.resume())
