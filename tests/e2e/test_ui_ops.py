"""The web UI says which ANT it is: the footer of every page shows the version, the same one as
the package, `ant --version` and the API."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ant_scheduler import __version__
from tests.e2e.conftest import shot
from tests.e2e.test_ui import go, login
from tests.server import AntServer


def test_every_page_shows_the_version(page: Page, server: AntServer) -> None:
    login(page, server)
    footer = page.get_by_role("contentinfo")
    expect(footer).to_have_text(f"ANT {__version__}")
    for name in ("Ongoing Tasks", "Completed Tasks", "Create New Task"):
        go(page, name)
        expect(page.get_by_test_id("version")).to_have_text(f"ANT {__version__}")
    shot(page, "ops-version-footer")
