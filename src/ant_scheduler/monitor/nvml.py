"""NVIDIA GPUs through NVML (nvidia-ml-py). An error on one GPU marks it; it never raises.

Topology (core/topology.py), read once at start: GPUs joined by NVLink (P2P status over NVLink,
directly or through each other) share an NVLink island; GPUs whose common ancestor is at most a
PCIe switch tree (NVML_TOPOLOGY_MULTIPLE: no host bridge between them) share a PCIe switch; the
CPU socket is the GPU's NUMA node (nvmlDeviceGetNumaNodeId), else the GPUs whose common ancestor
is at most a NUMA node (NVML_TOPOLOGY_NODE). Any call that fails leaves that label unknown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ant_scheduler.core.topology import groups_of
from ant_scheduler.monitor.base import GpuInfo, GpuProcess, GpuSample


class NvmlUnavailable(Exception):
    pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlGpuBackend:
    name = "nvml"

    def __init__(self, only: list[int] | None = None, nvml: Any = None) -> None:
        """`nvml` is the pynvml module; tests pass a stand-in to exercise failure paths."""
        try:
            if nvml is None:
                import pynvml

                nvml = pynvml
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:  # no driver, no library, no device: all mean "no NVML here"
            raise NvmlUnavailable(str(exc) or type(exc).__name__) from None
        self._nvml = nvml
        indices = list(range(count)) if only is None else only
        missing = [i for i in indices if not 0 <= i < count]
        if missing:
            raise NvmlUnavailable(f"GPU {missing[0]} does not exist (this machine has {count})")
        self._infos = _with_topology(nvml, [self._info(i) for i in indices])

    def _info(self, index: int) -> GpuInfo:
        nv = self._nvml
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            mem = nv.nvmlDeviceGetMemoryInfo(handle)
            try:
                bus = _text(nv.nvmlDeviceGetPciInfo(handle).busId)
            except Exception:
                bus = ""
            return GpuInfo(
                index=index,
                uuid=_text(nv.nvmlDeviceGetUUID(handle)),
                name=_text(nv.nvmlDeviceGetName(handle)),
                mem_total=int(mem.total),
                pci_bus_id=bus,
            )
        except Exception:
            # It will be reported unavailable at every sample until it answers again.
            return GpuInfo(index=index, uuid=f"unknown-{index}", name="unknown GPU", mem_total=0)

    def gpus(self) -> list[GpuInfo]:
        return list(self._infos)

    def sample(self) -> list[GpuSample]:
        return [self._sample_one(info) for info in self._infos]

    def _sample_one(self, info: GpuInfo) -> GpuSample:
        nv = self._nvml
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(info.index)
            util = nv.nvmlDeviceGetUtilizationRates(handle)
            mem = nv.nvmlDeviceGetMemoryInfo(handle)
            procs = nv.nvmlDeviceGetComputeRunningProcesses(handle)
        except Exception as exc:
            reason = _text(exc) or type(exc).__name__
            return GpuSample(index=info.index, mem_total=info.mem_total, error=f"NVML: {reason}")
        temperature: float | None
        try:
            temperature = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        except Exception:
            temperature = None
        power: float | None
        try:
            power = nv.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except Exception:
            power = None
        return GpuSample(
            index=info.index,
            util=util.gpu / 100.0,
            mem_used=int(mem.used),
            mem_total=int(mem.total),
            temperature=temperature,
            power_watts=power,
            processes=tuple(GpuProcess(p.pid, int(p.usedGpuMemory or 0)) for p in procs),
        )

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass


def _with_topology(nv: Any, infos: list[GpuInfo]) -> list[GpuInfo]:
    """The GPUs with their NVLink island, PCIe switch and CPU socket labels, where NVML says."""
    try:
        handles = [nv.nvmlDeviceGetHandleByIndex(info.index) for info in infos]
    except Exception:
        return infos
    n = len(handles)

    def asked(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception:
            return None

    def nvlinked(i: int, j: int) -> bool:
        status = asked(
            lambda: nv.nvmlDeviceGetP2PStatus(handles[i], handles[j], nv.NVML_P2P_CAPS_INDEX_NVLINK)
        )
        return status is not None and status == nv.NVML_P2P_STATUS_OK

    def common_ancestor(a: Any, b: Any) -> int | None:
        level: int | None = asked(lambda: int(nv.nvmlDeviceGetTopologyCommonAncestor(a, b)))
        return level

    ancestor = {
        (i, j): common_ancestor(handles[i], handles[j]) for i in range(n) for j in range(i + 1, n)
    }

    def within(level_name: str) -> Callable[[int, int], bool]:
        level = getattr(nv, level_name, None)
        return lambda i, j: level is not None and (ancestor[(i, j)] or 10**6) <= level

    islands = _labels(groups_of(n, nvlinked))
    switches = _labels(groups_of(n, within("NVML_TOPOLOGY_MULTIPLE")))

    def numa_node(h: Any) -> int | None:
        node: int | None = asked(lambda: int(nv.nvmlDeviceGetNumaNodeId(h)))
        return node

    numa = [numa_node(h) for h in handles]
    if all(node is not None and node >= 0 for node in numa):
        sockets: list[int | None] = list(numa)
    else:
        numa = [None] * n
        sockets = _labels(groups_of(n, within("NVML_TOPOLOGY_NODE")))
    return [
        dataclasses.replace(
            info, nvlink=islands[k], switch=switches[k], socket=sockets[k], numa_node=numa[k]
        )
        for k, info in enumerate(infos)
    ]


def _labels(groups: list[int]) -> list[int | None]:
    """A group of one GPU links nothing: no label (unknown) rather than an island of one."""
    sizes = {g: groups.count(g) for g in groups}
    return [g if sizes[g] > 1 else None for g in groups]
