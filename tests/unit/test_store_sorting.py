"""Sorted listings (the Completed table): every order against a reference, read off an index."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ant_scheduler.core.task import ENDED_STATES, Task, TaskState
from ant_scheduler.store import MIGRATIONS, SORT_KEYS, Store
from tests.unit.test_store import insert_into_old_schema, task

ENDED = sorted(ENDED_STATES, key=lambda s: s.value)


def sort_value(t: Task, key: str) -> Any:
    if key == "duration":
        if t.finished_at is None or t.started_at is None:
            return None
        return t.finished_at - t.started_at
    return getattr(t, key)


def reference(
    tasks: list[Task],
    key: str,
    descending: bool,
    states: set[TaskState],
    keep: Callable[[Task], bool] = lambda t: True,
) -> list[str]:
    """The order the store promises: the key (no value: smallest), then state, end time,
    insertion; all reversed for descending."""

    def rank(item: tuple[int, Task]) -> tuple[Any, ...]:
        n, t = item
        value = sort_value(t, key)
        end = t.finished_at
        return ((value is not None, value or 0), t.state.value, (end is not None, end or 0), n)

    chosen = [(n, t) for n, t in enumerate(tasks) if t.state in states and keep(t)]
    return [t.task_id for _, t in sorted(chosen, key=rank, reverse=descending)]


def history(n: int, seed: int = 7) -> list[Task]:
    """Ended tasks with ties, missing start times, every ended state, plus some active ones."""
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        state = rng.choice([*ENDED, TaskState.SUCCEEDED, TaskState.SUCCEEDED])
        started = None if rng.random() < 0.15 else float(rng.randrange(0, 50))
        finished = (started or 0.0) + rng.choice([1.0, 2.0, 3.5, float(rng.randrange(0, 40))])
        tasks.append(
            task(
                f"t-{rng.randrange(10**6):06d}-{i}",
                state,
                command=f"python train.py --seed {rng.randrange(5)}",
                created_at=float(rng.randrange(0, 30)),
                started_at=started,
                finished_at=finished,
                exit_code=None if state is TaskState.LOST else rng.choice([0, 0, 1, 2, -9]),
            )
        )
    tasks += [
        task("queued-1", TaskState.QUEUED, queue_seq=1),
        task("running-1", TaskState.RUNNING, started_at=3.0),
    ]
    rng.shuffle(tasks)
    return tasks


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Store, list[Task]]:
    store = Store(tmp_path / "ant.db")
    tasks = history(300)
    store.insert_tasks(tasks)  # in this order: the insertion order is the last tie-break
    return store, tasks


def read_all(store: Store, page: int, **query: Any) -> tuple[list[str], int]:
    """Every page of the listing, concatenated (so paging is checked too)."""
    ids: list[str] = []
    total = -1
    offset = 0
    while True:
        tasks, total = store.list_tasks(limit=page, offset=offset, **query)
        ids += [t.task_id for t in tasks]
        offset += page
        if offset >= total:
            return ids, total


@pytest.mark.parametrize("key", list(SORT_KEYS))
@pytest.mark.parametrize("descending", [True, False])
def test_every_sort_key_and_direction_matches_the_reference(
    filled: tuple[Store, list[Task]], key: str, descending: bool
) -> None:
    store, tasks = filled
    for states in (set(ENDED), {TaskState.FAILED}, {TaskState.LOST, TaskState.KILLED}):
        want = reference(tasks, key, descending, states)
        got, total = read_all(store, 17, states=states, sort=key, descending=descending)
        assert got == want and total == len(want)
    # Active states too (sorted by SQLite: they are in no index).
    every = set(TaskState)
    got, total = read_all(store, 50, states=None, sort=key, descending=descending)
    assert got == reference(tasks, key, descending, every) and total == len(tasks)


def test_the_end_time_range_and_a_search_combine_with_the_sort(
    filled: tuple[Store, list[Task]],
) -> None:
    store, tasks = filled

    def in_range(t: Task) -> bool:
        return t.finished_at is not None and 10.0 <= t.finished_at < 30.0

    ended = set(ENDED)
    want = reference(tasks, "duration", True, ended, in_range)
    got, total = read_all(
        store, 9, states=ended, sort="duration", ended_since=10.0, ended_before=30.0
    )
    assert got == want and total == len(want) > 0
    # Listing order (no sort) with a range: finished tasks newest first, lost among the held.
    unsorted, n = store.list_tasks(states=ended, ended_since=10.0, ended_before=30.0, limit=500)
    assert sorted(t.task_id for t in unsorted) == sorted(want) and n == len(want)
    # A search of three characters or more (the trigram index) and a shorter one (a scan).
    for q in ("seed 3", "3"):

        def matches(t: Task, q: str = q) -> bool:
            return in_range(t) and (q in t.command or q in t.task_id)

        want = reference(tasks, "started_at", False, ended, matches)
        got, total = read_all(
            store,
            11,
            states=ended,
            q=q,
            sort="started_at",
            descending=False,
            ended_since=10.0,
            ended_before=30.0,
        )
        assert got == want and total == len(want) > 0


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL the store runs meanwhile, with its values bound in."""
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        store._db.set_trace_callback(None)


@pytest.mark.parametrize("key", list(SORT_KEYS))
def test_sorted_pages_of_ended_tasks_are_read_off_an_index(
    filled: tuple[Store, list[Task]], key: str
) -> None:
    """No sort of the table for any key, direction or choice of ended states (the planner left
    to itself takes the state index and sorts every match for each page)."""
    store, _ = filled
    for states in (set(ENDED), {TaskState.FAILED}, {TaskState.SUCCEEDED, TaskState.KILLED}):
        for descending in (True, False):
            for since in (None, 5.0):
                with statements(store) as seen:
                    store.list_tasks(
                        states=states, sort=key, descending=descending, ended_since=since, limit=5
                    )
                [select] = [s for s in seen if s.startswith("SELECT task_id")]
                plan = " / ".join(r[3] for r in store._read(f"EXPLAIN QUERY PLAN {select}"))
                assert f"USING INDEX tasks_ended_by_{key}" in plan, plan
                assert "TEMP B-TREE" not in plan, plan


def test_an_unknown_sort_key_is_refused(filled: tuple[Store, list[Task]]) -> None:
    store, _ = filled
    with pytest.raises(ValueError, match="unknown sort key"):
        store.list_tasks(sort="command; DROP TABLE tasks")


def test_the_migration_indexes_existing_history(tmp_path: Path) -> None:
    """A database of schema 6 gets the sort indexes for the tasks it holds."""
    path = tmp_path / "ant.db"
    tasks = history(60, seed=3)
    with Store(path, migrations=MIGRATIONS[:6]) as s:
        insert_into_old_schema(s, tasks)
        assert not s._sort_indexes
    with Store(path) as s:
        assert s._sort_indexes and s.schema_version == len(MIGRATIONS)
        after = read_all(s, 7, states=set(ENDED), sort="exit_code")
        assert after[0] == reference(tasks, "exit_code", True, set(ENDED))


def test_the_sort_indexes_cover_every_ended_state() -> None:
    """A new ended state (timed_out, P12) must be in the indexes' WHERE, or its tasks would
    vanish from sorted pages: the schema's list and core's must agree."""
    from ant_scheduler import store
    from ant_scheduler.core.task import ENDED_STATES

    listed = set(re.findall(r"'(\w+)'", store._ENDED_WHERE))
    assert listed == {s.value for s in ENDED_STATES}
