"""Commands for running ANT on a machine, registered on the group of cli/app.py: `ant service
install` (a systemd unit, service.py) and `ant backup` (a consistent copy of the database)."""

from __future__ import annotations

import os
import sys

from ant_scheduler.cli.app import EXIT_OTHER, JSON, Context, cli, client_from, echo, emit_json, fail
from ant_scheduler.cli.arguments import Command, UsageError, arg

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pathlib import Path


# ---------------------------------------------------------------------------------- service


def _service(ctx: Context) -> None:
    """Run ANT as a systemd service."""


service = Command(_service, "service", [], needs_command=True)
cli.subcommands[service.name] = service


@service.command(
    arg(
        "--user",
        dest="user_unit",
        action="store_true",
        help="A unit of your own systemd user manager (~/.config/systemd/user/); "
        "else a system unit in /etc/systemd/system/ (needs root).",
    ),
    arg("--print", dest="only_print", action="store_true", help="Print the unit; write nothing."),
    arg(
        "--name", default="ant", metavar="NAME", help="The unit's name (default: ant, ant.service)."
    ),
    arg(
        "--workdir",
        metavar="PATH",
        help="Where tasks run unless they say otherwise (default: here).",
    ),
    arg(
        "--state-dir",
        metavar="PATH",
        help="The database, token and connection file "
        "(default: the config's, else <workdir>/ant_runner_logs).",
    ),
    arg(
        "--config",
        metavar="PATH",
        help="Config file for `ant serve` (default: <workdir>/config/default.json if there).",
    ),
    arg("--host", metavar="TEXT", help="Address to bind (default: SERVER_host, 0.0.0.0)."),
    arg("--port", type=int, metavar="INTEGER", help="Port (default: frontend_port, 6060)."),
    arg(
        "--no-tls",
        action="store_true",
        help="Serve plain HTTP (behind a TLS proxy, docs/deployment.md).",
    ),
    arg(
        "--run-as",
        metavar="USER",
        help="A system unit's user (default: the one who ran sudo, else you).",
    ),
)
def install(
    ctx: Context,
    user_unit: bool,
    only_print: bool,
    name: str,
    workdir: str | None,
    state_dir: str | None,
    config: str | None,
    host: str | None,
    port: int | None,
    no_tls: bool,
    run_as: str | None,
) -> None:
    """Write a systemd unit that runs `ant serve`, and say how to start it.

    The unit stops only ANT's own process (KillMode=process): tasks keep running through a
    restart of the unit, and ANT re-adopts them.

    \b
    Examples:
      ant service install --user                  # ~/.config/systemd/user/ant.service
      sudo ant service install --host 127.0.0.1 --no-tls   # behind a reverse proxy
      ant service install --print > ant.service
    """
    from pathlib import Path

    from ant_scheduler.core.errors import ConfigError
    from ant_scheduler.service import Unit, valid_name
    from ant_scheduler.settings import load_settings

    if not valid_name(name):
        raise UsageError(f"argument --name: {name!r} is not a unit name (letters, digits, _.@-)")
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"argument --port: {port} is not a port")
    if user_unit and run_as:
        raise UsageError("--run-as is for a system unit; a user unit runs as you")
    work = Path(workdir or os.getcwd()).expanduser().absolute()
    if not work.is_dir():
        fail(f"--workdir {work} is not a directory", EXIT_OTHER)
    config_path = Path(config).expanduser() if config else work / "config" / "default.json"
    if not config_path.is_absolute():
        config_path = Path.cwd() / config_path
    if config and not config_path.is_file():
        fail(f"--config {config_path} is not a file", EXIT_OTHER)
    chosen_config = config_path if config_path.is_file() else None
    if state_dir is None:
        try:  # the state directory `ant serve` would use in the workdir with that config
            settings = load_settings(chosen_config) if chosen_config else None
        except ConfigError as exc:
            fail(exc.message, EXIT_OTHER)
        state_dir = str(settings.state_dir) if settings else "ant_runner_logs"
    state = Path(state_dir).expanduser()
    state = state if state.is_absolute() else work / state
    unit = Unit(
        name=name,
        user_unit=user_unit,
        workdir=work,
        state_dir=Path(os.path.normpath(state)),
        program=(sys.executable, "-m", "ant_scheduler"),
        host=host,
        port=port,
        config=chosen_config,
        tls=not no_tls,
        run_as=None if user_unit else run_as or os.environ.get("SUDO_USER") or _me(),
    )
    text = unit.text()
    if only_print:
        sys.stdout.write(text)
        return
    path = unit.path(_config_home())
    _write_unit(path, text, user_unit)
    echo(f"wrote {path}")
    echo(f"  runs: ant serve in {unit.workdir}, state in {unit.state_dir}")
    echo("next:")
    for step in unit.next_steps():
        echo(f"  {step}")


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _config_home() -> Path:
    from pathlib import Path

    configured = os.environ.get("XDG_CONFIG_HOME")
    return Path(configured) if configured else Path.home() / ".config"


def _write_unit(path: Path, text: str, user_unit: bool) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except PermissionError:
        how = "" if user_unit else " (a system unit needs root: sudo, or --user)"
        fail(f"cannot write {path}: permission denied{how}; --print shows the unit", EXIT_OTHER)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_OTHER)


# ---------------------------------------------------------------------------------- backup


@cli.command(arg("file", metavar="FILE"), JSON)
def backup(ctx: Context, file: str, as_json: bool) -> None:
    """Copy the server's database (tasks, history, queue order, GPU toggles, charts) into FILE.

    The copy is consistent (SQLite's online backup API, made by the server while it runs and
    writes), checked once written, and readable by you only.

    \b
    Examples:
      ant backup ~/backups/ant-$(date +%F).db
    """
    from pathlib import Path

    from ant_scheduler.backup import describe

    target = Path(file).expanduser()
    if target.is_dir():
        raise UsageError(f"argument FILE: {file!r} is a directory")
    tmp = target.with_name(f".{target.name}.part")
    try:
        handle = os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    except OSError as exc:
        fail(f"cannot write {tmp}: {exc.strerror or exc}", EXIT_OTHER)
    try:
        with handle, client_from(ctx) as client:
            size = client.backup(handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            found = describe(tmp)
        except Exception as exc:  # not a database, or a damaged one: keep nothing
            fail(f"the copy is not a good database ({exc}); nothing written", EXIT_OTHER)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if as_json:
        emit_json({"file": str(target), "bytes": size, **found})
    else:
        echo(f"backed up {found['tasks']} tasks ({size / 1e6:.1f} MB) to {target}")
