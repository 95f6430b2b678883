"""/api/v1/import: bringing another scheduler's tasks in while ANT runs (ANT 1.1's recovery file:
ant1_import.py, docs/migration.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import ImportOut, ImportRequest

router = APIRouter(prefix="/api/v1/import", tags=["import"])


@router.post("/ant1", response_model=ImportOut)
async def import_ant1(body: ImportRequest, request: Request) -> dict[str, Any]:
    """Import an ANT 1.1 recovery file (`RECOVERY_state_file`): completed tasks into history,
    interrupted and queued ones held in recovery, hidden ones into history; ids kept. An id ANT
    already has is never overwritten: the same task (same command) is skipped, another one is a
    clash. Running it twice changes nothing. 400 when the text is not a recovery file."""
    return await engine_of(request).import_ant1(body.content, body.base_dirs)
