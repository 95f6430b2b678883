"""The `ant` command group: its global options, exit codes and error handling.

The commands are registered on `cli` by cli/commands.py; cli/main.py loads this module, then the
commands, then runs the group. Nothing here imports the commands back.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from ant_scheduler import __version__
from ant_scheduler.cli.render import printable
from ant_scheduler.client import BadResponse, Client, ClientError, ConnectionFailed
from ant_scheduler.core import errors

F = TypeVar("F", bound=Callable[..., Any])

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
    errors.LaunchError: EXIT_OTHER,
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


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"ant: error: {printable(message)}", err=True)
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


def handle_errors(func: F) -> F:
    """Turn the server's errors into one line on stderr and a distinct exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ClientError as exc:
            code = exit_code_for(exc)
            if code == EXIT_INTERNAL and os.environ.get("ANT_DEBUG"):
                import traceback

                traceback.print_exception(exc, file=sys.stderr)  # an answer ant cannot read
            fail(exc.message, code)
        # Anything else (Ctrl+C, a closed pipe, a bug) is turned into one line by AntGroup.

    return wrapper  # type: ignore[return-value]


def _quiet_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class AntGroup(click.Group):
    """The root group: whatever a command raises that is not a usage error or an exit becomes one
    line and a distinct exit code (never a traceback); Ctrl+C is 130 everywhere."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise SystemExit(0) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            internal_error(exc)


def client_from(ctx: click.Context) -> Client:
    obj = ctx.find_root().obj or {}
    return Client.discover(obj.get("url"), obj.get("token"))


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


@click.group(
    cls=AntGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="ant")
@click.option("--url", envvar="ANT_URL", help="Server URL (env ANT_URL; default: connection file).")
@click.option("--token", envvar="ANT_TOKEN", help="API token (env ANT_TOKEN).")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None) -> None:
    """ANT: a GPU job scheduler for shared multi-GPU machines.

    \b
    Start the server with `ant serve`, then from the same directory:
      ant submit -g 2 -- python train.py --lr 3e-4
      ant ls
      ant logs -f <task id>
    """
    ctx.obj = {"url": url, "token": token}
