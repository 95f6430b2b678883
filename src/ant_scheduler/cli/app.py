"""The `ant` command group: its global options, exit codes and error handling.

The commands are registered on `cli` by cli/commands.py; cli/main.py loads this module, then the
commands, then calls `run`. Nothing here imports the commands back. How arguments are read is
cli/arguments.py's.
"""

from __future__ import annotations

import functools
import json
import os
import sys

from ant_scheduler import __version__
from ant_scheduler.cli.arguments import Command, UsageError, arg
from ant_scheduler.cli.render import printable
from ant_scheduler.client import BadResponse, Client, ClientError, ConnectionFailed
from ant_scheduler.core import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms a command)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

# Distinct exit codes so scripts and agents can tell failures apart (docs/cli.md).
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNAUTHORIZED = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_REJECTED = 7
EXIT_OTHER = 8
EXIT_INTERNAL = 9  # an unexpected error in ant itself, or an answer it cannot read
EXIT_UNAVAILABLE = 10  # the server cannot record changes right now (503); nothing was done
EXIT_TIMEOUT = 11  # `ant wait --timeout`: the tasks had not ended in time
EXIT_INTERRUPTED = 130

# The server's errors (core/errors.py) by class; their codes are what the API answers.
_EXIT_BY_ERROR: dict[type[errors.AntError] | type[ClientError], int] = {
    errors.WrongToken: EXIT_UNAUTHORIZED,
    errors.TaskNotFound: EXIT_NOT_FOUND,
    errors.GpuNotFound: EXIT_NOT_FOUND,
    errors.DuplicateTaskId: EXIT_CONFLICT,
    errors.InvalidTransition: EXIT_CONFLICT,
    errors.AntError: EXIT_REJECTED,  # the generic bad request
    errors.TaskRejected: EXIT_REJECTED,
    errors.InvalidQuery: EXIT_REJECTED,
    errors.PayloadTooLarge: EXIT_REJECTED,
    errors.StoreUnavailable: EXIT_UNAVAILABLE,  # StoreBusy too: it shares the code
    errors.Forbidden: EXIT_UNAUTHORIZED,  # another user's task, an admin's command
    errors.UserNotFound: EXIT_NOT_FOUND,
    errors.DuplicateUser: EXIT_CONFLICT,
    errors.QueueLimit: EXIT_REJECTED,
    errors.LaunchError: EXIT_OTHER,
    errors.RenameFailed: EXIT_OTHER,
    errors.ConfigError: EXIT_OTHER,
    # The client's own: no answer, or one it cannot read.
    ConnectionFailed: EXIT_UNREACHABLE,
    BadResponse: EXIT_INTERNAL,
}
EXIT_BY_CODE: dict[str, int] = {cls.code: exit_code for cls, exit_code in _EXIT_BY_ERROR.items()}
# Who may ask, and which paths exist, is also answered before any of the above can be raised, by
# the HTTP layer with codes of its own (a refused CSRF check, an unknown route): by status.
EXIT_BY_STATUS = {401: EXIT_UNAUTHORIZED, 403: EXIT_UNAUTHORIZED, 404: EXIT_NOT_FOUND}


def exit_code_for(exc: ClientError) -> int:
    """The exit code of a failed call: by the error's code, else by its HTTP status, else 8."""
    if exc.code in EXIT_BY_CODE:
        return EXIT_BY_CODE[exc.code]
    return EXIT_BY_STATUS.get(exc.status or 0, EXIT_OTHER)


# ---------------------------------------------------------------------------------- output


