"""Dependencies (`after`): how users write them, what a parent's state means for a task waiting
on it, and the index of waiting tasks. Pure.

A task with unmet dependencies is queued but kept out of the policy's TaskQueue: it sits in
`Waits` under each parent it still waits for, and only a parent's end (or deletion) looks at its
children. A scheduling pass therefore never sees waiting tasks, however many there are (P10).

Rules (`outcome`): a parent that has not ended (queued, held, running) keeps its children
waiting. Once it ended, `ok` is met by `succeeded` only, `fail` by every other end (failed,
killed, timed_out, lost, dependency_failed), `any` by every end. A deleted parent meets nothing:
its outcome will never be known. A condition that can no longer be met ends the child
`dependency_failed`, and that end is in turn its own children's parent state (a cascade).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.task import (
    CONDITIONS,
    ENDED_STATES,
    Condition,
    Dependency,
    TaskState,
)
from ant_scheduler.core.templates import validate_task_id

MAX_AFTER = 256  # dependencies of one task: more is a mistake, and each costs a lookup
PREV = "[prev]"  # multi mode: the task of the line before
Outcome = Literal["met", "never", "pending"]


def parse_after(text: str, where: str = "ant_after") -> list[Dependency]:
    """`ID,ID:any,[prev]:fail` -> dependencies (`[prev]` left for the caller to resolve)."""
    deps: list[Dependency] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        task_id, _, condition = item.partition(":")
        condition = condition.strip() or "ok"
        if condition not in CONDITIONS:
            raise TaskRejected(
                f"{where}: the condition of {item[:80]!r} must be ok, any or fail, "
                f"not {condition[:20]!r}"
            )
        deps.append(Dependency(task_id.strip(), condition))
    return check_after(deps, where)


def check_after(deps: Sequence[Dependency], where: str = "after") -> list[Dependency]:
    """At most MAX_AFTER dependencies, each a valid id (or PREV) named once."""
    if len(deps) > MAX_AFTER:
        raise TaskRejected(f"{where}: at most {MAX_AFTER} dependencies, got {len(deps)}")
    seen: set[str] = set()
    for dep in deps:
        if dep.condition not in CONDITIONS:
            raise TaskRejected(f"{where}: the condition must be ok, any or fail")
        if dep.task_id != PREV:
            try:
                validate_task_id(dep.task_id)
            except TaskRejected as exc:
                raise TaskRejected(f"{where}: {exc.message}") from None
        if dep.task_id in seen:
            raise TaskRejected(f"{where}: {dep.task_id!r} is listed twice")
        seen.add(dep.task_id)
    return list(deps)


def format_after(deps: Iterable[Dependency]) -> str:
    """The inline form parse_after reads back: `a,b:any`."""
    return ",".join(str(d) for d in deps)


def outcome(condition: Condition, parent: TaskState | None) -> Outcome:
    """What the parent's state (None: deleted) means for a dependency with this condition."""
    if parent is None:
        return "never"
    if parent not in ENDED_STATES:
        return "pending"
    if condition == "any":
        return "met"
    succeeded = parent is TaskState.SUCCEEDED
    return "met" if succeeded == (condition == "ok") else "never"


def describe_wait(dep: Dependency, parent: TaskState | None) -> str:
    """The pending reason: "waiting for train-3 (running)"."""
    state = "deleted" if parent is None else parent.value
    wanted = {"ok": "", "any": ", to end", "fail": ", to fail"}[dep.condition]
    return f"waiting for {dep.task_id} ({state}{wanted})"


def never_reason(dep: Dependency, parent: TaskState | None) -> str:
    """Why a task ended dependency_failed."""
    if parent is None:
        return f"{dep.task_id} was deleted before it ended"
    wanted = {"ok": "succeed", "any": "end", "fail": "fail"}[dep.condition]
    return f"{dep.task_id} ended {parent.value}; this task needed it to {wanted}"


@dataclass
class Settlement:
    """What a set of parents' ends does to the tasks waiting on them (computed, not applied)."""

    ready: list[str] = field(default_factory=list)  # every dependency met: may start now
    failed: dict[str, tuple[Dependency, TaskState | None]] = field(default_factory=dict)
    # Every parent looked at (the failed children among them): apply() forgets what they met.
    parents: dict[str, TaskState | None] = field(default_factory=dict)


