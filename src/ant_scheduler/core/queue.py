"""Queued tasks in start order (placeholder; replaced by the policy-queue branch)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from ant_scheduler.core.policy import QueuedTask

_Key = tuple[int, int, str]


def _key(t: QueuedTask) -> _Key:
    return (-t.priority, t.queue_seq, t.task_id)


class TaskQueue:
    def __init__(self) -> None:
        self._items: dict[str, QueuedTask] = {}
        self._keys: list[_Key] = []

    def add(self, item: QueuedTask) -> None:
        if item.task_id in self._items:
            self.remove(item.task_id)
        self._items[item.task_id] = item
        bisect.insort(self._keys, _key(item))

    def remove(self, task_id: str) -> QueuedTask:
        item = self._items.pop(task_id)
        i = bisect.bisect_left(self._keys, _key(item))
        del self._keys[i]
        return item

    def get(self, task_id: str) -> QueuedTask | None:
        return self._items.get(task_id)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[QueuedTask]:
        return (self._items[k[2]] for k in list(self._keys))

    def position(self, task_id: str) -> int:
        return bisect.bisect_left(self._keys, _key(self._items[task_id])) + 1

    def max_priority(self) -> int | None:
        return -self._keys[0][0] if self._keys else None

    def min_seq(self) -> int | None:
        return min((k[1] for k in self._keys), default=None)
