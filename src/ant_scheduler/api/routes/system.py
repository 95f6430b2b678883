"""Health, login/logout, and server information."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ant_scheduler import __version__
from ant_scheduler.api.auth import COOKIE_NAME, cookie_value
from ant_scheduler.api.deps import engine_of
from ant_scheduler.api.schemas import (
    EndedState,
    Health,
    HealthOut,
    LoginRequest,
    ServerInfo,
    SummaryOut,
    SystemHistoryOut,
    SystemOut,
)
from ant_scheduler.core.errors import WrongToken
from ant_scheduler.core.users import user_cookie

router = APIRouter(tags=["system"])


@router.get("/api/", response_model=Health)
async def health() -> dict[str, str]:
    """Liveness; needs no token and says nothing sensitive."""
    return {"status": "ok", "version": __version__}


@router.get("/api/v1/health", response_model=HealthOut)
async def health_detail(request: Request) -> dict[str, Any]:
    """Whether the executor can start tasks now (and why not), and the nodes on a cluster.
    Needs the token (it names nodes and where the cluster is); `GET /api/` is the liveness."""
    return engine_of(request).health()


def _session_for(request: Request, token: str) -> str | None:
    """The session cookie a token signs in with: the admin's or a named user's; None if the
    token is nobody's."""
    expected: str = request.app.state.token
    if hmac.compare_digest(token.encode(), expected.encode()):
        return cookie_value(expected)
    user = engine_of(request).users.by_token(token.encode())
    return user_cookie(user.token_hash) if user is not None else None


def _set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        httponly=True,
        secure=request.app.state.tls,
        samesite="strict",
        path="/",
        max_age=30 * 24 * 3600,
    )


@router.post("/api/v1/login", status_code=204, response_class=Response)
async def login(body: LoginRequest, request: Request) -> Response:
    """Exchange a token (the admin's or a user's) for the session cookie (what the web page
    does)."""
    session = _session_for(request, body.token)
    if session is None:
        raise WrongToken("wrong token")
    response = Response(status_code=204)
    _set_cookie(response, request, session)
    return response


@router.post("/api/v1/logout", status_code=204, response_class=Response)
async def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/", include_in_schema=False, response_model=None)
async def index(request: Request, token: str | None = None) -> Response:
    """The printed login URL lands here: `/?token=...` sets the cookie, then shows the UI."""
    session = _session_for(request, token) if token is not None else None
    if session is not None:
        response: Response = RedirectResponse("/", status_code=303)
        _set_cookie(response, request, session)
        return response
    page: Response = request.app.state.ui_index()
    return page


@router.get("/api/v1/server", response_model=ServerInfo)
async def server_info(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    s = engine.settings
    return {
        "version": __version__,
        "session_id": engine.session_id,
        "started_at": engine.started_at,
        "gpu_backend": engine.gpu_backend.name if engine.gpu_backend else "none",
        "policy": s.RUNNER_policy,
        "recovery": engine.recovery_summary,
        "ui": {
            "step_interval_ms": int(s.step_interval * 1000),
            "terminal_win_height": s.VISUALIZER_terminal_win_height,
            "ongoing_output_line_control_enabled": s.VISUALIZER_ongoing_output_line_control_enabled,
            "completed_output_line_control_enabled": (
                s.VISUALIZER_completed_output_line_control_enabled
            ),
            "completed_output_default_lines": s.VISUALIZER_completed_output_default_lines,
            "output_min_lines": s.VISUALIZER_output_min_lines,
            "output_max_lines": s.VISUALIZER_output_max_lines,
            "view_log_max_lines": s.VISUALIZER_view_log_max_lines,
            "history_size": s.MONITORING_history_size,
            # The longest window of the dashboard's charts (GET /api/v1/system/history).
            "history_keep_seconds": int(s.MONITORING_keep_hours * 3600),
        },
        "ended_states": list(EndedState),
    }


@router.get("/api/v1/system", response_model=SystemOut)
async def system(request: Request) -> dict[str, Any]:
    """Host CPU/RAM and GPU readings now, and the last MONITORING_history_size samples."""
    return engine_of(request).system()


@router.get("/api/v1/system/history", response_model=SystemHistoryOut)
async def system_history(
    request: Request,
    window: Annotated[
        float, Query(description="seconds back from now: 900, 3600, 86400 (60 to the kept hours)")
    ] = 3600,
) -> dict[str, Any]:
    """The monitor samples of the window, kept across restarts: as taken for the last 15
    minutes, averaged over 10 s up to 3 hours, over minutes beyond (MONITORING_keep_hours)."""
    return engine_of(request).system_history(window)


@router.get("/api/v1/system/summary", response_model=SummaryOut)
async def summary(request: Request) -> dict[str, Any]:
    """Running, queued, held and lost tasks now, tasks failed in the last 24 hours, busy GPUs."""
    return engine_of(request).summary()
