from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.policy import QueuedTask, order_queue
from ant_scheduler.core.queue import QueueBatch, TaskQueue


def ids(q: TaskQueue) -> list[str]:
    return [t.task_id for t in q]


def test_start_order_is_priority_then_queue_seq_then_id() -> None:
    q = TaskQueue(
        [
            QueuedTask("a", 1, priority=0, queue_seq=2),
            QueuedTask("b", 0, priority=5, queue_seq=9),
            QueuedTask("d", 2, priority=0, queue_seq=1),
            QueuedTask("c", 1, priority=0, queue_seq=1),
            QueuedTask("e", 1, priority=-1, queue_seq=0),
        ]
    )
    assert ids(q) == ["b", "c", "d", "a", "e"]
    assert [q.position(i) for i in ids(q)] == [1, 2, 3, 4, 5]
    assert q.first() == QueuedTask("b", 0, 5, 9)
    assert len(q) == 5


def test_ties_on_priority_and_seq_go_by_task_id_whatever_the_insertion_order() -> None:
    q = TaskQueue()
    for task_id in ["t3", "t1", "t2", "t10"]:
        q.add(QueuedTask(task_id, 1, 0, 7))
    assert ids(q) == ["t1", "t10", "t2", "t3"]
    assert q.position("t2") == 3


def test_add_get_contains_remove() -> None:
    q = TaskQueue()
    assert len(q) == 0 and ids(q) == [] and q.first() is None
    a, b = QueuedTask("a", 1, 0, 0), QueuedTask("b", 0, 0, 1)
    q.add(a)
    q.add(b)
    assert "a" in q and "b" in q and "c" not in q
    assert q.get("a") is a and q.get("c") is None
    assert q.remove("a") is a
    assert "a" not in q and ids(q) == ["b"] and q.position("b") == 1
    with pytest.raises(KeyError):
        q.remove("a")
    with pytest.raises(KeyError):
        q.position("a")
    q.add(a)  # may come back (e.g. restored) once it is gone
    assert ids(q) == ["a", "b"]


def test_a_task_id_is_queued_once() -> None:
    q = TaskQueue([QueuedTask("a", 1)])
    with pytest.raises(ValueError, match="already queued"):
        q.add(QueuedTask("a", 2, 3, 4))
    assert q.get("a") == QueuedTask("a", 1)
    with pytest.raises(ValueError, match="twice"):
        TaskQueue([QueuedTask("a", 1), QueuedTask("a", 1)])
    with pytest.raises(ValueError, match="-1 GPUs"):
        q.add(QueuedTask("neg", -1))


def test_promote_helpers_see_the_whole_queue() -> None:
    q = TaskQueue()
    with pytest.raises(ValueError):
        q.max_priority()
    with pytest.raises(ValueError):
        q.min_seq()
    # The lowest queue_seq belongs to a low-priority task, not to the first one.
    q.add(QueuedTask("old-low", 1, priority=-3, queue_seq=2))
    q.add(QueuedTask("new-high", 1, priority=4, queue_seq=50))
    q.add(QueuedTask("mid", 1, priority=0, queue_seq=9))
    assert q.max_priority() == 4
    assert q.min_seq() == 2
    q.remove("old-low")
    assert q.min_seq() == 9
    q.add(QueuedTask("dup-seq", 1, 0, 9))
    q.remove("mid")
    assert q.min_seq() == 9  # another task still has seq 9


def test_promote_moves_a_task_to_the_front_like_the_engine_does() -> None:
    tasks = [QueuedTask("a", 1, 3, 5), QueuedTask("b", 0, 0, 1), QueuedTask("last", 2, -1, 8)]
    q = TaskQueue(tasks)
    # The engine: top priority and lowest queue_seq minus one, over all queued tasks.
    want = dataclasses.replace(tasks[2], priority=3, queue_seq=0)
    assert q.promote("last") == want
    assert q.get("last") == want
    assert ids(q) == ["last", "a", "b"]
    assert q.position("last") == 1
    assert list(q.tasks_needing(2)) == [want]
    assert q.promote("last") == dataclasses.replace(want, queue_seq=-1)  # again: still first
    assert q.promote("b").queue_seq == -2
    assert ids(q) == ["b", "last", "a"]
    with pytest.raises(KeyError):
        q.promote("nobody")


