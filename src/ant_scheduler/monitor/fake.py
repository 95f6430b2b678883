"""Fake GPUs: a product feature (`--fake-gpus N`) for demos and tests on machines without NVIDIA."""

from __future__ import annotations

from ant_scheduler.monitor.base import GpuInfo, GpuSample

FAKE_MEM_TOTAL = 16 * 1024**3


class FakeGpuBackend:
    name = "fake"

    def __init__(self, count: int, only: list[int] | None = None) -> None:
        indices = list(range(count)) if only is None else [i for i in only if 0 <= i < count]
        self._infos = [
            GpuInfo(
                index=i,
                uuid=f"GPU-fake-{i:04d}-0000-0000-000000000000",
                name="ANT Simulated GPU",
                mem_total=FAKE_MEM_TOTAL,
            )
            for i in indices
        ]

    def gpus(self) -> list[GpuInfo]:
        return list(self._infos)

    def sample(self) -> list[GpuSample]:
        return [GpuSample(index=g.index, mem_total=g.mem_total) for g in self._infos]

    def close(self) -> None:
        pass
