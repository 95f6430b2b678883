"""The task page in real Chromium: its fields and restart lineage, and the log viewer on a long
log (the first and the last of 300,000 lines, search, download), on a running task (follow), and
on a line too long to show whole."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import login
from tests.server import AntServer

LINES = 300_000


def line(page: Page, task_id: str, number: int) -> Locator:
    """The viewer's row of line `number` (1-based), once it is rendered."""
    return page.get_by_test_id(f"output-{task_id}").locator(f"[data-line='{number}']")


def shown(page: Page, task_id: str, number: int, timeout: float = 15_000) -> None:
    """Wait until line `number` is on screen within the viewer's scroller."""
    page.wait_for_function(
        """([tid, n]) => {
            const box = document.querySelector(`[data-testid="output-${tid}"] [role=log]`);
            const row = box && box.querySelector(`[data-line="${n}"]`);
            if (!row) return false;
            const outer = box.getBoundingClientRect(), inner = row.getBoundingClientRect();
            return inner.top >= outer.top - 1 && inner.bottom <= outer.bottom + 1;
        }""",
        arg=[task_id, number],
        timeout=timeout,
    )


def test_a_long_log_from_start_to_end_searched_and_downloaded(
    page: Page, server: AntServer
) -> None:
    login(page, server)
    command = f"python3 -c \"[print(f'line {{i:06d}}') for i in range(1, {LINES + 1})]\""
    with server.client() as c:
        body = {"command": command, "task_id": "big", "n_gpus": 1, "env": {"SEED": "7"}}
        c.post("/api/v1/tasks", json=body)
        wait_state(c, "big", "succeeded")
    page.goto(server.url + "/tasks/big")
    card = page.get_by_test_id("task-big")
    for field in ("Command", "GPUs", "Created", "Started", "Finished", "Ran for", "Exit code"):
        expect(card).to_contain_text(field)
    expect(card).to_contain_text("1 requested · on GPU")
    expect(card).to_contain_text("SEED=7")
    viewer = page.get_by_test_id("output-big")
    expect(viewer.get_by_test_id("log-size")).to_contain_text("300,000 lines")
    # It opens at the end, where a failure would show.
    expect(line(page, "big", LINES)).to_have_text(re.compile("line 300000$"))
    shown(page, "big", LINES)
    viewer.get_by_role("button", name="Start").click()
    expect(line(page, "big", 1)).to_have_text("1line 000001")  # the number, then the text
    shown(page, "big", 1)
    viewer.get_by_role("button", name="End").click()
    shown(page, "big", LINES)
    # Search: the one line in the middle is scrolled to and marked.
    search = viewer.get_by_label("Search in log")
    search.fill("LINE 150000")
    search.press("Enter")
    expect(viewer.get_by_test_id("log-matches")).to_have_text("1 of 1 line")
    middle = line(page, "big", 150_000)
    shown(page, "big", 150_000)
    expect(middle).to_have_class(re.compile("logv-current"))
    expect(middle.locator("mark")).to_have_text("line 150000")
    shot(page, "task-log-search")
    # Many matches: the first one after where the reader is, then next and previous, wrapping.
    search.fill("99999")
    search.press("Enter")
    matches = viewer.get_by_test_id("log-matches")
    expect(matches).to_have_text("2 of 3 lines")
    expect(line(page, "big", 199_999)).to_have_class(re.compile("logv-current"))
    viewer.get_by_role("button", name="Next match").click()
    expect(matches).to_have_text("3 of 3 lines")
    expect(line(page, "big", 299_999)).to_have_class(re.compile("logv-current"))
    viewer.get_by_role("button", name="Next match").click()
    expect(matches).to_have_text("1 of 3 lines")
    shown(page, "big", 99_999)
    viewer.get_by_role("button", name="Previous match").click()
    expect(line(page, "big", 299_999)).to_have_class(re.compile("logv-current"))
    with page.expect_download() as download:
        viewer.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "big.log"
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == LINES and lines[-1] == "line 300000"