def echo(message: str = "", *, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed at once: a script reading `ant submit -f` sees the
    task id before the output that follows it, and a closed pipe is noticed while handled."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def emit_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, sort_keys=False))


def fail(message: str, code: int) -> NoReturn:
    echo(f"ant: error: {printable(message)}", err=True)
    raise SystemExit(code)


def internal_error(exc: BaseException) -> NoReturn:
    """An exception nobody expected: one line and EXIT_INTERNAL (ANT_DEBUG=1 adds the traceback)."""
    if os.environ.get("ANT_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else ""
    if len(detail) > 300:
        detail = detail[:297] + "..."
    what = type(exc).__name__ + (f": {detail}" if detail else "")
    fail(f"unexpected error ({what}); ANT_DEBUG=1 shows the traceback", EXIT_INTERNAL)


def _quiet_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def usage_error(exc: UsageError) -> NoReturn:
    """Exit 2: the usage (or the whole help), where help is, and one `ant: error:` line."""
    parser = exc.parser
    if parser is not None and exc.full_help:
        parser.print_help(sys.stderr)
        raise SystemExit(EXIT_USAGE)
    if parser is not None:
        parser.print_usage(sys.stderr)
        echo(f"Try '{parser.prog} -h' for help.", err=True)
    fail(exc.message, EXIT_USAGE)


class Context:
    """What a command knows besides its own arguments: the group's --url/--token, and, in a
    group's own function, the command that follows (None when there is none)."""

    url: str | None = None
    token: str | None = None
    invoked_subcommand: str | None = None


def client_from(ctx: Context) -> Client:
    return Client.discover(ctx.url, ctx.token)


def _call(
    ctx: Context, func: Callable[..., None], params: dict[str, Any], subcommand: str | None
) -> None:
    """Run a command's function: whatever it raises that is not an exit or a usage error becomes
    one line and a distinct exit code (never a traceback); Ctrl+C is 130 everywhere."""
    ctx.invoked_subcommand = subcommand
    try:
        func(ctx, **params)
        sys.stdout.flush()  # here, so that a closed pipe is handled below and not at exit
    except UsageError:
        raise  # shown with the usage of the command that raised it: run()
    except ClientError as exc:
        code = exit_code_for(exc)
        if code == EXIT_INTERNAL and os.environ.get("ANT_DEBUG"):
            import traceback

            traceback.print_exception(exc, file=sys.stderr)  # an answer ant cannot read
        fail(exc.message, code)
    except KeyboardInterrupt:
        echo(err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _quiet_stdout()
        raise SystemExit(0) from None
    except Exception as exc:
        internal_error(exc)


# ---------------------------------------------------------------------------------- the group

JSON = arg("--json", dest="as_json", action="store_true", help="Machine-readable output.")


def _group(ctx: Context, url: str | None, token: str | None) -> None:
    """ANT: a GPU job scheduler for shared multi-GPU machines.

    \b
    Start the server with `ant serve`, then from the same directory:
      ant submit -g 2 -- python train.py --lr 3e-4
      ant ls
      ant logs -f <task id>
    """
    # Given as options or not, ANT_URL/ANT_TOKEN are read by the client (find_connection).
    ctx.url, ctx.token = url, token


cli = Command(
    _group,
    "ant",
    [
        arg(
            "--version",
            action="version",
            version=f"ant, version {__version__}",
            help="Show the version and exit.",
        ),
        arg(
            "--url",
            metavar="TEXT",
            help="Server URL (env ANT_URL; default: connection file).",
        ),
        arg("--token", metavar="TEXT", help="API token (env ANT_TOKEN)."),
    ],
    needs_command=True,
)


def _prog() -> str:
    """How `ant` was called, for its usage lines (click's rule): `ant`, or, when it runs as
    `python -m ant_scheduler.cli`, that."""
    package = getattr(sys.modules.get("__main__"), "__package__", None)
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "ant"
    return f"python -m {package}" if package and name == "__main__.py" else name


def run(argv: Sequence[str]) -> None:
    """Run `ant` with these arguments (those after the program's name)."""
    ctx = Context()
    try:
        cli.run(list(argv), _prog(), functools.partial(_call, ctx))
    except UsageError as exc:
        usage_error(exc)
