"""The README's screenshots: the dashboard with running tasks, Ongoing, and Create with a preview,
taken from a busy `ant serve` in real Chromium. Every run saves them at desktop and phone width
under test-artifacts/readme-*; with ANT_WRITE_DOC_SCREENSHOTS=1 (`make screenshots`) the desktop
ones also replace docs/screenshots/*.png, the pictures the README shows."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ARTIFACTS, REPO
from tests.e2e.scenes import (
    RUNNING,
    busy_server,
    close_recovery,
    open_logged_in,
    show_ongoing,
    show_preview,
)
from tests.e2e.screens import DESKTOP, save_screens
from tests.server import AntServer

DOCS = REPO / "docs" / "screenshots"
WRITE_DOCS = os.environ.get("ANT_WRITE_DOC_SCREENSHOTS") == "1"
NAMES = ("dashboard", "ongoing", "create-preview")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_readme_screenshots(browser: Browser, server_factory: type[AntServer]) -> None:
    server = busy_server(server_factory)
    # Dark, as most terminals; both themes are in test-artifacts/a11y-*.
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(15_000)

    def save(name: str) -> None:
        save_screens(page, f"readme-{name}", full_page=False)
        if WRITE_DOCS:  # the README shows the desktop ones: fewer bytes in git
            save_screens(page, name, DOCS, full_page=False, sizes=("desktop",))

    try:
        open_logged_in(page, server)
        close_recovery(page)
        for name in RUNNING:
            expect(page.get_by_text(name).first).to_be_visible()  # on the GPU cards
        # Some samples on the charts (a picture, not a check): more for the README's.
        page.get_by_role("button", name="15 min").click()  # a fresh server has minutes of data
        page.wait_for_timeout(30_000 if WRITE_DOCS else 2_000)
        save("dashboard")
        show_ongoing(page)
        save("ongoing")
        show_preview(page)
        page.get_by_test_id("preview").scroll_into_view_if_needed()
        save("create-preview")
        assert page.viewport_size == DESKTOP  # save_screens put the desktop size back
    finally:
        context.close()

    for name in NAMES:
        assert png_size(ARTIFACTS / f"readme-{name}-desktop.png") == (1280, 800)
        assert png_size(ARTIFACTS / f"readme-{name}-phone.png") == (390, 844)
        if WRITE_DOCS:
            assert png_size(DOCS / f"{name}-desktop.png") == (1280, 800)
            assert (DOCS / f"{name}-desktop.png").stat().st_size < 400_000  # kept in git: small
