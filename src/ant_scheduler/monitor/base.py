"""The GpuBackend protocol and the readings it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_memory: int  # bytes


@dataclass(frozen=True)
class GpuInfo:
    """Static facts about one GPU. `index` is ANT's id of it: unique, stable, used everywhere."""

    index: int
    uuid: str
    name: str
    mem_total: int  # bytes
    pci_bus_id: str = ""
    node: str = ""  # the node it is on; "" = this machine (NVML, --fake-gpus)
    local_index: int | None = None  # its index on its node; None: the same as index
    # How it is linked on its node (core/topology.py): labels shared by the GPUs of one NVLink
    # island, one PCIe switch, one CPU socket (= its NUMA node); None: not known.
    nvlink: int | None = None
    switch: int | None = None
    socket: int | None = None
    numa_node: int | None = None  # the NUMA node its CPUs are on (RUNNER_numa_affinity)

    @property
    def local(self) -> int:
        """Its index on its node: what CUDA_VISIBLE_DEVICES names there."""
        return self.index if self.local_index is None else self.local_index

    @property
    def label(self) -> str:
        """How people name it: `node-b:1` on a cluster, `3` on this machine."""
        return f"{self.node}:{self.local}" if self.node else str(self.index)


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU. `error` is set (and the numbers are 0) when it could not be read."""

    index: int
    util: float = 0.0  # 0..1
    mem_used: int = 0  # bytes
    mem_total: int = 0
    temperature: float | None = None
    power_watts: float | None = None
    processes: tuple[GpuProcess, ...] = field(default_factory=tuple)
    error: str | None = None


class GpuBackend(Protocol):
    """The GPUs ANT schedules on. `gpus()` may list more GPUs over time (a node joined): the pool
    picks them up on each sample; a GPU it no longer lists stays known, offline. A backend over
    several nodes also has `nodes() -> list[str]`: the names of the alive nodes, those without
    GPUs included (without it the nodes are [""], this machine). gpus() and nodes() are called
    on the event loop too: they must be cheap (a cached answer); sample() runs off the loop."""

    name: str

    def gpus(self) -> list[GpuInfo]: ...

    def sample(self) -> list[GpuSample]: ...

    def close(self) -> None: ...


class TaskAwareBackend(Protocol):
    """A simulated backend also learns which ANT task processes run on which GPU, and how much
    memory each is to seem to use on each of its GPUs (`memory`: pid -> bytes)."""

    def set_ant_processes(
        self, by_gpu: dict[int, list[int]], memory: dict[int, int] | None = None
    ) -> None: ...
