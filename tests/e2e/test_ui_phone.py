"""Every page and dialog at phone width (390x844), in real Chromium against a real `ant serve`: the
page never scrolls sideways, nothing is cut off, and every button, link and field shown can be
scrolled to and clicked (no other element over it). Screenshots: test-artifacts/phone-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.scenes import (
    HELD,
    QUEUED,
    RUNNING,
    busy_server,
    close_recovery,
    go,
    open_logged_in,
    show_ongoing,
    show_preview,
)
from tests.e2e.screens import PHONE
from tests.e2e.test_ui import details
from tests.server import AntServer

INTERACTIVE = "button, a[href], input, select, textarea, summary"
# Boxes whose content may be wider than the screen and scroll sideways on their own: a terminal
# or a log keeps a program's lines as they are. Anything else must fit.
MAY_SCROLL_X = "pre, .terminal, [data-scroll-x]"

# Each control shown whose box reaches outside the screen, or outside a box that clips it; and each
# box (other than MAY_SCROLL_X, a field, or text cut with an ellipsis on purpose) whose content is
# wider than it: cut off, or only reached sideways.
CUT_OFF = (Path(__file__).parent / "cut_off.js").read_text()


def assert_usable(page: Page, where: str) -> None:
    """At 390 px: no sideways scrolling, nothing cut off, no serious accessibility violation,
    every control shown reachable and clickable (a trial click: scrolled into view, visible,
    enabled, not covered). With a dialog open, its controls (what is behind it is covered)."""
    dialogs = page.locator("[role=dialog], [role=alertdialog]")
    ARTIFACTS.mkdir(exist_ok=True)  # a dialog covers the screen: a full-page picture cuts it short
    page.screenshot(path=str(ARTIFACTS / f"phone-{where}.png"), full_page=not dialogs.count())
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{where}: the page is {width} px wide, the screen 390"
    cut = page.evaluate(CUT_OFF, [INTERACTIVE, MAY_SCROLL_X])
    assert not cut, f"{where}: cut off at 390 px:\n" + "\n".join(cut)
    assert_accessible(page, f"{where} at 390 px")  # the phone layout has its own markup (cards)
    scope = dialogs.last if dialogs.count() else page.locator("body")
    controls = scope.locator(INTERACTIVE).all()
    assert controls, f"{where}: no controls found"
    for control in controls:
        if not control.is_visible() or not control.is_enabled():
            continue
        if control.evaluate("el => !!el.closest('.sr-only, .skip')"):
            continue  # shown on keyboard focus only
        if control.evaluate("el => el.classList.contains('tl-bar')"):
            # A timeline bar drawn on a few pixels may lie under a neighbour's (tasks seconds
            # apart in a window of hours); each task is reachable from its own list too.
            continue
        try:
            control.click(trial=True, timeout=10_000)
        except Exception as err:  # any failure: say which control
            html = control.evaluate("el => el.outerHTML.slice(0, 200)")
            raise AssertionError(f"{where}: cannot click {html}: {err}") from err
    page.evaluate("window.scrollTo(0, 0)")


def on_screen(control: Locator) -> None:
    control.scroll_into_view_if_needed()
    expect(control).to_be_in_viewport(ratio=1)
    box = control.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_every_page_and_dialog_is_usable_at_390_px(
    browser: Browser, server_factory: type[AntServer]
) -> None:
    server = busy_server(server_factory)
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        bypass_csp=True,  # for axe: a11y.py
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(server.url + "/")
        page.get_by_label("Token").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Invalid token")
        assert_usable(page, "login")

        open_logged_in(page, server)
        dialog = page.get_by_role("dialog", name="Recover tasks")
        dialog.get_by_role("checkbox", name=f"Select {HELD}").check()
        expect(dialog.get_by_role("button", name="Restore selected (1)")).to_be_enabled()
        assert_usable(page, "recovery-dialog")
        dialog.get_by_role("button", name=f"Delete {HELD}").click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        assert_usable(page, "recovery-confirm")
        page.get_by_role("alertdialog").get_by_role("button", name="Cancel").click()
        close_recovery(page)

        expect(page.get_by_test_id("gpu-0")).to_be_visible()
        assert_usable(page, "dashboard")

        go(page, "Create", "/create")
        page.get_by_role("button", name="+ Add variable").click()
        page.get_by_label("Variable 1 name").fill("WANDB_PROJECT")
        page.get_by_label("Variable 1 value").fill(
            "/home/researcher/projects/vision/very/long/path"
        )
        page.get_by_text("Special variables").click()
        show_preview(page)
        assert_usable(page, "create-preview")

        show_ongoing(page)
        assert_usable(page, "ongoing")
        # The main actions, by name: each comes wholly on screen when scrolled to.
        for name in QUEUED:
            row = page.get_by_test_id(f"queued-{name}")
            on_screen(row.get_by_role("button", name="Move to top"))
            on_screen(row.get_by_role("button", name=f"Reorder {name}"))
            on_screen(row.get_by_role("button", name="Delete"))
        for name in RUNNING:
            on_screen(page.get_by_test_id(f"running-{name}").get_by_role("button", name="Kill"))
        on_screen(page.get_by_role("button", name=f"Restore {HELD}"))
        on_screen(page.get_by_role("button", name=f"Delete {HELD}"))
        page.get_by_test_id(f"running-{RUNNING[0]}").get_by_role("button", name="Kill").click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        assert_usable(page, "confirm-dialog")
        page.keyboard.press("Escape")

        page.get_by_role("link", name=RUNNING[0]).click()
        expect(page.get_by_test_id("task-state")).to_have_text("running")
        assert_usable(page, "task-running")
        page.goto(server.url + "/tasks/broken-config")
        expect(page.get_by_test_id("task-state")).to_have_text("failed")
        expect(page.get_by_text("magenta", exact=True)).to_be_visible()  # coloured output
        assert_usable(page, "task-failed")
        page.get_by_role("button", name="Rename").click()
        expect(page.get_by_role("dialog", name="Rename task broken-config")).to_be_visible()
        assert_usable(page, "rename-dialog")
        page.keyboard.press("Escape")
        go(page, "Completed", "/completed")
        expect(page.get_by_test_id("completed-broken-config")).to_be_visible()
        assert_usable(page, "completed")
        details(page, "broken-config").get_by_role("button", name="View full log").click()
        expect(page.get_by_role("dialog", name="Log of broken-config")).to_be_visible()
        assert_usable(page, "log-dialog")
        page.keyboard.press("Escape")
        go(page, "^Usage$", "/usage")
        expect(page.get_by_test_id("usage-table")).to_be_visible()
        assert_usable(page, "usage")
    finally:
        context.close()


def test_the_phone_check_fails_on_a_wide_page_a_cut_off_button_and_a_covered_one(
    browser: Browser, server_factory: type[AntServer]
) -> None:
    """The checks themselves, on the login page made wrong in three ways, one at a time."""
    server = server_factory(fake_gpus=1).start()
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    # A box (and a button far to the right in it), styled through the DOM: the CSP drops style
    # attributes written in markup.
    add = """([parent, css, far]) => {
        const box = document.createElement('div');
        box.style.cssText = css;
        box.textContent = 'wide';
        if (far) box.append(Object.assign(document.createElement('button'), {textContent: 'far'}));
        if (far) box.lastChild.style.marginLeft = '800px';
        (parent ? document.querySelector(parent) : document.body).append(box);
    }"""
    wrongs = {
        "px wide, the screen 390": ["form", "width: 600px", False],
        "cut off at 390 px": ["form", "overflow-x: auto; white-space: nowrap", True],
        "cannot click": ["", "position: fixed; inset: 0; z-index: 99", False],
    }
    try:
        page.goto(server.url + "/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert_usable(page, "login-as-built")
        for message, wrong in wrongs.items():
            page.reload()
            expect(page.get_by_role("button", name="Log in")).to_be_visible()
            page.evaluate(add, wrong)
            with pytest.raises(AssertionError, match=message):
                assert_usable(page, "login-made-wrong")
    finally:
        context.close()
