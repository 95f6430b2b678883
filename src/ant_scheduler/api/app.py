"""create_app: the FastAPI application around one Engine, with auth, strict input, security
headers and one JSON error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from ant_scheduler import __version__
from ant_scheduler.api import docs
from ant_scheduler.api.auth import AuthMiddleware, BodyLimitMiddleware
from ant_scheduler.api.routes import (
    backup,
    doctor,
    events,
    gpus,
    imports,
    logs,
    queue,
    recovery,
    system,
    tags,
    tasks,
    users,
)
from ant_scheduler.api.security import SecurityHeadersMiddleware, slash_redirect
from ant_scheduler.api.strict_input import StrictInputMiddleware
from ant_scheduler.core.errors import AntError
from ant_scheduler.engine import Engine

WEB_DIR = docs.WEB_DIR

_NO_UI = """<!doctype html><html><head><title>ANT</title></head><body>
<h1>ANT is running</h1><p>The web UI is not built. Run <code>make ui</code>, or use the API at
<a href="/api/docs">/api/docs</a> and the <code>ant</code> command.</p></body></html>"""

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def is_ui_page(request: Request) -> bool:
    """A browser asking for a page of the UI (`/ongoing`, `/tasks/<id>`): the UI's router shows
    it. Not the API, its static files or /metrics, and only GETs that accept HTML, so a script
    asking for a wrong URL still gets a JSON 404. The auth middleware lets these through (the
    shell is public, it holds no data), as it does `/`."""
    path = request.url.path
    return (
        request.method == "GET"
        and not path.startswith(("/api", "/assets"))
        and path != "/metrics"
        and "text/html" in request.headers.get("accept", "")
    )


def error_response(status: int, code: str, message: str) -> JSONResponse:
    # A message that echoes input must not hold a lone surrogate: it could not be encoded.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "; ".join(parts) or "invalid request"


class AntApp(FastAPI):
    """FastAPI with the security headers outside everything, Starlette's error middleware
    included, so even the 500 of a crash carries them."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack())

    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema plus the event stream's payloads (see events.document_events)."""
        if self.openapi_schema is None:
            events.document_events(super().openapi())
        return self.openapi_schema  # type: ignore[return-value]


def create_app(
    engine: Engine,
    *,
    token: str,
    tls: bool = True,
    manage_engine: bool = True,
    on_shutdown: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app. With manage_engine, the app's lifespan starts and stops the engine."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await engine.start()
        yield
        if manage_engine:
            message = await engine.stop()
            if on_shutdown is not None:
                on_shutdown(message)

    app = AntApp(
        title="ANT Scheduler",
        version=__version__,
        docs_url=None,  # ANT serves its own page (api/docs.py): no CDN, no inline script
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/api/openapi.json",
        redirect_slashes=False,  # Starlette's redirect names the Host header: see slash_redirect
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.token = token
    app.state.tls = tls

    index_file = WEB_DIR / "index.html"

    def ui_index() -> Response:
        if index_file.is_file():
            return FileResponse(index_file, media_type="text/html")
        return HTMLResponse(_NO_UI)

    app.state.ui_index = ui_index

    @app.exception_handler(AntError)
    async def ant_error(request: Request, exc: AntError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            redirect = slash_redirect(request.scope, app.router.routes)
            if redirect is not None:
                return redirect
            if is_ui_page(request):
                return ui_index()
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")

    routers = [system, tasks, logs, gpus, queue, tags, recovery, events, doctor]
    routers += [imports, backup, users]
    for module in routers:
        app.include_router(module.router)
    app.add_api_route("/api/docs", docs.docs_page, include_in_schema=False, response_model=None)

    @app.get("/metrics", tags=["system"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: tasks by state, queue, GPUs, dispatch latency, durations."""
        return Response(engine.metrics.render(), media_type="text/plain; version=0.0.4")

    if (WEB_DIR / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=WEB_DIR / "assets"), name="assets")

    # The last added middleware runs first: auth before the body is even read, then the size
    # limit, then the strict input checks (UTF-8 path and query, sane JSON).
    app.add_middleware(StrictInputMiddleware, templates=lambda: app.openapi()["paths"])
    app.add_middleware(BodyLimitMiddleware, max_bytes=engine.settings.SERVER_max_body_bytes)
    app.add_middleware(
        AuthMiddleware,
        token=token,
        public_metrics=not engine.settings.METRICS_require_auth,
        users=getattr(engine, "users", None),  # a stand-in engine (tests) may have none
    )
    return app
