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
    """Static facts about one GPU."""

    index: int
    uuid: str
    name: str
    mem_total: int  # bytes
    pci_bus_id: str = ""


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
    name: str

    def gpus(self) -> list[GpuInfo]: ...

    def sample(self) -> list[GpuSample]: ...

    def close(self) -> None: ...


class TaskAwareBackend(Protocol):
    """A simulated backend also learns which ANT task processes run on which GPU."""

    def set_ant_processes(self, by_gpu: dict[int, list[int]]) -> None: ...
