"""The Completed table in real Chromium: filters, sort, page size and the URL that keeps them,
a row's details (env, GPUs, times, log preview), virtualised rows, and the cards at phone width."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import details, go, login
from tests.server import AntServer


def row_ids(page: Page) -> list[str]:
    """The ids of the rows in the table, top to bottom."""
    ids: list[str] = page.locator("tbody.task-rows").evaluate_all(
        "rows => rows.map(r => r.dataset.testid.replace(/^completed-/, ''))"
    )
    return ids


def history(c: httpx.Client) -> dict[str, dict[str, Any]]:
    """Two failed and two succeeded tasks of different lengths, then 30 quick ones."""
    submit(c, "echo boom-a; exit 3", task_id="fail-a", n_gpus=1, env={"MODEL": "resnet"})
    submit(c, "sleep 0.8; echo boom-b; exit 4", task_id="fail-b", n_gpus=2)
    submit(c, "echo short-out", task_id="ok-short")
    submit(c, "sleep 0.5; echo long-out", task_id="ok-long")
    text = "\n".join(f"ant_task_id=h-{i:02d} true" for i in range(30))
    submit(c, text, mode="multi")
    tasks = {}
    for task_id in ("fail-a", "fail-b", "ok-short", "ok-long", *(f"h-{i:02d}" for i in range(30))):
        tasks[task_id] = wait_state(c, task_id, "succeeded", "failed")
    return tasks


def test_filter_sort_page_size_and_details(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        tasks = history(c)
    go(page, "Completed Tasks")
    expect(page.get_by_test_id("completed-range")).to_have_text("1-34 of 34")

    # Only failed: a chip; the URL says so, and a reload keeps it.
    page.get_by_role("group", name="Show only these states").get_by_role(
        "button", name="failed", exact=True
    ).click()
    expect(page.get_by_test_id("completed-range")).to_have_text("1-2 of 2")
    expect(page).to_have_url(re.compile(r"/completed\?state=failed$"))
    assert sorted(row_ids(page)) == ["fail-a", "fail-b"]

    # Sort by duration: longest first, then shortest first; aria-sort says which.
    header = page.get_by_role("columnheader", name="Duration", exact=True)
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(r"sort=duration"))
    expect(page.locator("tbody.task-rows").first).to_have_attribute(
        "data-testid", "completed-fail-b"
    )
    assert row_ids(page) == ["fail-b", "fail-a"]
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("tbody.task-rows").first).to_have_attribute(
        "data-testid", "completed-fail-a"
    )
    expect(page.get_by_role("columnheader", name="Ended", exact=True)).to_have_attribute(
        "aria-sort", "none"
    )
    page.reload()
    expect(page.get_by_test_id("completed-range")).to_have_text("1-2 of 2")
    assert row_ids(page) == ["fail-a", "fail-b"]
    expect(page.get_by_role("button", name="failed", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    # A row opens into its details: env, GPUs, times, the exit code and the end of its log.
    row = details(page, "fail-a")
    gpus = ", ".join(str(g) for g in tasks["fail-a"]["gpu_ids"])
    fields = row.locator("dl.fields")
    expect(fields).to_contain_text("MODEL=resnet")
    expect(
        fields.locator("dt", has_text="GPUs").locator("xpath=following-sibling::dd[1]")
    ).to_have_text(gpus)
    for name in ("Submitted", "Started", "Ended", "Duration", "Exit code"):
        expect(fields.locator("dt", has_text=re.compile(f"^{name}$"))).to_be_visible()
    expect(page.get_by_test_id("output-fail-a")).to_contain_text("boom-a")
    for action in ("Restart", "View full log", "Copy command", "Delete"):
        expect(row.get_by_role("button", name=action, exact=True)).to_be_visible()
    expect(row.get_by_role("link", name="Download")).to_be_visible()
    expect(row.get_by_role("link", name="fail-a")).to_have_attribute("href", "/tasks/fail-a")
    shot(page, "completed-table-details")
    row.get_by_role("button", name="Details of fail-a").click()
    expect(page.get_by_test_id("output-fail-a")).to_have_count(0)

    # A search and the states together; then clear, and choose the page size.
    page.get_by_label("Search tasks").fill("fail-b")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("completed-range")).to_have_text("1-1 of 1")
    page.get_by_role("button", name="Clear filters").click()
    expect(page.get_by_test_id("completed-range")).to_have_text("1-34 of 34")
    page.get_by_label("Rows per page").select_option("25")
    expect(page.get_by_test_id("completed-range")).to_have_text("1-25 of 34")
    expect(page).to_have_url(re.compile(r"size=25"))
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_test_id("completed-range")).to_have_text("26-34 of 34")
    expect(page).to_have_url(re.compile(r"page=2"))
    assert len(row_ids(page)) == 9
    # Sorted by id (A-Z at the first click), with every row of a bigger page.
    page.get_by_label("Rows per page").select_option("100")
    page.get_by_role("columnheader", name="ID", exact=True).get_by_role("button").click()
    expect(page.get_by_test_id("completed-range")).to_have_text("1-34 of 34")
    expect(page.locator("tbody.task-rows").first).to_have_attribute(
        "data-testid", "completed-fail-a"
    )
    # fail-a may have been first before the sort too: wait for the sorted page to be drawn.
    expect(page).to_have_url(re.compile(r"sort=task_id"))
    expect(page.locator("tbody.task-rows").nth(1)).to_have_attribute(
        "data-testid", "completed-fail-b"
    )
    drawn = row_ids(page)  # the rows on screen and a few more: not all 34 (virtualised)
    assert len(drawn) > 10 and drawn == sorted(tasks)[: len(drawn)]
    shot(page, "completed-table")


def test_a_range_of_end_days_from_the_url(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        submit(c, "true", task_id="today")
        wait_state(c, "today", "succeeded")
    page.goto(server.url + "/completed?from=2000-01-01&to=2000-01-02")
    expect(page.get_by_test_id("completed-empty")).to_have_text(
        "No ended task matches these filters."
    )
    expect(page.get_by_label("Ended from")).to_have_value("2000-01-01")
    page.get_by_label("Ended to").fill("")
    expect(page.get_by_test_id("completed-today")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/completed\?from=2000-01-01$"))
    # A page past the end (a link from before a deletion) shows the last one.
    page.goto(server.url + "/completed?page=7")
    expect(page.get_by_test_id("completed-range")).to_have_text("1-1 of 1")
    expect(page).to_have_url(re.compile(r"/completed$"))


def test_a_thousand_rows_are_virtualised(page: Page, server: AntServer) -> None:
    """A page of 1,000 puts only the rows on screen (and a few more) in the document."""
    login(page, server)
    text = "\n".join(f"ant_task_id=v-{i:04d} true" for i in range(600))
    with server.client() as c:
        submit(c, text, mode="multi")
        wait_state(c, "v-0599", "succeeded", timeout=120)
        for i in range(0, 600, 50):
            wait_state(c, f"v-{i:04d}", "succeeded", timeout=120)
    page.goto(server.url + "/completed?sort=task_id&size=1000")
    expect(page.get_by_test_id("completed-range")).to_have_text("1-600 of 600")
    expect(page.get_by_test_id("completed-v-0000")).to_be_visible()
    rendered = len(row_ids(page))
    assert 10 < rendered < 100, rendered
    page.keyboard.press("End")
    expect(page.get_by_test_id("completed-v-0599")).to_be_visible()
    assert len(row_ids(page)) < 100
    expect(page.get_by_test_id("completed-v-0000")).to_have_count(0)
    # Selecting all takes the whole page, not only the rows drawn.
    page.get_by_label("Select all on this page").check()
    expect(page.get_by_text("600 selected")).to_be_visible()


def test_at_phone_width_rows_are_cards_with_every_action_on_screen(
    browser: Browser, server: AntServer
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        login(page, server)
        with server.client() as c:
            submit(c, "echo phone-out; exit 2", task_id="phone-task", env={"K": "v"}, n_gpus=1)
            wait_state(c, "phone-task", "failed")
        go(page, "Completed Tasks")
        row = page.get_by_test_id("completed-phone-task")
        summary = row.locator("tr.summary")
        expect(summary).to_have_css("display", "flex")
        expect(page.locator("table.completed-table thead")).to_be_hidden()
        box = summary.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        expect(row.locator("td[data-label=Exit]")).to_have_text("2")
        expect(row.locator("td[data-label=GPUs]")).to_be_visible()

        def on_screen(name: str, role: str = "button") -> None:
            target = page.get_by_role(role, name=name, exact=True)  # type: ignore[arg-type]
            expect(target).to_be_visible()
            target.scroll_into_view_if_needed()
            b = target.bounding_box()
            assert b and b["x"] >= 0 and b["x"] + b["width"] <= 390, (name, b)

        for name in ("failed", "Search", "Next page", "Delete selected"):
            on_screen(name)
        on_screen("Details of phone-task")
        row.get_by_role("button", name="Details of phone-task").click()
        for name in ("Restart", "View full log", "Copy command", "Delete"):
            on_screen(name)
        on_screen("Download", "link")
        expect(page.get_by_test_id("output-phone-task")).to_contain_text("phone-out")
        expect(row.locator("dl.fields")).to_contain_text("K=v")
        shot(page, "completed-phone")
        row.get_by_role("button", name="View full log").click()
        expect(page.get_by_test_id("full-log")).to_contain_text("phone-out")
        page.get_by_role("button", name="Close log").click()
        row.get_by_role("button", name="Delete", exact=True).click()
        page.get_by_role("alertdialog").get_by_role("button", name="Cancel").click()
        expect(row).to_be_visible()
    finally:
        context.close()
