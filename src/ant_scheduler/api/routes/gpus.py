"""/api/v1/gpus: the GPU pool and the enable/disable toggle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import GpuOut, GpuPatch

router = APIRouter(prefix="/api/v1/gpus", tags=["gpus"])


@router.get("", response_model=list[GpuOut])
async def list_gpus(request: Request) -> list[dict[str, Any]]:
    return engine_of(request).gpu_dicts()


@router.patch("/{index}", response_model=GpuOut)
async def patch_gpu(
    index: Annotated[
        str, Path(max_length=300, description="the GPU's index (3) or label (node-b:1)")
    ],
    body: GpuPatch,
    request: Request,
) -> dict[str, Any]:
    """Enable or disable a GPU (kept across restarts): by index, or by label on a cluster."""
    return await engine_of(request).set_gpu_enabled(index, body.enabled)
