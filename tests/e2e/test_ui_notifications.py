"""Desktop notifications (opt-in) when a task submitted here or watched ends, and the light and
dark themes, in real Chromium. Headless Chromium shows no notifications: `window.Notification` is
wrapped to record the ones the UI makes (the permission is the browser context's, unless a test
sets the answer itself)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import create, go, login
from tests.server import AntServer

RECORD = """
(() => {
  const Real = window.Notification;
  window.__shown = [];
  window.__asked = 0;
  // window.__permission (set by a test): the permission as it is, and the user's answer to it.
  class Recorded {
    static get permission() { return window.__permission || Real.permission; }
    static requestPermission() {
      window.__asked += 1;
      if (!window.__permission) return Real.requestPermission();
      window.__permission = window.__answer;
      return Promise.resolve(window.__answer);
    }
    constructor(title, options = {}) {
      this.title = title;
      this.body = options.body;
      this.onclick = null;
      window.__shown.push(this);
    }
    close() {}
  }
  window.Notification = Recorded;
})();
"""


@pytest.fixture
def npage(browser: Browser) -> Iterator[Page]:
    """A page allowed to notify, which records its notifications."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["notifications"]
    )
    context.add_init_script(RECORD)
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def shown(page: Page) -> list[str]:
    return sorted(page.evaluate("window.__shown.map((n) => n.title)"))


def switch(page: Page) -> Locator:
    return page.get_by_label("Desktop notifications")


def gated(gate: Path, then: str = "true") -> str:
    """A command that runs until the test creates the file `gate`."""
    return f"while [ ! -e {gate} ]; do sleep 0.1; done; {then}"


def see_state(page: Page, task_id: str, state: str) -> None:
    """The task's page shows its state: the UI has seen the event (and notified, if it would).
    Opened within the page, as a link does: a reload would start it (and its record) afresh."""
    page.evaluate(
        "(path) => { history.pushState(null, '', path);"
        " dispatchEvent(new PopStateEvent('popstate')); }",
        f"/tasks/{task_id}",
    )
    expect(page).to_have_url(re.compile(f"/tasks/{task_id}$"))
    expect(page.get_by_test_id("task-state")).to_have_text(state)


def test_notifies_when_tasks_submitted_here_end(
    npage: Page, server: AntServer, tmp_path: Path
) -> None:
    page = npage
    login(page, server)
    expect(switch(page)).not_to_be_checked()  # off until the user turns it on
    switch(page).check()
    expect(page.get_by_test_id("notify-blocked")).to_have_count(0)
    shot(page, "notifications-on")

    # Submitted here, and ended while no page was open: no news when the UI comes back.
    gate = tmp_path / "early-gate"
    create(page, gated(gate), task_id="nt-early")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: nt-early")
    page.goto("about:blank")
    gate.touch()
    with server.client() as c:
        wait_state(c, "nt-early", "succeeded")
    login(page, server)
    expect(switch(page)).to_be_checked()  # remembered
    see_state(page, "nt-early", "succeeded")
    go(page, "Dashboard")

    create(page, "true", task_id="nt-ok")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: nt-ok")
    create(page, "echo bad; exit 3", task_id="nt-bad")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: nt-bad")
    page.wait_for_function("() => window.__shown.length >= 2")
    go(page, "Dashboard")
    assert shown(page) == ["nt-bad failed (exit 3)", "nt-ok succeeded"]
    bodies = page.evaluate("window.__shown.map((n) => n.body)")
    assert all(re.fullmatch(r"Ran for \d+s", body) for body in bodies), bodies

    # Clicking one opens its task.
    page.evaluate("window.__shown.find((n) => n.title.startsWith('nt-bad')).onclick()")
    expect(page).to_have_url(re.compile(r"/tasks/nt-bad$"))
    expect(page.get_by_test_id("task-state")).to_have_text("failed")
    assert len(shown(page)) == 2


