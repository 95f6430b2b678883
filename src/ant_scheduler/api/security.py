"""Browser-facing hardening: the security headers on every response, and redirects that never
name a host.

The headers are added by the outermost layer of the app (outside Starlette's error middleware),
so they are on every answer ANT gives: UI pages, static assets, API JSON, SSE streams, /metrics,
the auth middleware's 401/403/413 and the 500 of a crash alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match

from ant_scheduler.api.auth import ASGIApp, Message, Receive, Scope, Send

# Everything the UI and the docs page load is ANT's own: scripts and styles are files under
# /assets (no inline script, no inline <style>, no eval); swagger-ui's stylesheet draws its icons
# with data: images. Nothing may frame ANT (clickjacking of Kill), and forms and <base> cannot
# send the user elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """Sets SECURITY_HEADERS on every HTTP response, replacing any a handler set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _NAMES]
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Characters left as they are in a redirect's path and query; everything else is %-encoded, so
# the Location header holds nothing but a path.
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def slash_redirect(scope: Scope, routes: Iterable[BaseRoute]) -> Response | None:
    """Starlette's redirect_slashes, made safe: `/api/v1/tasks/` -> 307 `Location: /api/v1/tasks`.

    Starlette builds the Location from the Host header (`http://<Host>/...`), so a forged Host
    turns it into a redirect to another site. This one is relative, made from the raw request
    path and query, and only given when the path matches no route but its twin with (or
    without) the trailing slash does.
    """
    path: str = scope["path"]
    if scope["type"] != "http" or path == "/":
        return None
    routes = list(routes)
    if any(route.matches(scope)[0] is not Match.NONE for route in routes):
        return None  # a route answered 404 itself (unknown task, missing file): not ours
    twin = path.rstrip("/") if path.endswith("/") else path + "/"
    twin_scope = {**scope, "path": twin}
    if not any(route.matches(twin_scope)[0] is not Match.NONE for route in routes):
        return None
    raw: bytes = scope.get("raw_path") or path.encode()
    raw_path = raw.decode("latin-1")
    raw_twin = raw_path.rstrip("/") if raw_path.endswith("/") else raw_path + "/"
    location = quote(raw_twin, safe=_PATH_SAFE)
    if not location.startswith("/") or location.startswith("//"):
        return None  # would read as another host ("//evil.example"): never redirect there
    query: bytes = scope.get("query_string", b"")
    if query:
        location += "?" + quote(query.decode("latin-1"), safe=_QUERY_SAFE)
    return RedirectResponse(location, status_code=307)
