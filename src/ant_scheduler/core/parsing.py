"""What a user typed -> TaskSpecs: single/multi mode, inline ant_* arguments, env, final command.

Follows the seed README: multi mode has one task per logical line (`\\` continues it, `#` lines
are comments); a command's leading `ant_n_gpus=`, `ant_n_nodes=`, `ant_task_id=`, `ant_envar=`,
`ant_timeout=`, `ant_notify=`, `ant_retries=`, `ant_retry_on=`, `ant_retry_backoff=`, `ant_after=`,
`ant_tags=`, `ant_gpu_mem=` words configure the task and are removed; `ant_wd` and the
`ant_conda_*` variables wrap the command.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from ant_scheduler.core import retries as retries_rules
from ant_scheduler.core.dependencies import PREV, check_after, format_after, parse_after
from ant_scheduler.core.durations import check_seconds, format_duration, parse_duration
from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.notification import check_webhook_url
from ant_scheduler.core.sizes import check_size, parse_size, short_size
from ant_scheduler.core.tags import check_tags, split_tags
from ant_scheduler.core.task import Dependency, TaskSpec
from ant_scheduler.core.templates import (
    expand_rand,
    expand_task_id,
    has_placeholder,
    validate_task_id,
)

MAX_GPUS = 1024
MAX_NODES = 64  # ant_n_nodes / n_nodes: a gang of at most this many nodes
DEFAULT_TASK_ID = "[uuid]"
# Leading `NAME=VALUE` words that configure the task and are cut out of the command.
_RETRY_ARGS = frozenset({"ant_retries", "ant_retry_on", "ant_retry_backoff"})
INLINE_ARGS = (
    frozenset(
        {
            "ant_n_gpus",
            "ant_n_nodes",
            "ant_task_id",
            "ant_envar",
            "ant_timeout",
            "ant_notify",
            "ant_after",
            "ant_tags",
            "ant_gpu_mem",
        }
    )
    | _RETRY_ARGS
)
# Kept in the task's env (so "copy command" round-trips) but never passed to the process.
SPECIAL_ENV_VARS = frozenset({"ant_wd", "ant_conda_env", "ant_conda_env_path", "ant_conda_path"})
# Act like the form's Task ID / GPU fields; consumed by the parser, never stored in the env.
_FIELD_ENV_VARS = (
    frozenset(
        {
            "ant_task_id",
            "ant_n_gpus",
            "ant_n_nodes",
            "ant_timeout",
            "ant_notify",
            "ant_after",
            "ant_tags",
            "ant_gpu_mem",
        }
    )
    | _RETRY_ARGS
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_GPU_COUNT = re.compile(r"[0-9]{1,6}")
# Blanks between leading words. A newline counts too, so a single-mode text may put its
# ant_* arguments on lines of their own; `\`-newline is a shell line continuation.
_BLANKS = " \t\n"

Mode = Literal["single", "multi"]


@dataclass(frozen=True)
class SubmitDefaults:
    """Form / API values for a submission (None = not given) and the config's default GPU count."""

    n_gpus: int | None = None
    task_id: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    default_n_gpus: int = 0
    n_nodes: int | None = None
    timeout: float | None = None  # seconds
    notify: str | None = None  # a webhook URL told when the task ends
    retries: int | None = None  # None: 0, or what the inline words say
    retry_on: list[str] | None = None  # None: failure only
    retry_backoff: float | None = None  # seconds; None: 30
    after: tuple[Dependency, ...] = ()  # may name PREV ("[prev]": the line before)
    tags: tuple[str, ...] = ()
    gpu_mem: int | str | None = None  # bytes, or a size such as "20G" (core/sizes.py)


@dataclass(frozen=True)
class _Assignment:
    name: str
    start: int  # where NAME begins in the text
    end: int  # just past VALUE
    value: str | dict[str, object]  # shell-unquoted text, or ant_envar's bare JSON object


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text):
        if text[pos] in _BLANKS:
            pos += 1
        elif text.startswith("\\\n", pos):
            pos += 2
        else:
            break
    return pos


