"""`ant`: the command-line entry point. `ant serve` runs the scheduler; the rest talk to it.

The CLI is three modules, each importing only those before it: cli/render.py (what is shown),
cli/app.py (the group, its options, exit codes and error handling), cli/commands.py (the commands,
registered on the group). `main()` loads them in that order and runs the group.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from ant_scheduler.cli.app import EXIT_INTERRUPTED, cli, internal_error

    try:
        from ant_scheduler.cli import commands  # noqa: F401  (registers the commands on `cli`)

        cli.main(args=argv)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # before a command runs (imports, argument parsing)
        internal_error(exc)
