"""/api/docs: the interactive API docs (Swagger UI), served entirely by ANT.

The page and its assets come from the web build (`make ui`): frontend/docs.html bundles the npm
package swagger-ui-dist (version pinned in frontend/package.json, integrity-checked by npm's lock
file) into /assets. FastAPI's own docs page is switched off: it loads swagger-ui from a public
CDN (a floating version without integrity, running in ANT's origin, and broken offline) and
starts it with an inline script, which ANT's Content-Security-Policy forbids.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse, HTMLResponse, Response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DOCS_PAGE = WEB_DIR / "docs.html"

_NO_DOCS = """<!doctype html><html><head><title>ANT API</title></head><body>
<h1>ANT API</h1><p>The docs page is part of the web UI, which is not built.
Run <code>make ui</code>, or read the OpenAPI schema at
<a href="/api/openapi.json">/api/openapi.json</a> and the API reference in docs/api.md.</p>
</body></html>"""


async def docs_page() -> Response:
    """GET /api/docs (added by create_app as a plain route, so route listings see it)."""
    if DOCS_PAGE.is_file():
        return FileResponse(DOCS_PAGE, media_type="text/html")
    return HTMLResponse(_NO_DOCS)
