"""How `ant` reads its arguments: the standard library's argparse (~1.6 ms to import after the
client, where click cost ~22 ms of a 74 ms `ant submit`), read the way click read them before,
and shown likewise.

- A group (`ant` itself, `ant gpus`, `ant recover`) reads its own options up to its command's
  name; what follows is the command's (`ant --url U ls -n 5`).
- A command's options may come anywhere among its arguments (`ant kill a --json b`).
- `ant submit` keeps every word that is not one of its options, unknown options included, in
  order, as the task's command; `--` ends its options (click's ignore_unknown_options).
- No abbreviations (`--js` is not `--json`); -h/--help everywhere; help as click showed it.

A command is declared with its arguments (argparse's add_argument settings, see `arg`); only the
parser of the command being run is built. Nothing here knows the commands or the server.
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms a command)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, NoReturn

    # An argument of a command: argparse's add_argument(*names, **settings), kept until the
    # command runs. Positional arguments need a metavar (their name in the usage line).
    Arg = tuple[tuple[str, ...], dict[str, Any]]

    # How a command's function is called, by whoever runs the command: with its arguments by name
    # (argparse's `dest`) and, for a group's own function, the name of the command that follows.
    Call = Callable[[Callable[..., None], dict[str, Any], str | None], None]


def arg(*names: str, **settings: Any) -> Arg:
    return names, settings


HELP = arg("-h", "--help", action="help", help="Show this message and exit.")


class UsageError(Exception):
    """Arguments that cannot be used: exit 2 with the usage of `parser` (when known: a command
    raising it leaves it to whoever runs the command), or its whole help if `full_help`."""

    def __init__(
        self, message: str, parser: Parser | None = None, *, full_help: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.parser = parser
        self.full_help = full_help


# ---------------------------------------------------------------------------------- help


def _help_width() -> int:
    """The terminal's width less 2, at most 98 (click's rule), as shutil.get_terminal_size()
    finds it: argparse makes a formatter for every argument it adds, and importing shutil (which
    imports bz2 and lzma) would cost every command ~3 ms."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return min(columns or 80, 100) - 2


class Formatter(argparse.HelpFormatter):
    """Help as click showed it: `Usage:`, `-g, --gpus INTEGER`, the docstring indented, its
    paragraphs rewrapped except those after a `\\b` line (examples), kept as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=_help_width())

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return ", ".join(action.option_strings) + " " + self._format_args(action, action.dest)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(_fill(paragraph, width, indent) for paragraph in text.split("\n\n"))


def _fill(paragraph: str, width: int, indent: str) -> str:
    """A paragraph rewrapped to `width` at its own indentation; one that begins with a `\\b`
    line as it is, without that line."""
    import textwrap

    first, _, rest = paragraph.partition("\n")
    if first.strip() == "\b":
        return textwrap.indent(rest, indent)
    margin = indent + paragraph[: len(paragraph) - len(paragraph.lstrip(" "))]
    text = " ".join(paragraph.split())
    return textwrap.fill(text, width, initial_indent=margin, subsequent_indent=margin)


def _help_text(doc: str | None) -> str:
    """A docstring, dedented (as inspect.cleandoc: its lines after the first by their common
    indentation, which Python 3.13 removes itself)."""
    first, _, rest = (doc or "").strip().partition("\n")
    lines = rest.splitlines()
    margin = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join([first, *(line[margin:].rstrip() for line in lines)]).strip()


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def _summary(doc: str | None) -> str:
    """A command's first sentence, for the list of commands."""
    paragraph = " ".join(_help_text(doc).split("\n\n")[0].split())
    sentence, stop, _ = paragraph.partition(". ")
    return sentence + "." if stop else paragraph


def _commands_help(commands: dict[str, str | None]) -> str:
    if not commands:
        return ""
    import textwrap

    name_width = max(map(len, commands))
    lines = ["", "Commands:"]
    for name in sorted(commands):
        line = f"  {name:<{name_width}}  {_summary(commands[name])}"
        lines.append(textwrap.fill(line, _help_width(), subsequent_indent=" " * (name_width + 4)))
    return "\n".join(lines) + "\n"


def _usage_word(metavar: str, nargs: str | None) -> str:
    """An argument in a usage line, as click wrote it: `TASK_IDS...`, `[TASK_IDS]...`."""
    return {"+": f"{metavar}...", "*": f"[{metavar}]...", "?": f"[{metavar}]"}.get(
        nargs or "", metavar
    )


class Parser(argparse.ArgumentParser):
    # A group's commands by name, with their docstrings: listed at the end of its help.
    commands: dict[str, str | None]

    def format_help(self) -> str:
        return super().format_help() + _commands_help(getattr(self, "commands", {}))

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


# ---------------------------------------------------------------------------------- reading


def _group_command_index(args: Sequence[str], valued: set[str]) -> int | None:
    """Where a group's command is in `args`: the first word that is neither an option of the
    group nor an option's value (`--` ends the group's options)."""
    words = enumerate(args)
    for i, word in words:
        if word == "--":
            return i + 1 if i + 1 < len(args) else None
        if not word.startswith("-") or word == "-":
            return i
        if word in valued:
            next(words, None)  # its value
    return None


def _split_passthrough(
    args: Sequence[str], valued: dict[str, str], flags: set[str]
) -> tuple[list[str], list[str]]:
    """A command's own options, and the words it passes on, in order: everything after `--`, and,
    before it, every word that is not one of its options or their values, unknown options
    included (argparse would reject those, or move them). Values are given back as
    `--long=value`, so that argparse takes `-1`, `--x` or `=` in them as they are."""
    own: list[str] = []
    rest: list[str] = []
    words = iter(args)
    for word in words:
        if word == "--":
            rest.extend(words)
        elif word.startswith("--"):
            name, eq, value = word.partition("=")
            if name in valued:
                own.append(_with_value(valued[name], value if eq else None, words))
            else:
                (own if name in flags else rest).append(word)
        elif word.startswith("-") and word != "-":
            unknown = _split_short(word, valued, flags, words, own)
            if unknown:
                rest.append("-" + unknown)
        else:
            rest.append(word)
    return own, rest


