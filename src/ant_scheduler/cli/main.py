"""`ant`: the command-line entry point. `ant serve` runs the scheduler; the rest talk to it."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ant_scheduler import __version__

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
EXIT_INTERRUPTED = 130

_EXIT_BY_CODE = {
    "connection_failed": EXIT_UNREACHABLE,
    "unauthorized": EXIT_UNAUTHORIZED,
    "csrf_failed": EXIT_UNAUTHORIZED,
    "task_not_found": EXIT_NOT_FOUND,
    "gpu_not_found": EXIT_NOT_FOUND,
    "not_found": EXIT_NOT_FOUND,
    "duplicate_task_id": EXIT_CONFLICT,
    "invalid_state": EXIT_CONFLICT,
    "task_rejected": EXIT_REJECTED,
    "invalid_request": EXIT_REJECTED,
    "payload_too_large": EXIT_REJECTED,
    "bad_request": EXIT_REJECTED,
    "store_unavailable": EXIT_UNAVAILABLE,
    "bad_response": EXIT_INTERNAL,
}


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with control characters made visible (\\e, \\x07, ...): nothing the server or a
    task sends can move the cursor, recolour or retitle the user's terminal. Tabs stay, and
    newlines too when `newlines` is set."""

    def show(m: re.Match[str]) -> str:
        char = m.group()
        if newlines and char == "\n":
            return char
        return _NAMED.get(char, f"\\x{ord(char):02x}")

    return _CONTROL.sub(show, text)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"ant: error: {printable(message)}", err=True)
    raise SystemExit(code)


def internal_error(exc: BaseException) -> NoReturn:
    """An exception nobody expected: one line and EXIT_INTERNAL (ANT_DEBUG=1 adds the traceback)."""
    if os.environ.get("ANT_DEBUG"):
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
        from ant_scheduler.client import ClientError

        try:
            return func(*args, **kwargs)
        except ClientError as exc:
            fail(exc.message, _EXIT_BY_CODE.get(exc.code, EXIT_OTHER))
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


def client_from(ctx: click.Context) -> Any:
    from ant_scheduler.client import Client

    obj = ctx.find_root().obj or {}
    return Client.discover(obj.get("url"), obj.get("token"))


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


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


# ---------------------------------------------------------------------------------- serve


@cli.command()
@click.option("--gpus", "gpus", metavar="0,1,2,3", help="Use only these GPU indices.")
@click.option("--fake-gpus", type=int, metavar="N", help="Simulate N GPUs (demos and tests).")
@click.option(
    "--config", type=click.Path(path_type=Path), help="Config file (default: config/default.json)."
)
@click.option("--host", help="Address to bind (default: SERVER_host, 0.0.0.0).")
@click.option("--port", type=int, help="Port (default: frontend_port, 6060).")
@click.option("--no-tls", is_flag=True, help="Serve plain HTTP (behind a TLS proxy).")
@click.option("--certfile", type=click.Path(path_type=Path), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(path_type=Path), help="TLS private key (PEM).")
@click.option(
    "--fake-gpu-load",
    type=click.Path(path_type=Path),
    help="JSON file of simulated outside GPU load (default: <state dir>/fake_gpus.json).",
)
def serve(
    gpus: str | None,
    fake_gpus: int | None,
    config: Path | None,
    host: str | None,
    port: int | None,
    no_tls: bool,
    certfile: Path | None,
    keyfile: Path | None,
    fake_gpu_load: Path | None,
) -> None:
    """Run the scheduler: API and web UI on one port.

    \b
    Examples:
      ant serve                       # all NVIDIA GPUs, https://0.0.0.0:6060
      ant serve --gpus 0,1            # only GPUs 0 and 1
      ant serve --fake-gpus 4 --host 127.0.0.1 --no-tls
    """
    from ant_scheduler.core.errors import ConfigError
    from ant_scheduler.serve import ServeOptions, parse_gpu_list, run_server

    try:
        gpu_ids = parse_gpu_list(gpus) if gpus is not None else None
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    opts = ServeOptions(
        config=config,
        gpus=gpu_ids,
        fake_gpus=fake_gpus,
        host=host,
        port=port,
        tls=not no_tls,
        certfile=certfile,
        keyfile=keyfile,
        fake_gpu_load=fake_gpu_load,
    )
    raise SystemExit(run_server(opts))


def main() -> None:
    try:
        from ant_scheduler.cli import commands  # noqa: F401  (registers the client commands)

        cli()
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # before a command runs (imports, argument parsing)
        internal_error(exc)
