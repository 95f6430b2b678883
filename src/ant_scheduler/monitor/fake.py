"""Fake GPUs: a product feature (`--fake-gpus N`) for demos and tests on machines without NVIDIA.

A simulated GPU is busy while ANT runs a task on it (the task's process shows up as its GPU
process). Load from "outside ANT" is injected through a JSON file the backend re-reads when it
changes, e.g. `{"2": {"util": 0.9, "mem_used": 8e9, "processes": [{"pid": 4242,
"used_memory": 8e9}]}, "3": {"error": "GPU has fallen off the bus"}}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ant_scheduler.monitor.base import GpuInfo, GpuProcess, GpuSample

FAKE_MEM_TOTAL = 16 * 1024**3
TASK_UTIL = 0.85
TASK_MEM = 2 * 1024**3


class FakeGpuBackend:
    name = "fake"

    def __init__(
        self, count: int, only: list[int] | None = None, load_file: Path | None = None
    ) -> None:
        indices = list(range(count)) if only is None else [i for i in only if 0 <= i < count]
        self._infos = [
            GpuInfo(
                index=i,
                uuid=f"GPU-fake-{i:04d}-0000-0000-000000000000",
                name="ANT Simulated GPU",
                mem_total=FAKE_MEM_TOTAL,
                pci_bus_id=f"00000000:{i + 1:02X}:00.0",
            )
            for i in indices
        ]
        self.load_file = load_file
        self._ant: dict[int, list[int]] = {}
        self._external: dict[int, dict[str, Any]] = {}
        self._file_stamp: tuple[float, int] | None = None

    def gpus(self) -> list[GpuInfo]:
        return list(self._infos)

    def set_ant_processes(self, by_gpu: dict[int, list[int]]) -> None:
        self._ant = {i: list(pids) for i, pids in by_gpu.items()}

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
            procs = [GpuProcess(pid, TASK_MEM) for pid in ant_pids]
            procs += [
                GpuProcess(int(p["pid"]), int(float(p.get("used_memory", 0))))
                for p in ext.get("processes", [])
            ]
            util = min(1.0, (TASK_UTIL if ant_pids else 0.0) + float(ext.get("util", 0.0)))
            mem = TASK_MEM * len(ant_pids) + int(float(ext.get("mem_used", 0)))
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
