"""Tags in the web UI (P12): set on Create, shown as chips, a click filters (kept in the URL),
a tag paused from the tag bar (the banner says so, its queued tasks say why), bulk kill and
restart by tag with the usual confirmation, the Completed page filtered by tag, and the recovery
dialog selecting by tag."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_ui import go, login
from tests.e2e.test_ui_create import fill_form
from tests.server import AntServer


@pytest.fixture
def page(axe_page: Page) -> Page:
    """conftest's axe_page: axe checks these pages."""
    return axe_page


def test_tag_filter_pause_and_bulk_actions(page: Page, server: AntServer) -> None:
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, "sleep 60", task_id="lr-1", gpus="1")
    page.get_by_label("Tags").fill("sweep-lr, a/b")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("is not a valid tag")).to_be_visible()  # nothing was sent
    page.get_by_label("Tags").fill("sweep-lr, seed-1")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: lr-1")
    with server.client() as c:
        assert c.get("/api/v1/tasks/lr-1").json()["tags"] == ["sweep-lr", "seed-1"]
        submit(c, "sleep 60", task_id="untagged", n_gpus=1)
        wait_state(c, "lr-1", "running")
        wait_state(c, "untagged", "running")

    go(page, "Ongoing Tasks")
    card = page.get_by_test_id("running-lr-1")
    expect(page.get_by_test_id("running-untagged")).to_be_visible()
    card.get_by_test_id("tag-chip-sweep-lr").click()  # a chip filters by its tag
    expect(page).to_have_url(re.compile(r"/ongoing\?tag=sweep-lr$"))
    expect(page.get_by_test_id("running-untagged")).to_have_count(0)
    expect(card).to_be_visible()

    bar = page.get_by_test_id("tag-bar")
    bar.get_by_role("button", name="Pause tag").click()
    expect(page.get_by_test_id("paused-tag-sweep-lr")).to_contain_text("Tag sweep-lr is paused")
    with server.client() as c:
        assert [p["tag"] for p in c.get("/api/v1/queue").json()["paused_tags"]] == ["sweep-lr"]
        submit(c, "true", task_id="lr-2", n_gpus=1, tags=["sweep-lr"])  # GPUs are free
    row = page.get_by_test_id("queued-lr-2")
    expect(row).to_contain_text("tag sweep-lr is paused")
    expect(card).to_be_visible()  # running ones go on
    assert_accessible(page, "ongoing filtered by a paused tag")

    bar.get_by_role("button", name="Kill all").click()
    dialog = page.get_by_role("alertdialog", name="Kill every task tagged sweep-lr?")
    dialog.get_by_role("button", name="Kill all").click()
    expect(page.get_by_text("Killed 2 tasks tagged sweep-lr")).to_be_visible()
    expect(row).to_have_count(0)
    expect(card).to_have_count(0)
    with server.client() as c:
        assert c.get("/api/v1/tasks/untagged").json()["state"] == "running"  # not tagged

    # The banner resumes the tag; the filter is in the URL, so the Completed page keeps it.
    page.get_by_test_id("paused-tag-sweep-lr").get_by_role("button", name="Resume").click()
    expect(page.get_by_test_id("paused-tag-sweep-lr")).to_have_count(0)
    page.goto(f"{server.url}/completed?tag=sweep-lr")
    expect(page.get_by_test_id("completed-lr-1")).to_be_visible()
    expect(page.get_by_test_id("completed-lr-2")).to_be_visible()
    expect(page.get_by_test_id("completed-range")).to_have_text("1-2 of 2")
    page.get_by_test_id("tag-bar").get_by_role("button", name="Restart ended").click()
    dialog = page.get_by_role("alertdialog", name="Restart the ended tasks tagged sweep-lr?")
    dialog.get_by_role("button", name="Restart").click()
    expect(page.get_by_text("Restarted 2 tasks tagged sweep-lr")).to_be_visible()
    with server.client() as c:
        wait_state(c, "lr-2-restart-1", "succeeded")
        copy = c.get("/api/v1/tasks/lr-1-restart-1").json()
        assert copy["tags"] == ["sweep-lr", "seed-1"]
    page.goto(f"{server.url}/tasks/lr-1-restart-1")
    expect(page.get_by_test_id("tag-chip-seed-1")).to_be_visible()


def test_the_recovery_dialog_selects_by_tag(page: Page, server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    with server.client() as c:
        submit(c, "sleep 60", task_id="busy", n_gpus=1)
        wait_state(c, "busy", "running")
        submit(c, "true", task_id="held-a", n_gpus=1, tags=["keep"])
        submit(c, "true", task_id="held-b", n_gpus=1, tags=["keep"])
        submit(c, "true", task_id="held-c", n_gpus=1)  # all three wait for busy's GPU
    server.stop()
    server.start()
    login(page, server)
    dialog = page.get_by_role("dialog", name="Recover tasks")  # it opens by itself
    dialog.get_by_test_id("select-tag-keep").click()
    restore = dialog.get_by_role("button", name=re.compile(r"Restore selected"))
    expect(restore).to_have_text("Restore selected (2)")
    expect(dialog.get_by_label("Select held-c")).not_to_be_checked()
    assert_accessible(page, "recovery dialog with tags")
    restore.click()
    with server.client() as c:
        wait_state(c, "held-a", "queued", "running", "succeeded")  # restored
        wait_state(c, "held-b", "queued", "running", "succeeded")
        assert c.get("/api/v1/tasks/held-c").json()["state"] == "held"
        c.post("/api/v1/tasks/busy/kill")
