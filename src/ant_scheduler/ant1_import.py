"""Moving over from ANT 1.1: its recovery file's tasks brought into the store, while ANT runs.

`import_ant1` is what POST /api/v1/import/ant1 (and so `ant import-ant1 PATH`) does: the file is
read (core/ant1.py), the ids already taken are sorted out (the same task: skipped; another task:
a clash, reported and never overwritten), the log files that still exist are brought into ANT's
log directory (`<LOGGER_log_dir>/ant1-import/<when>-<hex>/<id>.log`, a hard link when it can,
else a copy; in a worker thread: a log can be large), and the tasks are inserted in one fsync'd
transaction. Running it twice changes nothing the second time. `offer_on_first_start` prints the
command once per database, on its first start, when the seed's RECOVERY_state_file exists.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ant_scheduler.core.ant1 import IMPORT_TAG, Ant1Task, read_ant1
from ant_scheduler.core.errors import TaskNotFound
from ant_scheduler.core.order_keys import GAP
from ant_scheduler.core.task import Attempt, Task, TaskState

if TYPE_CHECKING:
    from ant_scheduler.engine import Engine

LOG_SUBDIR = "ant1-import"
OFFERED_KEY = "ant1_import_offered"  # store meta: the first start looked for a file (once)


async def import_ant1(engine: Engine, text: str, base_dirs: list[str]) -> dict[str, Any]:
    """Import the file's text; relative log file names are looked for under `base_dirs` (the
    directory `ant import-ant1` ran in and the file's). Answers wire.ImportOut's fields."""
    parsed = await asyncio.to_thread(read_ant1, text)
    report: dict[str, Any] = {
        "imported": 0,
        "held": 0,
        "already_there": 0,
        "clashes": [],
        "without_task_id": parsed.without_id,
        "older_copies": parsed.older_copies,
        "invalid": list(parsed.invalid),
        "logs_copied": 0,
        "logs_missing": 0,
        "task_ids": [],
    }
    fresh, same, clashes = await engine._command(lambda: _sort_out(engine, parsed.tasks))
    report["already_there"] += len(same)
    report["clashes"] += clashes
    # A directory of this import's own: a file in it is never another import's (two imports at
    # once, or a task of an earlier one under the same id), so it can be removed when unused.
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(engine.clock()))
    target = engine.log_dir / LOG_SUBDIR / f"{stamp}-{secrets.token_hex(3)}"
    mode = 0o750 if engine.settings.LOGGER_group_readable else 0o700  # as the task logs' dirs
    logs = await asyncio.to_thread(_bring_logs, fresh, base_dirs, target, mode, report)

    def finish() -> tuple[list[Task], list[str], list[str]]:
        # The ids were free a moment ago; a submit may have taken one meanwhile: sorted out
        # again, in the step that inserts (one transaction, nothing in between).
        still, same, clashes = _sort_out(engine, fresh)
        now, first_seq = engine.clock(), engine._take_seqs(len(still))
        tasks = [
            _task(t, logs.get(t.task_id), now, first_seq + i * GAP) for i, t in enumerate(still)
        ]
        if tasks:
            engine.store.apply(inserts=tasks)
            engine._publish_tasks("task_added", tasks)
        return tasks, same, clashes

    tasks, same, clashes = await engine._command(finish)
    report["already_there"] += len(same)
    report["clashes"] += clashes
    for task_id in [*same, *clashes]:
        if task_id in logs:
            _unlink(logs.pop(task_id))
            report["logs_copied"] -= 1
    if not logs:
        try:
            target.rmdir()
        except OSError:
            pass  # never made, or in use
    report["imported"] = len(tasks)
    report["held"] = sum(1 for t in tasks if t.state is TaskState.HELD)
    report["task_ids"] = [t.task_id for t in tasks]
    return report


def _sort_out(
    engine: Engine, entries: list[Ant1Task]
) -> tuple[list[Ant1Task], list[str], list[str]]:
    """(the entries whose id is free, ids ANT has as the same task — same command —, ids that
    are another task's: clashes)."""
    fresh, same, clashes = [], [], []
    for entry in entries:
        stored = _taken(engine, entry.task_id)
        if stored is None:
            fresh.append(entry)
        elif stored.command == entry.command:
            same.append(entry.task_id)
        else:
            clashes.append(entry.task_id)
    return fresh, same, clashes


def _taken(engine: Engine, task_id: str) -> Task | None:
    if task_id in engine._submitting:  # a large submission being written: its id is taken
        return Task(task_id, "", "", 0, {}, TaskState.QUEUED, 0, 0.0)
    try:
        return engine.get(task_id)
    except TaskNotFound:
        return None


def _bring_logs(
    entries: list[Ant1Task], base_dirs: list[str], target: Path, mode: int, report: dict[str, Any]
) -> dict[str, Path]:
    """Each entry's log, found and linked (or copied) into `target` as `<id>.log`."""
    brought: dict[str, Path] = {}
    for entry in entries:
        if entry.log_file_name is None:
            continue
        source = _find(entry.log_file_name, base_dirs)
        if source is None:
            report["logs_missing"] += 1
            continue
        for directory in (target.parent, target):
            directory.mkdir(exist_ok=True, mode=mode)
        dest = target / f"{entry.task_id}.log"
        try:
            _link_or_copy(source, dest)
        except OSError:
            report["logs_missing"] += 1
            continue
        brought[entry.task_id] = dest
        report["logs_copied"] += 1
    return brought


def _find(name: str, base_dirs: list[str]) -> Path | None:
    """The log as a regular file: its path if absolute, else under one of the base dirs."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [Path(b) / path for b in base_dirs]
    for candidate in candidates:
        try:
            if stat.S_ISREG(candidate.stat().st_mode):
                return candidate
        except (OSError, ValueError):
            continue
    return None


def _link_or_copy(source: Path, dest: Path) -> None:
    """A hard link (no space used, survives the old directory's deletion), else a copy."""
    try:
        os.link(source, dest)
        return
    except OSError:
        pass
    partial = dest.with_name(dest.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)
    os.replace(partial, dest)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _task(entry: Ant1Task, log: Path | None, now: float, queue_seq: int) -> Task:
    """The ANT 2 task of an entry: ended in history, or held in recovery."""
    handle = None if log is None else {"log": str(log), "ranks": [{"log": str(log)}]}
    created = entry.started_at or entry.saved_at or now
    task = Task(
        task_id=entry.task_id,
        command=entry.command,
        submitted=entry.command,
        n_gpus=entry.n_gpus,
        env=dict(entry.env),
        state=TaskState.HELD,
        priority=0,
        created_at=created,
        workdir=entry.workdir,
        queue_seq=queue_seq,
        tags=[IMPORT_TAG],
    )
    if entry.held:
        interrupted = entry.section == "ongoing"
        task.reason = (
            "interrupted when ANT 1.1 stopped (imported); restore it to run it again"
            if interrupted
            else "queued when ANT 1.1 stopped (imported); restore it to run it"
        )
        if interrupted and (log is not None or entry.started_at is not None):
            # Its interrupted run stays readable (`ant logs ID --attempt 1`); a restore runs
            # the next attempt.
            task.attempts = [
                Attempt(
                    1,
                    TaskState.LOST,
                    None,
                    entry.started_at,
                    entry.finished_at or entry.saved_at or now,
                    None if log is None else str(log),
                    "interrupted when ANT 1.1 stopped",
                    handle,
                )
            ]
        return task
    task.state, task.reason = _end_of(entry)
    task.exit_code = entry.exit_code
    task.started_at = entry.started_at
    task.finished_at = entry.finished_at or entry.started_at or entry.saved_at or now
    task.gpu_ids = list(entry.gpu_ids) if entry.started_at is not None else []
    task.log_path = None if log is None else str(log)
    task.handle = handle
    return task


def _end_of(entry: Ant1Task) -> tuple[TaskState, str]:
    if entry.section != "completed":  # hidden while queued or interrupted: it never ended there
        was = "queued" if entry.section == "queued" else "interrupted"
        return TaskState.KILLED, f"{was} in ANT 1.1 and removed from its recovery (imported)"
    if entry.terminated:
        return TaskState.KILLED, "killed in ANT 1.1 (imported)"
    if entry.exit_code is None:
        return TaskState.SUCCEEDED, "imported from ANT 1.1, which records no exit code"
    state = TaskState.SUCCEEDED if entry.exit_code == 0 else TaskState.FAILED
    return state, "imported from ANT 1.1"


def offer_on_first_start(engine: Engine) -> str | None:
    """On the first start of a new database, once: when the seed's RECOVERY_state_file exists,
    the one line that says how to bring it in (printed; also the answer, for tests)."""
    if engine.store.get_meta(OFFERED_KEY) is not None:
        return None
    engine.store.set_meta(OFFERED_KEY, str(engine.clock()))
    if len(engine.store.sessions()) > 1:  # not a new database: it had sessions before
        return None
    path = Path(engine.settings.RECOVERY_state_file).expanduser()
    if not path.is_absolute():
        path = Path(engine.launch_dir) / path
    try:
        if not path.is_file():
            return None
    except OSError:
        return None
    line = (
        f"found an ANT 1.1 recovery file ({path}); bring its tasks in with: "
        f"ant import-ant1 {_quoted(str(path))}"
    )
    engine._say(line)
    return line


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)
