"""How a node's GPUs are linked, and which set of free GPUs a multi-GPU task gets (pure).

Each GPU may carry three labels, from the closest link to the farthest: its NVLink island (GPUs
joined by NVLink), its PCIe switch, its CPU socket (NUMA node). A set of GPUs is as good as the
closest link that *all* of them share: level 0 (one NVLink island) > 1 (one PCIe switch) > 2 (one
CPU socket) > 3 (across sockets). `best_set` picks a set of the best level the free GPUs allow, and
among sets of that level the group with the fewest free GPUs that is big enough (best fit, as nodes
are chosen: big islands stay whole for big tasks), its lowest-numbered GPUs. Without any label
(no topology known) it is the lowest-numbered free GPUs, as ANT always did.

The labels come from NVML (monitor/nvml.py) or, for the fake backend, from a spec such as
`nvlink=0-3,4-7; switch=0-1,2-3,4-5,6-7; socket=0-3,4-7` (`parse_fake_topology`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ant_scheduler.core.errors import ConfigError

LEVELS = ("nvlink", "switch", "socket")
LEVEL_NAMES = {"nvlink": "NVLink island", "switch": "PCIe switch", "socket": "CPU socket"}
ACROSS = len(LEVELS)  # the level of a set spread over several sockets (or of unknown links)


class Linked(Protocol):
    """What a GPU needs for this module (policy.GpuView has it)."""

    @property
    def index(self) -> int: ...
    @property
    def nvlink(self) -> int | None: ...
    @property
    def switch(self) -> int | None: ...
    @property
    def socket(self) -> int | None: ...


@dataclass(frozen=True)
class Links:
    """One GPU's labels (None: unknown)."""

    nvlink: int | None = None
    switch: int | None = None
    socket: int | None = None

    @property
    def known(self) -> bool:
        return self.nvlink is not None or self.switch is not None or self.socket is not None


def has_topology(gpus: Sequence[Linked]) -> bool:
    return any(g.nvlink is not None or g.switch is not None or g.socket is not None for g in gpus)


def link_level(gpus: Sequence[Linked]) -> int:
    """0..2: the closest link every GPU of the set shares (LEVELS); ACROSS if none."""
    for level, attr in enumerate(LEVELS):
        labels = {getattr(g, attr) for g in gpus}
        if len(labels) == 1 and None not in labels:
            return level
    return ACROSS


def best_set(candidates: Sequence[Linked], n: int) -> tuple[list[int], str | None]:
    """n GPUs of `candidates` (sorted by index, at least n of them) with the best links, and how
    they are linked ('NVLink island 1'; None without topology). O(len(candidates))."""
    if not has_topology(candidates):
        return [g.index for g in candidates[:n]], None
    chosen, attr, label = _closest(candidates, n, LEVELS)
    if attr is not None:
        return chosen, f"{LEVEL_NAMES[attr]} {label}"
    sockets = sorted({g.socket for g in candidates[:n] if g.socket is not None})
    across = "across CPU sockets" + (f" {', '.join(map(str, sockets))}" if sockets else "")
    return chosen, across


def _closest(
    candidates: Sequence[Linked], n: int, levels: Sequence[str]
) -> tuple[list[int], str | None, int | None]:
    """The set, the level that joins it and that level's label. Within the group chosen at one
    level the next levels break the tie (an island's two GPUs on one PCIe switch beat two on
    different switches)."""
    for depth, attr in enumerate(levels):
        groups: dict[int, list[Linked]] = {}
        for g in candidates:
            label = getattr(g, attr)
            if label is not None:
                groups.setdefault(label, []).append(g)
        fitting = [(len(gs), gs[0].index, label) for label, gs in groups.items() if len(gs) >= n]
        if fitting:
            _, _, label = min(fitting)
            inner, _, _ = _closest(groups[label], n, levels[depth + 1 :])
            return inner, attr, label
    return [g.index for g in candidates[:n]], None, None


def explain(ids: Sequence[int], how: str) -> str:
    """The placement text of a multi-GPU task, e.g. 'GPUs 0, 1: NVLink island 0 (best links
    free)' or 'GPUs 2, 5: across CPU sockets 0, 1 (no closer set of 2 was free)'."""
    label = f"GPU {ids[0]}" if len(ids) == 1 else f"GPUs {', '.join(map(str, ids))}"
    if how.startswith("across"):
        return f"{label}: {how} (no closer set of {len(ids)} was free)"
    return f"{label}: one {how}"


# ---------------------------------------------------------------------------- the fake's spec

_RANGE = re.compile(r"\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5}))?\s*")


class TopologySpecError(ConfigError):
    """A --fake-topology that cannot be read: a configuration mistake, like a bad config key."""


def parse_fake_topology(spec: str, n_gpus: int) -> dict[int, Links]:
    """`nvlink=0-3,4-7; switch=0-1,2-3; socket=0-3,4-7` -> {gpu index: Links}. Each key lists
    its groups, comma-separated, each a GPU or a range; the group's label is its place (0, 1,
    ...). Keys may be left out; a GPU in no group of a key has no label there."""
    out: dict[int, dict[str, int]] = {i: {} for i in range(n_gpus)}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        key, eq, groups = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in LEVELS:
            raise TopologySpecError(
                f"bad fake topology {part!r}: write KEY=GROUPS with KEY one of "
                f"{', '.join(LEVELS)}, e.g. nvlink=0-3,4-7"
            )
        for label, group in enumerate(groups.split(",")):
            for index in _indices(group, part):
                if index >= n_gpus:
                    raise TopologySpecError(f"bad fake topology {part!r}: no GPU {index}")
                if key in out[index]:
                    raise TopologySpecError(f"bad fake topology {part!r}: GPU {index} twice")
                out[index][key] = label
    return {i: Links(**labels) for i, labels in out.items()}


def _indices(group: str, part: str) -> range:
    match = _RANGE.fullmatch(group)
    if match is None:
        raise TopologySpecError(f"bad fake topology {part!r}: {group.strip()!r} is not N or N-M")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise TopologySpecError(f"bad fake topology {part!r}: {group.strip()!r} runs backwards")
    return range(first, last + 1)


def groups_of(n: int, linked: Callable[[int, int], bool]) -> list[int]:
    """Labels for n GPUs (0..n-1) such that GPUs joined by `linked` (directly or through others)
    share one: connected components, numbered by their lowest GPU's order of appearance."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if root(i) != root(j) and linked(i, j):
                parent[root(j)] = root(i)
    labels: dict[int, int] = {}
    return [labels.setdefault(root(i), len(labels)) for i in range(n)]
