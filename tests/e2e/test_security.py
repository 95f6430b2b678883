"""In real Chromium: the UI and the API docs work under ANT's Content-Security-Policy with no
violation, the docs load nothing from another origin, and no other page can frame ANT."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.e2e.conftest import shot
from tests.e2e.test_ui import create, details, go, login
from tests.server import AntServer

# Collects every CSP violation the page reports (init scripts run outside the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


def watch(page: Page) -> list[str]:
    """Console errors and warnings from here on (CSP violations are reported there too)."""
    page.add_init_script(WATCH_CSP)
    messages: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            messages.append(f"{message.type}: {message.text} @ {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


def csp_problems(page: Page, messages: list[str]) -> list[Any]:
    violations: list[Any] = page.evaluate("window.__cspViolations || []")
    refused = [m for m in messages if re.search(r"Content Security Policy|Refused to", m)]
    return violations + refused


def test_the_ui_works_under_the_csp_with_no_violation(page: Page, server: AntServer) -> None:
    messages = watch(page)
    login(page, server)  # dashboard: GPU cards and the charts
    create(page, "printf '\\033[32mgreen\\033[0m\\n'; echo done", task_id="csp-task", gpus="0")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: csp-task")
    go(page, "Ongoing Tasks")
    go(page, "Completed Tasks")
    card = page.get_by_test_id("completed-csp-task")
    expect(card).to_contain_text("succeeded")
    details(page, "csp-task")
    output = page.get_by_test_id("output-csp-task")
    expect(output.locator("span", has_text="green")).to_have_css("color", "rgb(51, 170, 51)")
    card.get_by_role("button", name="View full log").click()
    expect(page.get_by_test_id("full-log")).to_contain_text("done")
    page.get_by_role("button", name="Close log").click()
    card.get_by_role("link", name="csp-task").click()  # the task's own page
    expect(page.get_by_test_id("task-state")).to_have_text("succeeded")
    expect(page.get_by_test_id("output-csp-task").locator("span", has_text="green")).to_be_visible()
    go(page, "Dashboard")
    expect(page.get_by_test_id("gpu-0")).to_be_visible()
    page.wait_for_timeout(500)  # a last refresh of the charts
    shot(page, "csp-ui")
    assert csp_problems(page, messages) == []
    unexpected = [m for m in messages if "favicon.ico" not in m]
    assert unexpected == [], unexpected


def test_docs_page_renders_from_ants_own_assets(page: Page, server: AntServer) -> None:
    messages = watch(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    login(page, server)
    requested.clear()
    page.goto(server.url + "/api/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 15
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/tasks").first).to_be_visible()
    # "Try it out" runs with the session cookie, from the page's origin, under the CSP.
    path = page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/v1/gpus$"))
    gpus = page.locator(".opblock", has=path).first
    gpus.locator(".opblock-summary").click()
    gpus.get_by_role("button", name="Try it out").click()
    gpus.get_by_role("button", name="Execute").click()
    status = gpus.locator(".live-responses-table tr.response .response-col_status")
    expect(status).to_have_text("200")
    expect(gpus.locator(".live-responses-table")).to_contain_text("ANT Simulated GPU")
    shot(page, "api-docs")
    foreign = [url for url in requested if not url.startswith(server.url + "/")]
    assert foreign == [], foreign
    assert any("/assets/" in url for url in requested)
    assert csp_problems(page, messages) == []


@pytest.fixture
def other_site() -> Iterator[dict[str, bytes]]:
    """Another web server on this host (another port): path -> the HTML it serves."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    pages["url"] = f"http://127.0.0.1:{httpd.server_address[1]}".encode()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield pages
    httpd.shutdown()
    httpd.server_close()


def test_another_page_on_this_host_cannot_frame_ant(
    page: Page, server: AntServer, other_site: dict[str, bytes]
) -> None:
    """Another port of the same host is same-site: the session cookie goes along, so only
    frame-ancestors / X-Frame-Options keep a logged-in ANT out of its frames (clickjacking)."""
    login(page, server)
    other = other_site["url"].decode()
    other_site["/"] = (
        f'<iframe id="ant" src="{server.url}/" width="900" height="600"></iframe>'
        f'<iframe id="plain" src="{other}/plain" width="300" height="100"></iframe>'
    ).encode()
    other_site["/plain"] = b"<p id=plain>framed fine</p>"
    page.goto(other + "/")
    expect(page.frame_locator("#plain").locator("#plain")).to_have_text("framed fine")
    page.wait_for_timeout(1500)  # time enough for the UI to show, were it allowed to
    ant = page.frame_locator("#ant")
    assert ant.locator("[data-testid=gpu-0]").count() == 0
    assert ant.get_by_role("link", name=re.compile("Ongoing Tasks")).count() == 0
    frame = next(f for f in page.frames if f.parent_frame is not None and "plain" not in f.url)
    assert not frame.url.startswith(server.url), frame.url  # Chromium's error page instead
    shot(page, "framed")
