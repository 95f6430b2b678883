"""Screenshots of a page at desktop and phone width, for reviewers, under test-artifacts/
(git-ignored): `save_screens(page, "ongoing")` writes ongoing-desktop.png and ongoing-phone.png."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.e2e.conftest import ARTIFACTS

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def save_screens(
    page: Page,
    name: str,
    folder: Path = ARTIFACTS,
    full_page: bool = True,
    sizes: tuple[str, ...] = ("desktop", "phone"),
) -> None:
    """Both widths (or `sizes`), then the viewport the page had before. `full_page=False` keeps the
    picture to one screen (smaller files, for docs/screenshots)."""
    folder.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    try:
        for label in sizes:
            page.set_viewport_size(SIZES[label])
            settle(page)
            page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=full_page)
    finally:
        if before is not None:
            page.set_viewport_size(before)
            settle(page)


def settle(page: Page) -> None:
    """After a resize: two animation frames, so layout and charts have redrawn at the new size."""
    page.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(null))))"
    )
