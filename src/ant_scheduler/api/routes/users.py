"""/api/v1/users (admin only): named users and their tokens; /api/v1/me: who is signed in;
/api/v1/usage: GPU-hours by user or tag over a window."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ant_scheduler.api.deps import engine_of, user_of
from ant_scheduler.api.schemas import (
    MeOut,
    UsageOut,
    UserCreated,
    UserPatch,
    UserRemoved,
    UserRequest,
    UsersOut,
)
from ant_scheduler.core.durations import parse_duration
from ant_scheduler.core.errors import InvalidQuery, TaskRejected
from ant_scheduler.core.users import check_admin

router = APIRouter(tags=["users"])


@router.get("/api/v1/me", response_model=MeOut)
async def me(request: Request) -> dict[str, Any]:
    """The user this request is signed in as (the UI shows it), and every user's name (the UI's
    user filter; names are no secret: every task shows its owner)."""
    book = engine_of(request).users
    return {
        **user_of(request).as_json(),
        "several": book.has_users(),
        "users": [u.name for u in book.list()],
    }


@router.get("/api/v1/users", response_model=UsersOut)
async def list_users(request: Request) -> dict[str, Any]:
    check_admin(user_of(request), "list users")
    book = engine_of(request).users
    return {"users": [u.as_json() for u in book.list()], "several": book.has_users()}


@router.post("/api/v1/users", status_code=201, response_model=UserCreated)
async def add_user(body: UserRequest, request: Request) -> dict[str, Any]:
    """A new user and its token: shown in this answer only (ANT keeps its sha256)."""
    check_admin(user_of(request), "add users")
    user, token = await engine_of(request).add_user(
        body.name, admin=body.admin, max_gpus=body.max_gpus, max_queued=body.max_queued
    )
    return {**user.as_json(), "token": token}


@router.patch("/api/v1/users/{name}", response_model=UserCreated)
async def set_user(name: str, body: UserPatch, request: Request) -> dict[str, Any]:
    """Change a user's limits or admin flag (the fields sent; null removes a limit), or give it
    a new token (`new_token`: the old one stops working; the new one is in this answer)."""
    check_admin(user_of(request), "change users")
    sent = body.model_fields_set
    changes: dict[str, Any] = {k: getattr(body, k) for k in ("max_gpus", "max_queued") if k in sent}
    if "admin" in sent and body.admin is not None:
        changes["admin"] = body.admin
    user, token = await engine_of(request).set_user(name, new_token_=body.new_token, **changes)
    return {**user.as_json(), "token": token}


@router.delete("/api/v1/users/{name}", response_model=UserRemoved)
async def remove_user(name: str, request: Request) -> dict[str, Any]:
    """The user's token stops working at once; its tasks stay, still under its name."""
    check_admin(user_of(request), "remove users")
    await engine_of(request).remove_user(name)
    return {"name": name, "deleted": True}


def parse_window(text: str) -> float:
    """`7d`, `12h`, `90m`, or seconds."""
    try:
        return float(parse_duration(text.strip(), "window"))
    except (TaskRejected, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        raise InvalidQuery(message) from None


@router.get("/api/v1/usage", response_model=UsageOut)
async def usage(
    request: Request,
    window: Annotated[
        str, Query(max_length=32, description="how far back: 7d, 24h, 90m or seconds")
    ] = "7d",
    by: Annotated[Literal["user", "tag"], Query(description="group by user or by tag")] = "user",
) -> dict[str, Any]:
    """GPU-hours (GPUs held x hours) per user or per tag over the window, from the store:
    each run's part inside the window; running tasks count up to now."""
    return engine_of(request).usage(parse_window(window), by)
