"""Attacks on the web surface and on input strictness, each against a real `ant serve`.

Web: security headers on every response, the docs page served from ANT's own assets, relative
redirects whatever the Host header says, a foreign malformed cookie, terminal output with bidi
controls and 8-bit string sequences. Input: lone surrogates, huge or deep JSON, wrong JSON types,
and hostile command text all give a 400 naming the field, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from ant_scheduler.api.app import create_app
from ant_scheduler.api.auth import cookie_value
from ant_scheduler.api.security import CONTENT_SECURITY_POLICY
from tests.server import TOKEN, AntServer, wait_for

WEB = Path(__file__).resolve().parents[2] / "src" / "ant_scheduler" / "web"
JSON = {"content-type": "application/json"}
SURROGATE = "\\udc80"  # as written in JSON text: a lone low surrogate


def bad_request(r: httpx.Response, field: str, code: str = "invalid_request") -> None:
    """400 with ANT's error shape, its message naming `field` first."""
    assert r.status_code == 400, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].startswith(f"{field}:"), body


def stored(c: httpx.Client) -> int:
    r = c.get("/api/v1/tasks")
    assert r.status_code == 200, r.text[:300]
    total: int = r.json()["total"]
    return total


# --------------------------------------------------------------------------- security headers


def assert_security_headers(r: httpx.Response) -> None:
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    csp = r.headers.get("content-security-policy", "")
    assert csp == CONTENT_SECURITY_POLICY, where
    assert "frame-ancestors 'none'" in csp, where
    assert r.headers.get("x-frame-options") == "DENY", where
    assert r.headers.get("x-content-type-options") == "nosniff", where
    assert r.headers.get("referrer-policy") == "no-referrer", where
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert len(r.headers.get_list(name)) == 1, (where, name)


def test_every_kind_of_response_carries_the_security_headers(server: AntServer) -> None:
    responses: list[httpx.Response] = []
    with server.client() as c, httpx.Client(base_url=server.url, timeout=10) as anon:
        responses += [
            anon.get("/"),  # the UI page (or the "not built" page)
            anon.get("/api/"),  # health
            c.get("/api/v1/tasks"),  # API JSON
            c.get("/api/v1/tasks/nope"),  # AntError 404
            c.get("/api/nowhere"),  # no route
            c.put("/api/v1/tasks"),  # 405
            c.post("/api/v1/tasks", json={"command": 5}),  # validation 400
            c.post("/api/v1/tasks", content=b"{", headers=JSON),  # body parse 400
            anon.get("/api/v1/tasks"),  # auth middleware 401
            anon.post("/api/v1/tasks", headers={"cookie": f"ant_session={cookie_value(TOKEN)}"}),
            c.post("/api/v1/tasks", content=b"x" * (17 * 1024 * 1024)),  # 413
            c.get("/metrics"),
            c.get("/api/openapi.json"),
            c.get("/api/docs"),
            c.get("/api/v1/tasks/", follow_redirects=False),  # redirect
            anon.get("/", params={"token": server.token}, follow_redirects=False),  # login
            anon.post("/api/v1/login", json={"token": server.token}),  # 204 + cookie
        ]
        assert [r.status_code for r in responses[8:11]] == [401, 403, 413]
        assets = sorted((WEB / "assets").glob("*")) if (WEB / "assets").is_dir() else []
        for asset in assets[:3]:
            responses.append(anon.get(f"/assets/{asset.name}"))
        with c.stream("GET", "/api/v1/events") as stream:  # SSE
            assert stream.headers["content-type"].startswith("text/event-stream")
            responses.append(stream)
        task = c.post("/api/v1/tasks", json={"command": "sleep 30"}).json()["tasks"][0]
        with c.stream("GET", f"/api/v1/tasks/{task['task_id']}/log/stream") as stream:
            responses.append(stream)
        c.post(f"/api/v1/tasks/{task['task_id']}/kill")
    for r in responses:
        assert_security_headers(r)
    assert len(responses) >= 19


