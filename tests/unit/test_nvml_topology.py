"""NVML topology: NVLink islands, PCIe switches and CPU sockets read from a stand-in for pynvml
shaped like an 8-GPU box (two NVLink islands of 4, a PCIe switch per pair, two sockets)."""

from __future__ import annotations

from ant_scheduler.monitor.nvml import NvmlGpuBackend
from tests.unit.test_nvml import FakeNvml, NVMLError


class TopologyNvml(FakeNvml):
    NVML_P2P_CAPS_INDEX_NVLINK = 2
    NVML_P2P_STATUS_OK = 0
    NVML_TOPOLOGY_SINGLE = 10
    NVML_TOPOLOGY_MULTIPLE = 20
    NVML_TOPOLOGY_HOSTBRIDGE = 30
    NVML_TOPOLOGY_NODE = 40
    NVML_TOPOLOGY_SYSTEM = 50

    def __init__(self, numa: bool = True) -> None:
        super().__init__(count=8)
        self.numa = numa

    def nvmlDeviceGetP2PStatus(self, a: int, b: int, index: int) -> int:
        assert index == self.NVML_P2P_CAPS_INDEX_NVLINK
        return 0 if a // 4 == b // 4 else 4  # NOT_SUPPORTED across the islands

    def nvmlDeviceGetTopologyCommonAncestor(self, a: int, b: int) -> int:
        if a // 2 == b // 2:
            return self.NVML_TOPOLOGY_SINGLE
        return self.NVML_TOPOLOGY_NODE if a // 4 == b // 4 else self.NVML_TOPOLOGY_SYSTEM

    def nvmlDeviceGetNumaNodeId(self, h: int) -> int:
        if not self.numa:
            raise NVMLError("Not Supported")
        return h // 4


def test_islands_switches_and_sockets_come_from_nvml() -> None:
    infos = NvmlGpuBackend(nvml=TopologyNvml()).gpus()
    assert [g.nvlink for g in infos] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [g.switch for g in infos] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [g.socket for g in infos] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [g.numa_node for g in infos] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_sockets_from_the_common_ancestor_without_numa_ids() -> None:
    infos = NvmlGpuBackend(nvml=TopologyNvml(numa=False)).gpus()
    assert [g.socket for g in infos] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert all(g.numa_node is None for g in infos)  # no pinning to a guessed node


def test_no_topology_calls_leave_every_label_unknown() -> None:
    infos = NvmlGpuBackend(nvml=FakeNvml()).gpus()  # a stand-in without topology calls
    assert all((g.nvlink, g.switch, g.socket, g.numa_node) == (None,) * 4 for g in infos)
