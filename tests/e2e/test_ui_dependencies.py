"""Dependencies in the web UI: set on Create, shown (with links to the parents) in the queue and
on the task page, and dependency_failed on Completed, with its own state chip."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.test_ui import go, login
from tests.e2e.test_ui_create import fill_form
from tests.server import AntServer


def test_a_dependency_from_create_to_dependency_failed(page: Page, server: AntServer) -> None:
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "task_id": "parent"})
        wait_state(c, "parent", "running")
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, "true", task_id="child")
    page.get_by_label("After").fill("parent:maybe")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-error")).to_contain_text("must be ok, any or fail")
    page.get_by_label("After").fill("nobody")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("submit-error")).to_contain_text("no such task")
    page.get_by_label("After").fill("parent")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-0").locator('[data-label="After"]')).to_have_text("parent")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: child")

    go(page, "Ongoing Tasks")
    row = page.get_by_test_id("queued-child")
    expect(row).to_contain_text("waiting for parent (running)")
    row.get_by_test_id("after-child").get_by_role("link", name="parent").click()
    expect(page).to_have_url(re.compile(r"/tasks/parent$"))
    page.goto(f"{server.url}/tasks/child")
    expect(page.get_by_test_id("task-state")).to_have_text("queued")
    expect(page.locator(".field-row").filter(has_text="After").get_by_role("link")).to_have_text(
        "parent"
    )

    with server.client() as c:
        c.post("/api/v1/tasks/parent/kill")
        wait_state(c, "child", "dependency_failed", timeout=30)
    expect(page.get_by_test_id("task-state")).to_have_text("dependency_failed")
    expect(page.get_by_text("parent ended killed; this task needed it to succeed")).to_be_visible()
    expect(page.get_by_role("button", name="Restart")).to_be_visible()  # restartable

    go(page, "Completed Tasks")
    page.get_by_role("group", name="Show only these states").get_by_role(
        "button", name="dependency_failed", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"/completed\?state=dependency_failed$"))
    expect(page.get_by_test_id("completed-range")).to_have_text("1-1 of 1")
    badge = page.get_by_test_id("completed-child").locator(".badge-dependency_failed")
    expect(badge).to_have_text("dependency_failed")

    # The parent's page: restart it with its dependents; the child runs again, after the copy.
    page.goto(f"{server.url}/tasks/parent")
    page.get_by_role("button", name="Rerun with dependents").click()
    expect(page).to_have_url(re.compile(r"/tasks/parent-restart-1$"))
    with server.client() as c:
        copy = c.get("/api/v1/tasks/child-restart-1").json()
        assert copy["after"] == [{"task_id": "parent-restart-1", "condition": "ok"}]
        assert c.get("/api/v1/tasks/child").json()["restarted_as"] == "child-restart-1"