def test_the_documented_policy_is_the_one_sent() -> None:
    assert CONTENT_SECURITY_POLICY in (WEB.parents[2] / "docs" / "api.md").read_text()


def test_a_crash_answers_500_with_the_headers_and_the_error_shape() -> None:
    """The 500 of an unexpected exception comes from Starlette's outermost error middleware;
    the headers are added outside even that."""
    from ant_scheduler.settings import Settings

    class NoEngine:
        settings = Settings()

    app = create_app(NoEngine(), token=TOKEN, manage_engine=False)  # type: ignore[arg-type]

    @app.get("/api/v1/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ant") as client:
            return await client.get("/api/v1/crash", headers={"Authorization": f"Bearer {TOKEN}"})

    r = asyncio.run(call())
    assert r.status_code == 500
    error = {"code": "internal_error", "message": "internal error: RuntimeError"}
    assert r.json() == {"error": error}
    assert_security_headers(r)


# --------------------------------------------------------------------------- the docs page


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "data", "poster"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if tag == "script":
            self._in_script = True
            if not values.get("src"):
                self.inline_scripts += 1
        if any(name.startswith("on") for name in values) or values.get("style"):
            self.inline_scripts += 1  # event handler or style attribute: inline too

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_docs_page_uses_only_ants_own_assets(server: AntServer) -> None:
    if not (WEB / "docs.html").is_file():
        pytest.fail("the web UI is not built: run `make ui` (make test does it)")
    with server.client() as c:
        r = c.get("/api/docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        page = r.text
        assert "://" not in page and "cdn" not in page.lower()
        links = Links()
        links.feed(page)
        assert links.inline_scripts == 0
        assert links.urls, page
        kinds = set()
        for url in links.urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = c.get(url)
            assert asset.status_code == 200, url
            assert "://cdn" not in asset.text and "unpkg.com" not in asset.text, url
            kinds.add(asset.headers["content-type"].split(";")[0])
        assert {"text/javascript", "text/css"} <= kinds, kinds
        assert c.get("/api/openapi.json").json()["openapi"].startswith("3.")
        # FastAPI's CDN page and its OAuth redirect helper are gone.
        assert c.get("/api/docs/oauth2-redirect").status_code == 404


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "evil.example"},
        {"host": "evil.example:443", "x-forwarded-host": "evil.example"},
        {"host": "127.0.0.1", "x-forwarded-proto": "https", "forwarded": "host=evil.example"},
    ],
)
def test_redirects_are_relative_whatever_the_host_header(
    server: AntServer, headers: dict[str, str]
) -> None:
    with server.client(follow_redirects=False) as c:
        r = c.get("/api/v1/tasks/", params={"state": "queued"}, headers=headers)
        assert r.status_code == 307 and r.headers["location"] == "/api/v1/tasks?state=queued"
        r = c.get("/api", headers=headers)  # public: no token needed for this one
        assert r.status_code == 307 and r.headers["location"] == "/api/"
        r = c.get("/api/v1/gpus/", headers=headers)
        assert r.status_code == 307 and r.headers["location"] == "/api/v1/gpus"
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as anon:
        r = anon.get("/", params={"token": server.token}, headers=headers)
        assert r.status_code == 303 and r.headers["location"] == "/"
        r = anon.get("/api", headers=headers)
        assert r.headers["location"] == "/api/"


def test_no_redirect_to_another_host_through_the_path(server: AntServer) -> None:
    with server.client(follow_redirects=False) as c:
        for path in ["//evil.example/", "//evil.example", "/\\evil.example/", "/%2F%2Fevil/"]:
            r = c.get(path)
            location = r.headers.get("location", "/")
            assert location.startswith("/") and not location.startswith("//"), (path, location)
            assert "evil" not in location or r.status_code == 404, (path, location)
        r = c.get("/api/v1/tasks/nope/")  # a twin that exists only as a 404 is not redirected
        assert r.status_code in (307, 404)
        assert r.headers.get("location", "/api/v1/tasks/nope").startswith("/api/")


