"""The commands of `ant`, registered on the group of cli/app.py: `serve` runs the scheduler, the
others talk to it over the API through ant_scheduler.client. Each is a function called with the
Context and its arguments by name (argparse's `dest`)."""

from __future__ import annotations

import re
import sys
import time

from ant_scheduler.cli.app import (
    EXIT_REJECTED,
    EXIT_TASK_FAILED,
    EXIT_TIMEOUT,
    EXIT_UNAUTHORIZED,
    EXIT_UNAVAILABLE,
    JSON,
    Context,
    cli,
    client_from,
    echo,
    emit_json,
    fail,
)
from ant_scheduler.cli.arguments import UsageError, arg
from ant_scheduler.cli.render import (
    age,
    console,
    gpu_table,
    printable,
    task_detail,
    task_table,
    text,
)
from ant_scheduler.client import Client, find_connection

# What `ant submit` loads is kept to what it needs (docs/performance.md): no typing, pathlib or
# dataclasses; those of the other commands are imported where they are used.
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, TextIO

    from ant_scheduler.cli.arguments import Arg


def _dump(answer: Any) -> Any:
    import dataclasses

    return dataclasses.asdict(answer)


def _parse_env(pairs: Iterable[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"-e expects KEY=VALUE, got {pair!r}", EXIT_REJECTED)
        env[key] = value
    return env


def _exit_code_of(task: Any) -> int:
    if task.state == "succeeded":
        return 0
    if task.exit_code is not None and 0 < task.exit_code < 256:
        return int(task.exit_code)
    return EXIT_TASK_FAILED


# shlex.quote's safe characters, and braces: `--port {rand int 4000 5000}` typed as four words
# must stay one template (a lone brace is no brace expansion for the task's shell either).
# What `ls --sort` takes: the API's sort keys (store.SORT_KEYS; written out, as the CLI does not
# load the store, and a test compares them).
SORT_KEYS = ("finished_at", "started_at", "task_id", "duration", "exit_code")
_SHELL_SAFE = re.compile(r"[\w@%+=:,./{}-]+", re.ASCII)
_ASSIGNMENT_WORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*=)(.*)", re.DOTALL)


