"""TaskQueue.remove_many (a paused tag's tasks leave the queue at once): the same queue as
removing them one by one, whether it removes each or rebuilds the order."""

from __future__ import annotations

import pytest

from ant_scheduler.core.policy import QueuedTask
from ant_scheduler.core.queue import TaskQueue


def entries(n: int) -> list[QueuedTask]:
    return [QueuedTask(f"t{i}", i % 3, i % 5, i, 1 + i % 2) for i in range(n)]


@pytest.mark.parametrize("taken", [[], ["t3"], [f"t{i}" for i in range(0, 100, 2)], ["t1"] * 2])
def test_remove_many_equals_removing_each(taken: list[str]) -> None:
    many, each = TaskQueue(entries(100)), TaskQueue(entries(100))
    gone = many.remove_many([*taken, "not-queued"])
    for task_id in dict.fromkeys(taken):
        each.remove(task_id)
    assert sorted(t.task_id for t in gone) == sorted(set(taken))
    assert [t.task_id for t in many] == [t.task_id for t in each]
    assert many.shapes() == each.shapes() and len(many) == len(each)
    for shape in many.shapes():
        assert list(many.tasks_needing(*shape)) == list(each.tasks_needing(*shape))
    if len(many):
        assert many.min_seq() == each.min_seq() and many.position("t99") == each.position("t99")
