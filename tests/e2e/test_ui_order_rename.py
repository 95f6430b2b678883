"""P12's reordering and renaming in the web UI: dragging a queued task to the top (and moving one
with the keyboard) on Ongoing, kept after a reload; renaming a task from its page, and a task page
following a rename made elsewhere."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.test_ui import go, login
from tests.server import AntServer


def server_queue(c: httpx.Client) -> list[str]:
    tasks = c.get("/api/v1/tasks", params={"state": "queued"}).json()["tasks"]
    return [t["task_id"] for t in tasks]


def expect_rows(page: Page, ids: list[str]) -> None:
    rows = page.locator('[data-testid^="queued-"]')
    expect(rows).to_have_count(len(ids))
    for i, task_id in enumerate(ids):
        expect(rows.nth(i)).to_have_attribute("data-testid", f"queued-{task_id}")
        expect(rows.nth(i).locator('[data-label="Position"]')).to_have_text(str(i + 1))


def test_drag_a_queued_task_to_the_top_and_move_one_with_the_keyboard(
    page: Page, server: AntServer
) -> None:
    flag = server.workdir / "go-order"
    with server.client() as c:
        submit(c, f"while [ ! -e {flag} ]; do sleep 0.1; done", n_gpus=4, task_id="blocker")
        wait_state(c, "blocker", "running")
        for name in ("first", "second", "third"):
            submit(c, "true", n_gpus=1, task_id=name)
    login(page, server)
    go(page, "Ongoing Tasks")
    expect_rows(page, ["first", "second", "third"])
    # Drag "third" by its handle onto the first row.
    handle = page.get_by_role("button", name="Reorder third")
    target = page.get_by_test_id("queued-first")
    start, end = handle.bounding_box(), target.bounding_box()
    assert start is not None and end is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + 20, end["y"] + end["height"] / 2, steps=12)
    page.mouse.move(end["x"] + 20, end["y"] + 2, steps=6)
    page.mouse.up()
    expect_rows(page, ["third", "first", "second"])
    with server.client() as c:
        assert server_queue(c) == ["third", "first", "second"]
    page.reload()
    expect_rows(page, ["third", "first", "second"])  # kept: the server has it
    # The keyboard: focus the handle, Space picks the task up, ArrowUp moves it, Space drops it.
    handle = page.get_by_role("button", name="Reorder second")
    handle.focus()
    page.keyboard.press("Space")
    expect(handle).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowUp")
    announced = page.locator("[id^=DndLiveRegion]")  # what a screen reader is told
    try:
        expect(announced).to_have_text("Task second is over task first.", timeout=5000)
    except AssertionError:
        # Under load the arrow can come before the drag has measured the rows: nothing moved
        # (it is still over itself), so a second press is what a user would do, not a skip.
        expect(announced).to_have_text("Task second is over task second.")
        page.keyboard.press("ArrowUp")
        expect(announced).to_have_text("Task second is over task first.")
    page.keyboard.press("Space")
    expect_rows(page, ["third", "second", "first"])
    with server.client() as c:
        assert server_queue(c) == ["third", "second", "first"]
    flag.touch()


def test_rename_from_the_task_page_and_follow_a_rename_made_elsewhere(
    page: Page, server: AntServer
) -> None:
    with server.client() as c:
        submit(c, "echo output of the run", task_id="run-1")
        submit(c, "echo the other", task_id="other")
        wait_state(c, "run-1", "succeeded")
        wait_state(c, "other", "succeeded")
    login(page, server)
    page.goto(f"{server.url}/tasks/run-1")
    page.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename task run-1")
    dialog.get_by_label("New id").fill("other")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog.get_by_role("alert")).to_contain_text("'other' is taken")
    dialog.get_by_label("New id").fill("lr 0.1")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog.get_by_role("alert")).to_contain_text("may only contain")
    dialog.get_by_label("New id").fill("lr-0.1")
    dialog.get_by_role("button", name="Rename").click()
    expect(page).to_have_url(re.compile(r"/tasks/lr-0\.1$"))
    expect(page.get_by_test_id("task-lr-0.1")).to_be_visible()
    expect(page.get_by_test_id("output-lr-0.1")).to_contain_text("output of the run")
    with server.client() as c:
        assert c.get("/api/v1/tasks/run-1").status_code == 404
        assert c.get("/api/v1/tasks/lr-0.1").json()["log_path"].endswith("/lr-0.1.log")
    # Renamed elsewhere (`ant rename`) while its page is open: the page follows.
    page.goto(f"{server.url}/tasks/other")
    expect(page.get_by_test_id("task-other")).to_be_visible()
    with server.client() as c:
        r = c.post("/api/v1/tasks/other/rename", json={"new_id": "other-renamed"})
        assert r.status_code == 200, r.text
    expect(page).to_have_url(re.compile(r"/tasks/other-renamed$"))
    expect(page.get_by_test_id("task-other-renamed")).to_be_visible()
