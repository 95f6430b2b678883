"""P12's workflows in the web UI: pausing the queue (a drain every page shows, live, until
resumed) and timeouts (set on Create, the time left on the running card, timed_out at the end)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.test_ui import go, login
from tests.e2e.test_ui_create import fill_form
from tests.server import AntServer


def test_pause_and_resume_the_queue(page: Page, server: AntServer) -> None:
    login(page, server)
    go(page, "Ongoing Tasks")
    banner = page.get_by_test_id("paused-banner")
    expect(banner).to_have_count(0)
    page.get_by_role("button", name="Pause queue").click()
    expect(banner).to_contain_text("The queue is paused since")
    expect(page.get_by_role("button", name="Resume queue")).to_have_attribute(
        "aria-pressed", "true"
    )
    with server.client() as c:
        assert c.get("/api/v1/queue").json()["paused"] is True
        c.post("/api/v1/tasks", json={"command": "true", "task_id": "waits", "n_gpus": 1})
    row = page.get_by_role("row").filter(has_text="waits")
    expect(row).to_contain_text("the queue is paused")
    go(page, "Dashboard")
    expect(banner).to_be_visible()  # on every page
    banner.get_by_role("button", name="Resume").click()
    expect(banner).to_have_count(0)
    with server.client() as c:
        wait_state(c, "waits", "succeeded")
        # Paused elsewhere (`ant pause`): the page shows it without a reload.
        c.post("/api/v1/queue/pause")
    expect(banner).to_be_visible()
    with server.client() as c:
        c.post("/api/v1/queue/resume")
    expect(banner).to_have_count(0)


def test_a_timeout_from_create_to_timed_out(page: Page, server: AntServer) -> None:
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, "sleep 60", task_id="limited", gpus="1")
    page.get_by_label("Timeout").fill("soon")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-error")).to_contain_text("Timeout must be a duration")
    page.get_by_label("Timeout").fill("4s")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-0").locator('[data-label="Timeout"]')).to_have_text("4s")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: limited")
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("timeout-limited")).to_contain_text("timeout 4s (")
    with server.client() as c:
        done = wait_state(c, "limited", "timed_out", timeout=30)
    assert done["timeout"] == 4 and done["exit_code"] == 143
    page.goto(f"{server.url}/tasks/limited")
    expect(page.get_by_text("ran longer than its timeout (4s)")).to_be_visible()
