"""core/dependencies.py and the `ant_after=` word: parsing, the rules, and the waiting index
against a plain model of it (property tests)."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.dependencies import (
    Waits,
    format_after,
    outcome,
    parse_after,
)
from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.parsing import SubmitDefaults, format_copy_command, parse_submission
from ant_scheduler.core.task import ENDED_STATES, Dependency, TaskState

NOW = datetime(2026, 1, 1)


def parse(text: str, mode: str = "multi", **defaults: object) -> list[tuple[str, list[str]]]:
    specs = parse_submission(
        text,
        mode=mode,  # type: ignore[arg-type]
        defaults=SubmitDefaults(**defaults),  # type: ignore[arg-type]
        rng=random.Random(1),
        now=NOW,
    )
    return [(s.task_id, [str(d) for d in s.after]) for s in specs]


def test_parse_after_reads_ids_and_conditions() -> None:
    assert parse_after("a, b:any ,c:fail,d:ok") == [
        Dependency("a"),
        Dependency("b", "any"),
        Dependency("c", "fail"),
        Dependency("d"),
    ]
    assert format_after(parse_after("a,b:any")) == "a,b:any"
    for bad, message in [
        ("a:maybe", "must be ok, any or fail"),
        ("a,a:any", "listed twice"),
        ("../x", "may only contain"),
    ]:
        with pytest.raises(TaskRejected, match=message):
            parse_after(bad)


def test_inline_after_and_prev_in_multi_mode() -> None:
    text = "ant_task_id=a x\nant_task_id=b ant_after=[prev] y\n# a comment\n"
    text += "ant_task_id=c ant_after=[prev]:any,a z\n"
    assert parse(text) == [("a", []), ("b", ["a"]), ("c", ["b:any", "a"])]
    # The field applies to every line; an inline word replaces it; [prev] chains a sweep.
    assert parse("ant_task_id=a x\nant_task_id=b y", after=(Dependency("[prev]"),)) == [
        ("a", []),
        ("b", ["a"]),
    ]
    with pytest.raises(TaskRejected, match=r"line 1: ant_after: \[prev\] names the line before"):
        parse("ant_task_id=a ant_after=[prev] x")
    with pytest.raises(TaskRejected, match="cannot wait for itself"):
        parse("ant_task_id=a ant_after=a x", mode="single")
    # ant_after is taken out of the command and the env, like the other ant_* words.
    (spec,) = parse_submission(
        "ant_after=p1 python x.py",
        mode="single",
        defaults=SubmitDefaults(),
        rng=random.Random(1),
        now=NOW,
    )
    assert spec.command == "python x.py" and "ant_after" not in spec.env


def test_copy_command_keeps_the_dependencies() -> None:
    copy = format_copy_command(
        1, {}, "python x.py", after=[Dependency("a"), Dependency("b", "fail")]
    )
    assert copy == "ant_n_gpus=1 ant_after=a,b:fail python x.py"


@pytest.mark.parametrize("state", list(TaskState))
def test_outcome_table(state: TaskState) -> None:
    if state not in ENDED_STATES:
        assert {outcome(c, state) for c in ("ok", "any", "fail")} == {"pending"}
        return
    ok = state is TaskState.SUCCEEDED
    assert outcome("ok", state) == ("met" if ok else "never")
    assert outcome("fail", state) == ("never" if ok else "met")
    assert outcome("any", state) == "met"
    assert outcome("any", None) == "never"  # deleted


PARENTS = ["p0", "p1", "p2", "p3"]
ENDS = [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.KILLED, None]
deps_strategy = st.lists(
    st.tuples(st.sampled_from(PARENTS), st.sampled_from(["ok", "any", "fail"])),
    min_size=1,
    max_size=4,
    unique_by=lambda t: t[0],
)


@settings(max_examples=200, deadline=None)
@given(
    children=st.lists(deps_strategy, min_size=1, max_size=8),
    ends=st.lists(st.tuples(st.sampled_from(PARENTS), st.sampled_from(ENDS)), max_size=6),
)
def test_waits_release_exactly_what_the_rules_say(
    children: list[list[tuple[str, str]]], ends: list[tuple[str, TaskState | None]]
) -> None:
    """Parents p0..p3 end one by one (each once); children c0.. wait for some of them. A child is
    released when every dependency is met, fails as soon as one can never be, and is never both
    nor released twice; a plain evaluation of the rules agrees."""
    waits = Waits()
    deps = {
        f"c{i}": [Dependency(p, c) for p, c in items]  # type: ignore[arg-type]
        for i, items in enumerate(children)
    }
    for child, items in deps.items():
        waits.wait(child, items)
    ended: dict[str, TaskState | None] = {}
    released: set[str] = set()
    failed: set[str] = set()
    for parent, state in ends:
        if parent in ended:
            continue
        ended[parent] = state
        settlement = waits.settle({parent: state})
        waits.apply(settlement)
        assert not set(settlement.ready) & (released | failed)
        assert not set(settlement.failed) & (released | failed)
        released |= set(settlement.ready)
        failed |= set(settlement.failed)
    for child, items in deps.items():
        verdicts = [
            outcome(d.condition, ended[d.task_id]) if d.task_id in ended else "pending"
            for d in items
        ]
        if "never" in verdicts:
            assert child in failed
        elif all(v == "met" for v in verdicts):
            assert child in released
        else:
            assert child not in released | failed and child in waits
            first = waits.first_unmet(child)
            assert first is not None and first.task_id not in ended
    assert len(waits) == len(deps) - len(released) - len(failed)


def test_a_failure_cascades_through_waiting_children() -> None:
    waits = Waits()
    waits.wait("b", [Dependency("a")])
    waits.wait("c", [Dependency("b")])
    waits.wait("d", [Dependency("c", "fail")])
    waits.wait("e", [Dependency("c", "ok"), Dependency("x")])
    settlement = waits.settle({"a": TaskState.FAILED})
    assert set(settlement.failed) == {"b", "c", "e"} and settlement.ready == ["d"]
    assert len(waits) == 4  # settle changes nothing until applied
    waits.apply(settlement)
    assert len(waits) == 0 and not waits.children("x")


def test_rename_moves_waits_and_children() -> None:
    waits = Waits()
    waits.wait("child", [Dependency("old", "any"), Dependency("other")])
    waits.wait("old", [Dependency("root")])
    waits.rename("old", "new")
    assert waits.unmet("child") == [Dependency("new", "any"), Dependency("other")]
    assert waits.children("new") == {"child"} and waits.children("root") == {"new"}
    assert "new" in waits and "old" not in waits
