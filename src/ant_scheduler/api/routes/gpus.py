"""/api/v1/gpus: the GPU pool and the enable/disable toggle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import GpuOut, GpuPatch

router = APIRouter(prefix="/api/v1/gpus", tags=["gpus"])


@router.get("", response_model=list[GpuOut])
async def list_gpus(request: Request) -> list[dict[str, Any]]:
    return engine_of(request).gpu_dicts()


@router.patch("/{index}", response_model=GpuOut)
async def patch_gpu(index: int, body: GpuPatch, request: Request) -> dict[str, Any]:
    return await engine_of(request).set_gpu_enabled(index, body.enabled)
