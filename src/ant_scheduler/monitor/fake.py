"""Fake GPUs: a product feature (`--fake-gpus N`) for demos and tests on machines without NVIDIA.

A simulated GPU is busy while ANT runs a task on it (the task's process shows up as its GPU
process). Load from "outside ANT" is injected through a JSON file the backend re-reads when it
changes, e.g. `{"2": {"util": 0.9, "mem_used": 8e9, "processes": [{"pid": 4242,
"used_memory": 8e9}]}, "3": {"error": "GPU has fallen off the bus"}}`.

For tests of ANT over a cluster it can also stand for several nodes: `FakeGpuBackend(4,
nodes={"node-a": 2, "node-b": 2})` numbers the GPUs 0..3 across the nodes in that order (node-a:0
is GPU 0, node-b:1 is GPU 3), lists the nodes in `nodes()`, and lets a node join (`add_node`,
its GPUs numbered after every GPU seen so far) or leave (`remove_node`) while ANT runs.

GPU memory (P13): each ANT task seems to use TASK_MEM on each of its GPUs, or what it declared
(`gpu_mem`), or what its env's ANT_FAKE_GPU_MEM says (`20G`: how a test makes a task use more than
it declared) — see `simulated_use`. Topology: `topology={index: Links}` (`--fake-topology`,
core/topology.py's spec) gives the GPUs NVLink islands, PCIe switches and CPU sockets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.sizes import parse_size
from ant_scheduler.core.topology import Links
from ant_scheduler.monitor.base import GpuInfo, GpuProcess, GpuSample

FAKE_MEM_TOTAL = 16 * 1024**3
TASK_UTIL = 0.85
TASK_MEM = 2 * 1024**3
SIMULATED_USE_VAR = "ANT_FAKE_GPU_MEM"  # a task's env: the memory it seems to use per GPU


def simulated_use(env: dict[str, str], gpu_mem: int | None) -> int | None:
    """The GPU memory a task's process seems to use on each of its GPUs with fake GPUs: its env's
    ANT_FAKE_GPU_MEM, else what it declared, else None (TASK_MEM)."""
    text = env.get(SIMULATED_USE_VAR, "")
    if text.strip():
        try:
            return parse_size(text, SIMULATED_USE_VAR)
        except TaskRejected:
            pass
    return gpu_mem


class FakeGpuBackend:
    name = "fake"

    def __init__(
        self,
        count: int,
        only: list[int] | None = None,
        load_file: Path | None = None,
        *,
        nodes: dict[str, int] | None = None,
        topology: dict[int, Links] | None = None,
    ) -> None:
        self._links = topology or {}
        self._nodes: list[str] | None = None  # None: this machine only (nodes() says [""])
        self._known: dict[str, list[int]] = {}  # node -> its GPUs' indices (kept if it leaves)
        self._next_index = 0
        self._infos: list[GpuInfo] = []
        if nodes is not None:
            if sum(nodes.values()) != count:
                raise ValueError(f"the nodes have {sum(nodes.values())} GPUs, not {count}")
            self._nodes = []
            for node, n in nodes.items():
                self.add_node(node, n)
        else:
            indices = list(range(count)) if only is None else [i for i in only if 0 <= i < count]
            self._infos = [_info(i, links=self._links.get(i)) for i in indices]
        self.load_file = load_file
        self._ant: dict[int, list[int]] = {}
        self._ant_memory: dict[int, int] = {}  # pid -> bytes it seems to use on each GPU
        self._external: dict[int, dict[str, Any]] = {}
        self._file_stamp: tuple[float, int] | None = None

    def gpus(self) -> list[GpuInfo]:
        return list(self._infos)

    # ------------------------------------------------------------------ nodes (tests)

    def nodes(self) -> list[str]:
        """The alive nodes ([""] when built without a node layout)."""
        return [""] if self._nodes is None else list(self._nodes)

    def add_node(self, node: str, n_gpus: int) -> list[int]:
        """A node joins with n_gpus GPUs; returns their ANT indices (after every one seen yet, or
        the ones it had, if it was here before)."""
        if self._nodes is None:
            raise ValueError("this fake backend was built without nodes")
        if node in self._nodes:
            raise ValueError(f"node {node!r} is already here")
        self._nodes.append(node)
        known = self._known.get(node)
        if known is None:
            first = self._next_index
            known = self._known[node] = list(range(first, first + n_gpus))
            self._next_index += n_gpus
        self._infos += [
            _info(i, node, local, self._links.get(local)) for local, i in enumerate(known)
        ]
        self._infos.sort(key=lambda info: info.index)
        return list(known)

    def remove_node(self, node: str) -> None:
        """The node leaves: its GPUs are no longer listed (nor sampled)."""
        if self._nodes is None or node not in self._nodes:
            raise ValueError(f"no node {node!r}")
        self._nodes.remove(node)
        self._infos = [info for info in self._infos if info.node != node]

    def set_ant_processes(
        self, by_gpu: dict[int, list[int]], memory: dict[int, int] | None = None
    ) -> None:
        self._ant = {i: list(pids) for i, pids in by_gpu.items()}
        self._ant_memory = dict(memory or {})

    def _read_load_file(self) -> None:
        if self.load_file is None:
            return
        try:
            stat = self.load_file.stat()
        except OSError:
            self._external, self._file_stamp = {}, None
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        try:
            data = json.loads(self.load_file.read_text())
            self._external = {int(k): dict(v) for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            self._external = {}  # a half-written or broken file means "no external load"

    def sample(self) -> list[GpuSample]:
        self._read_load_file()
        out = []
        for info in self._infos:
            ext = self._external.get(info.index, {})
            if ext.get("error"):
                out.append(GpuSample(info.index, mem_total=info.mem_total, error=str(ext["error"])))
                continue
            ant_pids = self._ant.get(info.index, [])
            procs = [GpuProcess(pid, self._ant_memory.get(pid, TASK_MEM)) for pid in ant_pids]
            procs += [
                GpuProcess(int(p["pid"]), int(float(p.get("used_memory", 0))))
                for p in ext.get("processes", [])
            ]
            util = min(1.0, (TASK_UTIL if ant_pids else 0.0) + float(ext.get("util", 0.0)))
            mem = sum(p.used_memory for p in procs[: len(ant_pids)])
            mem += int(float(ext.get("mem_used", 0)))
            out.append(
                GpuSample(
                    index=info.index,
                    util=util,
                    mem_used=min(mem, info.mem_total),
                    mem_total=info.mem_total,
                    temperature=35.0 + 45.0 * util,
                    power_watts=50.0 + 250.0 * util,
                    processes=tuple(procs),
                )
            )
        return out

    def close(self) -> None:
        pass


def _info(
    index: int, node: str = "", local: int | None = None, links: Links | None = None
) -> GpuInfo:
    links = links or Links()
    return GpuInfo(
        index=index,
        uuid=f"GPU-fake-{index:04d}-0000-0000-000000000000",
        name="ANT Simulated GPU",
        mem_total=FAKE_MEM_TOTAL,
        pci_bus_id=f"00000000:{(local if local is not None else index) + 1:02X}:00.0",
        node=node,
        local_index=local,
        nvlink=links.nvlink,
        switch=links.switch,
        socket=links.socket,
        numa_node=links.socket,
    )
