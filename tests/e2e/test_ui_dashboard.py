"""The dashboard in real Chromium: the summary strip, the uPlot charts (axes with units, hover
values, a series toggled, the window switched and remembered, live samples appended) and the GPU
timeline (a bar per task that ran on a fake GPU, its hover card, a click to its page)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import login
from tests.server import AntServer

# The axes' labels, as the chart also gives them in text: times (a day's name at midnight), values.
CLOCK = re.compile(r"^Time: (?=[^.]*\d\d:\d\d)([\w:]+, )+[\w:]+\. Values: .+\.$")


def points(page: Page, chart: str) -> int:
    return int(page.get_by_test_id(f"chart-{chart}").get_attribute("data-points") or 0)


def test_dashboard_strip_charts_and_timeline(page: Page, server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=2, config={"MONITORING_refresh_interval": 0.3}).start()
    with server.client() as c:
        submit(c, "echo broken; exit 3", n_gpus=1, task_id="bad-run")
        bad = wait_state(c, "bad-run", "failed")
        submit(c, "sleep 1", n_gpus=1, task_id="gpu-job")
        job = wait_state(c, "gpu-job", "succeeded")
        submit(c, "sleep 120", n_gpus=1, task_id="long-job")
        long = wait_state(c, "long-job", "running")
        submit(c, "sleep 1", n_gpus=2, task_id="waiting")
    login(page, server)

    # The strip: counts now and of the last day, each a link to where those tasks are.
    strip = page.get_by_test_id("summary")
    expect(strip.get_by_test_id("summary-running").locator(".strip-value")).to_have_text("1")
    expect(strip.get_by_test_id("summary-queued").locator(".strip-value")).to_have_text("1")
    expect(strip.get_by_test_id("summary-held").locator(".strip-value")).to_have_text("0")
    expect(strip.get_by_test_id("summary-failed").locator(".strip-value")).to_have_text("1")
    expect(strip.get_by_test_id("summary-gpus").locator(".strip-value")).to_have_text("1 / 2")
    expect(strip.get_by_test_id("host")).to_contain_text("% CPU")
    expect(strip.get_by_test_id("summary-failed")).to_have_attribute("href", "/completed")

    # The GPU cards fill their row (the host is in the strip: no card alone on a row of its own).
    grid = page.locator(".gpu-grid").first.bounding_box()
    cards = [page.get_by_test_id(f"gpu-{i}").bounding_box() for i in (0, 1)]
    assert grid is not None and cards[0] is not None and cards[1] is not None
    assert cards[0]["y"] == cards[1]["y"]
    assert abs(cards[1]["x"] + cards[1]["width"] - (grid["x"] + grid["width"])) <= 2

    # The charts: uPlot canvases with a time axis and value axes in their units.
    for chart in ("gpu-util", "gpu-mem", "cpu", "ram"):
        expect(page.get_by_test_id(f"chart-{chart}").locator("canvas").first).to_be_visible()
        expect(page.get_by_test_id(f"chart-{chart}-axes")).to_have_text(CLOCK)
    expect(page.get_by_test_id("chart-cpu-axes")).to_contain_text("0 %, 50 %, 100 %")
    expect(page.get_by_test_id("chart-gpu-mem-axes")).to_contain_text("16.0 GiB")
    expect(page.get_by_role("button", name="1 h")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("chart-cpu")).to_have_attribute("data-window", "3600")

    # Live samples are appended to the history read at load.
    before = points(page, "cpu")
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=chart-cpu]').dataset.points) > {before}"
    )

    # Hover: the legend shows each series' value at the cursor (every GPU, each its own entry).
    util = page.get_by_test_id("chart-gpu-util")
    legend = util.locator(".u-legend .u-series")
    expect(legend).to_have_count(3)  # the time, GPU 0, GPU 1
    gpu1 = legend.filter(has_text="GPU 1")
    box = util.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    expect(gpu1.locator(".u-value")).to_have_text(re.compile(r"^\d+(\.\d)? %$"))
    expect(legend.first.locator(".u-value")).to_have_text(re.compile(r"\d:\d\d"))

    # A click on a legend entry hides that series, and it stays hidden as samples come in.
    gpu1.click()
    expect(gpu1).to_have_class(re.compile(r"\bu-off\b"))
    shown = points(page, "gpu-util")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=chart-gpu-util]').dataset.points)"
        f" > {shown}"
    )
    expect(gpu1).to_have_class(re.compile(r"\bu-off\b"))
    expect(gpu1).to_have_attribute("aria-pressed", "false")
    gpu1.focus()  # and from the keyboard
    page.keyboard.press("Enter")
    expect(gpu1).not_to_have_class(re.compile(r"\bu-off\b"))
    expect(gpu1).to_have_attribute("aria-pressed", "true")

    # The timeline: a bar for each task that held a GPU, none for one still waiting.
    timeline = page.get_by_test_id("gpu-timeline")
    [job_gpu] = job["gpu_ids"]
    [long_gpu] = long["gpu_ids"]
    [bad_gpu] = bad["gpu_ids"]
    expect(timeline.get_by_test_id(f"timeline-bar-{bad_gpu}-bad-run")).to_have_class(
        re.compile(r"\btl-failed\b")
    )
    expect(timeline.get_by_test_id(f"timeline-bar-{long_gpu}-long-job")).to_have_class(
        re.compile(r"\btl-running\b")
    )
    expect(timeline.locator("[data-testid$=-waiting]")).to_have_count(0)
    expect(timeline.get_by_test_id("timeline-gpu-0")).to_contain_text("GPU 0")
    expect(timeline.get_by_test_id("timeline-gpu-0")).to_contain_text("busy")

    # Switching the window re-reads the charts and the timeline; the choice is remembered, and so
    # are the series turned off.
    gpu1.click()
    expect(gpu1).to_have_class(re.compile(r"\bu-off\b"))
    page.get_by_role("button", name="15 min").click()
    expect(page.get_by_role("button", name="15 min")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="1 h")).to_have_attribute("aria-pressed", "false")
    expect(util).to_have_attribute("data-window", "900")  # the chart of the new window
    expect(page.get_by_test_id("chart-cpu-axes")).to_have_text(CLOCK)
    expect(gpu1).to_have_class(re.compile(r"\bu-off\b"))
    bar = timeline.get_by_test_id(f"timeline-bar-{job_gpu}-gpu-job")
    expect(bar).to_be_visible()
    shot(page, "dashboard-desktop")
    page.reload()
    expect(page.get_by_role("button", name="15 min")).to_have_attribute("aria-pressed", "true")

    # Hovering a bar says which task, what it ran, when; clicking it opens the task's page.
    bar.hover()
    tip = bar.get_by_role("tooltip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("gpu-job: succeeded (exit 0)")
    expect(tip).to_contain_text("sleep 1")
    expect(tip).to_contain_text("start ")
    expect(tip).to_contain_text("end ")
    shot(page, "dashboard-timeline-hover")
    bar.click()
    expect(page).to_have_url(re.compile(r"/tasks/gpu-job$"))
    expect(page.get_by_test_id("task-state")).to_have_text("succeeded")


def test_dashboard_at_phone_width(page: Page, server: AntServer) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    with server.client() as c:
        submit(c, "sleep 1", n_gpus=1, task_id="phone-job")
        wait_state(c, "phone-job", "succeeded")
    login(page, server)
    expect(page.get_by_test_id("chart-cpu").locator("canvas").first).to_be_visible()
    expect(page.get_by_test_id("gpu-timeline").locator(".tl-bar")).to_have_count(1)
    # Nothing wider than the screen: the page does not scroll sideways.
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width
    shot(page, "dashboard-phone")
