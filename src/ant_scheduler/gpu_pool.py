"""The GPU pool: which GPUs exist, which the user enabled (kept across restarts), who holds each,
what the monitor last read from it (utilisation, memory, processes), whether someone outside ANT
is using it (ADGS), the recent samples (in memory), and the samples kept in the store for the
dashboard's charts (monitor/sample_log.py).

The engine decides who gets a GPU; the pool only records it and describes the GPUs. Its monitor
loop samples the backend off the event loop and says when availability changed.

Over a cluster the backend lists more GPUs as nodes join: the pool picks them up on each sample
(or when the executor says the nodes changed, `refresh`), with the toggles the user set. A GPU the
backend stops listing, or whose node is no longer alive, stays in the pool, offline (unavailable,
with the reason), so its history and toggle survive the node coming back. Toggles are kept by
index for this machine's GPUs and by label (`node-b:1`) for a node's, which stays right however
the cluster numbers its GPUs after a restart.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ant_scheduler.core import policy
from ant_scheduler.core.errors import GpuNotFound
from ant_scheduler.monitor.adgs import AdgsConfig, AdgsTracker, external_use
from ant_scheduler.monitor.attribution import ProcessOwner, attribute
from ant_scheduler.monitor.base import GpuBackend, GpuInfo, GpuSample
from ant_scheduler.monitor.downsample import GpuReading, Record
from ant_scheduler.monitor.host import History, HostSample, host_dict, sample_host
from ant_scheduler.monitor.sample_log import SampleLog
from ant_scheduler.settings import Settings
from ant_scheduler.store import Store

DISABLED_KEY = "disabled_gpus"  # store meta: the GPUs the user turned off (indices, labels)
ToggleKey = int | str  # how a toggle is kept: the index on this machine, the label on a node


@dataclass
class GpuSlot:
    """One GPU as the engine sees it: static info, the user's toggle, who holds it, last sample."""

    info: GpuInfo
    enabled: bool = True
    task_ids: list[str] = field(default_factory=list)
    declared: dict[str, int] = field(default_factory=dict)  # memory tasks on it -> their gpu_mem
    sample: GpuSample | None = None
    external: str | None = None  # who is using it outside ANT (set by ADGS)
    processes: list[ProcessOwner] = field(default_factory=list)
    last_assigned: float = float("-inf")  # when ANT last started a task on it
    offline: str | None = None  # its node left, or the backend no longer lists it: why

    @property
    def index(self) -> int:
        return self.info.index

    @property
    def toggle_key(self) -> ToggleKey:
        return self.info.label if self.info.node else self.info.index

    @property
    def unavailable(self) -> str | None:
        if self.offline is not None:
            return self.offline
        return self.sample.error if self.sample is not None else None

    @property
    def state(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.unavailable:
            return "unavailable"
        if self.task_ids:
            return "allocated"
        if self.external:
            return "busy_external"
        return "free"

    def policy_view(self) -> policy.GpuView:
        return policy.GpuView(
            index=self.info.index,
            enabled=self.enabled,
            allocated_to=tuple(self.task_ids),
            external=self.external,
            unavailable=self.unavailable,
            node=self.info.node,
            local_index=self.info.local_index,
            mem_total=self.info.mem_total,
            shared=tuple(self.declared.items()),
            nvlink=self.info.nvlink,
            switch=self.info.switch,
            socket=self.info.socket,
        )


class GpuPool:
    def __init__(
        self,
        backend: GpuBackend | None,
        settings: Settings,
        store: Store,
        clock: Callable[[], float],
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.store = store
        self.clock = clock
        self.slots: dict[int, GpuSlot] = {}
        self.nodes: list[str] = [""]  # the alive nodes, by name (backend.nodes())
        self._disabled: set[ToggleKey] = set()  # as stored: GPUs not here now keep theirs
        self.history = History(settings.MONITORING_history_size)
        # Kept in the store for the charts, downsampled (what a restart keeps).
        self.samples = SampleLog(
            store, settings.MONITORING_keep_hours, settings.MONITORING_refresh_interval, clock
        )
        self.host: HostSample | None = None
        self.task_gpu_mem: dict[str, int] = {}  # task id -> GPU memory its processes use now
        self.adgs = AdgsTracker(
            AdgsConfig(
                usage_threshold=settings.ADGS_usage_threshold,
                mem_threshold=settings.ADGS_mem_threshold,
                window=settings.ADGS_window_seconds,
            )
        )

    def load(self) -> None:
        """The backend's GPUs, with the toggles the user set before the last restart."""
        stored = json.loads(self.store.get_meta(DISABLED_KEY) or "[]")
        self._disabled = {k for k in stored if isinstance(k, (int, str))}
        self.refresh()

    def refresh(self, infos: list[GpuInfo] | None = None, nodes: list[str] | None = None) -> bool:
        """Take in the GPUs and nodes the backend lists now (read here unless given): new GPUs
        join with their toggles, GPUs no longer listed or on a node that left go offline.
        True when anything changed."""
        if self.backend is None:
            return False
        if infos is None:
            infos = self.backend.gpus()
        if nodes is None:
            nodes = _nodes_of(self.backend)
        alive = sorted(set(nodes))
        changed = alive != self.nodes
        self.nodes = alive
        listed = {info.index: info for info in infos}
        for index, info in listed.items():
            slot = self.slots.get(index)
            if slot is None:
                slot = self.slots[index] = GpuSlot(info=info)
                slot.enabled = slot.toggle_key not in self._disabled
                changed = True
            elif slot.info != info:
                slot.info = info
                changed = True
        for slot in self.slots.values():
            offline = None
            if slot.info.node and slot.info.node not in alive:
                offline = f"offline: node {slot.info.node} left the cluster"
            elif slot.index not in listed:
                offline = "offline: no longer reported by the GPU backend"
            if offline != slot.offline:
                slot.offline = offline
                if offline is not None:  # what it last read is not true any more
                    slot.sample, slot.processes, slot.external = None, [], None
                changed = True
        return changed

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.slots)

    def get(self, index: int) -> GpuSlot:
        slot = self.slots.get(index)
        if slot is None:
            raise GpuNotFound(f"no GPU with index {index} (known: {sorted(self.slots)})")
        return slot

    def find(self, ref: int | str) -> GpuSlot:
        """A GPU by index (3, "3") or label ("node-b:1"); GpuNotFound if there is none."""
        if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
            try:
                return self.get(int(ref))
            except ValueError:
                pass
        for slot in self.slots.values():
            if slot.info.node and slot.info.label == ref:
                return slot
        known = ", ".join(s.info.label for s in self.in_order())
        raise GpuNotFound(f"no GPU {str(ref)[:100]!r} (known: {known or 'none'})")

    def named(self) -> bool:
        """Whether ANT spans named nodes (else: this machine alone, node "")."""
        return any(self.nodes) or any(s.info.node for s in self.slots.values())

    def node_list(self) -> list[dict[str, Any]]:
        """wire.NodeOut for every node (alive, or known from its GPUs); [] on this machine alone."""
        if not self.named():
            return []
        names = sorted({*self.nodes, *(s.info.node for s in self.slots.values())})
        out = []
        for name in names:
            mine = [s for s in self.slots.values() if s.info.node == name]
            out.append(
                {
                    "name": name,
                    "alive": name in self.nodes,
                    "gpus": len(mine),
                    "usable": sum(1 for s in mine if s.enabled and s.unavailable is None),
                }
            )
        return out

    def local_index(self, index: int) -> int:
        """The GPU's index on its node (what CUDA_VISIBLE_DEVICES names there)."""
        slot = self.slots.get(index)
        return slot.info.local if slot is not None else index

    def numa_node(self, index: int) -> int | None:
        """The NUMA node of the GPU's CPUs, if known."""
        slot = self.slots.get(index)
        return slot.info.numa_node if slot is not None else None

    def in_order(self) -> list[GpuSlot]:
        return [self.slots[i] for i in sorted(self.slots)]

    def policy_views(self) -> list[policy.GpuView]:
        return [slot.policy_view() for slot in self.in_order()]

    # ------------------------------------------------------------------ changes

    def set_enabled(self, ref: int | str, enabled: bool) -> GpuSlot:
        """Toggle a GPU (by index or label), durably first (StoreUnavailable: nothing changed)."""
        slot = self.find(ref)
        disabled = set(self._disabled)
        (disabled.discard if enabled else disabled.add)(slot.toggle_key)
        keys = sorted(disabled, key=lambda k: (isinstance(k, str), str(k).zfill(12)))
        self.store.set_meta(DISABLED_KEY, json.dumps(keys))
        self._disabled = disabled
        slot.enabled = enabled
        return slot

    def reserve(self, task_id: str, gpu_ids: Iterable[int], gpu_mem: int | None = None) -> None:
        """The task holds these GPUs (a memory task, `gpu_mem`: a share of each)."""
        for index in gpu_ids:
            slot = self.slots.get(index)
            if slot is not None and task_id not in slot.task_ids:
                slot.task_ids.append(task_id)
                slot.last_assigned = self.clock()
                if gpu_mem:
                    slot.declared[task_id] = gpu_mem

    def release(self, task_id: str, gpu_ids: Iterable[int]) -> None:
        for index in gpu_ids:
            slot = self.slots.get(index)
            if slot is not None and task_id in slot.task_ids:
                slot.task_ids.remove(task_id)
                slot.declared.pop(task_id, None)
        self.task_gpu_mem.pop(task_id, None)

    def show_ant_processes(
        self, pids_by_gpu: Mapping[int, list[int]], memory: Mapping[int, int] | None = None
    ) -> None:
        """A simulated backend shows ANT's tasks as GPU processes (real GPUs see them anyway),
        each using `memory[pid]` bytes on each of its GPUs if given."""
        setter = getattr(self.backend, "set_ant_processes", None)
        if setter is not None:
            setter(dict(pids_by_gpu), dict(memory or {}))

    # ------------------------------------------------------------------ monitoring

    async def monitor(
        self,
        task_pids: Callable[[], Mapping[int, str]],
        on_sample: Callable[[bool], None],
    ) -> None:
        """Sample the GPUs and the host every MONITORING_refresh_interval, off the event loop.

        on_sample(availability_changed) runs after each sample (availability: a GPU became
        unusable, or busy outside ANT, or the reverse — the scheduler wants to know).
        """
        while True:
            samples: list[GpuSample] = []
            grew = False
            before = {i: (s.unavailable, s.external) for i, s in self.slots.items()}
            try:
                if self.backend is not None:
                    samples = await asyncio.to_thread(self.backend.sample)
                    # Read here, not with the sample: a wake meanwhile may know better already.
                    before = {i: (s.unavailable, s.external) for i, s in self.slots.items()}
                    grew = self.refresh()
                self.host = await asyncio.to_thread(sample_host)
            except Exception as exc:  # a backend must never take the server down
                print(f"ant: monitor sampling failed: {exc}", file=sys.stderr, flush=True)
            self.apply_samples(samples, task_pids())
            changed = grew or any(
                before.get(i) != (s.unavailable, s.external) for i, s in self.slots.items()
            )
            self.history.add(self.point())
            self.samples.add(self.record())
            on_sample(changed)
            await asyncio.sleep(self.settings.MONITORING_refresh_interval)

    def apply_samples(self, samples: list[GpuSample], task_pids: Mapping[int, str]) -> None:
        """Store readings, attribute GPU processes to tasks, and run ADGS."""
        memory: dict[str, int] = {}
        now = self.clock()
        for sample in samples:
            slot = self.slots.get(sample.index)
            if slot is None:
                continue
            slot.sample = sample
            slot.processes = attribute(sample.processes, dict(task_pids))
            outside = [p for p in slot.processes if p.task_id is None]
            for p in slot.processes:
                if p.task_id is not None:
                    memory[p.task_id] = memory.get(p.task_id, 0) + p.used_memory
            if not self.settings.ADGS_enabled or slot.unavailable:
                slot.external = None
                continue
            grace = now - slot.last_assigned < self.settings.ADGS_grace_seconds
            use = external_use(
                util=sample.util,
                mem_used=sample.mem_used,
                mem_total=sample.mem_total or slot.info.mem_total,
                external_mem=sum(p.used_memory for p in outside),
                external_processes=bool(outside),
                ant_owned=bool(slot.task_ids) or grace,
            )
            if self.adgs.update(sample.index, now, use):
                biggest = max(outside, key=lambda p: p.used_memory, default=None)
                slot.external = biggest.describe() if biggest else "an unseen process"
            else:
                slot.external = None
        self.task_gpu_mem = memory

    def point(self) -> dict[str, Any]:
        """One point of the dashboard's history (wire.SystemPoint)."""
        return {
            "time": self.clock(),
            "host": host_dict(self.host) if self.host else None,
            "gpus": [self._point_of(s) for s in self.in_order()],
        }

    @staticmethod
    def _point_of(slot: GpuSlot) -> dict[str, Any]:
        # As the stored history (record): a GPU not read now has no values, a gap not a zero.
        read = slot.sample if slot.unavailable is None else None
        return {
            "index": slot.info.index,
            "util": read.util if read else None,
            "mem_used": read.mem_used if read else None,
            "mem_total": slot.info.mem_total,
        }

    def record(self) -> Record:
        """This sample for the stored history: a GPU not read now has no values (a gap)."""
        host = self.host
        gpus = {}
        for slot in self.in_order():
            read = slot.sample if slot.unavailable is None else None
            gpus[slot.index] = GpuReading(
                util=read.util if read else None,
                mem_used=read.mem_used if read else None,
                mem_total=(read.mem_total if read else 0) or slot.info.mem_total,
            )
        return Record(
            t=self.clock(),
            cpu=host.cpu_percent if host else None,
            ram=host.mem_used if host else None,
            ram_total=host.mem_total if host else None,
            gpus=gpus,
        )

    def history_window(self, seconds: float) -> dict[str, Any]:
        """The stored history of the last `seconds` for the charts (wire.SystemHistoryOut)."""
        labels = {s.index: s.info.label or str(s.index) for s in self.in_order()}
        return self.samples.window(seconds, labels)

    def system(self) -> dict[str, Any]:
        """Current host and GPU readings plus the recent history (wire.SystemOut)."""
        items = self.history.items()
        return {
            "current": items[-1] if items else self.point(),
            "history": items,
            "history_size": self.settings.MONITORING_history_size,
            "smoother_alpha": self.settings.MONITORING_smoother_alpha,
        }


def _nodes_of(backend: GpuBackend) -> list[str]:
    """The alive nodes a backend reports; [""] (this machine) for one that knows no nodes."""
    nodes = getattr(backend, "nodes", None)
    return list(nodes()) if callable(nodes) else [""]
