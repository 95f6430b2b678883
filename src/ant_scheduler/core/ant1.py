"""Reading an ANT 1.1 recovery file (the seed's `RECOVERY_state_file`) into what ANT 2 stores.

Pure: text in, entries out. The file is JSON, version 2 `{"version": 2, "sessions": [{"session_id",
"saved_at", "queued", "ongoing", "completed"}, ...], "hidden": [...]}` (sessions newest first) or
version 1, one session at the top level. A task entry carries `task_id`, `command` (already
expanded), `n_gpus`, `envar`, `gpu_ids`, `log_file_name`, `terminated`, `_start_time`,
`_stop_time` and more; ANT 1.1 wrote what it had, so every key may be missing or of another type,
and is then read as absent. Only a file that is not JSON, or not a recovery file at all, is an
error (InvalidQuery: the API answers 400).

What becomes of an entry (docs/migration.md): a completed one ends in history (`terminated`:
killed; else succeeded, or failed when an exit code is recorded and not 0), an ongoing one
(interrupted when ANT 1.1 stopped) and a queued one are held in recovery, a hidden one (an entry
the user restored or removed in ANT 1.1's recovery dialog) goes to history as it was, or as
killed when it had not ended. The newest entry of an id wins; older ones are counted, not read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ant_scheduler.core.errors import AntError, InvalidQuery
from ant_scheduler.core.parsing import SPECIAL_ENV_VARS
from ant_scheduler.core.templates import validate_task_id

Section = Literal["completed", "ongoing", "queued"]
SECTIONS: tuple[Section, ...] = ("ongoing", "queued", "completed")
IMPORT_TAG = "ant1"  # every imported task carries it: `ant ls --tag ant1`, `ant restore --tag ant1`
# Keys ANT 1.1 may have used for an exit code (the documented format has none).
_EXIT_KEYS = ("exit_code", "return_code", "returncode", "_exit_code", "_return_code")
_ENV_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True)
class Ant1Task:
    """One entry of the file, read tolerantly."""

    task_id: str
    command: str
    section: Section  # where ANT 1.1 had it (for a hidden entry: where it was hidden from)
    hidden: bool
    n_gpus: int
    env: dict[str, str]
    gpu_ids: list[int]
    log_file_name: str | None
    terminated: bool
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    saved_at: float | None  # when its session was saved (None for hidden entries)

    @property
    def held(self) -> bool:
        """Goes to recovery (held), not history."""
        return not self.hidden and self.section != "completed"

    @property
    def workdir(self) -> str | None:
        wd = self.env.get("ant_wd")
        return wd if wd else None


@dataclass
class Ant1File:
    tasks: list[Ant1Task] = field(default_factory=list)  # each id once, its newest entry
    older_copies: int = 0  # entries of an id that a newer entry of the file already has
    without_id: int = 0  # entries without a task_id (or not even an object): skipped
    invalid: list[str] = field(default_factory=list)  # "id: why" for entries ANT cannot take
    version: int = 2


def read_ant1(text: str) -> Ant1File:
    """Parse the file's text; InvalidQuery when it is not an ANT 1.1 recovery file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidQuery(
            f"not an ANT 1.1 recovery file: invalid JSON at line {exc.lineno} column "
            f"{exc.colno} ({exc.msg})"
        ) from None
    except RecursionError:
        raise InvalidQuery("not an ANT 1.1 recovery file: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidQuery(
            f"not an ANT 1.1 recovery file: a JSON object was expected, not {_kind(data)}"
        )
    out = Ant1File()
    seen: set[str] = set()
    if isinstance(data.get("sessions"), list):
        out.version = 2
        sessions = [s for s in data["sessions"] if isinstance(s, dict)]
        # Newest first, as ANT 1.1 writes them; sorted again in case a hand edit moved one.
        sessions.sort(key=lambda s: _number(s.get("saved_at")) or 0.0, reverse=True)
    elif any(isinstance(data.get(key), list) for key in SECTIONS):
        out.version = 1
        sessions = [data]
    else:
        raise InvalidQuery(
            "not an ANT 1.1 recovery file: it has no `sessions` (version 2) and no `queued`, "
            "`ongoing` or `completed` list (version 1)"
        )
    for session in sessions:
        saved_at = _number(session.get("saved_at"))
        for section in SECTIONS:
            entries = session.get(section)
            for entry in entries if isinstance(entries, list) else ():
                _add(out, seen, entry, section, False, saved_at)
    hidden = data.get("hidden")
    for entry in hidden if isinstance(hidden, list) else ():
        where = entry.get("_hidden_from_section") if isinstance(entry, dict) else None
        _add(out, seen, entry, where if where in SECTIONS else "completed", True, None)
    return out


def _add(
    out: Ant1File,
    seen: set[str],
    entry: Any,
    section: Section,
    hidden: bool,
    saved_at: float | None,
) -> None:
    raw_id = entry.get("task_id") if isinstance(entry, dict) else None
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
        out.without_id += 1
        return
    task_id = str(raw_id)
    if task_id in seen:
        out.older_copies += 1
        return
    seen.add(task_id)
    assert isinstance(entry, dict)
    try:
        validate_task_id(task_id)
    except AntError as exc:
        out.invalid.append(f"{task_id[:140]}: {exc.message}")
        return
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        out.invalid.append(f"{task_id}: it has no command")
        return
    gpu_ids = _gpu_ids(entry.get("gpu_ids"))
    n_gpus = _integer(entry.get("n_gpus"))
    if n_gpus is None or n_gpus < 0:
        n_gpus = len(gpu_ids)
    log = entry.get("log_file_name")
    out.tasks.append(
        Ant1Task(
            task_id=task_id,
            command=command,
            section=section,
            hidden=hidden,
            n_gpus=n_gpus,
            env=_env(entry.get("envar")),
            gpu_ids=gpu_ids,
            log_file_name=log if isinstance(log, str) and log else None,
            terminated=entry.get("terminated") is True,
            started_at=_number(entry.get("_start_time")),
            finished_at=_number(entry.get("_stop_time")),
            exit_code=next(
                (c for c in map(_integer, (entry.get(k) for k in _EXIT_KEYS)) if c is not None),
                None,
            ),
            saved_at=saved_at,
        )
    )


def _env(value: Any) -> dict[str, str]:
    """The user's variables (ant_* specials included: ANT 2 reads ant_wd and the conda ones the
    same way); names that are not variable names are dropped, values made text."""
    if not isinstance(value, dict):
        return {}
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or key[0].isdigit():
            continue
        if not set(key) <= _ENV_NAME_CHARS or "\x00" in str(item):
            continue
        if key.startswith("ant_") and key not in SPECIAL_ENV_VARS:
            continue  # ant_task_id, ant_n_gpus, ...: already applied by ANT 1.1, never kept
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            env[key] = str(item)
    return env


def _gpu_ids(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    ids = [_integer(v) for v in value]
    return sorted({i for i in ids if i is not None and i >= 0})


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a " + type(value).__name__
