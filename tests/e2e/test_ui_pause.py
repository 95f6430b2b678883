"""Pausing the queue from the web UI: a drain that every page shows, live, until resumed."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.test_ui import go, login
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
