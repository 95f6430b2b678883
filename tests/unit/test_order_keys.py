"""The queue's order keys (core/order_keys.py) and moves in TaskQueue: property tests against a
plain list as the model."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core import order_keys
from ant_scheduler.core.order_keys import GAP
from ant_scheduler.core.policy import QueuedTask
from ant_scheduler.core.queue import TaskQueue
from ant_scheduler.core.task import TaskState
from ant_scheduler.store import MIGRATIONS, Store, _v14
from tests.unit.test_store import insert_into_old_schema, task

bounds = st.one_of(st.none(), st.integers(-(2**40), 2**40))


@given(bounds, bounds)
def test_between_is_strictly_between_or_none_when_there_is_no_room(
    lower: int | None, upper: int | None
) -> None:
    if lower is not None and upper is not None and lower >= upper:
        lower, upper = upper, lower + 1 if upper == lower else lower
    key = order_keys.between(lower, upper)
    if key is None:
        assert lower is not None and upper is not None and upper - lower < 2
        return
    assert lower is None or lower < key
    assert upper is None or key < upper


@given(st.integers(1, 200), bounds, st.integers(0, 2**30))
def test_spread_gives_increasing_keys_inside_the_bounds(
    count: int, lower: int | None, width: int
) -> None:
    upper = None if lower is None else lower + width
    keys = order_keys.spread(count, lower, upper)
    if keys is None:
        assert lower is not None and upper is not None
        assert (upper - lower) // (count + 1) < order_keys.MIN_STEP
        return
    assert len(keys) == count and keys == sorted(set(keys))
    assert lower is None or lower < keys[0]
    assert upper is None or keys[-1] < upper


moves = st.lists(
    st.tuples(
        st.integers(0, 29),
        st.sampled_from(["before", "after", "top", "bottom"]),
        st.integers(0, 29),
    ),
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-2, 2), min_size=2, max_size=30), moves, st.booleans())
def test_moves_put_tasks_where_asked_with_any_priorities(
    priorities: list[int], steps: list[tuple[int, str, int]], dense: bool
) -> None:
    # dense: keys 1 apart (as before the gaps existed), so nearly every move needs a spread.
    step = 1 if dense else order_keys.GAP
    tasks = [QueuedTask(f"t{i}", i % 3, p, i * step) for i, p in enumerate(priorities)]
    queue = TaskQueue(tasks)
    model = [t.task_id for t in queue]
    for a, where, b in steps:
        mover, other = f"t{a % len(tasks)}", f"t{b % len(tasks)}"
        if where in ("before", "after"):
            if mover == other:
                continue
            plan = queue.plan_move(mover, **{where: other})
            model.remove(mover)
            model.insert(model.index(other) + (where == "after"), mover)
        else:
            plan = queue.plan_move(mover, to=where)  # type: ignore[arg-type]
            model.remove(mover)
            model.insert(0 if where == "top" else len(model), mover)
        assert len({e.task_id for e in plan}) == len(plan)
        queue.reorder(plan)
        assert [t.task_id for t in queue] == model
        assert [queue.position(t) for t in model] == list(range(1, len(model) + 1))
        for shape in queue.shapes():  # the buckets the policy reads follow too
            in_bucket = [t.task_id for t in queue.tasks_needing(*shape)]
            assert in_bucket == [t for t in model if (queue.get(t).n_gpus, 1) == shape]  # type: ignore[union-attr]


def test_a_move_to_where_the_task_is_changes_nothing() -> None:
    queue = TaskQueue(QueuedTask(f"t{i}", 1, 0, i * order_keys.GAP) for i in range(3))
    assert queue.plan_move("t0", to="top") == []
    assert queue.plan_move("t2", to="bottom") == []
    assert queue.plan_move("t1", after="t0") == []
    assert queue.plan_move("t1", before="t2") == []
    [moved] = queue.plan_move("t2", before="t1")
    assert moved.queue_seq == order_keys.GAP // 2  # one key changes: no renumbering


def test_the_migration_spaces_the_keys_of_an_old_database(tmp_path: Path) -> None:
    """Keys 1 apart (before _v14) become GAP apart: the order is the same, and a move has room."""
    path = tmp_path / "ant.db"
    old = [task(f"q{i}", queue_seq=seq) for i, seq in enumerate([3, -1, 7, 4])]
    with Store(path, migrations=MIGRATIONS[: MIGRATIONS.index(_v14)]) as s:
        insert_into_old_schema(s, old)
    with Store(path) as s:
        seqs = {t.task_id: t.queue_seq for t in s.load_tasks([TaskState.QUEUED])}
        assert seqs == {"q0": 3 * GAP, "q1": -GAP, "q2": 7 * GAP, "q3": 4 * GAP}
        assert s.max_queue_seq() == 7 * GAP
        plan = s._read(
            "EXPLAIN QUERY PLAN UPDATE tasks SET restarted_as = 'b' WHERE restarted_as = 'a'"
        )
        assert "tasks_restarted_as" in str(plan)  # a rename updates references by index
