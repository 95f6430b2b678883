"""/api/v1/recovery: held and lost tasks from earlier server sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ant_scheduler.api.deps import engine_of, tasks_json, user_of
from ant_scheduler.api.schemas import Deleted, RecoveryOut, RestoreRequest, TasksOut

router = APIRouter(prefix="/api/v1/recovery", tags=["recovery"])


@router.get("", response_model=RecoveryOut)
async def recovery(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    groups = engine.recovery()
    return {key: tasks_json(engine, tasks) for key, tasks in groups.items()}


@router.post("/restore", response_model=TasksOut)
async def restore(body: RestoreRequest, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    user = user_of(request)
    if not user.admin:
        for task_id in body.task_ids:
            engine.authorize(user, task_id)
    return {"tasks": tasks_json(engine, await engine.restore(body.task_ids))}


@router.delete("/{task_id}", response_model=Deleted)
async def forget(task_id: str, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    engine.authorize(user_of(request), task_id)
    await engine.forget(task_id)
    return {"task_id": task_id, "deleted": True}
