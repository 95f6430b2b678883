"""The shell scripts that run a task's command and record its exit code, and which one a command
gets. The local executor starts the chosen script with the command and the exit file's descriptor.

Every wrapper: `trap :` (a handler, not "ignore", which the task would inherit) lets it survive
the group SIGTERM long enough to record the command's exit code, and the code is written by one
printf (a single write of a few bytes) to the descriptor the executor opened: no path is resolved
when the task ends. The command travels as an argument, never as an exported variable, so it does
not show up in the task's environment.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

# bash. $1 = command, $2 = the exit file's descriptor. The command runs in a subshell (a fork, no
# second exec; traps reset to default there) that first closes the exit file's descriptor, with
# the positional parameters cleared so it sees none of the wrapper's.
WRAPPER = """trap : TERM INT HUP
__ant_cmd=$1 __ant_fd=$2
shift 2
( exec {__ant_fd}>&-; eval "$__ant_cmd" )
__ant_rc=$?
printf '%d\\n' "$__ant_rc" >&"$__ant_fd"
exit "$__ant_rc"
"""
# The same for a command that is one simple command (`is_simple_command`): it runs in the wrapper
# itself, with the exit file's descriptor closed for its duration only, which saves the subshell's
# fork (an external command is then forked and exec'd once, as task-spooler does; `true` not at
# all): 0.35-0.4 ms of CPU per task here (P10). Nothing of it can end the wrapper early or change
# how it records the code: lists, pipelines, groups, substitutions and the builtins that act on
# the shell itself go the subshell way.
WRAPPER_SIMPLE = """trap : TERM INT HUP
__ant_cmd=$1 __ant_fd=$2
shift 2
eval "$__ant_cmd" {__ant_fd}>&-
__ant_rc=$?
printf '%d\\n' "$__ant_rc" >&"$__ant_fd"
exit "$__ant_rc"
"""
# dash, for a plain command (`plain_command`): dash starts in a third of bash's time (0.6 ms of
# CPU less per task here, P10). The exit file is the wrapper's stdin (dash cannot name a
# descriptor above 9); the command gets /dev/null instead, as under bash. $1 = command.
WRAPPER_PLAIN = """trap : TERM INT HUP
eval "$1" </dev/null
__ant_rc=$?
printf '%d\\n' "$__ant_rc" >&0
exit "$__ant_rc"
"""

# Anything that could make a list, a pipeline, a group, a substitution or a second command (also
# inside quotes: a false "not simple" only costs the subshell). Redirections (`> out.txt`) are
# fine: they apply to that command only, not to the wrapper.
_NOT_SIMPLE_CHARS = re.compile(r"[;|()`\n\r\\{}]|(?<![<>])&")  # `2>&1` is a redirection
# Builtins and keywords that act on the shell running them (it would be the wrapper).
_SHELL_WORDS = frozenset(
    "exec exit return logout trap set shift source . eval builtin command unset readonly declare "
    "typeset local export alias unalias enable shopt ulimit umask wait suspend fg bg disown jobs "
    "kill coproc function select case if while until for time ! [[ hash history fc bind "
    "complete compgen mapfile readarray read getopts caller dirs popd pushd".split()
)


def is_simple_command(command: str) -> bool:
    """One simple command, safe to run in the wrapper itself (see WRAPPER_SIMPLE)."""
    if _NOT_SIMPLE_CHARS.search(command):
        return False
    words = command.split()
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        words.pop(0)  # VAR=value before the command: for that command only
    return bool(words) and words[0] not in _SHELL_WORDS and not words[0].startswith("#")


# A plain command is words that no shell expands or splits differently: no quotes, `$`, globs,
# `~`, braces, redirections, comments or separators. Such a command means the same to dash and
# bash as long as its first word is a program (found the same way by both) or a builtin that
# does the same in both; everything else keeps bash, whose semantics users write for.
_PLAIN = re.compile(r" *[A-Za-z0-9_./:=,+@%^-]+(?: +[A-Za-z0-9_./:=,+@%^-]+)* *")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_SAME_BUILTINS = frozenset({"true", "false", ":"})
# Any builtin or keyword of either shell: they may differ (echo, printf, test, type...).
_BUILTINS = _SHELL_WORDS | frozenset(
    "alias bg break cd chdir command continue echo eval exec exit export false fc fg getopts "
    "hash help jobs kill let local logout printf pwd read readonly return set shift test [ times "
    "trap true type typeset ulimit umask unalias unset wait".split()
)
# Variables that change how bash starts or reads a command (dash ignores them): bash then.
_SHELL_ENV = frozenset({"ENV", "IFS", "CDPATH", "GLOBIGNORE", "POSIXLY_CORRECT"})


@dataclass(frozen=True)
class PlainCommand:
    """A command dash runs exactly as bash would, and the environment to run it with: what bash
    adds to its command's environment (SHLVL one up, `_` = the program's path) added here."""

    env: dict[str, str]


def plain_command(command: str, env: dict[str, str], cwd: str) -> PlainCommand | None:
    """Whether dash may run `command` (in `cwd`, with `env`) instead of bash, and how."""
    if not _PLAIN.fullmatch(command):
        return None
    words = command.split()
    while words and _ASSIGNMENT.fullmatch(words[0]):
        words.pop(0)
    if not words or any(not _NAME.fullmatch(name) for name in env):
        return None  # dash drops variables bash passes on (BASH_FUNC_module%% and the like)
    if _SHELL_ENV & env.keys() or any(name.startswith("BASH") for name in env):
        return None
    if "SHELLOPTS" in env or not _bash_keeps_oldpwd(env):
        return None
    level = env.get("SHLVL", "0")
    if not level.isdigit() or int(level) >= 999:
        return None  # bash resets or warns: not worth imitating
    out = dict(env, SHLVL=str(int(level) + 1))
    program = words[0]
    if program in _SAME_BUILTINS:
        return PlainCommand(out)
    if program in _BUILTINS:
        return None
    path = _find_program(program, env, cwd)
    if path is None:
        return None  # not found, not executable, a script without `#!`: bash says it its way
    out["_"] = path
    return PlainCommand(out)


def _bash_keeps_oldpwd(env: dict[str, str]) -> bool:
    # bash drops an OLDPWD that is not a directory: only the case with nothing to drop is plain.
    oldpwd = env.get("OLDPWD")
    return oldpwd is None or os.path.isdir(oldpwd)


def _find_program(word: str, env: dict[str, str], cwd: str) -> str | None:
    """The path bash would execute for `word` (as it would write it in `_`), if both shells
    would find that same file and the kernel runs it (ELF or `#!`), else None."""
    if "/" in word:
        return word if _runnable(os.path.join(cwd, word)) else None
    dirs = env.get("PATH")
    if dirs is None:
        return None  # each shell has its own default PATH
    for folder in dirs.split(":"):
        if not folder.startswith("/") or folder.endswith("/"):
            return None  # relative or odd entries: `_` and the lookup get subtle
        candidate = f"{folder}/{word}"
        try:
            found = os.stat(candidate)
        except (OSError, ValueError):
            continue
        # The first file of that name decides; if it is not a plain executable the shells
        # may differ in what they do next.
        return candidate if stat.S_ISREG(found.st_mode) and _runnable(candidate) else None
    return None


def _runnable(path: str) -> bool:
    """A regular executable file that execve runs itself (so no shell interprets it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not os.access(path, os.X_OK):
            return False
        head = os.read(fd, 4)
    except OSError:
        return False
    finally:
        os.close(fd)
    return head.startswith(b"#!") or head == b"\x7fELF"
