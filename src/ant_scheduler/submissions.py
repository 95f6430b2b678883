"""Accepting new tasks: parse what a user typed, check it, store it durably (all or nothing),
queue it. A large multi submission is parsed and written in pieces, the event loop serving other
requests in between, and stays all or nothing (provisional until its last piece is written)."""

from __future__ import annotations

import asyncio
import dataclasses
import graphlib
import random
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from ant_scheduler.core.dependencies import check_after
from ant_scheduler.core.errors import (
    DuplicateTaskId,
    PayloadTooLarge,
    QueueLimit,
    StoreUnavailable,
    TaskRejected,
)
from ant_scheduler.core.order_keys import GAP
from ant_scheduler.core.parsing import SubmitDefaults, iter_submission
from ant_scheduler.core.queue import QueueBatch
from ant_scheduler.core.task import Dependency, Task, TaskSpec
from ant_scheduler.core.users import ADMIN, User
from ant_scheduler.scheduler import Scheduler, queued_entry

# A submission of more tasks than this is written in chunks (see _add_in_chunks). Lines parsed
# and rows written between two yields to the event loop are sized to about 20-40 ms of work, so
# a 100,000-line submission never stalls other requests for long.
SUBMIT_CHUNK = 2000
PARSE_CHUNK = 500
WRITE_CHUNK = 250


