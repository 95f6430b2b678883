"""axe-core finds no serious or critical accessibility violation on any page or dialog, in the light
and the dark theme (contrast differs), in real Chromium against a real `ant serve`. Every state
checked is also saved at desktop and phone width under test-artifacts/a11y-<scheme>-<name>-*.png.
And the pages are named (title, main landmark) and the keyboard starts at their top."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.a11y import describe, serious
from tests.e2e.scenes import (
    RUNNING,
    busy_server,
    close_recovery,
    go,
    open_logged_in,
    show_ongoing,
    show_preview,
)
from tests.e2e.screens import DESKTOP, save_screens
from tests.e2e.test_ui import details, login
from tests.server import AntServer

Scheme = Literal["light", "dark"]


def checker(page: Page, scheme: Scheme, problems: list[str]) -> Callable[[str], None]:
    """check(name): axe on the page as it shows now (findings collected, so one run reports every
    page), and the screenshots."""

    def check(name: str) -> None:
        found = serious(page)
        if found:
            problems.append(f"--- {name} ({scheme}):\n{describe(found)}")
        # A dialog covers the screen, not the page: a full-page picture would show it cut short.
        dialog = page.locator("[role=dialog], [role=alertdialog]").count() > 0
        save_screens(page, f"a11y-{scheme}-{name}", full_page=not dialog)

    return check


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(
    browser: Browser, server_factory: type[AntServer], scheme: Scheme
) -> None:
    server = busy_server(server_factory)
    context = browser.new_context(viewport=DESKTOP, color_scheme=scheme, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    check = checker(page, scheme, problems)
    try:
        page.goto(server.url + "/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        check("login")
        page.get_by_label("Token").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Invalid token")
        check("login-error")

        open_logged_in(page, server)
        check("recovery-dialog")
        close_recovery(page)
        expect(page.get_by_test_id("gpu-0")).to_be_visible()
        check("dashboard")

        go(page, "Create", "/create")
        expect(page.get_by_role("button", name="Submit")).to_be_visible()
        check("create")
        show_preview(page)
        check("create-preview")

        show_ongoing(page)
        check("ongoing")
        page.get_by_test_id(f"running-{RUNNING[0]}").get_by_role("button", name="Kill").click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        check("confirm-dialog")
        page.keyboard.press("Escape")
        expect(page.get_by_role("alertdialog")).to_have_count(0)

        page.get_by_role("link", name=RUNNING[0]).click()
        expect(page.get_by_test_id("task-state")).to_have_text("running")
        check("task-running")
        page.goto(server.url + "/tasks/broken-config")
        expect(page.get_by_test_id("task-state")).to_have_text("failed")
        expect(page.get_by_text("magenta", exact=True)).to_be_visible()  # coloured output
        check("task-failed")
        page.get_by_role("button", name="Rename").click()
        expect(page.get_by_role("dialog", name="Rename task broken-config")).to_be_visible()
        check("rename-dialog")
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_have_count(0)
        go(page, "Completed", "/completed")
        expect(page.get_by_test_id("completed-broken-config")).to_be_visible()
        check("completed")
        details(page, "broken-config").get_by_role("button", name="View full log").click()
        expect(page.get_by_role("dialog", name="Log of broken-config")).to_be_visible()
        check("log-dialog")
        page.keyboard.press("Escape")
        go(page, "^Usage$", "/usage")
        expect(page.get_by_test_id("usage-table")).to_be_visible()
        check("usage")
    finally:
        context.close()
    assert not problems, "serious accessibility violations:\n" + "\n".join(problems)


def test_the_check_fails_on_a_serious_violation(
    browser: Browser, server_factory: type[AntServer]
) -> None:
    """The check itself: a button without a name and grey-on-grey text are caught and named."""
    server = server_factory(fake_gpus=1).start()
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert serious(page) == []
        page.evaluate(
            """() => {
                const b = document.createElement('button');
                document.querySelector('form').append(b);
                const p = document.createElement('p');
                p.textContent = 'faint';
                p.style.cssText = 'color:#777;background:#888';
                document.querySelector('form').append(p);
            }"""
        )
        found = {v["id"] for v in serious(page)}
        assert {"button-name", "color-contrast"} <= found
        assert "button-name" in describe(serious(page))
    finally:
        context.close()


def test_pages_are_named_and_the_keyboard_starts_at_their_top(
    page: Page, server: AntServer
) -> None:
    login(page, server)
    expect(page).to_have_title("Dashboard · ANT")
    expect(page.get_by_role("main", name="Dashboard")).to_be_visible()

    # From the top of a page, the first Tab reaches "Skip to content", shown while it has the focus.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()
    expect(skip).not_to_be_in_viewport()
    assert "#" not in page.url

    # A link followed from the keyboard: the new page has the focus at its top, named.
    page.get_by_role("link", name="Create New Task").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_title("Create New Task · ANT")
    main = page.get_by_role("main", name="Create New Task")
    expect(main).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("radio", name="Single")).to_be_focused()

    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "echo hi", "task_id": "named-one"})
    page.goto(server.url + "/tasks/named-one")
    expect(page).to_have_title("Task named-one · ANT")
