"""Real Chromium (Debian's package) driven by Playwright against a real `ant serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
expect.set_options(timeout=15_000)  # shared, noisy machines: be patient, never flaky
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Module scope: Playwright's sync API keeps an event loop open in this thread while it
# lives, which would break asyncio.run() in the tests that come after these.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (REPO / "src" / "ant_scheduler" / "web" / "index.html").is_file():
        pytest.fail("the web UI is not built: run `make ui` (make test does it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


@pytest.fixture
def axe_page(browser: Browser) -> Iterator[Page]:
    """As `page`, where axe may be added (a11y.py: the context bypasses the CSP for its script)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def shot(page: Page, name: str) -> None:
    """A screenshot for reviewers, under test-artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
