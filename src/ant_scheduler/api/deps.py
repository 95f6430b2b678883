"""Small helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ant_scheduler.core.users import ADMIN, User
from ant_scheduler.engine import Engine


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def tasks_json(engine: Engine, tasks: list[Any]) -> list[dict[str, Any]]:
    return [engine.task_dict(t) for t in tasks]


def user_of(request: Request) -> User:
    """Who is asking (set by the auth middleware); the admin on a public path."""
    user = getattr(request.state, "user", None)
    return user if isinstance(user, User) else ADMIN
