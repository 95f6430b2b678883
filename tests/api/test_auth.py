"""Every route but health and login needs the token; cookie login; CSRF; TLS and token files."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import httpx
import pytest

from ant_scheduler.api.app import create_app
from tests.server import AntServer, wait_for

PUBLIC = {"/api/", "/api/v1/login", "/api/v1/logout", "/"}


def all_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the real app, path parameters filled in.

    Routes in the OpenAPI schema come from the schema; the rest (docs, the UI shell) from the
    app's plain routes, so a route added in either way is covered.
    """
    from ant_scheduler.settings import Settings

    class NoEngine:
        settings = Settings()

    app = create_app(NoEngine(), token="x", manage_engine=False)  # type: ignore[arg-type]
    routes: set[tuple[str, str]] = set()
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            routes.add((method.upper(), path))
    for route in app.routes:
        path = getattr(route, "path", None)
        if path is not None:
            for method in getattr(route, "methods", None) or {"GET"}:
                routes.add((method, path))
    filled = {(m, re.sub(r"\{[^}]+\}", "1", p)) for m, p in routes if m != "HEAD"}
    return sorted(filled)


def test_route_enumeration_covers_the_api() -> None:
    paths = {p for _, p in all_routes()}
    assert "/api/v1/tasks" in paths and "/api/v1/events" in paths and "/api/openapi.json" in paths
    assert len(all_routes()) >= 18


def test_every_route_but_health_and_login_needs_a_token(server: AntServer) -> None:
    checked = 0
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        for method, path in all_routes():
            if path in PUBLIC or path.startswith("/assets"):  # the UI's static files
                continue
            r = anon.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "unauthorized"
            r = anon.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401, (method, path)
            checked += 1
    assert checked >= 15


def test_cookie_login_and_csrf(server: AntServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        r = browser.get("/", params={"token": "wrong"})
        assert r.status_code == 200
        assert "ant_session" not in browser.cookies
        r = browser.get("/", params={"token": server.token}, follow_redirects=False)
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert server.token not in r.headers["set-cookie"]
        assert browser.get("/api/v1/tasks").status_code == 200
        r = browser.post("/api/v1/tasks", json={"command": "true"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        r = browser.post("/api/v1/tasks", json={"command": "true"}, headers={"X-ANT-CSRF": "1"})
        assert r.status_code == 201
    with httpx.Client(base_url=server.url, timeout=10) as other:
        assert other.post("/api/v1/login", json={"token": "nope"}).status_code == 401
        assert other.post("/api/v1/login", json={"token": server.token}).status_code == 204
        assert other.get("/api/v1/gpus").status_code == 200


def test_token_file_created_with_mode_0600(server_factory: type[AntServer]) -> None:
    server = server_factory(token=None).start()
    token_file = server.log_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    wait_for(lambda: "ant login-url" in server.output())  # the banner follows start-up
    assert token not in server.output()  # stdout is a file here, not a terminal
    r = httpx.get(server.url + "/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    conn = server.log_dir / "connection.json"
    assert stat.S_IMODE(conn.stat().st_mode) == 0o600
    assert json.loads(conn.read_text())["token"] == token


def test_https_by_default_with_reused_self_signed_cert(server_factory: type[AntServer]) -> None:
    server = server_factory(tls=True).start()
    r = httpx.get(server.url + "/api/", verify=False)
    assert r.json()["status"] == "ok"
    cert = server.log_dir / "tls" / "cert.pem"
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/api/")  # not trusted by default: it really is TLS
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert))
    assert httpx.get(server.url + "/api/", verify=ctx).status_code == 200
    first = cert.read_bytes()
    server.stop()
    server.start()
    assert cert.read_bytes() == first
    assert httpx.get(server.url + "/api/", verify=ctx).status_code == 200


def test_cpu_only_notice_without_gpus(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=None).start()
    assert "--fake-gpus" in server.output()
    with server.client() as c:
        assert c.get("/api/v1/gpus").json() == []
        r = c.post("/api/v1/tasks", json={"command": "true"})
        assert r.status_code == 201


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "c.json"
    cfg.write_text('{"step_interval": "fast"}')
    r = subprocess.run(
        [sys.executable, "-m", "ant_scheduler", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "ANT_TOKEN": "x"},
    )
    assert r.returncode == 2
    assert "step_interval" in r.stderr and "a number" in r.stderr
    assert "Traceback" not in r.stderr
