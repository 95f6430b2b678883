"""The web UI over a real Ray cluster in real Chromium: GPU cards grouped by node, a gang task
submitted from the form with its Nodes field, its ranks' output on its page, and the banner
while the cluster cannot be reached."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import shot
from tests.ray.test_ray_executor import ray_server, wait_ready, wait_state
from tests.server import AntServer, free_port

pytestmark = pytest.mark.timeout(240)


def test_nodes_gang_and_ranks_in_the_ui(
    page: Page, ray_cluster: Any, server_factory: type[AntServer], tmp_path: Path
) -> None:
    server = ray_server(server_factory, ray_cluster.address)
    wait_ready(server, 4)
    page.goto(f"{server.url}/?token={server.token}")
    for node in ("node-a", "node-b"):
        section = page.get_by_test_id(f"node-{node}")
        expect(section).to_be_visible()
        expect(section.get_by_text(f"{node}:1")).to_be_visible()
    shot(page, "ray-dashboard")

    (tmp_path / "ranks.py").write_text(
        "import os\nprint('I am rank', os.environ['NODE_RANK'], 'on', os.environ['ANT_NODE'])\n"
    )
    page.get_by_role("link", name=re.compile("Create New Task")).click()
    page.get_by_label("Task ID").fill("ui-gang")
    page.get_by_label("Number of GPUs").fill("1")
    page.get_by_label("Number of nodes").fill("2")
    page.get_by_label("Command").fill(f"{sys.executable} ranks.py")
    page.get_by_role("button", name="Submit").click()
    done = wait_state(server, "ui-gang", "succeeded", "failed")
    assert done["state"] == "succeeded"
    first, second = done["nodes"]

    page.goto(f"{server.url}/tasks/ui-gang")
    expect(page.get_by_text(f"I am rank 0 on {first}")).to_be_visible()
    page.get_by_label("Rank").select_option(index=1)
    expect(page.get_by_text(f"I am rank 1 on {second}")).to_be_visible()
    shot(page, "ray-gang-task")


def test_banner_while_the_cluster_is_unreachable(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = ray_server(server_factory, f"127.0.0.1:{free_port()}")
    page.goto(f"{server.url}/?token={server.token}")
    expect(page.get_by_test_id("executor-banner")).to_contain_text("Ray cluster")