class Submissions(Scheduler):
    rng: random.Random  # draws {rand ...} and id templates (set by Engine)

    async def submit(
        self,
        text: str,
        *,
        mode: Literal["single", "multi"] = "single",
        n_gpus: int | None = None,
        task_id: str | None = None,
        env: dict[str, str] | None = None,
        priority: int = 0,
        n_nodes: int | None = None,
        timeout: float | None = None,
        notify: str | None = None,
        after: list[Dependency] | None = None,
        retries: int | None = None,
        retry_on: list[str] | None = None,
        retry_backoff: float | None = None,
        tags: Sequence[str] = (),
        gpu_mem: int | str | None = None,
        user: User = ADMIN,
    ) -> list[Task]:
        """Parse, validate and durably store new tasks (all or nothing), then schedule. They
        belong to `user`; QueueLimit if they would take the user past its max_queued."""
        defaults = self._defaults(
            n_gpus, task_id, env, priority, n_nodes, timeout, notify, after, tags
        )
        defaults = dataclasses.replace(
            defaults,
            retries=retries,
            retry_on=retry_on,
            retry_backoff=retry_backoff,
            gpu_mem=gpu_mem,
        )
        specs = await self._parse(text, mode, defaults, self.rng)
        for spec in specs:
            spec.owner = user.name
        self._check_queue_limit(user, len(specs))
        if len(specs) <= SUBMIT_CHUNK:

            def add() -> list[Task]:
                self._check_queue_limit(user, len(specs))  # again: in the step, no race
                return self._add(specs)

            tasks = await self._command(add)
            # Answered once on disk: a flush in the sync thread, shared by every commit made
            # meanwhile, so the loop never waits for the disk and what fits is already running.
            try:
                await self._flushed()
            except StoreUnavailable as exc:
                n = len(tasks)
                raise StoreUnavailable(
                    f"{n} task{'' if n == 1 else 's'} queued, but {exc.message}: "
                    "they may not survive a power cut"
                ) from None
            return tasks
        return await self._add_in_chunks(specs)

    async def preview(
        self,
        text: str,
        *,
        mode: Literal["single", "multi"] = "single",
        n_gpus: int | None = None,
        task_id: str | None = None,
        env: dict[str, str] | None = None,
        priority: int = 0,
        n_nodes: int | None = None,
        timeout: float | None = None,
        notify: str | None = None,
        retries: int | None = None,
        retry_on: list[str] | None = None,
        retry_backoff: float | None = None,
        after: list[Dependency] | None = None,
        tags: Sequence[str] = (),
        gpu_mem: int | str | None = None,
    ) -> list[TaskSpec]:
        """What submit() would queue, or the error it would raise; nothing is stored and no id
        is taken. Id templates and {rand} are drawn from a generator of their own (the engine's
        draws stay as they were), so a real submit draws them again."""
        defaults = self._defaults(
            n_gpus, task_id, env, priority, n_nodes, timeout, notify, after, tags
        )
        defaults = dataclasses.replace(
            defaults,
            retries=retries,
            retry_on=retry_on,
            retry_backoff=retry_backoff,
            gpu_mem=gpu_mem,
        )
        specs = await self._parse(text, mode, defaults, random.Random())
        self._check_after(specs)
        clash = await self._first_taken([s.task_id for s in specs])
        if clash is not None:
            raise DuplicateTaskId(f"duplicate task id {clash!r}")
        return specs

    def _check_queue_limit(self, user: User, adding: int) -> None:
        """QueueLimit (429) if `adding` more tasks would put more than the user's max_queued in
        the queue. Only users with a limit pay for the count (a look at the queued tasks)."""
        limit = user.max_queued
        if limit is None:
            return
        queued = sum(1 for t in self.queued.values() if t.owner == user.name)
        if queued + adding > limit:
            raise QueueLimit(
                f"{user.name} may have at most {limit} queued tasks (max_queued); "
                f"{queued} are queued and this submission adds {adding}"
            )

    def _defaults(
        self,
        n_gpus: int | None,
        task_id: str | None,
        env: dict[str, str] | None,
        priority: int,
        n_nodes: int | None,
        timeout: float | None = None,
        notify: str | None = None,
        after: list[Dependency] | None = None,
        tags: Sequence[str] = (),
    ) -> SubmitDefaults:
        return SubmitDefaults(
            n_gpus=n_gpus,
            task_id=task_id,
            env=dict(env or {}),
            priority=priority,
            default_n_gpus=self.settings.RUNNER_default_n_gpus,
            n_nodes=n_nodes,
            timeout=timeout,
            notify=notify,
            after=tuple(check_after(after or [])),
            tags=tuple(tags),
        )

    def _check_after(self, specs: list[TaskSpec]) -> None:
        """Every task named in an `after` exists, stored or in this submission (another line,
        before or after), and the submission's dependencies form no cycle (older tasks never
        wait for new ones, so a cycle can only be within it). TaskRejected (400) otherwise."""
        if not any(s.after for s in specs):
            return  # the common case, however large: nothing to look up
        line_of = {s.task_id: n for n, s in enumerate(specs, 1)}
        refs = {d.task_id for s in specs for d in s.after} - line_of.keys()
        unknown = {r for r in refs if self._in_memory(r) is None}
        unknown -= self.store.existing_ids(unknown)
        if unknown:
            first = min(unknown)
            child = next(s for s in specs if any(d.task_id == first for d in s.after))
            raise TaskRejected(
                f"task {child.task_id!r} waits for {first!r} (after), but there is no such task"
            )
        graph = {
            s.task_id: [d.task_id for d in s.after if d.task_id in line_of]
            for s in specs
            if s.after
        }
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            cycle = " -> ".join(reversed(exc.args[1]))
            raise TaskRejected(f"the dependencies (after) form a cycle: {cycle}") from None

    async def _parse(
        self,
        text: str,
        mode: Literal["single", "multi"],
        defaults: SubmitDefaults,
        rng: random.Random,
    ) -> list[TaskSpec]:
        limit = self.settings.SERVER_max_expanded_bytes
        specs: list[TaskSpec] = []
        size = 0
        now = datetime.fromtimestamp(self.clock())
        for spec in iter_submission(text, mode=mode, defaults=defaults, rng=rng, now=now):
            specs.append(spec)
            size += _expanded_size(spec)
            if size > limit:
                raise PayloadTooLarge(
                    f"the submission expands to more than {limit} bytes (after {len(specs)} "
                    "task(s)); share large values through a file, or submit in parts "
                    "(limit: SERVER_max_expanded_bytes)"
                )
            if len(specs) % PARSE_CHUNK == 0:
                await asyncio.sleep(0)
        return specs

    def _new_tasks(self, specs: list[TaskSpec], first_seq: int, now: float) -> list[Task]:
        """Tasks for specs, in queue order from first_seq."""
        tasks = []
        for offset, spec in enumerate(specs):
            task = Task.from_spec(spec, created_at=now, queue_seq=first_seq + offset * GAP)
            task.session_id = self.session_id
            tasks.append(task)
        return tasks

    def _take_seqs(self, n: int) -> int:
        """The first of n queue_seqs, GAP apart (room for moves between them: core/order_keys)."""
        first, self._next_seq = self._next_seq, self._next_seq + n * GAP
        return first

    def _add(self, specs: list[TaskSpec]) -> list[Task]:
        taken = [s.task_id for s in specs if s.task_id in self._submitting]
        if taken:
            raise DuplicateTaskId(f"duplicate task id {taken[0]!r}")
        self._check_after(specs)
        tasks = self._new_tasks(specs, self._take_seqs(len(specs)), self.clock())
        # Raises DuplicateTaskId, writes nothing on error. Not fsync'd here: submit() answers
        # only once a flush has made it durable (a crash of ANT keeps it either way).
        self.store.insert_tasks(tasks, durable=False)
        self._enqueue_new(tasks)
        # A pass now, in this step: what fits starts before the answer goes out, with no loop
        # hop (P10: idle submit-to-start). The pass handles its own failures.
        self._schedule()
        return tasks

    async def _first_taken(self, ids: list[str]) -> str | None:
        """An id of ids that is already used (live, stored, or being submitted), or None."""
        clash = next((i for i in ids if i in self._submitting or self._in_memory(i)), None)
        for start in range(0, len(ids), 500):
            if clash is not None:
                break
            taken = self.store.existing_ids(ids[start : start + 500])
            clash = min(taken) if taken else None
            await asyncio.sleep(0)
        return clash

    async def _add_in_chunks(self, specs: list[TaskSpec]) -> list[Task]:
        """A large submission: written in chunks (each a short transaction, the event loop
        serving others in between), provisional until the last one; all or nothing still."""
        ids = [s.task_id for s in specs]
        clash = await self._first_taken(ids)
        if clash is not None:
            raise DuplicateTaskId(f"duplicate task id {clash!r}")
        self._check_after(specs)
        token = secrets.token_hex(8)
        self._submitting.update(ids)  # nobody else may take these ids meanwhile
        first_seq, now = self._take_seqs(len(specs)), self.clock()
        tasks: list[Task] = []
        waiting: list[Task] = []  # with dependencies: queued one by one at the end
        batch = QueueBatch()
        opened = False
        try:
            await self._command(lambda: self.store.open_submission(token))
            opened = True
            for start in range(0, len(specs), WRITE_CHUNK):
                # Made here, a piece at a time: 100,000 Task objects at once are a long stall.
                chunk = self._new_tasks(
                    specs[start : start + WRITE_CHUNK], first_seq + start * GAP, now
                )

                def write(chunk: list[Task] = chunk) -> None:
                    self.store.insert_tasks(chunk, staged=token)

                await self._command(write)
                tasks += chunk
                waiting += [t for t in chunk if t.after]
                # A task with a paused tag waits aside, out of the queue (_place).
                batch.add(
                    queued_entry(t) for t in chunk if not t.after and self.paused_tag(t) is None
                )
                await asyncio.sleep(0)

            def finish() -> list[Task]:
                self.store.close_submission(token)
                self._submitting.difference_update(ids)
                self._enqueue_new(tasks, batch, waiting)
                return tasks

            return await self._command(finish)
        except BaseException:
            if opened:
                try:
                    self.store.drop_submission(token)
                except StoreUnavailable:
                    pass  # still recorded as open: the next start-up drops it
            raise
        finally:
            self._submitting.difference_update(ids)


def _expanded_size(spec: TaskSpec) -> int:
    env = sum(len(k) + len(v) for k, v in spec.env.items())
    return len(spec.command) + len(spec.submitted) + len(spec.task_id) + env
