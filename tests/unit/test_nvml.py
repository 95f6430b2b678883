"""NVML backend paths with a stand-in for the pynvml module (there is no GPU here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ant_scheduler.monitor.nvml import NvmlGpuBackend, NvmlUnavailable


class NVMLError(Exception):
    pass


class FakeNvml:
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, count: int = 2, broken: set[int] | None = None, init_fails: bool = False):
        self.count = count
        self.broken = broken or set()
        self.init_fails = init_fails

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        if i in self.broken:
            raise NVMLError("GPU is lost")
        return i

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(total=16 * 2**30, used=(h + 1) * 2**30)

    def nvmlDeviceGetUUID(self, h: int) -> bytes:
        return f"GPU-{h}".encode()

    def nvmlDeviceGetName(self, h: int) -> str:
        return "Tesla Test"

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:
        return SimpleNamespace(busId=f"00000000:0{h}:00.0".encode())

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        return SimpleNamespace(gpu=40 + h)

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[Any]:
        return [SimpleNamespace(pid=1000 + h, usedGpuMemory=2**30)]

    def nvmlDeviceGetTemperature(self, h: int, kind: int) -> int:
        raise NVMLError("Not Supported")

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return 150_000


def test_readings_are_mapped() -> None:
    backend = NvmlGpuBackend(nvml=FakeNvml())
    infos = backend.gpus()
    assert [(g.index, g.uuid, g.pci_bus_id) for g in infos] == [
        (0, "GPU-0", "00000000:00:00.0"),
        (1, "GPU-1", "00000000:01:00.0"),
    ]
    s = backend.sample()[1]
    assert (s.util, s.mem_used, s.power_watts, s.temperature) == (0.41, 2 * 2**30, 150.0, None)
    assert s.processes[0].pid == 1001 and s.error is None


def test_no_driver_means_unavailable() -> None:
    with pytest.raises(NvmlUnavailable, match="Driver Not Loaded"):
        NvmlGpuBackend(nvml=FakeNvml(init_fails=True))
    with pytest.raises(NvmlUnavailable, match="GPU 5 does not exist"):
        NvmlGpuBackend(only=[5], nvml=FakeNvml())


def test_a_gpu_falling_off_the_bus_is_marked_not_raised() -> None:
    nvml = FakeNvml()
    backend = NvmlGpuBackend(nvml=nvml)
    nvml.broken = {0}
    s0, s1 = backend.sample()
    assert s0.error == "NVML: GPU is lost" and s0.util == 0
    assert s1.error is None
    nvml.broken = set()
    assert backend.sample()[0].error is None  # it recovers when NVML answers again


def test_broken_at_start_is_reported_at_sample() -> None:
    backend = NvmlGpuBackend(nvml=FakeNvml(broken={1}))
    assert backend.gpus()[1].name == "unknown GPU"
    assert backend.sample()[1].error == "NVML: GPU is lost"
