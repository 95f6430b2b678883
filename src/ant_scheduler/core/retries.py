"""Retries: which ends of an attempt run the task again, how long it waits first, and what the
retried task looks like (queued again, its ended attempt kept in `attempts`).

An attempt that ended `failed`, `lost` or `timed_out` is retried when its condition (`failure`,
`lost`, `timeout`) is in the task's `retry_on` and retries are left (attempt <= retries). A
user's kill, a success, and an attempt that left processes running (they would hold its GPUs and
clash with the next run) are never retried. The wait before retry k (k = 1 for the second
attempt) is `retry_backoff * 2 ** (k - 1)`, at most MAX_BACKOFF_GROWTH (or the backoff itself,
if that is longer). Pure: the scheduler decides with it and writes what it returns.
"""

from __future__ import annotations

import math

from ant_scheduler.core.durations import format_duration, parse_duration
from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.task import Attempt, Task, TaskState

CONDITIONS = ("failure", "lost", "timeout")  # in the order they are shown
DEFAULT_RETRY_ON = ("failure",)
DEFAULT_BACKOFF = 30.0
MAX_RETRIES = 100
MAX_BACKOFF = 86400.0  # a first wait longer than a day is a typo
MAX_BACKOFF_GROWTH = 3600.0  # doubling stops here (unless the backoff itself is longer)
_CONDITION_OF = {
    TaskState.FAILED: "failure",
    TaskState.LOST: "lost",
    TaskState.TIMED_OUT: "timeout",
}
_ENDED_WITH = {"failure": "failed", "lost": "was lost", "timeout": "timed out"}


def check_retries(value: object, what: str = "retries") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise TaskRejected(f"{what} must be a whole number from 0 to {MAX_RETRIES}, got {value!r}")
    return value


def parse_retries(text: str, what: str = "ant_retries") -> int:
    cleaned = text.strip()
    if not cleaned.isdigit():
        raise TaskRejected(f"{what} must be a whole number from 0 to {MAX_RETRIES}, got {text!r}")
    return check_retries(int(cleaned), what)


def check_retry_on(items: list[str] | tuple[str, ...], what: str = "retry_on") -> list[str]:
    """The conditions, each known, once each, in CONDITIONS' order; at least one."""
    words = [w.strip().lower() for w in items if w.strip()]
    unknown = [w for w in words if w not in CONDITIONS]
    if unknown or not words:
        raise TaskRejected(
            f"{what}: expected one or more of {', '.join(CONDITIONS)}, got {','.join(items)!r}"
        )
    return [c for c in CONDITIONS if c in words]


def parse_retry_on(text: str, what: str = "ant_retry_on") -> list[str]:
    """`failure,lost,timeout` (commas or spaces) -> the list; `all` is every condition."""
    words = text.replace(",", " ").split()
    if [w.lower() for w in words] == ["all"]:
        return list(CONDITIONS)
    return check_retry_on(words, what)


def check_backoff(seconds: float, what: str = "retry_backoff") -> float:
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_BACKOFF:
        raise TaskRejected(f"{what} must be from 0 s to 1 day, got {seconds:g} s")
    return seconds


def parse_backoff(text: str, what: str = "ant_retry_backoff") -> float:
    """A duration as timeouts take it (`30s`, `2m`); `0` retries at once."""
    if text.strip() in ("0", "0s"):
        return 0.0
    return check_backoff(parse_duration(text, what), what)


def condition_of(state: TaskState) -> str | None:
    """The retry condition an attempt that ended in `state` meets (None: never retried)."""
    return _CONDITION_OF.get(state)


def wants_retry(done: Task, lingering: int = 0) -> bool:
    """Does this ended attempt run the task again? `done` is the task as the attempt ended."""
    condition = condition_of(done.state)
    return (
        condition is not None
        and condition in done.retry_on
        and done.attempt <= done.retries
        and lingering == 0
    )


def backoff_seconds(task: Task, retry: int) -> float:
    """The wait before retry number `retry` (1: the second attempt), doubling each time."""
    grown = task.retry_backoff * float(2 ** min(retry - 1, 40))
    return min(grown, max(task.retry_backoff, MAX_BACKOFF_GROWTH))


def ended_attempt(done: Task) -> Attempt:
    """The attempt `done` (the task as its run ended) as it is kept in `attempts`."""
    return Attempt(
        attempt=done.attempt,
        state=done.state,
        exit_code=done.exit_code,
        started_at=done.started_at,
        finished_at=done.finished_at,
        log_path=done.log_path,
        reason=done.reason,
        handle=dict(done.handle) if done.handle is not None else None,
    )


def record_end(done: Task) -> None:
    """Keep the ended attempt in `done.attempts` (its final state is the task's)."""
    done.attempts = [*done.attempts, ended_attempt(done)]


def retried(done: Task, now: float) -> Task:
    """The task queued again for its next attempt, waiting out its backoff: `done` is the task as
    the attempt ended (RUNNING moved to an ended state on a copy); the copy returned moves
    RUNNING -> QUEUED directly, so no end is ever recorded."""
    condition = condition_of(done.state) or "failure"
    wait = backoff_seconds(done, done.attempt)
    task = done.copy()
    task.state = TaskState.RUNNING  # the row's state: the retry is one transition from it
    task.move_to(TaskState.QUEUED)
    task.attempts = [*done.attempts, ended_attempt(done)]
    task.attempt = done.attempt + 1
    task.retry_at = now + wait
    task.started_at = task.finished_at = task.exit_code = None
    task.log_path = task.pid = task.handle = None
    task.gpu_ids = []
    task.nodes = []
    task.reason = retry_reason(done, condition, wait)
    return task


def retry_reason(done: Task, condition: str, wait: float) -> str:
    """ "retrying in 30s (attempt 2 of 4; attempt 1 failed with exit 1)"."""
    how = _ENDED_WITH[condition]
    if done.exit_code is not None and condition != "lost":
        how += f" with exit {done.exit_code}"
    return _reason(wait, done.attempt + 1, done.retries + 1, f"attempt {done.attempt} {how}")


def waiting_reason(task: Task, now: float) -> str:
    """Why a task waiting out its backoff is not started, with the time left now."""
    wait = 0.0 if task.retry_at is None else max(0.0, task.retry_at - now)
    last = task.attempts[-1] if task.attempts else None
    condition = condition_of(last.state) if last is not None else None
    if last is None or condition is None:
        return _reason(wait, task.attempt, task.retries + 1, "")
    how = _ENDED_WITH[condition]
    if last.exit_code is not None and condition != "lost":
        how += f" with exit {last.exit_code}"
    return _reason(wait, task.attempt, task.retries + 1, f"attempt {last.attempt} {how}")


def _reason(wait: float, attempt: int, total: int, why: str) -> str:
    when = f"in {format_duration(math.ceil(wait))}" if wait > 0 else "now"
    return f"retrying {when} (attempt {attempt} of {total}{'; ' + why if why else ''})"


def retry_words(task: Task) -> str:
    """How a task retries, as the inline words write it: `ant_retries=3 ant_retry_on=…`."""
    if task.retries == 0:
        return ""
    parts = [f"ant_retries={task.retries}"]
    if list(task.retry_on) != list(DEFAULT_RETRY_ON):
        parts.append(f"ant_retry_on={','.join(task.retry_on)}")
    if task.retry_backoff != DEFAULT_BACKOFF:
        parts.append(f"ant_retry_backoff={format_duration(task.retry_backoff)}")
    return " ".join(parts)
