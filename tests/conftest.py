"""Shared fixtures: a real `ant serve` process on 127.0.0.1 with fake GPUs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import AntServer


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[AntServer]]:
    started: list[AntServer] = []

    class Factory(AntServer):
        made = started  # every server the test made, for checks after it (tests/reliability)

        def __init__(self, **kwargs: object) -> None:
            kwargs.setdefault("workdir", tmp_path)
            super().__init__(**kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Factory
    for server in started:
        server.stop(kill_tasks=True)


@pytest.fixture
def server(server_factory: type[AntServer]) -> AntServer:
    return server_factory(fake_gpus=4).start()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs two pytest-xdist workers (`--dist loadgroup`): each test file stays on
    one worker (its module fixtures — a server, a browser — are made once), and the Ray tests
    all share one, since two Ray clusters on one host fight over the same ports."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = "ray" if path.startswith("tests/ray/") else path
        item.add_marker(pytest.mark.xdist_group(group))