def _at_word_end(text: str, pos: int) -> bool:
    return pos >= len(text) or text[pos] in _BLANKS


def _shell_word(text: str, pos: int) -> tuple[int, str]:
    """Read one shell word (bare, '…', "…" parts) from pos: (end index, unquoted value)."""
    out: list[str] = []
    i = pos
    while not _at_word_end(text, i):
        ch = text[i]
        if ch == "'":
            close = text.find("'", i + 1)
            if close < 0:
                raise TaskRejected("unterminated single quote")
            out.append(text[i + 1 : close])
            i = close + 1
        elif ch == '"':
            i += 1
            while True:
                if i >= len(text):
                    raise TaskRejected("unterminated double quote")
                c = text[i]
                if c == '"':
                    i += 1
                    break
                # Inside double quotes a backslash only escapes these, as in bash.
                if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$`\n':
                    if text[i + 1] != "\n":
                        out.append(text[i + 1])
                    i += 2
                    continue
                out.append(c)
                i += 1
        elif ch == "\\" and i + 1 < len(text):
            if text[i + 1] != "\n":  # backslash-newline joins the word, as in bash
                out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return i, "".join(out)


def _decode_json(text: str, pos: int = 0) -> tuple[object, int]:
    try:
        return json.JSONDecoder().raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise TaskRejected(f"ant_envar is not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError):  # an integer too long to convert, or absurd nesting
        raise TaskRejected("ant_envar is not usable JSON: a number too long or too deep") from None


def _leading_assignments(text: str) -> tuple[list[_Assignment], int]:
    """The `NAME=VALUE` words at the start of a command, and where the rest of it begins."""
    found: list[_Assignment] = []
    pos = _skip_blanks(text, 0)
    while (match := _ASSIGNMENT.match(text, pos)) is not None:
        name = match.group(1)
        value_start = match.end()
        value: str | dict[str, object]
        if name == "ant_envar" and text.startswith("{", value_start):
            # The seed accepts bare JSON with spaces in it, which is not a shell word.
            obj, end = _decode_json(text, value_start)
            if not (_at_word_end(text, end) or text.startswith("\\\n", end)):
                raise TaskRejected("ant_envar's JSON object must be followed by a space")
            if not isinstance(obj, dict):
                raise TaskRejected('ant_envar must be a JSON object like {"KEY": "value"}')
            value = obj
        else:
            end, value = _shell_word(text, value_start)
        found.append(_Assignment(name, pos, end, value))
        pos = _skip_blanks(text, end)
    return found, pos


def _without_inline_args(
    text: str, assignments: list[_Assignment], names: frozenset[str] = INLINE_ARGS
) -> str:
    # Cut the ant_* words out and keep every other character as typed, so spacing, quoting
    # and other assignments (`PORT=1 ant_n_gpus=2 python x.py`) survive exactly.
    pieces: list[str] = []
    pos = 0
    for a in assignments:
        if a.name in names:
            pieces.append(text[pos : a.start])
            pos = _skip_blanks(text, a.end)
    pieces.append(text[pos:])
    return "".join(pieces).strip(_BLANKS)


def strip_ant_args(submitted: str) -> str:
    """The user's command without its leading ant_n_gpus / ant_n_nodes / ant_task_id / ant_envar
    words.

    Never raises: text whose leading words cannot be read is returned stripped, as is.
    """
    return _split_submitted(submitted)[1]


def _split_submitted(submitted: str) -> tuple[str | None, str]:
    """(the id template of its own ant_task_id word, if it has a placeholder; the command
    without its ant_* words). Never raises."""
    if "ant_" not in submitted:  # none of those words: nothing to cut
        return None, submitted.strip(_BLANKS)
    if len(submitted) <= _REMEMBERED_CHARS:
        return _split_remembered(submitted)
    return _split_ant_args(submitted)


# Every task read through the API shows its copy command, so a page of the queue read again
# and again (the UI does after each change) asks the same texts: short ones are remembered.
_REMEMBERED_CHARS = 1024


@functools.lru_cache(maxsize=4096)
def _split_remembered(submitted: str) -> tuple[str | None, str]:
    return _split_ant_args(submitted)


def _split_ant_args(submitted: str) -> tuple[str | None, str]:
    try:
        assignments, _ = _leading_assignments(submitted)
    except TaskRejected:
        return None, submitted.strip(_BLANKS)
    template = None
    for a in assignments:
        if a.name == "ant_task_id" and isinstance(a.value, str):
            template = a.value  # the last one wins, as when it was parsed
    if template is not None and not has_placeholder(template):
        template = None
    return template, _without_inline_args(submitted, assignments)


def _gpu_count(value: str, where: str) -> int:
    text = value.strip()
    if not _GPU_COUNT.fullmatch(text):
        raise TaskRejected(
            f"{where} must be a whole number of GPUs from 0 to {MAX_GPUS}, got {text[:40]!r}"
        )
    n = int(text)
    if n > MAX_GPUS:
        raise TaskRejected(f"{where} must be at most {MAX_GPUS}, got {n}")
    return n


def _node_count(value: str, where: str) -> int:
    text = value.strip()
    if not _GPU_COUNT.fullmatch(text) or not 1 <= int(text) <= MAX_NODES:
        raise TaskRejected(
            f"{where} must be a whole number of nodes from 1 to {MAX_NODES}, got {text[:40]!r}"
        )
    return int(text)


def _check_env(env: Mapping[str, object], source: str) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise TaskRejected(
                f"{source}: variable name {str(key)[:60]!r} is not a valid shell identifier"
            )
        if not isinstance(value, str):
            raise TaskRejected(f"{source}: the value of {key} must be a string")
        if "\x00" in value:
            raise TaskRejected(f"{source}: the value of {key} contains a NUL character")
        checked[key] = value
    return checked


def _envar(value: str | dict[str, object]) -> dict[str, str]:
    """ant_envar's object with numbers turned into their JSON text, checked like any env."""
    if isinstance(value, str):
        obj, end = _decode_json(value.strip())
        if end != len(value.strip()):
            raise TaskRejected("ant_envar has text after its JSON object")
        if not isinstance(obj, dict):
            raise TaskRejected('ant_envar must be a JSON object like {"KEY": "value"}')
        value = obj
    env: dict[str, object] = {}
    for key, item in value.items():
        if isinstance(item, float) and not math.isfinite(item):
            raise TaskRejected(f"ant_envar: the value of {key[:60]!r} must be a finite number")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            env[key] = json.dumps(item)
        elif isinstance(item, str):
            env[key] = item
        else:
            raise TaskRejected(f"ant_envar: the value of {key[:60]!r} must be a string or a number")
    return _check_env(env, "ant_envar")


def _cd_target(path: str) -> str:
    # Quoted so spaces and quotes survive bash, except a leading `~` or `~/`, which users
    # expect to mean their home directory and which quoting would turn into a literal `~`.
    if path == "~":
        return "~"
    if path.startswith("~/"):
        rest = path[2:]
        return "~/" + shlex.quote(rest) if rest else "~/"
    return shlex.quote(path)


def _final_command(command: str, env: Mapping[str, str]) -> str:
    """Wrap the command in `conda run` and `cd` as the special variables ask.

    Leading `VAR=value` words stay in front of `conda run`, which passes its environment on:
    `conda run -n env PORT=1 python` would try to execute a program called `PORT=1`.
    """
    conda_env = env.get("ant_conda_env", "")
    conda_env_path = env.get("ant_conda_env_path", "")
    if conda_env and conda_env_path:
        raise TaskRejected("set ant_conda_env or ant_conda_env_path, not both")
    target = None
    if conda_env:
        target = f"-n {shlex.quote(conda_env)}"
    elif conda_env_path:
        target = f"-p {shlex.quote(conda_env_path)}"
    if target is not None:
        conda = shlex.quote(env.get("ant_conda_path") or "conda")
        _, rest = _leading_assignments(command)
        command = f"{command[:rest]}{conda} run --live-stream {target} {command[rest:]}"
    workdir = env.get("ant_wd", "")
    if workdir:
        dash = "-- " if workdir.startswith("-") else ""  # so cd cannot read it as an option
        command = f"cd {dash}{_cd_target(workdir)} && {command}"
    return command


def _parse_one(
    submitted: str,
    defaults: SubmitDefaults,
    base_env: dict[str, str],
    rng: random.Random,
    now: datetime,
) -> TaskSpec:
    assignments, _ = _leading_assignments(submitted)
    inline: dict[str, str | dict[str, object]] = {}
    for a in assignments:
        if a.name in INLINE_ARGS:
            inline[a.name] = a.value  # the last one wins, as the seed says
    command = _without_inline_args(submitted, assignments)
    if not command:
        raise TaskRejected("the command is empty")

    env = dict(base_env)
    if "ant_envar" in inline:
        env.update(_envar(inline["ant_envar"]))

    # Precedence: inline argument > ant_* variable > form / API field > config default.
    id_template = defaults.task_id or DEFAULT_TASK_ID
    if env.get("ant_task_id"):
        id_template = env["ant_task_id"]
    inline_id = inline.get("ant_task_id")
    if isinstance(inline_id, str):
        id_template = inline_id
    n_gpus = defaults.n_gpus if defaults.n_gpus is not None else defaults.default_n_gpus
    n_gpus = _layered(n_gpus, env, inline, "ant_n_gpus", _gpu_count)
    if isinstance(n_gpus, bool) or not 0 <= n_gpus <= MAX_GPUS:
        raise TaskRejected(f"the number of GPUs must be from 0 to {MAX_GPUS}, got {n_gpus!r}")
    n_nodes = 1 if defaults.n_nodes is None else defaults.n_nodes
    n_nodes = _layered(n_nodes, env, inline, "ant_n_nodes", _node_count)
    if isinstance(n_nodes, bool) or not 1 <= n_nodes <= MAX_NODES:
        raise TaskRejected(f"the number of nodes must be from 1 to {MAX_NODES}, got {n_nodes!r}")
    gpu_mem = _gpu_mem(defaults.gpu_mem)
    gpu_mem = _layered(gpu_mem, env, inline, "ant_gpu_mem", parse_size)
    if gpu_mem is not None:
        # A share of one GPU: the task is a 1-GPU task (0, say a CPU default, becomes 1).
        if n_gpus not in (0, 1) or n_nodes != 1:
            raise TaskRejected(
                "gpu_mem asks for a share of one GPU: leave the GPU count at 1 and the nodes "
                f"at 1, not {n_gpus} GPU(s) on {n_nodes} node(s)"
            )
        n_gpus = 1
    timeout = None if defaults.timeout is None else check_seconds(defaults.timeout)
    timeout = _layered(timeout, env, inline, "ant_timeout", parse_duration)
    notify = None if defaults.notify is None else check_webhook_url(defaults.notify)
    notify = _layered(notify, env, inline, "ant_notify", check_webhook_url)
    if isinstance(inline.get("ant_notify"), str):
        # The URL may hold a token: the submitted text, shown by the API, keeps no copy of it.
        submitted = _without_inline_args(submitted, assignments, frozenset({"ant_notify"}))
    retries, retry_on, retry_backoff = _retry_settings(defaults, env, inline)
    after = _layered(
        list(defaults.after), env, inline, "ant_after", lambda text, _: parse_after(text)
    )
    # Tags add up (field, then the variable, then the inline word): a sweep's --tag and a
    # line's own ant_tags= both apply.
    tags = check_tags(defaults.tags, "tags")
    if env.get("ant_tags", "").strip():
        tags = check_tags([*tags, *split_tags(env["ant_tags"])], "tags")
    inline_tags = inline.get("ant_tags")
    if isinstance(inline_tags, str):
        tags = check_tags([*tags, *split_tags(inline_tags)], "tags")
    for key in _FIELD_ENV_VARS:
        env.pop(key, None)

    # {rand} draws come before the id's so a copy command (literal id, same {rand} forms)
    # replayed with the same seed yields the same final command.
    final = _final_command(expand_rand(command, rng=rng), env)
    task_id = validate_task_id(expand_task_id(id_template, rng=rng, now=now))
    if any(d.task_id == task_id for d in after):
        raise TaskRejected(f"task {task_id!r} cannot wait for itself (ant_after): a cycle")
    return TaskSpec(
        task_id=task_id,
        command=final,
        submitted=submitted,
        n_gpus=n_gpus,
        env=env,
        priority=defaults.priority,
        workdir=env.get("ant_wd") or None,
        n_nodes=n_nodes,
        timeout=timeout,
        notify=notify,
        retries=retries,
        retry_on=retry_on,
        retry_backoff=retry_backoff,
        after=after,
        tags=tags,
        gpu_mem=gpu_mem,
    )


def _gpu_mem(value: int | str | None) -> int | None:
    """The form's / API's gpu_mem: bytes, or a size as written ("20G")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_size(value) if isinstance(value, str) else check_size(value)


_T = TypeVar("_T")


def _layered(
    value: _T,
    env: dict[str, str],
    inline: dict[str, str | dict[str, object]],
    name: str,
    parse: Callable[[str, str], _T],
) -> _T:
    """`value` (the field's, or the default) unless the `name` variable says otherwise (when not
    blank), unless the inline `name=` word does: parse(text, name) reads either."""
    if env.get(name, "").strip():
        value = parse(env[name], name)
    word = inline.get(name)
    if isinstance(word, str):
        value = parse(word, name)
    return value


def _retry_settings(
    defaults: SubmitDefaults, env: dict[str, str], inline: dict[str, str | dict[str, object]]
) -> tuple[int, list[str], float]:
    """retries, retry_on, retry_backoff: inline word > ant_* variable > field > default."""
    retries = 0 if defaults.retries is None else retries_rules.check_retries(defaults.retries)
    retry_on = list(retries_rules.DEFAULT_RETRY_ON)
    if defaults.retry_on is not None:
        retry_on = retries_rules.check_retry_on(defaults.retry_on)
    backoff = retries_rules.DEFAULT_BACKOFF
    if defaults.retry_backoff is not None:
        backoff = retries_rules.check_backoff(defaults.retry_backoff)
    for source in (env, inline):
        value = source.get("ant_retries")
        if isinstance(value, str) and value.strip():
            retries = retries_rules.parse_retries(value)
        value = source.get("ant_retry_on")
        if isinstance(value, str) and value.strip():
            retry_on = retries_rules.parse_retry_on(value)
        value = source.get("ant_retry_backoff")
        if isinstance(value, str) and value.strip():
            backoff = retries_rules.parse_backoff(value)
    return retries, retry_on, backoff


def _with_prev(spec: TaskSpec, prev: str | None, defaults: SubmitDefaults) -> TaskSpec:
    """`[prev]` in ant_after -> the id of the line before. The first line has none: an error
    in its own ant_after, nothing in the form's field (which chains every line to the last)."""
    if not any(d.task_id == PREV for d in spec.after):
        return spec
    if prev is None and spec.after == list(defaults.after):
        spec.after = [d for d in spec.after if d.task_id != PREV]
        return spec
    if prev is None:
        raise TaskRejected(f"ant_after: {PREV} names the line before, and there is none")
    spec.after = check_after(
        [Dependency(prev, d.condition) if d.task_id == PREV else d for d in spec.after]
    )
    if any(d.task_id == spec.task_id for d in spec.after):
        raise TaskRejected(f"task {spec.task_id!r} cannot wait for itself (ant_after): a cycle")
    return spec


def _ends_in_continuation(line: str) -> bool:
    # An odd run of trailing backslashes: `\\` at the end is an escaped backslash in bash.
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Multi-mode commands as (1-based line where each starts, text); see iter_logical_lines."""
    return list(iter_logical_lines(text))


def iter_logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Multi-mode commands as (1-based line where each starts, text); comments and blanks gone.

    A line ending in `\\` continues onto the next and the backslash-newline disappears, as in
    bash. A `#` line inside a continuation ends the command there, which is what bash does with
    the usual `cmd \\` (blank before the backslash): the joined `#` starts a comment that runs
    to the end of the line, and the next line is a new command.
    """
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(raw):
        start = i + 1
        line = raw[i]
        i += 1
        if not line.strip() or _is_comment(line):
            continue
        parts: list[str] = []
        while _ends_in_continuation(line):
            parts.append(line[:-1])
            line = ""
            if i >= len(raw) or _is_comment(raw[i]):
                break
            line = raw[i]
            i += 1
        parts.append(line)
        joined = "".join(parts).strip()
        if joined:
            yield start, joined


def parse_submission(
    text: str,
    *,
    mode: Mode,
    defaults: SubmitDefaults,
    rng: random.Random,
    now: datetime,
) -> list[TaskSpec]:
    """Parse a whole submission into tasks. Any error rejects all of it (naming the line)."""
    return list(iter_submission(text, mode=mode, defaults=defaults, rng=rng, now=now))


def iter_submission(
    text: str,
    *,
    mode: Mode,
    defaults: SubmitDefaults,
    rng: random.Random,
    now: datetime,
) -> Iterator[TaskSpec]:
    """parse_submission one task at a time, so a caller can pause between chunks of a large
    multi submission. The error of a bad line is raised when that line is reached."""
    if "\x00" in text:
        raise TaskRejected("the command contains a NUL character")
    base_env = _check_env(defaults.env, "environment")
    if mode == "single":
        stripped = text.strip()
        if not stripped:
            raise TaskRejected("the command is empty")
        yield _with_prev(_parse_one(stripped, defaults, base_env, rng, now), None, defaults)
        return
    if mode != "multi":
        raise TaskRejected(f"unknown mode {mode!r}; use 'single' or 'multi'")
    first_line: dict[str, int] = {}
    prev: str | None = None
    for line_no, line in iter_logical_lines(text):
        try:
            spec = _with_prev(_parse_one(line, defaults, base_env, rng, now), prev, defaults)
        except TaskRejected as exc:
            raise TaskRejected(f"line {line_no}: {exc.message}") from None
        if spec.task_id in first_line:
            raise TaskRejected(
                f"line {line_no}: task id {spec.task_id!r} is already used on line "
                f"{first_line[spec.task_id]}"
            )
        first_line[spec.task_id] = line_no
        prev = spec.task_id
        yield spec
    if not first_line:
        raise TaskRejected("no command found: every line is blank or a # comment")


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables a task's process gets: its env minus ANT's own special variables."""
    return {k: v for k, v in env.items() if k not in SPECIAL_ENV_VARS and k not in _FIELD_ENV_VARS}