def test_follow_shows_new_lines_of_a_running_task(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        # 400 lines over ~5 s, in bursts: most come while the page follows.
        command = (
            "for i in $(seq 1 400); do echo tick-$i; [ $((i % 40)) = 0 ] && sleep 0.5; done; "
            "sleep 60"
        )
        c.post("/api/v1/tasks", json={"command": command, "task_id": "ticker", "n_gpus": 1})
        wait_state(c, "ticker", "running")
    page.goto(server.url + "/tasks/ticker")
    viewer = page.get_by_test_id("output-ticker")
    expect(viewer.get_by_label("Follow")).to_be_checked()
    # Far more lines than the viewer holds on screen: following keeps the newest in view.
    expect(line(page, "ticker", 400)).to_have_text(re.compile("tick-400$"), timeout=60_000)
    shown(page, "ticker", 400)
    viewer.get_by_role("button", name="Start").click()
    expect(viewer.get_by_label("Follow")).not_to_be_checked()
    shown(page, "ticker", 1)
    viewer.get_by_label("Follow").check()
    shown(page, "ticker", 400)
    shot(page, "task-log-follow")
    # The dashboard names the task holding a GPU: a link to its page.
    page.get_by_role("link", name="Dashboard").click()
    holder = page.locator("[data-testid^=gpu-][data-testid$=-state]")
    holder.get_by_role("link", name="ticker").click()
    expect(page).to_have_url(server.url + "/tasks/ticker")
    page.get_by_role("button", name="Kill").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Kill", exact=True).click()
    expect(page.get_by_test_id("task-state")).to_have_text("killed")


def test_lineage_after_restarts_and_a_cut_line(page: Page, server: AntServer) -> None:
    login(page, server)
    command = "python3 -c \"print('x' * 100000); print('after')\"; exit 3"
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": command, "task_id": "flaky", "n_gpus": 0})
        wait_state(c, "flaky", "failed")
    page.goto(server.url + "/tasks/flaky")
    viewer = page.get_by_test_id("output-flaky")
    expect(line(page, "flaky", 2)).to_have_text("2after")
    expect(line(page, "flaky", 1).get_by_text("line cut at 64 KiB")).to_be_visible()
    expect(line(page, "flaky", 1).get_by_role("link", name="download")).to_have_attribute(
        "href", "/api/v1/tasks/flaky/log?full=true"
    )
    expect(viewer).to_be_visible()
    page.get_by_role("button", name="Restart").click()
    expect(page).to_have_url(server.url + "/tasks/flaky-restart-1")
    toast = page.get_by_role("status").get_by_role("link", name="flaky-restart-1")
    expect(toast).to_have_attribute("href", "/tasks/flaky-restart-1")  # the toast links it
    card = page.get_by_test_id("task-flaky-restart-1")
    expect(card).to_contain_text("Restarted from")
    expect(page.get_by_test_id("task-state")).to_have_text("failed")
    page.get_by_role("button", name="Restart").click()
    expect(page).to_have_url(server.url + "/tasks/flaky-restart-2")
    expect(page.get_by_test_id("lineage")).to_have_text("flaky → flaky-restart-1 → flaky-restart-2")
    shot(page, "task-lineage")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: every control reachable
    for control in ("Start", "End", "Find"):
        expect(page.get_by_role("button", name=control, exact=True)).to_be_visible()
    expect(page.get_by_label("Search in log")).to_be_visible()
    shot(page, "task-lineage-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_test_id("lineage").get_by_role("link", name="flaky", exact=True).click()
    expect(page).to_have_url(server.url + "/tasks/flaky")
    expect(page.get_by_test_id("task-flaky")).to_contain_text("Restarted as")


def test_past_what_a_browser_can_scroll_the_viewer_says_which_part_it_shows(
    page: Page, server: AntServer
) -> None:
    login(page, server)
    command = "python3 -c \"[print(f'row {i}') for i in range(1, 600001)]\""
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": command, "task_id": "huge", "n_gpus": 0})
        wait_state(c, "huge", "succeeded")
    page.goto(server.url + "/tasks/huge")
    viewer = page.get_by_test_id("output-huge")
    notice = viewer.get_by_test_id("log-window")
    expect(notice).to_contain_text("Showing lines 100,001–600,000 of 600,000")
    expect(notice.get_by_role("link", name="download")).to_be_visible()
    shown(page, "huge", 600_000)
    viewer.get_by_role("button", name="Start").click()
    expect(notice).to_contain_text("Showing lines 1–500,000 of 600,000")
    shown(page, "huge", 1)
    notice.get_by_role("button", name="Later lines").click()
    expect(notice).to_contain_text("Showing lines 100,001–600,000")
    search = viewer.get_by_label("Search in log")
    search.fill("row 42")
    search.press("Enter")  # no match after the view among the first 1,000: it wraps to row 42
    expect(viewer.get_by_test_id("log-matches")).to_have_text("1 of 1,000+ lines")
    expect(line(page, "huge", 42)).to_have_class(re.compile("logv-current"))
    expect(notice).to_contain_text("Showing lines 1–500,000")
    shown(page, "huge", 42)
    # A search that stopped at its limit goes on from where it stopped.
    viewer.get_by_role("button", name=re.compile("Search on from line")).click()
    expect(viewer.get_by_test_id("log-matches")).to_have_text("1,001 of 2,000+ lines")
    expect(line(page, "huge", 42_889)).to_have_class(re.compile("logv-current"))
