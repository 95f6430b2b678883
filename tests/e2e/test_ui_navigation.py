"""The held tasks' section, the login URL's token, and what the header's counts say: real Chromium
against a real `ant serve`."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import confirm, go, login
from tests.server import AntServer


def test_held_tasks_have_a_section_after_the_dialog_is_closed(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = server_factory(fake_gpus=1).start()
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "n_gpus": 1, "task_id": "blocker"})
        c.post("/api/v1/tasks", json={"command": "echo back", "n_gpus": 1, "task_id": "keep"})
        c.post("/api/v1/tasks", json={"command": "echo x", "n_gpus": 1, "task_id": "drop"})
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("queued-keep")).to_be_visible()
    expect(page.get_by_test_id("held-tasks")).to_have_count(0)  # nothing held yet
    server.stop()
    expect(page.get_by_role("alert")).to_contain_text("Lost the connection")
    server.start()
    dialog = page.get_by_role("dialog", name="Recover tasks")
    expect(dialog).to_be_visible(timeout=30_000)
    dialog.get_by_role("button", name="Close", exact=True).first.click()
    expect(dialog).to_have_count(0)

    # Closed, the held tasks are still there to act on: on the Ongoing page and in the header.
    section = page.get_by_test_id("held-tasks")
    expect(section.get_by_role("heading", name="Held (2)")).to_be_visible()
    expect(section.get_by_test_id("held-keep")).to_contain_text("echo back")
    expect(section.get_by_test_id("held-keep")).to_contain_text("queued when ANT stopped")
    expect(section.get_by_test_id("held-drop")).to_contain_text("echo x")
    expect(section).not_to_contain_text("blocker")  # it was running: lost, in Completed
    expect(page.get_by_role("link", name=re.compile("Ongoing"))).to_have_text(
        "Ongoing (0 running · 0 queued · 2 held)"
    )
    shot(page, "held-tasks")

    section.get_by_role("button", name="Restore keep").click()
    expect(page.get_by_text("Restored keep (queued again)")).to_be_visible()
    expect(section.get_by_test_id("held-keep")).to_have_count(0)
    section.get_by_role("button", name="Delete drop").click()
    confirm(page, "Delete")
    expect(page.get_by_text("Deleted drop")).to_be_visible()
    expect(page.get_by_test_id("held-tasks")).to_have_count(0)  # none left: no section
    expect(page.get_by_role("link", name=re.compile("Ongoing"))).to_have_text(
        "Ongoing (0 running · 0 queued)"
    )
    with server.client() as c:
        wait_state(c, "keep", "succeeded")  # restored: it ran
        assert c.get("/api/v1/tasks/drop").status_code == 404  # deleted
        recovery = c.get("/api/v1/recovery").json()
        held = [t for group in recovery.values() for t in group if t["state"] == "held"]
        assert held == []


def test_held_tasks_restore_and_delete_all(page: Page, server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "n_gpus": 1, "task_id": "blocker"})
        for name in ("a", "b", "c", "d"):
            c.post("/api/v1/tasks", json={"command": f"echo {name}", "n_gpus": 1, "task_id": name})
    server.stop()
    server.start()
    with server.client() as c:
        c.post("/api/v1/recovery/restore", json={"task_ids": ["a", "b"]})  # from elsewhere
    login(page, server)
    page.get_by_role("dialog", name="Recover tasks").get_by_role(
        "button", name="Close", exact=True
    ).first.click()
    go(page, "Ongoing Tasks")
    section = page.get_by_test_id("held-tasks")
    expect(section.get_by_role("heading", name="Held (2)")).to_be_visible()
    section.get_by_role("button", name="Delete all").click()
    confirm(page, "Delete")
    expect(section).to_have_count(0)
    with server.client() as c:
        for name in ("c", "d"):
            assert c.get(f"/api/v1/tasks/{name}").status_code == 404
        for name in ("a", "b"):
            wait_state(c, name, "succeeded")


def test_wrong_token_in_the_url_says_so_and_leaves_the_address_bar(
    page: Page, server: AntServer
) -> None:
    page.goto(f"{server.url}/?token=bad")
    expect(page.get_by_role("alert")).to_have_text("Invalid token")
    assert "token=" not in page.url
    expect(page).to_have_url(server.url + "/")
    shot(page, "login-invalid-token")
    page.get_by_label("Token").fill("also-wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid token")
    page.get_by_label("Token").fill(server.token or "")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("gpu-0")).to_be_visible()


def test_right_token_in_the_url_logs_in_and_leaves_the_address_bar(
    page: Page, server: AntServer
) -> None:
    page.goto(f"{server.url}/?token={server.token}")
    expect(page.get_by_test_id("gpu-0")).to_be_visible()
    assert "token=" not in page.url
    # On a page's own URL the server does not check it; the page logs in with it.
    page.context.clear_cookies()
    page.goto(f"{server.url}/ongoing?token={server.token}")
    expect(page.get_by_role("heading", name=re.compile(r"^Running"))).to_be_visible()
    expect(page).to_have_url(server.url + "/ongoing")
    # Logged in already, a wrong one is dropped from the address bar as well.
    page.goto(f"{server.url}/completed?token=bad")
    expect(page.get_by_label("Search tasks")).to_be_visible()
    expect(page).to_have_url(server.url + "/completed")


def test_the_header_says_what_it_counts(page: Page, server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "n_gpus": 1, "task_id": "runs"})
        wait_state(c, "runs", "running")
        for name in ("waits-1", "waits-2"):
            c.post("/api/v1/tasks", json={"command": "echo w", "n_gpus": 1, "task_id": name})
    link = page.get_by_role("link", name=re.compile("Ongoing"))
    expect(link).to_have_text("Ongoing (1 running · 2 queued)")
    expect(link).to_have_attribute("title", "Ongoing Tasks: 1 running, 2 queued")
    expect(page.get_by_role("link", name="Ongoing Tasks: 1 running, 2 queued")).to_be_visible()
    shot(page, "header-counts")