def format_copy_command(
    n_gpus: int,
    env: Mapping[str, str],
    submitted: str,
    n_nodes: int = 1,
    timeout: float | None = None,
    retries: str = "",
    after: Sequence[Dependency] = (),
    tags: Sequence[str] = (),
    gpu_mem: int | None = None,
) -> str:
    """`[ant_task_id=…] ant_n_gpus=… [ant_n_nodes=…] [ant_gpu_mem=…] [ant_timeout=…]
    [ant_retries=… …] [ant_after=…] [ant_envar='{…}'] <command>`: submits the same task again as
    a new one. The id is kept only as the template the submitted text gave
    (`ant_task_id=exp-[phrase]`), drawn anew; a literal or generated id is left out (it is
    taken), so the new task gets the default id."""
    template, command = _split_submitted(submitted)
    parts = [f"ant_task_id={shlex.quote(template)}"] if template is not None else []
    parts.append(f"ant_n_gpus={n_gpus}")
    if n_nodes != 1:
        parts.append(f"ant_n_nodes={n_nodes}")
    if gpu_mem is not None:
        parts.append(f"ant_gpu_mem={short_size(gpu_mem)}")
    if timeout is not None:
        parts.append(f"ant_timeout={format_duration(timeout)}")
    if retries:
        parts.append(retries)  # retries.retry_words
    if after:
        parts.append(f"ant_after={format_after(after)}")
    if tags:
        parts.append(f"ant_tags={','.join(tags)}")  # tags need no quoting (core/tags.py)
    if env:
        parts.append(f"ant_envar={shlex.quote(json.dumps(dict(env), separators=(',', ':')))}")
    parts.append(command)
    return " ".join(parts)