def test_watched_and_open_tasks_notify_others_do_not(
    npage: Page, server: AntServer, tmp_path: Path
) -> None:
    page = npage
    gates = {name: tmp_path / name for name in ("watched", "open", "other")}
    with server.client() as c:
        for name, gate in gates.items():
            r = c.post(
                "/api/v1/tasks",
                json={"command": gated(gate), "task_id": f"nt-{name}", "n_gpus": 0},
            )
            assert r.status_code == 201, r.text
            wait_state(c, f"nt-{name}", "running")
    login(page, server)
    switch(page).check()

    # Watched with the task page's switch, which holds after the page is left.
    see_state(page, "nt-watched", "running")
    page.get_by_label("Watch", exact=True).check()
    go(page, "Dashboard")
    gates["watched"].touch()
    page.wait_for_function("() => window.__shown.length >= 1")
    assert shown(page) == ["nt-watched succeeded"]

    # Not watched, not submitted here: nothing (seen leaving Ongoing; its page would watch it).
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("running-nt-other")).to_be_visible()
    gates["other"].touch()
    expect(page.get_by_test_id("running-nt-other")).to_have_count(0)
    assert shown(page) == ["nt-watched succeeded"]

    # Its page is open: watched while it shows.
    see_state(page, "nt-open", "running")
    expect(page.get_by_label("Watch", exact=True)).not_to_be_checked()
    gates["open"].touch()
    expect(page.get_by_test_id("task-state")).to_have_text("succeeded")
    expect(page.get_by_label("Watch", exact=True)).to_have_count(0)  # nothing to watch now
    assert shown(page) == ["nt-open succeeded", "nt-watched succeeded"]


def test_off_means_none(npage: Page, server: AntServer) -> None:
    page = npage
    login(page, server)
    create(page, "exit 1", task_id="nt-quiet")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: nt-quiet")
    see_state(page, "nt-quiet", "failed")
    assert shown(page) == []
    assert page.evaluate("window.__asked") == 0


def test_asks_when_turned_on_and_says_when_denied(npage: Page, server: AntServer) -> None:
    page = npage
    page.add_init_script("window.__permission = 'default'; window.__answer = 'denied';")
    login(page, server)
    assert page.evaluate("window.__asked") == 0  # not asked on load
    switch(page).check()
    expect(page.get_by_test_id("notify-blocked")).to_contain_text("blocked by the browser")
    assert page.evaluate("window.__asked") == 1
    shot(page, "notifications-denied")
    create(page, "true", task_id="nt-denied")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: nt-denied")
    see_state(page, "nt-denied", "succeeded")
    assert shown(page) == []
    switch(page).uncheck()
    expect(page.get_by_test_id("notify-blocked")).to_have_count(0)


# ------------------------------------------------------------------------------------ themes


def luminance(css: str) -> float:
    """The relative luminance (WCAG) of an `rgb(...)` computed colour."""
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def colours(page: Page, selector: str) -> tuple[str, str]:
    """The text colour and background colour of the first element `selector` matches."""
    style = page.locator(selector).first.evaluate(
        "(el) => { const s = getComputedStyle(el); return [s.color, s.backgroundColor]; }"
    )
    return style[0], style[1]


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_themes_follow_the_system(page: Page, server: AntServer, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    with server.client() as c:
        c.post(
            "/api/v1/tasks",
            json={
                "command": "echo hello; printf '\\033[32mgreen\\033[0m\\n'; sleep 60",
                "task_id": "theme-run",
                "n_gpus": 1,
            },
        )
        c.post("/api/v1/tasks", json={"command": "echo oops; exit 2", "task_id": "theme-bad"})
        wait_state(c, "theme-run", "running")
        wait_state(c, "theme-bad", "failed")
    login(page, server)
    text, background = colours(page, "html")
    if scheme == "dark":
        assert luminance(background) < 0.05, background
    else:
        assert luminance(background) > 0.8, background
    assert contrast(text, background) >= 7, (text, background)
    card_text, card = colours(page, ".card")
    assert contrast(card_text, card) >= 7
    muted, _ = colours(page, ".card .muted")
    assert contrast(muted, card) >= 4.5, (muted, card)
    # The charts (uPlot, on a canvas) draw in the theme's colours: the first line's legend marker.
    marker = page.get_by_test_id("chart-cpu").locator(".u-series .u-marker").last
    expect(marker).to_be_attached()
    stroke = marker.evaluate("(el) => getComputedStyle(el).borderColor")
    assert stroke == {"dark": "rgb(79, 140, 255)", "light": "rgb(36, 88, 211)"}[scheme], stroke
    shot(page, f"theme-{scheme}-dashboard")

    see_state(page, "theme-run", "running")
    expect(page.get_by_test_id("terminal-theme-run")).to_contain_text("green")
    term_text, term = colours(page, ".terminal")
    assert luminance(term) < 0.05  # dark in both: ANSI colours are made for a dark screen
    assert contrast(term_text, term) >= 7
    shot(page, f"theme-{scheme}-task-running")

    see_state(page, "theme-bad", "failed")
    expect(page.locator(".terminal")).to_contain_text("oops")
    badge_text, badge = colours(page, "[data-testid=task-state]")
    assert contrast(badge_text, badge) >= 4.5, (badge_text, badge)
    button_text, button = colours(page, "button:not(.ghost)")
    assert contrast(button_text, button) >= 4.5, (button_text, button)
    shot(page, f"theme-{scheme}-task-failed")
