"""Retries in the web UI: set on Create, the wait shown in the queue, and on the task page every
attempt with its exit code and its own log."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.a11y import assert_accessible
from tests.e2e.screens import DESKTOP, save_screens
from tests.e2e.test_ui import go, login
from tests.e2e.test_ui_create import fill_form
from tests.server import AntServer


def test_retries_from_create_to_each_attempts_log(
    browser: Browser, server: AntServer, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)  # for axe's script
    try:
        journey(context.new_page(), server, tmp_path)
    finally:
        context.close()


def journey(page: Page, server: AntServer, tmp_path: Path) -> None:
    page.set_default_timeout(15_000)
    counter = shlex.quote(str(tmp_path / "runs"))
    # Fails on its first two runs, succeeds on the third (a counter file counts them).
    command = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {counter}; "
        f'echo "run $n"; [ "$n" -ge 3 ] || exit 7'
    )
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, command, task_id="flaky", gpus="0")
    page.get_by_label("Retries").fill("many")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-error")).to_contain_text("Retries must be a whole number")
    page.get_by_label("Retries").fill("3")
    page.get_by_label("Retry on timeout").check()
    page.get_by_label("Retry backoff").fill("2s")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-0").locator('[data-label="Retries"]')).to_have_text(
        "3 on failure, timeout"
    )
    save_screens(page, "create-retries")
    assert_accessible(page, "Create with the retry fields")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: flaky")
    # While it waits out a backoff it is queued, and says why.
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("queued-flaky")).to_contain_text(
        re.compile(r"retrying (in \d+s|now) \(attempt [23] of 4; attempt [12] failed with exit 7\)")
    )
    with server.client() as c:
        done = wait_state(c, "flaky", "succeeded", "failed", timeout=60)
    assert done["state"] == "succeeded" and done["retry_backoff"] == 2
    assert [a["exit_code"] for a in done["attempts"]] == [7, 7, 0]
    page.goto(f"{server.url}/tasks/flaky")
    expect(
        page.get_by_text("3 on failure, timeout · backoff 2s, doubling · attempt 3 of 4")
    ).to_be_visible()
    attempts = page.get_by_test_id("attempts")
    for k, (state, code) in enumerate((("failed", "7"), ("failed", "7"), ("succeeded", "0")), 1):
        row = attempts.get_by_test_id(f"attempt-{k}")
        expect(row.locator('[data-label="State"]')).to_have_text(state)
        expect(row.locator('[data-label="Exit code"]')).to_have_text(code)
    viewer = page.get_by_test_id("output-flaky")
    expect(viewer).to_contain_text("run 3")  # the last attempt's log first
    page.get_by_role("button", name="Log of attempt 1").click()
    expect(page.get_by_role("heading", name="Log · attempt 1")).to_be_visible()
    expect(viewer).to_contain_text("run 1")
    expect(viewer).not_to_contain_text("run 3")
    page.get_by_role("button", name="Log of attempt 2").click()
    expect(viewer).to_contain_text("run 2")
    save_screens(page, "task-retries")
    assert_accessible(page, "the task page with its attempts")
    download = viewer.get_by_role("link", name="Download")
    expect(download).to_have_attribute("href", "/api/v1/tasks/flaky/log?full=true&attempt=2")
