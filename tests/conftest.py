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
