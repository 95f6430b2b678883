"""NVIDIA GPUs through NVML (nvidia-ml-py). Errors on one GPU mark it, they never raise."""

from __future__ import annotations

from typing import Any

from ant_scheduler.monitor.base import GpuInfo, GpuProcess, GpuSample


class NvmlUnavailable(Exception):
    pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlGpuBackend:
    name = "nvml"

    def __init__(self, only: list[int] | None = None) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # no driver, no library, no device: all mean "no NVML here"
            raise NvmlUnavailable(str(exc) or type(exc).__name__) from None
        self._nvml = pynvml
        indices = list(range(count)) if only is None else only
        missing = [i for i in indices if not 0 <= i < count]
        if missing:
            raise NvmlUnavailable(f"GPU {missing[0]} does not exist (this machine has {count})")
        self._infos: list[GpuInfo] = []
        for i in indices:
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            self._infos.append(
                GpuInfo(
                    index=i,
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    mem_total=int(mem.total),
                )
            )

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
            return GpuSample(index=info.index, mem_total=info.mem_total, error=str(exc))
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