def _quoted(word: str) -> str:
    """The word as the shell reads it back (shlex.quote's rule, braces aside; without shlex)."""
    if _SHELL_SAFE.fullmatch(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def shell_join(words: Sequence[str]) -> str:
    """Words as one command line that gives them back (P11): `python3 -c 'import os; print(1)'`.
    Leading NAME=VALUE words keep their name bare, so ant_task_id=..., ant_n_gpus=... and
    `VAR=1 python ...` are still read as such (ANT reads their values as shell words)."""
    out = []
    leading = True
    for word in words:
        match = _ASSIGNMENT_WORD.fullmatch(word) if leading else None
        if match is None:
            leading = False
            out.append(_quoted(word))
        else:
            out.append(match.group(1) + _quoted(match.group(2)) if match.group(2) else word)
    return " ".join(out)


def _open_multi(path: str) -> TextIO:
    """--multi FILE, opened before anything else is looked at: - is stdin; a file that cannot be
    opened is a usage error."""
    if path == "-":
        return sys.stdin
    try:
        return open(path)
    except OSError as exc:
        raise UsageError(f"argument --multi: {path!r}: {exc.strerror}") from None


def _read_multi(file: TextIO) -> str:
    try:
        return file.read()
    finally:
        if file is not sys.stdin:
            file.close()


def _follow(client: Any, task_id: str, offset: int | None, rank: int = 0) -> Any:
    """Print new log output until the task ends; return the final task."""
    for event in client.follow_log(task_id, offset=offset, rank=rank):
        if event.event == "output":
            sys.stdout.write(event.data["text"])
            sys.stdout.flush()
        elif event.event == "end":
            break
    return client.get_task(task_id)


# ---------------------------------------------------------------------------------- submit


def _duration(text: str) -> float:
    """--timeout's value in seconds; a usage error with the reason otherwise."""
    from argparse import ArgumentTypeError

    from ant_scheduler.core.durations import parse_duration
    from ant_scheduler.core.errors import TaskRejected

    try:
        return parse_duration(text)
    except TaskRejected as exc:
        raise ArgumentTypeError(
            exc.message.removeprefix("timeout: ")
        ) from None  # argparse names it


def _gpu_mem(text: str) -> int:
    """--gpu-mem's size in bytes (20G, 512M, 20GiB); a usage error with the rule otherwise."""
    from argparse import ArgumentTypeError

    from ant_scheduler.core.errors import TaskRejected
    from ant_scheduler.core.sizes import parse_size

    try:
        return parse_size(text)
    except TaskRejected as exc:
        raise ArgumentTypeError(exc.message.removeprefix("gpu_mem ")) from None


def _webhook_url(text: str) -> str:
    """--notify's URL, checked here as the server would (a usage error, one line, otherwise)."""
    from argparse import ArgumentTypeError

    from ant_scheduler.core.errors import TaskRejected
    from ant_scheduler.core.notification import check_webhook_url

    try:
        return check_webhook_url(text)
    except TaskRejected as exc:
        raise ArgumentTypeError(exc.message.removeprefix("notify: ")) from None


def _retry_rule(parse: Any) -> Any:
    """An argparse type from a core.retries parser: a usage error with its reason."""

    def convert(text: str) -> Any:
        from argparse import ArgumentTypeError

        from ant_scheduler.core.errors import TaskRejected

        try:
            return parse(text, "")
        except TaskRejected as exc:
            raise ArgumentTypeError(exc.message.lstrip(": ").removeprefix("must be ")) from None

    return convert


def _retries(text: str) -> int:
    from ant_scheduler.core.retries import parse_retries

    return int(_retry_rule(parse_retries)(text))


def _retry_on(text: str) -> list[str]:
    from ant_scheduler.core.retries import parse_retry_on

    return list(_retry_rule(parse_retry_on)(text))


def _retry_backoff(text: str) -> float:
    from ant_scheduler.core.retries import parse_backoff

    return float(_retry_rule(parse_backoff)(text))


def _after_item(text: str) -> str:
    """--after's value, `ID[:ok|any|fail]`; a usage error for another condition (the server
    checks the id: that it is valid and exists)."""
    from argparse import ArgumentTypeError

    task_id, colon, condition = text.strip().partition(":")
    if not task_id.strip() or (colon and condition.strip() not in ("ok", "any", "fail")):
        raise ArgumentTypeError(f"expected ID, ID:ok, ID:any or ID:fail, got {text!r}")
    return text.strip()


def _tag(text: str) -> str:
    """--tag's value, checked as the server checks it; a usage error with the rule otherwise."""
    from argparse import ArgumentTypeError

    from ant_scheduler.core.errors import TaskRejected
    from ant_scheduler.core.tags import check_tag

    try:
        return check_tag(text)
    except TaskRejected as exc:
        raise ArgumentTypeError(exc.message.removeprefix("tag ")) from None


@cli.command(
    arg(
        "-g",
        "--gpus",
        dest="n_gpus",
        type=int,
        metavar="INTEGER",
        help="Number of GPUs (default: server's).",
    ),
    arg(
        "--nodes",
        dest="n_nodes",
        type=int,
        metavar="INTEGER",
        help="Run on N nodes at once, n GPUs each (a gang; needs a cluster executor).",
    ),
    arg(
        "--gpu-mem",
        dest="gpu_mem",
        type=_gpu_mem,
        metavar="SIZE",
        help="GPU memory it needs (20G, 512M): it shares one GPU with other such tasks instead "
        "of taking whole GPUs.",
    ),
    arg(
        "--id",
        dest="task_id",
        metavar="TEXT",
        help="Task id or template, e.g. exp-[phrase] (default [uuid]).",
    ),
    arg(
        "--timeout",
        type=_duration,
        metavar="DURATION",
        help="Kill it after it has run this long (90s, 15m, 2h, 1h30m); it ends timed_out.",
    ),
    arg(
        "--notify",
        type=_webhook_url,
        metavar="URL",
        help="POST to this webhook (http/https) when it ends, besides the server's.",
    ),
    arg(
        "--retries",
        type=_retries,
        metavar="N",
        help="Run it again up to N times when an attempt ends as --retry-on says.",
    ),
    arg(
        "--retry-on",
        type=_retry_on,
        metavar="LIST",
        help="Which ends are retried: failure, lost, timeout, or all.  [default: failure]",
    ),
    arg(
        "--retry-backoff",
        type=_retry_backoff,
        metavar="DURATION",
        help="Wait before the first retry, doubling each retry up to 1h.  [default: 30s]",
    ),
    arg(
        "--after",
        action="append",
        type=_after_item,
        metavar="ID[:ok|any|fail]",
        help="Start only once task ID ended: ok (default) if it succeeded, any however it "
        "ended, fail if it did not succeed. Repeatable; with --multi, [prev] is the line before.",
    ),
    arg(
        "--tag",
        dest="tags",
        action="append",
        type=_tag,
        metavar="TAG",
        help="Tag the task(s) (repeatable); filter, act on and pause them by it.",
    ),
    arg(
        "-e", "--env", dest="env", action="append", metavar="KEY=VAL", help="Environment variable."
    ),
    arg(
        "-p",
        "--priority",
        type=int,
        default=0,
        metavar="INTEGER",
        help="Higher runs first.  [default: 0]",
    ),
    arg(
        "--multi",
        metavar="FILENAME",
        help="Read multi-queue text (one task per line) from FILE, or - for stdin.",
    ),
    arg("-f", "--follow", action="store_true", help="Stream the log until the task ends."),
    JSON,
    passthrough="command",  # every other word, and all after `--`: `ant submit -- python x.py -g 1`
)
def submit(
    ctx: Context,
    n_gpus: int | None,
    n_nodes: int | None,
    gpu_mem: int | None,
    task_id: str | None,
    timeout: float | None,
    notify: str | None,
    retries: int | None,
    retry_on: list[str] | None,
    retry_backoff: float | None,
    after: list[str] | None,
    tags: list[str] | None,
    env: list[str] | None,
    priority: int,
    multi: str | None,
    follow: bool,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Queue a command; print the new task id(s).

    Several words keep their quoting (they are shell-joined): ant submit -- python3 -c
    'import os; print(1)' runs as typed. One argument is the task's command line as it is, for
    shell operators or variables the task's shell should expand:
    ant submit -- 'cd /data && python train.py --gpus $CUDA_VISIBLE_DEVICES'.

    \b
    Examples:
      ant submit -g 2 --id exp-[phrase] -e WANDB_MODE=offline -- python train.py --lr 3e-4
      ant submit --multi jobs.txt
      printf 'python a.py\\npython b.py\\n' | ant submit --multi - -g 1
      ant submit -f -- python eval.py          # follow its output, exit with its exit code
      ant submit --retries 3 --retry-on failure,lost -- python train.py
      ant submit --notify https://hooks.slack.com/services/… -- python train.py
      ant submit --after prep-1 --after prep-2:any -- python train.py
      ant submit --tag sweep-lr --multi sweep.txt
      ant submit --gpu-mem 20G -- python small_eval.py   # shares a GPU with other such tasks
    """
    multi_file = _open_multi(multi) if multi is not None else None
    if multi_file is not None and command:
        fail("give either a command or --multi, not both", EXIT_REJECTED)
    if multi_file is not None:
        text, mode = _read_multi(multi_file), "multi"
    elif command:
        text, mode = (command[0] if len(command) == 1 else shell_join(command)), "single"
    else:
        fail("nothing to submit: give a command after -- or use --multi FILE", EXIT_REJECTED)
    with client_from(ctx) as client:
        # The tasks as JSON, as printed: no dataclasses of wire.py to build (client.submit_json).
        tasks = client.submit_json(
            text,
            mode=mode,
            n_gpus=n_gpus,
            n_nodes=n_nodes,
            task_id=task_id,
            env=_parse_env(env or ()),
            priority=priority,
            timeout=timeout,
            notify=notify,
            retries=retries,
            retry_on=retry_on,
            retry_backoff=retry_backoff,
            after=after,
            tags=tags,
            gpu_mem=gpu_mem,
        )
        if as_json:
            emit_json({"tasks": tasks})
        else:
            for task in tasks:
                echo(task["task_id"])
        if follow:
            if len(tasks) != 1:
                fail("--follow needs exactly one task", EXIT_REJECTED)
            final = _follow(client, tasks[0]["task_id"], offset=0)
            raise SystemExit(_exit_code_of(final))


# ---------------------------------------------------------------------------------- reading


@cli.command(
    arg(
        "--state",
        dest="states",
        metavar="TEXT",
        help="Comma-separated states: queued,held,running,succeeded,failed,…",
    ),
    arg("-q", "--query", dest="q", metavar="TEXT", help="Search task ids and commands."),
    arg(
        "--tag",
        dest="tags",
        action="append",
        type=_tag,
        metavar="TAG",
        help="Only tasks carrying this tag (repeated: all of them).",
    ),
    arg("--user", dest="owner", metavar="NAME", help="Only this user's tasks."),
    arg(
        "-n",
        "--limit",
        type=int,
        default=50,
        metavar="INTEGER",
        help="Rows to show.  [default: 50]",
    ),
    arg("--offset", type=int, default=0, metavar="INTEGER", help="Rows to skip."),
    arg(
        "--sort",
        choices=SORT_KEYS,
        metavar="FIELD",
        help=f"Sort by {', '.join(SORT_KEYS)} instead (newest/largest first).",
    ),
    arg("--asc", action="store_true", help="With --sort: oldest/smallest first."),
    JSON,
    name="ls",
)
def ls_(
    ctx: Context,
    states: str | None,
    q: str | None,
    tags: list[str] | None,
    owner: str | None,
    limit: int,
    offset: int,
    sort: str | None,
    asc: bool,
    as_json: bool,
) -> None:
    """List tasks: running, queued (in queue order), held/lost, then finished (newest first).

    \b
    Examples:
      ant ls
      ant ls --state queued,running
      ant ls -q resnet --json
      ant ls --state failed --sort duration
      ant ls --tag sweep-lr
      ant ls --user alice
    """
    state_list = [s.strip() for s in states.split(",")] if states else None
    with client_from(ctx) as client:
        tasks, total = client.list_tasks(
            states=state_list,
            q=q,
            limit=limit,
            offset=offset,
            sort=sort,
            order="asc" if asc else None,
            tags=tags,
            owner=owner,
        )
    if as_json:
        emit_json({"tasks": [_dump(t) for t in tasks], "total": total})
        return
    console().print(task_table(tasks, time.time()))
    if total > len(tasks) + offset:
        echo(f"… {total - len(tasks) - offset} more (use --limit/--offset)")


@cli.command(arg("task_id", metavar="TASK_ID"), JSON)
def show(ctx: Context, task_id: str, as_json: bool) -> None:
    """Show one task in full.

    \b
    Example:
      ant show exp-amber-falcon --json
    """
    with client_from(ctx) as client:
        task = client.get_task(task_id)
    if as_json:
        emit_json(_dump(task))
    else:
        console().print(task_detail(task, time.time()))


@cli.command(
    arg("task_id", metavar="TASK_ID"),
    arg("-n", "--lines", type=int, metavar="INTEGER", help="Last N lines (server caps it)."),
    arg("-f", "--follow", action="store_true", help="Keep printing until the task ends."),
    arg(
        "--rank",
        type=int,
        default=0,
        metavar="INTEGER",
        help="Which node's output of a task on several nodes.  [default: 0]",
    ),
    arg(
        "--attempt",
        type=int,
        metavar="K",
        help="The log of attempt K of a retried task (1 is the first).  [default: current]",
    ),
    JSON,
)
def logs(
    ctx: Context,
    task_id: str,
    lines: int | None,
    follow: bool,
    rank: int,
    attempt: int | None,
    as_json: bool,
) -> None:
    """Print a task's log. With -f, follow it and exit with the task's exit code.

    \b
    Examples:
      ant logs exp-1 -n 100
      ant logs -f exp-1
      ant logs --rank 1 gang-1     # the second node's output of a gang task
      ant logs --attempt 1 exp-1   # the first attempt's log of a retried task
    """
    if follow and attempt is not None:
        fail("--follow follows the current attempt: leave out --attempt", EXIT_REJECTED)
    with client_from(ctx) as client:
        log = client.log(task_id, lines, rank=rank, attempt=attempt)
        if as_json and not follow:
            emit_json(_dump(log))
            return
        sys.stdout.write(log.text)
        sys.stdout.flush()
        if follow:
            final = _follow(client, task_id, offset=log.size, rank=rank)
            raise SystemExit(_exit_code_of(final))


# ---------------------------------------------------------------------------------- actions

TASK_IDS = arg("task_ids", nargs="+", metavar="TASK_IDS")


def _each(ctx: Context, ids: Iterable[str], action: str, as_json: bool, **options: Any) -> None:
    with client_from(ctx) as client:
        results = []
        for task_id in ids:
            if action == "rm":
                client.delete_task(task_id)
                results.append({"task_id": task_id, "deleted": True})
                if not as_json:
                    echo(f"removed {task_id}")
                continue
            task = getattr(client, action)(task_id, **options)
            results.append(_dump(task))
            if not as_json:
                verb = {"kill": "killed", "restart": "queued", "promote": "promoted"}[action]
                shown = task.task_id if action != "restart" else f"{task_id} -> {task.task_id}"
                if action == "kill" and task.state == "running":
                    verb = "killing"
                echo(f"{verb} {shown}")
    if as_json:
        emit_json({"tasks": results})


# Ids, or --tag instead: the same action on every task carrying the tag (one request).
IDS_OR_TAG = (
    arg("task_ids", nargs="*", metavar="TASK_IDS"),
    arg("--tag", type=_tag, metavar="TAG", help="Every task carrying this tag instead."),
)
_DONE = {"kill": "killed", "restart": "restarted", "delete": "removed", "restore": "restored"}


def _each_or_tag(ctx: Context, ids: list[str], tag: str | None, action: str, as_json: bool) -> None:
    if tag is None and not ids:
        raise UsageError("give task ids or --tag TAG")
    if tag is not None and ids:
        raise UsageError("give either task ids or --tag, not both")
    if tag is None:
        _each(ctx, ids, "rm" if action == "delete" else action, as_json)
        return
    with client_from(ctx) as client:
        done = client.tag_action(tag, action)
    if as_json:
        emit_json(_dump(done))
        return
    n = done.count
    said = f"{_DONE[action]} {n} task{'' if n == 1 else 's'} tagged {tag}"
    if done.skipped:
        said += f" ({done.skipped} other{'' if done.skipped == 1 else 's'} left as they were)"
    echo(said)


@cli.command(*IDS_OR_TAG, JSON)
def kill(ctx: Context, task_ids: list[str], tag: str | None, as_json: bool) -> None:
    """Kill running tasks (SIGTERM to the whole process group, then SIGKILL) or cancel queued ones.

    \b
    Examples:
      ant kill exp-1 exp-2
      ant kill --tag sweep-lr      # every queued and running task tagged sweep-lr
    """
    _each_or_tag(ctx, task_ids, tag, "kill", as_json)


@cli.command(*IDS_OR_TAG, JSON)
def rm(ctx: Context, task_ids: list[str], tag: str | None, as_json: bool) -> None:
    """Remove queued, held or finished tasks (log files stay on disk).

    \b
    Examples:
      ant rm old-run-1 old-run-2
      ant rm --tag sweep-lr        # running ones are left
    """
    _each_or_tag(ctx, task_ids, tag, "delete", as_json)


@cli.command(
    *IDS_OR_TAG,
    arg(
        "--with-dependents",
        action="store_true",
        help="Also the tasks that wait for it (after): waiting ones wait for the copy, ended "
        "ones are restarted too, and theirs, waiting for the new runs.",
    ),
    JSON,
)
def restart(
    ctx: Context, task_ids: list[str], tag: str | None, with_dependents: bool, as_json: bool
) -> None:
    """Queue a copy of each task (same command, GPUs, env, tags, dependencies) as
    <id>-restart-N.

    \b
    Examples:
      ant restart exp-1
      ant restart prep --with-dependents     # and re-run what waited for it
      ant restart --tag sweep-lr   # each ended task of the tag not restarted yet
    """
    if with_dependents:
        if tag is not None or not task_ids:
            raise UsageError("--with-dependents restarts the tasks given by id, not a tag")
        _each(ctx, task_ids, "restart", as_json, with_dependents=True)
        return
    _each_or_tag(ctx, task_ids, tag, "restart", as_json)


@cli.command(*IDS_OR_TAG, JSON)
def restore(ctx: Context, task_ids: list[str], tag: str | None, as_json: bool) -> None:
    """Put held or lost tasks back in the queue under the same id (as `ant recover restore`).

    \b
    Examples:
      ant restore exp-1
      ant restore --tag sweep-lr   # every held and lost task of the tag
    """
    if tag is None and task_ids:
        with client_from(ctx) as client:
            _said_restored(client.restore(list(dict.fromkeys(task_ids))), as_json)
        return
    _each_or_tag(ctx, task_ids, tag, "restore", as_json)


@cli.command(arg("task_id", metavar="TASK_ID"), JSON)
def promote(ctx: Context, task_id: str, as_json: bool) -> None:
    """Move a queued task to the front of the queue.

    \b
    Example:
      ant promote urgent-eval
    """
    _each(ctx, (task_id,), "promote", as_json)


@cli.command(
    arg("task_id", metavar="TASK_ID"),
    arg("--before", metavar="ID", help="Put it just before this queued task."),
    arg("--after", metavar="ID", help="Put it just after this queued task."),
    arg("--top", action="store_true", help="Put it first in the queue."),
    arg("--bottom", action="store_true", help="Put it last in the queue."),
    JSON,
)
def move(
    ctx: Context,
    task_id: str,
    before: str | None,
    after: str | None,
    top: bool,
    bottom: bool,
    as_json: bool,
) -> None:
    """Move a queued task in the queue. It takes the priority of its new place (its
    neighbour's; the highest at the top, the lowest at the bottom), so the queue as listed is
    the order tasks start in.

    \b
    Examples:
      ant move eval-3 --top
      ant move eval-3 --before train-2
      ant move sweep-9 --bottom
    """
    places = [p for p in (before, after, "top" if top else None, "bottom" if bottom else None) if p]
    if len(places) != 1:
        raise UsageError("say where to move it: one of --before ID, --after ID, --top, --bottom")
    to = "top" if top else "bottom" if bottom else None
    with client_from(ctx) as client:
        task = client.move(task_id, before=before, after=after, to=to)
    if as_json:
        emit_json({"tasks": [_dump(task)]})
        return
    where = f"before {before}" if before else f"after {after}" if after else f"to the {to}"
    echo(f"moved {task.task_id} {where} (position {task.queue_position})")


@cli.command(arg("old_id", metavar="OLD"), arg("new_id", metavar="NEW"), JSON)
def rename(ctx: Context, old_id: str, new_id: str, as_json: bool) -> None:
    """Give a queued, held or finished task a new id; its log file follows.

    A running task is refused. The new id is checked as at submit and must be free.

    \b
    Example:
      ant rename run-1 lr-0.01-baseline
    """
    with client_from(ctx) as client:
        task = client.rename(old_id, new_id)
    if as_json:
        emit_json({"tasks": [_dump(task)]})
        return
    echo(f"renamed {old_id} -> {task.task_id}")


def _wait(
    client: Client, task_ids: list[str], deadline: float | None
) -> tuple[dict[str, Any], list[str]]:
    """Follow the event stream until every task has ended, or until the deadline (monotonic):
    (the ended tasks by id, the ids still pending)."""
    # Here, not at the top: commands that do not wait (`ant submit`) need not load core/task.py.
    import dataclasses

    from ant_scheduler.core.task import ENDED_STATES, TaskState
    from ant_scheduler.wire import TaskOut, parse

    done: dict[str, Any] = {}
    pending = list(task_ids)
    ended_values = {s.value for s in ENDED_STATES}

    known: dict[str, Any] = {}  # each task as last read, for its `task_changed` events
    fields = {f.name for f in dataclasses.fields(TaskOut)}

    def applied(task: Any, data: dict[str, Any]) -> Any:
        """The task with a `task_changed` applied (None when it cannot be)."""
        try:
            if task is None:
                return parse(TaskOut, data)  # a whole task (servers before P10)
            change = {k: v for k, v in data.items() if k in fields and k != "task_id"}
            change["state"] = TaskState(data["state"])
            for key, only in (("queue_position", "queued"), ("pending_reason", "queued")):
                if data["state"] != only:
                    change[key] = None
            if data["state"] != "running":
                change["gpu_mem_used"] = None
            return dataclasses.replace(task, **change)
        except (TypeError, ValueError, KeyError, AttributeError):
            return None

    def ended(task: Any) -> None:
        known[task.task_id] = task
        if task.task_id in pending and task.state in ENDED_STATES:
            done[task.task_id] = task
            pending.remove(task.task_id)

    def reread(ids: Iterable[str]) -> None:
        for task_id in [i for i in ids if i in pending]:
            ended(client.get_task(task_id))  # a task that is gone: exit 5

    reread(task_ids)  # those already ended need no stream
    last_id: str | None = None
    while pending and (deadline is None or time.monotonic() < deadline):
        stream = client.events(last_id, until=deadline)
        try:
            for event in stream:
                last_id = event.id or last_id
                data = event.data if isinstance(event.data, dict) else {}
                task_id = data.get("task_id")
                if event.event in ("hello", "resync"):
                    reread(list(pending))  # what changed before the stream began, or was missed
                elif event.event == "task_changed" and task_id in pending:
                    # It carries what changed (the whole task, from servers before P10): applied
                    # onto the task as last read; read again when that does not work.
                    state = data.get("state")
                    if not isinstance(state, str):
                        reread([task_id])  # not in a shape this version reads: ask for it
                    elif state in ended_values:
                        task = applied(known.get(task_id), data)
                        if task is None:
                            reread([task_id])
                        else:
                            ended(task)
                elif event.event == "task_removed" and task_id in pending:
                    reread([task_id])  # it is gone: get_task says so (exit 5)
                if not pending:
                    break
            else:  # the server ended the stream (or the deadline came): resume where it stopped
                if pending and (deadline is None or time.monotonic() < deadline):
                    time.sleep(0.2)
        finally:
            stream.close()
    return done, pending


@cli.command(
    TASK_IDS,
    arg(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help=f"Give up after SECONDS (exit {EXIT_TIMEOUT}).",
    ),
    JSON,
)
def wait(ctx: Context, task_ids: list[str], timeout: float | None, as_json: bool) -> None:
    """Wait until the tasks end; exit non-zero if any did not succeed.

    Follows the server's event stream, so it returns as soon as the last task ends. Exits 1 when
    a task did not succeed, and 11 when --timeout passed first.

    \b
    Examples:
      ant wait exp-1 exp-2 && echo all good
      ant wait --timeout 3600 exp-1 || echo "failed or still running"
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    ids = list(dict.fromkeys(task_ids))
    with client_from(ctx) as client:
        done, pending = _wait(client, ids, deadline)
    if pending:
        fail(f"timed out waiting for {', '.join(pending)}", EXIT_TIMEOUT)
    if as_json:
        emit_json({"tasks": [_dump(done[i]) for i in ids]})
    else:
        for task_id in ids:
            task = done[task_id]
            code = "" if task.exit_code is None else f" (exit {task.exit_code})"
            echo(f"{task_id}: {task.state}{code}")
    if any(t.state != "succeeded" for t in done.values()):
        raise SystemExit(EXIT_TASK_FAILED)


# ---------------------------------------------------------------------------------- gpus


@cli.command(JSON)
def gpus(ctx: Context, as_json: bool) -> None:
    """Show the GPUs; `ant gpus enable|disable IDX...` toggles them.

    \b
    Examples:
      ant gpus
      ant gpus disable 3
      ant gpus enable 3 --json
      ant gpus disable node-b:1       # on a cluster: GPU 1 of node-b
    """
    if ctx.invoked_subcommand is not None:
        return
    with client_from(ctx) as client:
        items = client.gpus()
    if as_json:
        emit_json({"gpus": [_dump(g) for g in items]})
    else:
        console().print(gpu_table(items))


def _gpu_id(text: str) -> int | str:
    """A GPU as the user names it: its index (3) or, on a cluster, its label (node-b:1)."""
    if text.isdigit():
        return int(text)
    node, _, local = text.rpartition(":")
    if not node or not local.isdigit():
        from argparse import ArgumentTypeError  # a usage error with this message

        raise ArgumentTypeError(f"expected an index (3) or node:index (node-b:1), got {text!r}")
    return text


def _toggle(ctx: Context, indices: list[int | str], enabled: bool, as_json: bool) -> None:
    with client_from(ctx) as client:
        changed = [client.set_gpu(i, enabled) for i in indices]
    if as_json:
        emit_json({"gpus": [_dump(g) for g in changed]})
    else:
        for gpu in changed:
            name = gpu.label if gpu.node else gpu.index
            echo(f"GPU {name}: {'enabled' if gpu.enabled else 'disabled'}")


INDICES = arg("indices", nargs="+", type=_gpu_id, metavar="INDICES")


@gpus.command(INDICES, JSON)
def enable(ctx: Context, indices: list[int | str], as_json: bool) -> None:
    """Let ANT schedule tasks on these GPUs again."""
    _toggle(ctx, indices, True, as_json)


@gpus.command(INDICES, JSON)
def disable(ctx: Context, indices: list[int | str], as_json: bool) -> None:
    """Stop scheduling on these GPUs (running tasks keep them until they end)."""
    _toggle(ctx, indices, False, as_json)


# ---------------------------------------------------------------------------------- pause


def _pause_said(state: Any) -> str:
    if not state.paused:
        return "queue resumed: queued tasks start as GPUs allow"
    since = time.strftime("%H:%M:%S", time.localtime(state.paused_at)) if state.paused_at else "?"
    return f"queue paused since {since}: running tasks go on, nothing new starts until `ant resume`"


def _tag_pause_said(state: Any, tag: str) -> str:
    at = next((p.paused_at for p in state.paused_tags if p.tag == tag), None)
    if at is None:
        return f"tag {tag} resumed: its queued tasks start as GPUs allow"
    since = time.strftime("%H:%M:%S", time.localtime(at))
    return (
        f"tag {tag} paused since {since}: its queued tasks wait until `ant resume --tag {tag}`; "
        "running ones go on"
    )


PAUSE_TAG = arg("--tag", type=_tag, metavar="TAG", help="Only the queued tasks carrying this tag.")


@cli.command(PAUSE_TAG, JSON)
def pause(ctx: Context, tag: str | None, as_json: bool) -> None:
    """Start no queued task until `ant resume`; running tasks go on (a drain). With --tag, only
    the tasks carrying that tag wait. Kept across restarts of ANT; `ant health` and the web UI
    show it.

    \b
    Examples:
      ant pause
      ant resume
      ant pause --tag sweep-lr
    """
    _set_paused(ctx, True, tag, as_json)


@cli.command(PAUSE_TAG, JSON)
def resume(ctx: Context, tag: str | None, as_json: bool) -> None:
    """Start queued tasks again after `ant pause` (with --tag: that tag's)."""
    _set_paused(ctx, False, tag, as_json)


def _set_paused(ctx: Context, paused: bool, tag: str | None, as_json: bool) -> None:
    with client_from(ctx) as client:
        state = client.set_paused(paused, tag)
    if as_json:
        emit_json(_dump(state))
    else:
        echo(_pause_said(state) if tag is None else _tag_pause_said(state, tag))


# ---------------------------------------------------------------------------------- users


def _limit(text: str) -> int | None:
    """A limit as the user writes it: a number, or `none` (no limit)."""
    if text.lower() in ("none", "null", "-"):
        return None
    if not text.isdigit():
        from argparse import ArgumentTypeError

        raise ArgumentTypeError(f"expected a number or 'none', got {text!r}")
    return int(text)


KEEP = object()  # `ant users set`: an option not given leaves the field as it is


def _limit_args(default: Any) -> tuple[Arg, Arg]:
    return (
        arg(
            "--max-gpus",
            type=_limit,
            default=default,
            metavar="N",
            help="GPUs its tasks may hold at once ('none': no limit).",
        ),
        arg(
            "--max-queued",
            type=_limit,
            default=default,
            metavar="N",
            help="Its tasks in the queue at most ('none': no limit).",
        ),
    )


def _user_line(user: dict[str, Any]) -> str:
    limits = [
        f"{name} {user[key]}"
        for name, key in (("max GPUs", "max_gpus"), ("max queued", "max_queued"))
        if user.get(key) is not None
    ]
    role = "admin" if user.get("admin") else "user"
    return f"{user['name']}  {role}" + (f"  ({', '.join(limits)})" if limits else "")


@cli.command(JSON)
def users(ctx: Context, as_json: bool) -> None:
    """Named users, each with a token of their own (an admin's commands): a user acts only on
    their own tasks, an admin on all. Without any, ANT has the one token of the state
    directory, the admin.

    \b
    Examples:
      ant users add alice --max-gpus 4
      ant users ls
      ant users set alice --max-queued 100
      ant users set alice --new-token
      ant users rm alice
    """
    if ctx.invoked_subcommand is not None:
        return
    _list_users(ctx, as_json)


def _list_users(ctx: Context, as_json: bool) -> None:
    with client_from(ctx) as client:
        data = client.users()
    if as_json:
        emit_json(data)
        return
    for user in data["users"]:
        echo(_user_line(user))


@users.command(JSON, name="ls")
def users_ls(ctx: Context, as_json: bool) -> None:
    """List the users and their limits."""
    _list_users(ctx, as_json)


@users.command(
    arg("name", metavar="NAME"),
    arg("--admin", action="store_true", help="May act on every task and manage users."),
    *_limit_args(None),
    JSON,
    name="add",
)
def users_add(
    ctx: Context,
    name: str,
    admin: bool,
    max_gpus: int | None,
    max_queued: int | None,
    as_json: bool,
) -> None:
    """Add a user and print its token (shown this once: ANT keeps only a hash of it). Give
    it to the user: `ANT_TOKEN=... ant ls`, or the web UI's sign-in."""
    with client_from(ctx) as client:
        data = client.add_user(name, admin=admin, max_gpus=max_gpus, max_queued=max_queued)
    if as_json:
        emit_json(data)
        return
    echo(data["token"])
    echo(f"user {_user_line(data)} added; the line above is its token", err=True)


@users.command(
    arg("name", metavar="NAME"),
    arg("--admin", dest="admin", action="store_const", const=True, help="Make it an admin."),
    arg("--no-admin", dest="admin", action="store_const", const=False, help="No longer admin."),
    *_limit_args(KEEP),
    arg("--new-token", action="store_true", help="Replace its token (printed; the old one stops)."),
    JSON,
    name="set",
)
def users_set(
    ctx: Context,
    name: str,
    admin: bool | None,
    max_gpus: Any,
    max_queued: Any,
    new_token: bool,
    as_json: bool,
) -> None:
    """Change a user's limits or role, or give it a new token.

    \b
    Examples:
      ant users set alice --max-gpus 2 --max-queued 50
      ant users set alice --max-gpus none
      ant users set alice --new-token
    """
    changes: dict[str, Any] = {}
    if max_gpus is not KEEP:
        changes["max_gpus"] = max_gpus
    if max_queued is not KEEP:
        changes["max_queued"] = max_queued
    if admin is not None:
        changes["admin"] = admin
    if new_token:
        changes["new_token"] = True
    if not changes:
        raise UsageError("nothing to change: give --max-gpus, --max-queued, --admin or --new-token")
    with client_from(ctx) as client:
        data = client.set_user(name, **changes)
    if as_json:
        emit_json(data)
        return
    if data.get("token"):
        echo(data["token"])
        echo(f"user {_user_line(data)}; the line above is its new token", err=True)
    else:
        echo(f"user {_user_line(data)}")


@users.command(arg("name", metavar="NAME"), JSON, name="rm")
def users_rm(ctx: Context, name: str, as_json: bool) -> None:
    """Remove a user: its token stops working at once; its tasks stay, under its name."""
    with client_from(ctx) as client:
        client.remove_user(name)
    if as_json:
        emit_json({"name": name, "deleted": True})
    else:
        echo(f"user {name} removed")


@cli.command(JSON)
def whoami(ctx: Context, as_json: bool) -> None:
    """The user your token signs in as."""
    with client_from(ctx) as client:
        data = client.me()
    if as_json:
        emit_json(data)
    else:
        echo(_user_line(data))


@cli.command(
    arg("--window", default="7d", metavar="DURATION", help="How far back.  [default: 7d]"),
    arg("--by", choices=("user", "tag"), default="user", help="Group by.  [default: user]"),
    JSON,
)
def usage(ctx: Context, window: str, by: str, as_json: bool) -> None:
    """GPU-hours (GPUs held x hours) per user or per tag over a window; running tasks count up
    to now.

    \b
    Examples:
      ant usage
      ant usage --window 24h --by tag
    """
    with client_from(ctx) as client:
        data = client.usage(window, by)
    if as_json:
        emit_json(data)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column(by.upper())
    table.add_column("GPU-HOURS", justify="right")
    for row in data["rows"]:
        key = row["key"] or ("(no tag)" if by == "tag" else "-")
        table.add_row(text(key), text(f"{row['gpu_hours']:.2f}"))
    console().print(table)
    echo(f"total {data['total']:.2f} GPU-hours over the last {window}")


# ---------------------------------------------------------------------------------- recovery


@cli.command(JSON)
def recover(ctx: Context, as_json: bool) -> None:
    """List held and lost tasks from earlier runs; restore or forget them.

    \b
    Examples:
      ant recover
      ant recover restore --all
      ant recover forget old-task
    """
    if ctx.invoked_subcommand is not None:
        return
    with client_from(ctx) as client:
        rec = client.recovery()
    if as_json:
        emit_json(_dump(rec))
        return
    now = time.time()
    for title, items in (
        ("Last session", rec.last_session),
        ("Earlier sessions", rec.earlier_sessions),
    ):
        echo(f"{title}: {len(items)} task(s)")
        if items:
            console().print(task_table(items, now))


@recover.command(
    arg("task_ids", nargs="*", metavar="TASK_IDS"),
    arg("--all", dest="restore_all", action="store_true", help="Restore every held and lost task."),
    arg("--tag", type=_tag, metavar="TAG", help="Restore the held and lost tasks of this tag."),
    JSON,
    name="restore",
)
def recover_restore(
    ctx: Context, task_ids: list[str], restore_all: bool, tag: str | None, as_json: bool
) -> None:
    """Put held/lost tasks back in the queue under the same id."""
    if tag is not None:
        if task_ids or restore_all:
            raise UsageError("give either task ids, --all or --tag")
        _each_or_tag(ctx, [], tag, "restore", as_json)
        return
    with client_from(ctx) as client:
        ids = list(task_ids)
        if restore_all:
            rec = client.recovery()
            me = client.me()  # a user restores their own; an admin every one
            ids += [
                t.task_id
                for t in rec.last_session + rec.earlier_sessions
                if me.get("admin", True) or t.owner == me.get("name")
            ]
        if not ids:
            fail("nothing to restore: give task ids or --all", EXIT_REJECTED)
        restored = client.restore(list(dict.fromkeys(ids)))
    _said_restored(restored, as_json)


def _said_restored(restored: list[Any], as_json: bool) -> None:
    if as_json:
        emit_json({"tasks": [_dump(t) for t in restored]})
    else:
        for task in restored:
            echo(f"restored {task.task_id}")


@recover.command(TASK_IDS, JSON, name="forget")
def recover_forget(ctx: Context, task_ids: list[str], as_json: bool) -> None:
    """Delete held/lost tasks from recovery history (log files stay)."""
    with client_from(ctx) as client:
        for task_id in task_ids:
            client.forget(task_id)
    if as_json:
        emit_json({"tasks": [{"task_id": i, "deleted": True} for i in task_ids]})
    else:
        for task_id in task_ids:
            echo(f"forgot {task_id}")


# ---------------------------------------------------------------------------------- health


@cli.command(JSON)
def health(ctx: Context, as_json: bool) -> None:
    """Check that the server answers and the token works.

    \b
    Example:
      ant health --json
    """
    with client_from(ctx) as client:
        status = client.health()
        info = client.server_info()
        gpu_list = client.gpus()
        detail = client.health_detail()
    data = {
        "status": status["status"],
        "version": status["version"],
        "url": client.url,
        "gpu_backend": info.gpu_backend,
        "gpus": len(gpu_list),
        "policy": info.policy,
        "session_id": info.session_id,
        "uptime_seconds": round(time.time() - info.started_at, 1),
        "executor": _dump(detail.executor),
        "nodes": [_dump(n) for n in detail.nodes],
        "paused": detail.paused,
        "paused_at": detail.paused_at,
        "notifications": _dump(detail.notifications),
        "paused_tags": [_dump(p) for p in detail.paused_tags],
    }
    if as_json:
        emit_json(data)
        return
    echo(
        f"ok: ANT {data['version']} at {data['url']}, {data['gpus']} GPU(s) "
        f"({data['gpu_backend']}), up {age(info.started_at, time.time())}"
    )
    if detail.paused:
        echo(_pause_said(detail))
    notes = detail.notifications
    if notes.sent or notes.failed or notes.dropped or notes.pending:
        echo(
            f"notifications: {notes.sent} sent, {notes.failed} failed, {notes.dropped} dropped, "
            f"{notes.pending} pending"
            + (f"; last error: {notes.last_error}" if notes.last_error else "")
        )
    for paused_tag in detail.paused_tags:
        echo(_tag_pause_said(detail, paused_tag.tag))
    for node in detail.nodes:
        state = "up" if node.alive else "gone"
        echo(f"node {printable(node.name)}: {state}, {node.usable} of {node.gpus} GPU(s) usable")
    if not detail.executor.available:
        # ANT answers, but starts nothing: say so, and exit non-zero for scripts.
        fail(
            f"the {detail.executor.name} executor cannot start tasks: {detail.executor.detail}",
            EXIT_UNAVAILABLE,
        )


@cli.command(
    arg(
        "--check",
        action="store_true",
        help="Also check that the server answers and takes the token.",
    ),
    JSON,
    name="login-url",
)
def login_url(ctx: Context, check: bool, as_json: bool) -> None:
    """Print the web UI's login URL, <url>/?token=<token>. It holds the token: keep it private.

    Read from the connection file `ant serve` writes (or --url/--token, ANT_URL/ANT_TOKEN), found
    as for every other command; the server is not contacted unless --check is given.

    \b
    Examples:
      ant login-url
      xdg-open "$(ant login-url)"
      ant login-url --check --json
    """
    from urllib.parse import quote

    conn = find_connection(ctx.url, ctx.token)
    if not conn.token:
        fail(f"no token for {conn.url}: pass --token or set ANT_TOKEN", EXIT_UNAUTHORIZED)
    base = conn.url.rstrip("/")
    url = f"{base}/?token={quote(conn.token, safe='')}"
    if check:
        with client_from(ctx) as client:
            client.server_info()  # needs the token: 3 when unreachable, 4 when refused
    if as_json:
        emit_json({"login_url": url, "url": base, "source": conn.source})
    else:
        echo(url)


@cli.command(JSON)
def doctor(ctx: Context, as_json: bool) -> None:
    """Check that the server's database, its memory and the live task processes agree.

    Exits 1 when a difference is found (each one is printed).

    \b
    Example:
      ant doctor && echo consistent
    """
    with client_from(ctx) as client:
        report = client.doctor()
    if as_json:
        emit_json(report)
    else:
        checked = report.get("checked", {})
        if report.get("ok"):
            echo(
                f"ok: store, memory and {checked.get('processes', 0)} live process(es) agree "
                f"({checked.get('running', 0)} running, {checked.get('queued', 0)} queued)"
            )
        for problem in report.get("problems", []):
            echo(f"problem: {printable(str(problem))}")
    if not report.get("ok"):
        raise SystemExit(EXIT_TASK_FAILED)


# ---------------------------------------------------------------------------------- serve


@cli.command(
    arg("--gpus", metavar="0,1,2,3", help="Use only these GPU indices."),
    arg("--fake-gpus", type=int, metavar="N", help="Simulate N GPUs (demos and tests)."),
    arg(
        "--state-dir",
        metavar="PATH",
        help="Where the database, token and connection file live. Overrides STATE_dir.",
    ),
    # Paths are read as text and made Path objects by `serve`: pathlib is no import for the others.
    arg("--config", metavar="PATH", help="Config file (default: config/default.json)."),
    arg("--host", metavar="TEXT", help="Address to bind (default: SERVER_host, 0.0.0.0)."),
    arg("--port", type=int, metavar="INTEGER", help="Port (default: frontend_port, 6060)."),
    arg("--no-tls", action="store_true", help="Serve plain HTTP (behind a TLS proxy)."),
    arg("--certfile", metavar="PATH", help="TLS certificate (PEM)."),
    arg("--keyfile", metavar="PATH", help="TLS private key (PEM)."),
    arg(
        "--fake-gpu-load",
        metavar="PATH",
        help="JSON file of simulated outside GPU load (default: <state dir>/fake_gpus.json).",
    ),
    arg(
        "--fake-topology",
        metavar="SPEC",
        help="How the fake GPUs are linked, e.g. 'nvlink=0-3,4-7; socket=0-3,4-7' "
        "(keys nvlink, switch, socket; docs/scheduling.md).",
    ),
    arg(
        "--executor",
        metavar="NAME",
        help="What runs tasks: local, or ray (a Ray cluster's nodes). Overrides RUNNER_executor.",
    ),
    arg(
        "--ray-address",
        metavar="ADDR",
        help="The Ray cluster: auto, HOST:6379 or ray://HOST:10001. Overrides RAY_address.",
    ),
)
def serve(
    ctx: Context,
    gpus: str | None,
    fake_gpus: int | None,
    state_dir: str | None,
    config: str | None,
    host: str | None,
    port: int | None,
    no_tls: bool,
    certfile: str | None,
    keyfile: str | None,
    fake_gpu_load: str | None,
    fake_topology: str | None,
    executor: str | None,
    ray_address: str | None,
) -> None:
    """Run the scheduler: API and web UI on one port.

    \b
    Examples:
      ant serve                       # all NVIDIA GPUs, https://0.0.0.0:6060
      ant serve --gpus 0,1            # only GPUs 0 and 1
      ant serve --fake-gpus 4 --host 127.0.0.1 --no-tls
      ant serve --executor ray --ray-address head:6379   # the GPUs of a Ray cluster
    """
    from pathlib import Path

    from ant_scheduler.core.errors import ConfigError
    from ant_scheduler.serve import ServeOptions, parse_gpu_list, run_server

    def path(text: str | None) -> Path | None:
        return None if text is None else Path(text)

    try:
        gpu_ids = parse_gpu_list(gpus) if gpus is not None else None
    except ConfigError as exc:
        raise UsageError(exc.message) from None
    opts = ServeOptions(
        config=path(config),
        gpus=gpu_ids,
        fake_gpus=fake_gpus,
        host=host,
        port=port,
        tls=not no_tls,
        certfile=path(certfile),
        keyfile=path(keyfile),
        fake_gpu_load=path(fake_gpu_load),
        fake_topology=fake_topology,
        executor=executor,
        ray_address=ray_address,
        state_dir=state_dir,
    )
    raise SystemExit(run_server(opts))