class Waits:
    """The queued tasks with unmet dependencies: child -> the dependencies still unmet (in the
    order given) and parent -> the children waiting on it. Every operation touches only the
    tasks named, never the whole set."""

    def __init__(self) -> None:
        self._unmet: dict[str, dict[str, Dependency]] = {}
        self._children: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._unmet)

    def __contains__(self, child: object) -> bool:
        return child in self._unmet

    def wait(self, child: str, deps: Iterable[Dependency]) -> None:
        unmet = {d.task_id: d for d in deps}
        if not unmet:
            return
        self.drop(child)
        self._unmet[child] = unmet
        for parent in unmet:
            self._children.setdefault(parent, set()).add(child)

    def drop(self, child: str) -> None:
        """The child leaves the queue (killed, deleted, started): forget it."""
        unmet = self._unmet.pop(child, None)
        for parent in unmet or ():
            children = self._children.get(parent)
            if children is not None:
                children.discard(child)
                if not children:
                    del self._children[parent]

    def first_unmet(self, child: str) -> Dependency | None:
        unmet = self._unmet.get(child)
        return next(iter(unmet.values())) if unmet else None

    def children(self, parent: str) -> set[str]:
        return set(self._children.get(parent, ()))

    def unmet(self, child: str) -> list[Dependency]:
        return list(self._unmet.get(child, {}).values())

    def settle(self, ended: Mapping[str, TaskState | None]) -> Settlement:
        """The effect of these parents' ends (None: deleted), cascades included. Changes
        nothing: apply() it once it is durable."""
        result = Settlement()
        met: dict[str, set[str]] = {}
        work = deque(ended.items())
        while work:
            parent, state = work.popleft()
            result.parents[parent] = state
            for child in sorted(self._children.get(parent, ())):
                if child in result.failed:
                    continue
                dep = self._unmet[child][parent]
                verdict = outcome(dep.condition, state)
                if verdict == "never":
                    result.failed[child] = (dep, state)
                    work.append((child, TaskState.DEPENDENCY_FAILED))
                elif verdict == "met":
                    met.setdefault(child, set()).add(parent)
        for child, parents in met.items():
            if child not in result.failed and parents >= self._unmet[child].keys():
                result.ready.append(child)
        return result

    def apply(self, settlement: Settlement) -> None:
        """Forget the ready and failed children; the others lose the parents that are met."""
        for child in (*settlement.ready, *settlement.failed):
            self.drop(child)
        for parent, state in settlement.parents.items():
            for child in self.children(parent):
                dep = self._unmet[child][parent]
                if outcome(dep.condition, state) == "met":
                    del self._unmet[child][parent]
                    children = self._children[parent]
                    children.discard(child)
                    if not children:
                        del self._children[parent]

    def rename(self, old: str, new: str) -> None:
        """A task changed its id (`ant rename`): its waits and its children follow."""
        if old in self._unmet:
            unmet = self._unmet.pop(old)
            self._unmet[new] = unmet
            for parent in unmet:
                children = self._children[parent]
                children.discard(old)
                children.add(new)
        children = self._children.pop(old, set())
        if children:
            self._children[new] = children
            for child in children:
                deps = self._unmet[child]
                dep = deps[old]
                self._unmet[child] = {
                    (new if k == old else k): (Dependency(new, dep.condition) if k == old else v)
                    for k, v in deps.items()
                }


def initial_wait(
    deps: Sequence[Dependency], state_of: Callable[[str], TaskState | None]
) -> tuple[list[Dependency], list[tuple[Dependency, TaskState | None]]]:
    """(dependencies still pending or already impossible, the impossible ones with their
    parent's state) for a task entering the queue."""
    unmet: list[Dependency] = []
    never: list[tuple[Dependency, TaskState | None]] = []
    for dep in deps:
        state = state_of(dep.task_id)
        verdict = outcome(dep.condition, state)
        if verdict != "met":
            unmet.append(dep)
        if verdict == "never":
            never.append((dep, state))
    return unmet, never
