"""Small helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ant_scheduler.engine import Engine


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def tasks_json(engine: Engine, tasks: list[Any]) -> list[dict[str, Any]]:
    return [engine.task_dict(t) for t in tasks]