# --------------------------------------------------------------------------- cookies


def test_a_malformed_foreign_cookie_does_not_lock_the_user_out(server: AntServer) -> None:
    session = cookie_value(server.token or "")
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        for header in [
            f"zz=a b; ant_session={session}",
            f"ant_session={session}; zz=a b",
            f'zz="unterminated; ant_session="{session}"',
            f"\x7fbad name=1;ant_session={session};;; =novalue; zz=a\\b",
            f"ant_session=stale-from-another-app; ant_session={session}",
            f"ant_session={session}; ant_session=stale-from-another-app",
        ]:
            r = anon.get("/api/v1/tasks", headers={"cookie": header})
            assert r.status_code == 200, (header, r.text)
            r = anon.post(
                "/api/v1/tasks",
                json={"command": "true", "task_id": f"c{len(header)}"},
                headers={"cookie": header},
            )
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        ok = anon.post(
            "/api/v1/tasks",
            json={"command": "true"},
            headers={"cookie": f"zz=a b; ant_session={session}", "x-ant-csrf": "1"},
        )
        assert ok.status_code == 201
        for header in ["zz=a b", f"ant_session={session}x", f"ant_session_x={session}", "a=b"]:
            r = anon.get("/api/v1/tasks", headers={"cookie": header})
            assert r.status_code == 401, header


# --------------------------------------------------------------------------- terminal output


def test_bidi_controls_and_8_bit_string_sequences_never_reach_the_terminal(
    server: AntServer,
) -> None:
    # printf writes UTF-8: \302\220 is U+0090 (8-bit DCS), \342\200\256 is U+202E (RLO).
    hostile = (
        r"printf 'a\302\220dcs-payload\302\234b\n'; "
        r"printf 'c\302\235osc-payload\007d\n'; "
        r"printf 'e\302\236pm-payload\302\234f\302\237apc-payload\302\234g\n'; "
        r"printf 'h\302\230sos-payload\302\234i\n'; "
        r"printf 'j\033Pq7-bit-dcs\033\\k\n'; "
        r"printf 'invoice\342\200\256fdp.exe\342\200\254 \342\201\247x\342\201\251 \342\200\217y\n'"
    )
    with server.client() as c:
        task = c.post("/api/v1/tasks", json={"command": hostile}).json()["tasks"][0]
        task_id = task["task_id"]
        wait_for(lambda: c.get(f"/api/v1/tasks/{task_id}").json()["state"] == "succeeded")
        lines = c.get(f"/api/v1/tasks/{task_id}/terminal").json()["lines"]
    assert lines == ["ab", "cd", "efg", "hi", "jk", "invoicefdp.exe x y"]
    text = "".join(lines)
    assert not re.search("[\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", text)
    assert "payload" not in text


# --------------------------------------------------------------------------- lone surrogates


