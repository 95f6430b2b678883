import itertools

import pytest

from ant_scheduler.core.errors import InvalidTransition
from ant_scheduler.core.task import (
    ALLOWED_TRANSITIONS,
    FINISHED_STATES,
    Task,
    TaskSpec,
    TaskState,
    check_transition,
)

EXPECTED_ALLOWED = {
    ("queued", "running"),
    ("queued", "held"),
    ("queued", "failed"),
    ("queued", "killed"),
    ("queued", "dependency_failed"),
    ("held", "queued"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "killed"),
    ("running", "lost"),
    ("running", "timed_out"),
    ("running", "queued"),  # an attempt ended and the task is retried
    ("lost", "queued"),
}


def make_task(state: TaskState = TaskState.QUEUED) -> Task:
    spec = TaskSpec(task_id="t", command="echo hi", submitted="echo hi", n_gpus=1, env={"A": "1"})
    task = Task.from_spec(spec, created_at=100.0, queue_seq=7)
    task.state = state
    return task


def test_states_are_the_documented_nine() -> None:
    assert [s.value for s in TaskState] == [
        "queued",
        "held",
        "running",
        "succeeded",
        "failed",
        "killed",
        "lost",
        "timed_out",
        "dependency_failed",
    ]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(TaskState, TaskState)))
def test_transition_table_is_enforced(a: TaskState, b: TaskState) -> None:
    task = make_task(a)
    if (a.value, b.value) in EXPECTED_ALLOWED:
        task.move_to(b)
        assert task.state is b
    else:
        with pytest.raises(InvalidTransition, match=f"a {a.value} task cannot become {b.value}"):
            task.move_to(b)
        assert task.state is a


def test_table_matches_expectation_exactly() -> None:
    table = {(a.value, b.value) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert table == EXPECTED_ALLOWED
    check_transition(TaskState.QUEUED, TaskState.RUNNING)


def test_finished_states_have_no_way_out() -> None:
    for state in FINISHED_STATES:
        assert state.is_finished and not state.is_active
        assert ALLOWED_TRANSITIONS[state] == frozenset()


def test_from_spec_and_copy_are_independent() -> None:
    task = make_task()
    assert task.state is TaskState.QUEUED
    assert (task.created_at, task.queue_seq, task.env) == (100.0, 7, {"A": "1"})
    twin = task.copy()
    twin.env["B"] = "2"
    twin.gpu_ids.append(3)
    assert task.env == {"A": "1"} and task.gpu_ids == []


def test_queue_order_key_puts_priority_first() -> None:
    low, high = make_task(), make_task()
    low.priority, low.queue_seq = 0, 1
    high.priority, high.queue_seq = 5, 9
    assert sorted([low, high], key=Task.queue_order_key) == [high, low]
