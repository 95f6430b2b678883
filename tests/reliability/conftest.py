"""Every reliability scenario ends with the self-check and a look at /proc (reality.py): for
each server the test left running, the store, its memory and the live processes must agree."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.reality import check_reality
from tests.server import AntServer


@pytest.fixture(autouse=True)
def _reality_after_each_scenario(
    request: pytest.FixtureRequest, server_factory: type[AntServer]
) -> Iterator[None]:
    # Depending on server_factory makes this run after the test and before its servers stop.
    yield
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        return  # the test already failed: do not pile a second error on it
    for server in getattr(server_factory, "made", []):
        if server.proc is not None and server.proc.poll() is None:
            token = server.token or (server.state_dir / "token").read_text().strip()
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, verify=False
            ) as c:
                check_reality(c, server.state_dir)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
