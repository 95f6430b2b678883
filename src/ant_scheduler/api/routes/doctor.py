"""/api/v1/doctor: the self-check (store vs engine memory vs live processes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import DoctorOut

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/doctor", response_model=DoctorOut)
async def doctor(request: Request) -> dict[str, Any]:
    """Every difference between what the store records, what ANT holds in memory and which task
    processes are alive (and on which GPUs). `ok` is true when there is none."""
    return engine_of(request).doctor()
