"""NVIDIA GPUs through NVML (nvidia-ml-py). An error on one GPU marks it; it never raises."""

from __future__ import annotations

from typing import Any

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
        self._infos = [self._info(i) for i in indices]

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
