"""/api/v1/gpus: the GPU pool and the enable/disable toggle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ant_scheduler.api.deps import engine_of, user_of
from ant_scheduler.api.schemas import GpuOut, GpuPatch, GpuTimelineOut
from ant_scheduler.core.users import check_admin

router = APIRouter(prefix="/api/v1/gpus", tags=["gpus"])


@router.get("", response_model=list[GpuOut])
async def list_gpus(request: Request) -> list[dict[str, Any]]:
    return engine_of(request).gpu_dicts()


@router.get("/timeline", response_model=GpuTimelineOut)
async def gpu_timeline(
    request: Request,
    window: Annotated[float, Query(description="seconds back from now (60 to 31 days)")] = 3600,
) -> dict[str, Any]:
    """For each GPU, the tasks that held it over the window (a running one: end null)."""
    return engine_of(request).gpu_timeline(window)


@router.patch("/{index}", response_model=GpuOut)
async def patch_gpu(
    index: Annotated[
        str, Path(max_length=300, description="the GPU's index (3) or label (node-b:1)")
    ],
    body: GpuPatch,
    request: Request,
) -> dict[str, Any]:
    """Enable or disable a GPU (kept across restarts): by index, or by label on a cluster.
    An admin's command."""
    check_admin(user_of(request), "enable or disable GPUs")
    return await engine_of(request).set_gpu_enabled(index, body.enabled)
