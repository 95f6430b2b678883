"""`ant`: the command-line entry point. `ant serve` runs the scheduler; the rest talk to it.

The CLI is five modules, each importing only those before it: cli/render.py (what is shown),
cli/arguments.py (how arguments are read, on argparse), cli/app.py (the group, its options, exit
codes and error handling), cli/commands.py (the commands, registered on the group) and
cli/operations.py (those that run ANT on a machine: `service install`, `backup`). `main()` loads
them in that order and runs the group.
"""

from __future__ import annotations

import gc
import sys


def main(argv: list[str] | None = None) -> None:
    """Run `ant` with `argv` (default: the process's arguments). Returns when the command
    succeeded; raises SystemExit with its exit code otherwise."""
    # Most `ant` commands live for a few milliseconds, most of them spent loading modules: no
    # cycle collection while they load, and what they loaded is then frozen (it lives as long as
    # the process anyway), so that neither later collections nor those at exit walk it again;
    # at the end, what the command loaded too. That saves ~10-15 ms a command.
    gc.disable()
    from ant_scheduler.cli.app import EXIT_INTERRUPTED, internal_error, run

    try:
        # Registering the commands on `cli`: the tasks' (commands), the machine's (operations),
        # the ecosystem's (ant mcp, ant import-ant1).
        from ant_scheduler.cli import commands, ecosystem, operations  # noqa: F401

        gc.freeze()
        gc.enable()
        run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # before a command runs (imports, argument parsing)
        internal_error(exc)
    finally:
        gc.freeze()