def _split_short(
    word: str, valued: dict[str, str], flags: set[str], words: Iterator[str], own: list[str]
) -> str:
    """A cluster of short options (`-fg2`, `-fx`): the known ones go to `own`, a value option
    takes the rest of the cluster or the next word; returns the letters of unknown ones."""
    unknown = ""
    for i, letter in enumerate(word[1:], start=2):
        option = "-" + letter
        if option in valued:
            own.append(_with_value(valued[option], word[i:] or None, words))
            break
        if option in flags:
            own.append(option)
        else:
            unknown += letter
    return unknown


def _with_value(long_name: str, value: str | None, words: Iterator[str]) -> str:
    value = next(words, None) if value is None else value
    if value is None or value == "--":  # argparse says it expected one (before 3.13, it would
        return long_name  # take `--env=--` as an empty list)
    return f"{long_name}={value}"


# ---------------------------------------------------------------------------------- commands


class Command:
    """A command (or a group of them: `ant`, `ant gpus`): its function and its arguments.

    A group's function runs before the command that follows it, if any, as in click (the root's
    takes --url/--token; `gpus` and `recover` show something only when no command follows)."""

    def __init__(
        self,
        func: Callable[..., None],
        name: str,
        args: Sequence[Arg],
        *,
        passthrough: str | None = None,
        needs_command: bool = False,
    ) -> None:
        self.func = func
        self.name = name
        self.args = [*args, HELP]
        # The parameter that gets every word its options leave (`ant submit`'s command).
        self.passthrough = passthrough
        self.needs_command = needs_command  # a group that does nothing by itself
        self.subcommands: dict[str, Command] = {}

    def command(
        self, *args: Arg, name: str | None = None, passthrough: str | None = None
    ) -> Callable[[Callable[..., None]], Command]:
        """Register the decorated function as a command of this group."""

        def register(func: Callable[..., None]) -> Command:
            command = Command(func, name or func.__name__, args, passthrough=passthrough)
            self.subcommands[command.name] = command
            return command

        return register

    def _options(self) -> tuple[dict[str, str], set[str]]:
        """(option -> its long name, for those that take a value; the flags)."""
        valued: dict[str, str] = {}
        flags: set[str] = set()
        for names, settings in self.args:
            if not names[0].startswith("-"):
                continue
            if settings.get("action", "store") in ("store", "append"):
                valued.update(dict.fromkeys(names, names[-1]))
            else:
                flags.update(names)
        return valued, flags

    def split(self, argv: Sequence[str]) -> tuple[list[str], list[str]]:
        """(its own options, the words passed on) of a passthrough command like `ant submit`."""
        return _split_passthrough(argv, *self._options())

    def _usage(self) -> str:
        words = ["%(prog)s [OPTIONS]"]
        if self.subcommands:
            words.append("COMMAND [ARGS]..." if self.needs_command else "[COMMAND] [ARGS]...")
        if self.passthrough:
            words.append(_usage_word(self.passthrough.upper(), "*"))
        for names, settings in self.args:
            if not names[0].startswith("-"):
                words.append(_usage_word(settings["metavar"], settings.get("nargs")))
        return " ".join(words)

    def parser(self, prog: str) -> Parser:
        parser = Parser(
            prog=prog,
            usage=self._usage(),
            description=_indent(_help_text(self.func.__doc__)),
            formatter_class=Formatter,
            add_help=False,
            allow_abbrev=False,
        )
        options = parser.add_argument_group("Options")
        for names, settings in self.args:
            if names[0].startswith("-"):
                options.add_argument(*names, **settings)
            else:  # named in the usage line, not listed (as click did)
                parser.add_argument(*names, help=argparse.SUPPRESS, **settings)
        if self.subcommands:
            parser.commands = {name: c.func.__doc__ for name, c in self.subcommands.items()}
            parser.add_argument(
                "command",
                nargs="?",
                choices=sorted(self.subcommands),
                metavar="COMMAND",
                help=argparse.SUPPRESS,
            )
        return parser

    def run(self, argv: list[str], prog: str, call: Call) -> None:
        """Read `argv` (what follows `prog`) and call the function(s) it names."""
        parser = self.parser(prog)
        try:
            if self.subcommands:
                self._run_group(parser, argv, prog, call)
                return
            if self.passthrough:
                own, rest = self.split(argv)
                params = vars(parser.parse_args(own))
                params[self.passthrough] = tuple(rest)
            else:
                params = vars(parser.parse_intermixed_args(argv))
            call(self.func, params, None)
        except UsageError as exc:
            exc.parser = exc.parser or parser  # raised by the command itself
            raise

    def _run_group(self, parser: Parser, argv: list[str], prog: str, call: Call) -> None:
        if self.needs_command and not argv:
            raise UsageError("", parser, full_help=True)  # as click did
        index = _group_command_index(argv, set(self._options()[0]))
        own, rest = (argv, []) if index is None else (argv[: index + 1], argv[index + 1 :])
        params = vars(parser.parse_args(own))
        name = params.pop("command")
        if name is None and self.needs_command:
            parser.error("missing command")
        call(self.func, params, name)
        if name is not None:
            self.subcommands[name].run(rest, f"{prog} {name}", call)