def test_lone_surrogates_anywhere_are_refused_and_nothing_is_stored(server: AntServer) -> None:
    s = SURROGATE
    bodies = {
        "command": f'{{"command": "echo {s}"}}',
        "task_id": f'{{"command": "true", "task_id": "t{s}"}}',
        "env": f'{{"command": "true", "env": {{"A{s}": "x"}}}}',
        "env.A": f'{{"command": "true", "env": {{"A": "{s}"}}}}',
        "mode": f'{{"command": "true", "mode": "{s}"}}',
        "body": f'{{"command{s}": "true"}}',
        "extra.0": f'{{"command": "true", "extra": ["{s}"]}}',
        "command ": '{"command": "\\ud800\\ud800"}',  # two highs are no pair either
    }
    with server.client() as c:
        for field, body in bodies.items():
            r = c.post("/api/v1/tasks", content=body.encode(), headers=JSON)
            bad_request(r, field.strip())
        r = c.post(
            "/api/v1/recovery/restore", content=f'{{"task_ids": ["a", "{s}"]}}', headers=JSON
        )
        bad_request(r, "task_ids.1")
        r = c.patch("/api/v1/gpus/0", content=f'{{"enabled": true, "{s}": 1}}', headers=JSON)
        bad_request(r, "body")
        # Path and query parameters: a surrogate can only come %-encoded as (invalid) UTF-8.
        encoded = "%ED%B2%80"
        bad_request(c.get(f"/api/v1/tasks/{encoded}"), "task_id")
        bad_request(c.get(f"/api/v1/tasks/x{encoded}/log"), "task_id")
        bad_request(c.delete(f"/api/v1/tasks/{encoded}"), "task_id")
        bad_request(c.post(f"/api/v1/tasks/{encoded}/kill"), "task_id")
        bad_request(c.delete(f"/api/v1/recovery/{encoded}"), "task_id")
        bad_request(c.patch(f"/api/v1/gpus/{encoded}", json={"enabled": True}), "index")
        bad_request(c.get(f"/api/v1/tasks?q={encoded}"), "q")
        bad_request(c.get(f"/api/v1/tasks?state=queued&q=ok&state={encoded}"), "state")
        bad_request(c.get("/api/v1/tasks?q=%FF"), "q")
        bad_request(c.get(f"/api/v1/tasks?{encoded}=1"), "query")
        bad_request(c.get(f"/api/v1/events?since={encoded}"), "since")
        bad_request(c.get(f"/nowhere/{encoded}"), "path")
        assert stored(c) == 0
        # Valid non-ASCII text still passes: a surrogate *pair* is one emoji.
        r = c.post(
            "/api/v1/tasks",
            content='{"command": "echo \\ud83d\\ude00 é", "env": {"A": "€"}}'.encode(),
            headers=JSON,
        )
        assert r.status_code == 201, r.text
        assert c.get("/api/v1/tasks", params={"q": "😀"}).json()["total"] == 1
        assert stored(c) == 1
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        r = anon.post("/api/v1/login", content=f'{{"token": "{s}"}}', headers=JSON)
        bad_request(r, "token")


def test_a_big_body_still_names_the_field(server: AntServer) -> None:
    ids = [f"task-{i}" for i in range(100_000)]
    body = json.dumps({"task_ids": ids})[:-2] + ', "x\\udc80"]}'
    with server.client() as c:
        r = c.post("/api/v1/recovery/restore", content=body, headers=JSON)
        bad_request(r, "task_ids.100000")


# --------------------------------------------------------------------------- numbers and depth


def test_huge_numbers_and_deep_nesting_are_refused(server: AntServer) -> None:
    digits = "9" * 5000
    deep = "[" * 5000 + "]" * 5000
    deep_objects = '{"a":' * 5000 + "1" + "}" * 5000
    cases = [
        (f'{{"command": "true", "priority": {digits}}}', "priority"),
        (f'{{"command": "true", "priority": -{digits}}}', "priority"),
        (f'{{"command": "true", "n_gpus": {digits}}}', "n_gpus"),
        (f'{{"command": "true", "env": {{"A": {digits}}}}}', "env.A"),
        (f'{{"command": "true", "x": [1, 2, {digits}]}}', "x.2"),
        (f'{{"command": "true", "priority": {2**63}}}', "priority"),
        (f'{{"command": "true", "priority": {-(2**63) - 1}}}', "priority"),
        ('{"command": "true", "priority": 1e999}', "priority"),
        ('{"command": "true", "priority": NaN}', "priority"),
        ('{"command": "true", "priority": -Infinity}', "priority"),
        (f'{{"command": "true", "env": {deep}}}', "body"),
        (deep, "body"),
        (deep_objects, "body"),
        ('{"command": "true", "env": ' + "[" * 40 + "]" * 40 + "}", "env"),
        ("[" * 33 + "]" * 33, "body"),
    ]
    with server.client() as c:
        for body, field in cases:
            r = c.post("/api/v1/tasks", content=body.encode(), headers=JSON)
            bad_request(r, field)
        r = c.patch("/api/v1/gpus/0", content=f'{{"enabled": {digits}}}'.encode(), headers=JSON)
        bad_request(r, "enabled")
        r = c.post("/api/v1/recovery/restore", content=f'{{"task_ids": {deep}}}', headers=JSON)
        bad_request(r, "body")
        assert stored(c) == 0
        # Within the limits is fine: 32 levels, and the 64-bit extremes reach the model.
        nested = "[" * 31 + "]" * 31
        r = c.post("/api/v1/tasks", content=f'{{"command": "true", "x": {nested}}}', headers=JSON)
        bad_request(r, "x")  # only the unknown field is wrong now
        assert "extra" in r.json()["error"]["message"].lower()
        r = c.post("/api/v1/tasks", json={"command": "true", "priority": 2**63 - 1})
        bad_request(r, "priority")
        assert "less than or equal" in r.json()["error"]["message"]
        assert stored(c) == 0


