"""Safe actions in the web UI: kill, delete and bulk actions ask first; dialogs close on Escape
and hand the focus back."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import confirm, details, go, login
from tests.server import AntServer


def state_of(server: AntServer, task_id: str) -> str:
    with server.client() as c:
        r = c.get(f"/api/v1/tasks/{task_id}")
        return "deleted" if r.status_code == 404 else str(r.json()["state"])


def test_kill_asks_and_only_the_confirm_button_kills(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "task_id": "train-3", "n_gpus": 1})
        wait_state(c, "train-3", "running")
    go(page, "Ongoing Tasks")
    kill = page.get_by_test_id("running-train-3").get_by_role("button", name="Kill")
    dialog = page.get_by_role("alertdialog", name="Kill task train-3?")

    # Cancel: the dialog says what would happen, has the focus on Cancel, and gives it back.
    kill.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("SIGTERM, then SIGKILL after the grace")
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    expect(dialog.get_by_role("button", name="Kill")).to_have_class("danger apart")
    shot(page, "confirm-kill")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(kill).to_be_focused()
    assert state_of(server, "train-3") == "running"

    # Escape, and Enter right away (it presses Cancel, which has the focus): nothing happens.
    for key in ("Escape", "Enter"):
        kill.click()
        expect(dialog).to_be_visible()
        page.keyboard.press(key)
        expect(dialog).to_have_count(0)
        expect(kill).to_be_focused()
        page.wait_for_timeout(300)
        assert state_of(server, "train-3") == "running"

    kill.click()
    confirm(page, "Kill")
    expect(page.get_by_text("Killed: train-3")).to_be_visible()
    with server.client() as c:
        wait_state(c, "train-3", "killed")


def test_kill_on_the_task_page_asks_too(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "task_id": "solo-k", "n_gpus": 1})
        wait_state(c, "solo-k", "running")
    page.goto(server.url + "/tasks/solo-k")
    page.get_by_role("button", name="Kill").click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    assert state_of(server, "solo-k") == "running"
    page.get_by_role("button", name="Kill").click()
    confirm(page, "Kill")
    expect(page.get_by_test_id("task-state")).to_have_text("killed")


def test_delete_asks_and_cancelling_keeps_the_task(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "echo done", "task_id": "keep-me"})
        wait_state(c, "keep-me", "succeeded")
    go(page, "Completed Tasks")
    card = details(page, "keep-me")
    delete = card.get_by_role("button", name="Delete")
    # Apart from the harmless buttons: last, and a gap before it.
    assert card.locator(".actions > *").last.text_content() == "Delete"
    before = card.get_by_role("button", name="Copy command").bounding_box()
    after = delete.bounding_box()
    assert before and after and after["x"] - (before["x"] + before["width"]) >= 16
    shot(page, "completed-actions")

    delete.click()
    dialog = page.get_by_role("alertdialog", name="Delete task keep-me?")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    page.wait_for_timeout(300)
    assert state_of(server, "keep-me") == "succeeded"
    expect(card).to_be_visible()

    delete.click()
    confirm(page, "Delete")
    expect(card).to_have_count(0)
    assert state_of(server, "keep-me") == "deleted"


def test_bulk_delete_asks_with_the_count(page: Page, server: AntServer) -> None:
    login(page, server)
    text = "\n".join(f"ant_task_id=bulk-{i} true" for i in range(3))
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": text, "mode": "multi"})
        for i in range(3):
            wait_state(c, f"bulk-{i}", "succeeded")
    go(page, "Completed Tasks")
    expect(page.locator("[data-testid^=completed-bulk-]")).to_have_count(3)
    page.get_by_label("Select all on this page").check()
    button = page.get_by_role("button", name="Delete selected")
    button.click()
    dialog = page.get_by_role("alertdialog", name="Delete 3 tasks?")
    expect(dialog).to_contain_text("This cannot be undone")
    shot(page, "confirm-bulk-delete")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()
    assert [state_of(server, f"bulk-{i}") for i in range(3)] == ["succeeded"] * 3
    button.click()
    confirm(page, "Delete")
    expect(page.locator("[data-testid^=completed-bulk-]")).to_have_count(0)
    assert [state_of(server, f"bulk-{i}") for i in range(3)] == ["deleted"] * 3


def test_log_dialog_closes_on_escape_and_returns_the_focus(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "echo in-the-log", "task_id": "logged"})
        wait_state(c, "logged", "succeeded")
    go(page, "Completed Tasks")
    opener = details(page, "logged").get_by_role("button", name="View full log")
    opener.click()
    dialog = page.get_by_role("dialog", name="Log of logged")
    expect(dialog.get_by_test_id("full-log")).to_contain_text("in-the-log")
    expect(dialog).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()


def test_escape_closes_the_recovery_dialog_one_layer_at_a_time(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = server_factory(fake_gpus=1).start()
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "n_gpus": 1, "task_id": "blocker"})
        c.post("/api/v1/tasks", json={"command": "echo x", "n_gpus": 1, "task_id": "held-one"})
        wait_state(c, "blocker", "running")
    server.stop()
    server.start()
    login(page, server)
    recovery = page.get_by_role("dialog", name="Recover tasks")
    expect(recovery.get_by_test_id("recover-held-one")).to_be_visible()
    expect(recovery).to_be_focused()
    # Its Delete asks; Escape closes that question only.
    recovery.get_by_role("button", name="Delete held-one").click()
    question = page.get_by_role("alertdialog", name="Delete held-one from recovery?")
    expect(question).to_be_visible()
    page.keyboard.press("Escape")
    expect(question).to_have_count(0)
    expect(recovery.get_by_test_id("recover-held-one")).to_be_visible()
    assert state_of(server, "held-one") == "held"
    # A second Escape closes the recovery dialog.
    page.keyboard.press("Escape")
    expect(recovery).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("gpu-0")).to_be_visible()
    expect(recovery).to_have_count(0)  # closed by Escape counts as seen
