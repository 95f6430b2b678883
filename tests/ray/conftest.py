"""A real Ray cluster on this machine for the Ray executor's tests: a head without GPUs and two
nodes with two fake GPUs each (labelled node-a and node-b), every listener on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before Ray is imported: keep every listener on loopback, and send nothing anywhere.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

ray_cluster_utils = pytest.importorskip("ray.cluster_utils")

# Real Chromium for test_ray_ui.py: the browser tests' own fixtures.
from tests.e2e.conftest import browser, page  # noqa: E402, F401


def make_cluster(head_port: int | None = None, **nodes: int) -> Any:
    """A head with no GPUs (its GCS on head_port, if given) and one node per keyword
    (name=GPU count), all up."""
    head: dict[str, Any] = {"num_cpus": 1, "num_gpus": 0}
    if head_port is not None:
        head["gcs_server_port"] = head_port
    cluster = ray_cluster_utils.Cluster(initialize_head=True, head_node_args=head)
    cluster.node_handles = {}
    for name, gpus in nodes.items():
        name = name.replace("_", "-")
        cluster.node_handles[name] = cluster.add_node(
            num_cpus=1, num_gpus=gpus, labels={"ant-name": name}
        )
    cluster.wait_for_nodes()
    return cluster


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[Any]:
    """Shared by the tests that leave the cluster as they found it."""
    spools = _agent_spools()
    cluster = make_cluster(node_a=2, node_b=2)
    yield cluster
    cluster.shutdown()
    # The agents died with the cluster: their spool directories (one per ANT) go too.
    for path in _agent_spools() - spools:
        shutil.rmtree(path, ignore_errors=True)


def _agent_spools() -> set[Path]:
    root = Path(tempfile.gettempdir()) / "ant-agent"
    return set(root.iterdir()) if root.is_dir() else set()