def test_every_kind_of_body_parse_failure_has_the_error_shape(server: AntServer) -> None:
    bodies = [
        b"{",
        b'{"command": "true"',
        b'{"command": "true"} trailing',
        b'{"command": "\xc3\x28"}',  # invalid UTF-8
        '{"command": "true"}'.encode("utf-16"),
        b'\xef\xbb\xbf{"command": "true"}',  # UTF-8 BOM
        b"\x00\x00\x00{",
        b'{"command": "tr\x00ue"}',  # raw control character in a string
        b'{"command": "\\x"}',  # bad escape
        b'{"command": "\\ud800"}',
        b"null",
        b"[]",
        b"42",
        b'"text"',
        b'{"command": "true", "command": 5}',
        b"\xff" * 1000,
    ]
    with server.client() as c:
        for body in bodies:
            for content_type in ("application/json", "application/merge-patch+json"):
                r = c.post("/api/v1/tasks", content=body, headers={"content-type": content_type})
                assert r.status_code == 400, (body[:40], r.status_code, r.text[:200])
                assert set(r.json()) == {"error"} and r.json()["error"]["message"], body[:40]
            r = c.post("/api/v1/tasks", content=body, headers={"content-type": "text/plain"})
            assert r.status_code == 400, (body[:40], r.status_code, r.text[:200])
        assert stored(c) == 0


