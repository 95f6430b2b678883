"""An accessibility check of the page as it shows now: axe-core (the npm package, a devDependency of
frontend/, installed by `npm ci`) run inside the page. Serious and critical findings fail.

ANT's Content-Security-Policy allows no inline script, so the page's context must be made with
`bypass_csp=True` for axe to be added (tests/e2e/test_security.py checks the policy itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Error, Page

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("serious", "critical")


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page (every impact), each with the nodes it found."""
    if not AXE.is_file():
        raise AssertionError(f"{AXE} is missing: run `npm ci` in frontend/ (make ui does it)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        try:
            page.add_script_tag(path=str(AXE))
        except Error as err:
            raise AssertionError(f"axe could not be added (bypass_csp=True?): {err}") from err
    # WCAG 2.x A and AA, and axe's best practices: what a screen reader or a low-vision user meets.
    result: dict[str, Any] = page.evaluate(
        """() => axe.run(document, {resultTypes: ['violations']})"""
    )
    found: list[dict[str, Any]] = result["violations"]
    return found


def describe(found: list[dict[str, Any]]) -> str:
    """One paragraph per rule: impact, rule, what it means, and where (selector and a snippet)."""
    out = []
    for v in found:
        out.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            target = " ".join(str(t) for t in node["target"])
            why = node.get("failureSummary", "").replace("\n", " ")
            out.append(f"    at {target}: {node['html'][:160]}")
            if why:
                out.append(f"      {why[:300]}")
        if len(v["nodes"]) > 8:
            out.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(out)


def serious(page: Page) -> list[dict[str, Any]]:
    return [v for v in violations(page) if v["impact"] in FAILING]


def assert_accessible(page: Page, context: str) -> None:
    """Fails listing every serious or critical violation axe finds on the page as it shows now;
    `context` names the state ("Ongoing, dark") in the message."""
    found = serious(page)
    assert not found, f"accessibility violations on {context}:\n{describe(found)}"