def test_buckets_by_gpu_count() -> None:
    q = TaskQueue(
        [
            QueuedTask("c1", 0, 0, 3),
            QueuedTask("g2", 2, 0, 1),
            QueuedTask("c0", 0, 1, 9),
            QueuedTask("g1", 1, 0, 2),
            QueuedTask("g2b", 2, 0, 0),
        ]
    )
    assert q.gpu_counts() == [0, 1, 2]
    assert [t.task_id for t in q.tasks_needing(0)] == ["c0", "c1"]
    assert [t.task_id for t in q.tasks_needing(2)] == ["g2b", "g2"]
    assert list(q.tasks_needing(7)) == []
    q.remove("g1")
    assert q.gpu_counts() == [0, 2]  # an emptied bucket goes away
    q.add(QueuedTask("g8", 8, 0, 4))
    assert q.gpu_counts() == [0, 2, 8]


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "remove", "promote"]),
        st.integers(0, 12),  # task number
        st.integers(0, 3),  # n_gpus
        st.integers(-2, 2),  # priority
        st.integers(0, 6),  # queue_seq: ties are common
    ),
    max_size=60,
)


@given(ops)
@settings(max_examples=300, deadline=None)
def test_queue_matches_a_sorted_list(steps: list[tuple[str, int, int, int, int]]) -> None:
    q = TaskQueue()
    model: dict[str, QueuedTask] = {}
    for op, k, n_gpus, priority, seq in steps:
        task_id = f"t{k}"
        if op == "add":
            task = QueuedTask(task_id, n_gpus, priority, seq)
            if task_id in model:
                with pytest.raises(ValueError):
                    q.add(task)
            else:
                q.add(task)
                model[task_id] = task
        elif op == "remove":
            if task_id in model:
                assert q.remove(task_id) == model.pop(task_id)
            else:
                with pytest.raises(KeyError):
                    q.remove(task_id)
        elif task_id in model:
            others = model.values()
            model[task_id] = dataclasses.replace(
                model[task_id],
                priority=max(t.priority for t in others),
                queue_seq=min(t.queue_seq for t in others) - 1,
            )
            assert q.promote(task_id) == model[task_id]
        order = sorted(model.values(), key=lambda t: (-t.priority, t.queue_seq, t.task_id))
        assert order == order_queue(model.values())
        assert list(q) == order
        assert len(q) == len(model)
        assert all(q.position(t.task_id) == n for n, t in enumerate(order, 1))
        if model:
            assert q.max_priority() == max(t.priority for t in model.values())
            assert q.min_seq() == min(t.queue_seq for t in model.values())
        assert q.gpu_counts() == sorted({t.n_gpus for t in model.values()})
        for n in q.gpu_counts():
            assert list(q.tasks_needing(n)) == [t for t in order if t.n_gpus == n]


def test_a_merged_batch_is_queued_as_if_added_one_by_one() -> None:
    rng = random.Random(7)
    existing = [
        QueuedTask(f"e{i}", rng.choice([0, 1, 2, 4]), rng.randint(-2, 2), i) for i in range(300)
    ]
    new = [
        QueuedTask(f"n{i}", rng.choice([0, 1, 8]), rng.randint(-2, 2), 300 + i) for i in range(500)
    ]
    one_by_one = TaskQueue(existing)
    for task in new:
        one_by_one.add(task)
    merged = TaskQueue(existing)
    batch = QueueBatch()
    batch.add(new[:200])
    batch.add(new[200:])
    merged.merge(batch)
    assert list(merged) == list(one_by_one)
    assert merged.gpu_counts() == one_by_one.gpu_counts()
    for n in merged.gpu_counts():
        assert list(merged.tasks_needing(n)) == list(one_by_one.tasks_needing(n))
    assert merged.min_seq() == one_by_one.min_seq()
    assert [merged.position(t.task_id) for t in new] == [
        one_by_one.position(t.task_id) for t in new
    ]
    small = QueueBatch()
    small.add([QueuedTask("s", 1, 9, -5)])
    merged.merge(small)
    assert merged.first() == QueuedTask("s", 1, 9, -5)
    clash = QueueBatch()
    clash.add([QueuedTask("e1", 1)])
    with pytest.raises(ValueError, match="'e1' is already queued"):
        merged.merge(clash)
    assert len(merged) == 801
    with pytest.raises(ValueError, match="twice"):
        batch.add([QueuedTask("n1", 1)])