# --------------------------------------------------------------------------- strict JSON types


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/tasks", {"command": "true", "n_gpus": True}, "n_gpus"),
        ("POST", "/api/v1/tasks", {"command": "true", "n_gpus": "2"}, "n_gpus"),
        ("POST", "/api/v1/tasks", {"command": "true", "n_gpus": 2.0}, "n_gpus"),
        ("POST", "/api/v1/tasks", {"command": "true", "n_gpus": 1.5}, "n_gpus"),
        ("POST", "/api/v1/tasks", {"command": "true", "priority": "3"}, "priority"),
        ("POST", "/api/v1/tasks", {"command": "true", "priority": False}, "priority"),
        ("POST", "/api/v1/tasks", {"command": "true", "priority": 3.0}, "priority"),
        ("POST", "/api/v1/tasks", {"command": 5}, "command"),
        ("POST", "/api/v1/tasks", {"command": ["true"]}, "command"),
        ("POST", "/api/v1/tasks", {"command": "true", "task_id": 7}, "task_id"),
        ("POST", "/api/v1/tasks", {"command": "true", "env": {"A": 1}}, "env.A"),
        ("POST", "/api/v1/tasks", {"command": "true", "env": {"A": True}}, "env.A"),
        ("POST", "/api/v1/tasks", {"command": "true", "env": [["A", "b"]]}, "env"),
        ("POST", "/api/v1/tasks", {"command": "true", "mode": 1}, "mode"),
        ("PATCH", "/api/v1/gpus/0", {"enabled": "yes"}, "enabled"),
        ("PATCH", "/api/v1/gpus/0", {"enabled": "true"}, "enabled"),
        ("PATCH", "/api/v1/gpus/0", {"enabled": 1}, "enabled"),
        ("PATCH", "/api/v1/gpus/0", {"enabled": None}, "enabled"),
        ("POST", "/api/v1/recovery/restore", {"task_ids": [1]}, "task_ids.0"),
        ("POST", "/api/v1/recovery/restore", {"task_ids": "a"}, "task_ids"),
        ("POST", "/api/v1/login", {"token": 123}, "token"),
    ],
)
def test_wrong_json_types_are_refused(
    server: AntServer, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    with server.client() as c:
        gpu_before = c.get("/api/v1/gpus").json()[0]["enabled"]
        bad_request(c.request(method, path, json=body), field)
        assert stored(c) == 0
        assert c.get("/api/v1/gpus").json()[0]["enabled"] == gpu_before


def test_right_json_types_and_lenient_query_parameters_still_work(server: AntServer) -> None:
    with server.client() as c:
        r = c.post(
            "/api/v1/tasks",
            json={
                "command": "true",
                "n_gpus": 0,
                "priority": -3,
                "env": {"A": "1"},
                "task_id": "ok",
            },
        )
        assert r.status_code == 201, r.text
        assert c.patch("/api/v1/gpus/1", json={"enabled": False}).json()["enabled"] is False
        assert c.patch("/api/v1/gpus/1", json={"enabled": True}).json()["enabled"] is True
        # Query parameters are text by nature: "5" is a fine limit, "true" a fine flag.
        states = "queued,running,succeeded"
        r = c.get("/api/v1/tasks", params={"limit": "5", "offset": "0", "state": states})
        assert r.status_code == 200 and r.json()["total"] == 1
        wait_for(lambda: c.get("/api/v1/tasks/ok").json()["state"] == "succeeded")
        assert c.get("/api/v1/tasks/ok/log", params={"full": "true"}).status_code == 200
        assert c.get("/api/v1/tasks/ok/log", params={"lines": "3"}).status_code == 200


# --------------------------------------------------------------------------- hostile command text


def test_hostile_command_text_through_the_api(server: AntServer) -> None:
    deep_json = '{"A": ' + "[" * 5000 + "]" * 5000 + "}"
    deep_object = '{"A": ' + '{"B": ' * 5000 + '"x"' + "}" * 5000 + "}"
    commands = [
        f"ant_envar={deep_json} true",
        f"ant_envar='{deep_json}' true",
        f"ant_envar={deep_object} true",
        f"ant_envar='{deep_object}' true",
        "ant_n_gpus=" + "9" * 5000 + " true",
        "ant_n_gpus='" + "9" * 5000 + "' true",
        'ant_envar=\'{"ant_n_gpus": ' + "9" * 5000 + "}' true",
        'ant_envar=\'{"A": ' + "9" * 5000 + "}' true",
    ]
    with server.client() as c:
        for command in commands:
            for mode in ("single", "multi"):
                r = c.post("/api/v1/tasks", json={"command": command, "mode": mode})
                assert r.status_code == 400, (command[:40], mode, r.status_code, r.text[:200])
                assert r.json()["error"]["code"] == "task_rejected", r.text[:200]
                assert len(r.json()["error"]["message"]) < 500
        multi = "echo first\n" + commands[0] + "\necho last"
        r = c.post("/api/v1/tasks", json={"command": multi, "mode": "multi"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "task_rejected"
        assert stored(c) == 0
        r = c.post("/api/v1/tasks", json={"command": "ant_envar='{\"A\": 5}' ant_n_gpus=0 true"})
        assert r.status_code == 201 and r.json()["tasks"][0]["env"] == {"A": "5"}


def test_json_error_messages_do_not_echo_unbounded_input(server: AntServer) -> None:
    with server.client() as c:
        key = "K" * 10_000
        body = json.dumps({"command": "true", "env": {key: 10**30}})
        r = c.post("/api/v1/tasks", content=body, headers=JSON)
        assert r.status_code == 400 and len(r.text) < 400, r.text[:100]
