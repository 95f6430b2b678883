"""The UI's pages have real URLs: a browser asking for one gets the UI's index.html (its router
shows the page); the API, static files and /metrics answer as before, and data stays private."""

from __future__ import annotations

import httpx

from ant_scheduler.api.security import CONTENT_SECURITY_POLICY
from tests.server import AntServer

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_ui_paths_get_the_ui_shell_without_a_token(server: AntServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        shell = anon.get("/", headers=HTML)
        assert shell.status_code == 200
        for path in ("/create", "/ongoing", "/completed", "/tasks/some-task", "/no/such/page"):
            r = anon.get(path, headers=HTML)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith("text/html"), path
            assert r.text == shell.text, path
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
            assert r.headers["x-frame-options"] == "DENY", path


def test_api_assets_metrics_and_non_browsers_are_not_the_shell(server: AntServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        # A script (no text/html in Accept) asking for a wrong URL gets JSON, not a page.
        r = anon.get("/ongoing")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = anon.post("/ongoing", headers=HTML)
        assert r.status_code in (404, 405) and "error" in r.json()
        # The API and /metrics keep their auth and their JSON errors.
        for path in ("/api/v1/tasks", "/api/v1/nowhere", "/apiary", "/metrics"):
            r = anon.get(path, headers=HTML)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "unauthorized", path
        r = anon.get("/assets/no-such-file.js", headers=HTML)
        assert r.status_code == 404 and "error" in r.json()
    with server.client() as c:
        r = c.get("/api/v1/nowhere", headers=HTML)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert c.get("/api/v1/tasks", headers=HTML).json()["total"] == 0
