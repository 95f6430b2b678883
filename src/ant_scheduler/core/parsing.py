"""What a user typed -> TaskSpecs: single/multi mode, inline ant_* arguments, env, final command.

The rules follow the seed README: multi mode has one task per logical line (`\\` continues it,
`#` lines are comments); a command's leading `ant_n_gpus=`, `ant_task_id=` and `ant_envar=`
assignments configure the task and are removed; `ant_wd` and the `ant_conda_*` variables wrap the
command. Precedence for the id and GPU count: inline argument > `ant_*` env var > form/API value >
config default.
"""

from __future__ import annotations

import json
import random
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.task import TaskSpec
from ant_scheduler.core.templates import expand_rand, expand_task_id, validate_task_id

MAX_GPUS = 1024
INLINE_ARGS = frozenset({"ant_n_gpus", "ant_task_id", "ant_envar"})
# Kept in the task's env (so "copy command" round-trips) but never passed to the process.
SPECIAL_ENV_VARS = frozenset({"ant_wd", "ant_conda_env", "ant_conda_env_path", "ant_conda_path"})
_FIELD_ENV_VARS = frozenset({"ant_task_id", "ant_n_gpus"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")

Mode = Literal["single", "multi"]


@dataclass(frozen=True)
class SubmitDefaults:
    """Values from the form / API (None = not given) and the config default GPU count."""

    n_gpus: int | None = None
    task_id: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    default_n_gpus: int = 0


@dataclass(frozen=True)
class _Assignment:
    name: str
    raw: str  # exactly as typed, quotes included
    value: str | dict[str, object]  # unquoted text, or the decoded JSON object of ant_envar


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _shell_word_end(text: str, pos: int) -> tuple[int, str]:
    """Read one shell word from pos: returns (end index, unquoted value)."""
    out: list[str] = []
    i = pos
    while i < len(text) and text[i] not in " \t\n":
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
                if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$`\n':
                    if text[i + 1] != "\n":
                        out.append(text[i + 1])
                    i += 2
                    continue
                out.append(c)
                i += 1
        elif ch == "\\" and i + 1 < len(text):
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return i, "".join(out)


def _leading_assignments(command: str) -> tuple[list[_Assignment], int]:
    """The `NAME=VALUE` words at the start of a command, and where the rest begins."""
    found: list[_Assignment] = []
    pos = _skip_blanks(command, 0)
    while True:
        match = _ASSIGNMENT.match(command, pos)
        if match is None:
            return found, pos
        name = match.group(1)
        start_value = match.end()
        value: str | dict[str, object]
        if name == "ant_envar" and command.startswith("{", start_value):
            try:
                obj, end = json.JSONDecoder().raw_decode(command, start_value)
            except json.JSONDecodeError as exc:
                raise TaskRejected(f"ant_envar is not valid JSON: {exc.msg}") from None
            if end < len(command) and command[end] not in " \t\n":
                raise TaskRejected("ant_envar must be followed by a space")
            value = obj if isinstance(obj, dict) else {"": obj}
            if not isinstance(obj, dict):
                raise TaskRejected('ant_envar must be a JSON object like {"KEY": "value"}')
        else:
            end, value = _shell_word_end(command, start_value)
        found.append(_Assignment(name, command[pos:end], value))
        pos = _skip_blanks(command, end)


def strip_ant_args(submitted: str) -> str:
    """The user's command without its leading ant_n_gpus / ant_task_id / ant_envar words."""
    assignments, rest_start = _leading_assignments(submitted)
    kept = [a.raw for a in assignments if a.name not in INLINE_ARGS]
    return " ".join([*kept, submitted[rest_start:]]).strip()


def _parse_n_gpus(value: object, where: str) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"\d+", text):
        raise TaskRejected(f"{where} must be a whole number of GPUs (0-{MAX_GPUS}), got {text!r}")
    n = int(text)
    if n > MAX_GPUS:
        raise TaskRejected(f"{where} must be at most {MAX_GPUS}, got {n}")
    return n


def _envar_object(obj: dict[str, object]) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise TaskRejected(f"ant_envar value of {key!r} must be a string or a number")
        env[key] = value if isinstance(value, str) else json.dumps(value)
    return env


def _check_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise TaskRejected(f"environment variable name {key!r} is not a valid shell identifier")
        if "\x00" in value:
            raise TaskRejected(f"environment variable {key} contains a NUL character")


def _final_command(command: str, env: Mapping[str, str]) -> str:
    """Wrap in `conda run` and `cd` as the special variables ask, quoting every path.

    Leading `VAR=value` words stay in front of `conda run` (which passes its environment on),
    since `conda run -n env PORT=1 python` would try to execute a program called `PORT=1`.
    """
    conda = shlex.quote(env.get("ant_conda_path") or "conda")
    if env.get("ant_conda_env") and env.get("ant_conda_env_path"):
        raise TaskRejected("give ant_conda_env or ant_conda_env_path, not both")
    target = None
    if env.get("ant_conda_env"):
        target = f"-n {shlex.quote(env['ant_conda_env'])}"
    elif env.get("ant_conda_env_path"):
        target = f"-p {shlex.quote(env['ant_conda_env_path'])}"
    if target is not None:
        assignments, rest_start = _leading_assignments(command)
        prefix = "".join(a.raw + " " for a in assignments)
        command = f"{prefix}{conda} run --live-stream {target} {command[rest_start:]}"
    if env.get("ant_wd"):
        command = f"cd {shlex.quote(env['ant_wd'])} && {command}"
    return command


def _parse_one(
    submitted: str, defaults: SubmitDefaults, rng: random.Random, now: datetime
) -> TaskSpec:
    assignments, _ = _leading_assignments(submitted)
    inline: dict[str, str | dict[str, object]] = {}
    for a in assignments:
        if a.name in INLINE_ARGS:
            inline[a.name] = a.value  # the last one wins
    command = strip_ant_args(submitted)
    if not command:
        raise TaskRejected("the command is empty")

    env = dict(defaults.env)
    if "ant_envar" in inline:
        envar = inline["ant_envar"]
        if isinstance(envar, str):
            try:
                decoded = json.loads(envar)
            except json.JSONDecodeError as exc:
                raise TaskRejected(f"ant_envar is not valid JSON: {exc.msg}") from None
            if not isinstance(decoded, dict):
                raise TaskRejected('ant_envar must be a JSON object like {"KEY": "value"}')
            envar = decoded
        env.update(_envar_object(envar))
    _check_env(env)

    id_template: str = defaults.task_id or "[uuid]"
    if env.get("ant_task_id"):
        id_template = env["ant_task_id"]
    if isinstance(inline.get("ant_task_id"), str):
        id_template = str(inline["ant_task_id"])
    n_gpus = defaults.n_gpus if defaults.n_gpus is not None else defaults.default_n_gpus
    if env.get("ant_n_gpus", "").strip():
        n_gpus = _parse_n_gpus(env["ant_n_gpus"], "ant_n_gpus")
    if "ant_n_gpus" in inline:
        n_gpus = _parse_n_gpus(inline["ant_n_gpus"], "ant_n_gpus")
    if not 0 <= n_gpus <= MAX_GPUS:
        raise TaskRejected(f"number of GPUs must be between 0 and {MAX_GPUS}, got {n_gpus}")
    for key in _FIELD_ENV_VARS:
        env.pop(key, None)

    task_id = validate_task_id(expand_task_id(id_template, rng=rng, now=now))
    final = _final_command(expand_rand(command, rng=rng), env)
    return TaskSpec(
        task_id=task_id,
        command=final,
        submitted=submitted,
        n_gpus=n_gpus,
        env=env,
        priority=defaults.priority,
        workdir=env.get("ant_wd") or None,
    )


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Multi-mode lines as (1-based line number where it starts, text), comments and blanks gone.

    A `\\` at the end of a line joins the next line, as in bash. A comment line ends a
    continuation (bash would treat it as a comment to the end of the command).
    """
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(raw):
        line = raw[i]
        start = i + 1
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1]
            if i >= len(raw) or raw[i].lstrip().startswith("#"):
                break
            line += raw[i]
            i += 1
        if line.strip():
            out.append((start, line.strip()))
    return out


def parse_submission(
    text: str,
    *,
    mode: Mode,
    defaults: SubmitDefaults,
    rng: random.Random,
    now: datetime,
) -> list[TaskSpec]:
    """Parse a whole submission. Any error rejects all of it, naming the line in multi mode."""
    if "\x00" in text:
        raise TaskRejected("the command contains a NUL character")
    if mode == "single":
        stripped = text.strip()
        if not stripped:
            raise TaskRejected("the command is empty")
        return [_parse_one(stripped, defaults, rng, now)]
    if mode != "multi":
        raise TaskRejected(f"unknown mode {mode!r}; use 'single' or 'multi'")
    specs: list[TaskSpec] = []
    first_line: dict[str, int] = {}
    for line_no, line in logical_lines(text):
        try:
            spec = _parse_one(line, defaults, rng, now)
        except TaskRejected as exc:
            raise TaskRejected(f"line {line_no}: {exc.message}") from None
        if spec.task_id in first_line:
            raise TaskRejected(
                f"line {line_no}: task id {spec.task_id!r} is already used on line "
                f"{first_line[spec.task_id]}"
            )
        first_line[spec.task_id] = line_no
        specs.append(spec)
    if not specs:
        raise TaskRejected("no command found (every line is blank or a # comment)")
    return specs


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables a task's process gets: its env minus ANT's special variables."""
    return {k: v for k, v in env.items() if k not in SPECIAL_ENV_VARS and k not in _FIELD_ENV_VARS}


def format_copy_command(task_id: str, n_gpus: int, env: Mapping[str, str], submitted: str) -> str:
    """The "copy command" form, which parses back into the same task (id, GPUs, env, command)."""
    parts = [f"ant_task_id={shlex.quote(task_id)}", f"ant_n_gpus={n_gpus}"]
    if env:
        parts.append(f"ant_envar={shlex.quote(json.dumps(dict(env), separators=(',', ':')))}")
    parts.append(strip_ant_args(submitted))
    return " ".join(parts)
