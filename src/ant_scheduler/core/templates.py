"""Task-id templates (`[uuid8]`, `[phrase]`, …), `{rand …}` substitution, and task-id validation.

Randomness comes in as a `random.Random` and time as a `datetime`, so every expansion is
reproducible in tests.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from datetime import datetime

from ant_scheduler.core.errors import TaskRejected

MAX_TASK_ID_LENGTH = 128
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_ID_CHAR = re.compile(r"[A-Za-z0-9._-]")

_ADJECTIVES = (
    "agile amber ancient arctic azure bold brave breezy bright brisk calm clever cobalt cosmic "
    "crimson curious daring dusty eager electric emerald fearless fuzzy gentle gilded glowing "
    "golden grand happy hidden humble icy jolly keen kind lively lucky lunar mellow merry misty "
    "nimble noble olive polar proud quick quiet rapid rosy rustic scarlet serene shiny silent "
    "silver sleek snowy solar spry steady stellar sunny swift tidy vivid witty"
).split()
_NOUNS = (
    "badger beaver bison bobcat cheetah condor coyote crane dingo dolphin eagle falcon ferret "
    "finch fox gazelle gecko heron ibis jackal jaguar koala lemur leopard lynx magpie marmot "
    "meerkat moose narwhal ocelot orca osprey otter panda panther pelican penguin puffin quokka "
    "rabbit raven robin salmon seal sparrow squid stork swan tapir tiger toucan turtle walrus "
    "weasel whale wolf wombat yak zebra"
).split()

# Every `[...]` is taken as a placeholder, known or not: brackets can never appear in a valid
# id, so treating them as a typo'd placeholder gives the more useful error.
_PLACEHOLDER = re.compile(r"\[([^\[\]]*)\]|uuid\.uuid4\(\)")
_RANDINT = re.compile(r"randint:(-?[0-9]+):(-?[0-9]+)")
SUPPORTED_PLACEHOLDERS = (
    "[uuid], uuid.uuid4(), [uuid8], [date], [time], [datetime], [random_phrase], [phrase], "
    "[randint:START:END]"
)


def _show(text: str, limit: int = 60) -> str:
    """A user's text for an error message: repr (so control characters stay visible), capped."""
    if len(text) > limit:
        return repr(text[:limit]) + "…"
    return repr(text)


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _unknown(placeholder: str, hint: str = "") -> TaskRejected:
    return TaskRejected(
        f"unknown placeholder {_show(placeholder)} in task id{hint}; "
        f"supported: {SUPPORTED_PLACEHOLDERS}"
    )


def _randint(inner: str, rng: random.Random) -> str:
    match = _RANDINT.fullmatch(inner)
    if match is None:
        raise _unknown(f"[{inner}]", " (write [randint:START:END] with whole numbers)")
    try:
        low, high = int(match.group(1)), int(match.group(2))
    except ValueError:  # more digits than Python converts; no id could hold them anyway
        raise TaskRejected(f"bad placeholder {_show(f'[{inner}]')}: number too long") from None
    if low > high:
        raise TaskRejected(
            f"bad placeholder {_show(f'[{inner}]')}: START ({low}) is greater than END ({high})"
        )
    return str(rng.randint(low, high))


def _expand_placeholder(inner: str, rng: random.Random, now: datetime) -> str:
    if inner == "uuid":
        return _uuid4(rng)
    if inner == "uuid8":
        return _uuid4(rng)[:8]
    # Formatted by hand: strftime's %Y does not zero-pad years below 1000 on every platform.
    date = f"{now.year:04d}{now.month:02d}{now.day:02d}"
    time = f"{now.hour:02d}{now.minute:02d}{now.second:02d}"
    if inner == "date":
        return date
    if inner == "time":
        return time
    if inner == "datetime":
        return f"{date}-{time}"
    if inner in ("random_phrase", "phrase"):
        return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
    if inner == "randint" or inner.startswith("randint:"):
        return _randint(inner, rng)
    raise _unknown(f"[{inner}]")


def has_placeholder(template: str) -> bool:
    """Whether the id template has a placeholder (`[phrase]`, `uuid.uuid4()`, …)."""
    return _PLACEHOLDER.search(template) is not None


def expand_task_id(template: str, *, rng: random.Random, now: datetime) -> str:
    """Replace every placeholder in one pass (expansions are never re-expanded).

    `[randint:START:END]` is inclusive and accepts negative bounds; an id still may not start
    with '-', so `run[randint:-5:5]` works where a bare `[randint:-5:5]` can be refused.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return _uuid4(rng)  # the seed's `uuid.uuid4()` spelling
        return _expand_placeholder(match.group(1), rng, now)

    return _PLACEHOLDER.sub(replace, template)


def validate_task_id(task_id: str) -> str:
    """Return the id unchanged if it is safe as a file name, else raise naming the failed rule.

    The id becomes `<log dir>/<id>.log`, so it is refused, never rewritten: 1-128 characters of
    [A-Za-z0-9._-], and no leading '.' or '-' (no hidden file, no option, no '.' or '..').
    """
    if not task_id:
        raise TaskRejected("task id is empty")
    if len(task_id) > MAX_TASK_ID_LENGTH:
        raise TaskRejected(
            f"task id is {len(task_id)} characters long; the limit is {MAX_TASK_ID_LENGTH}"
        )
    if task_id in (".", ".."):
        raise TaskRejected(f"task id {task_id!r} is not allowed: it names a directory")
    bad = sorted({c for c in task_id if not _ID_CHAR.fullmatch(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        raise TaskRejected(
            f"task id {_show(task_id, MAX_TASK_ID_LENGTH)} may only contain letters, digits, "
            f"'.', '_' and '-'; it contains {shown}"
        )
    if task_id[0] in ".-":
        raise TaskRejected(f"task id {task_id!r} must not start with '.' or '-'")
    return task_id


# `{rand` followed by a blank or `}` opens a random form; `{random}` or awk's `{rand()}` do not.
_RAND_OPEN = re.compile(r"\{rand(?=[ \t}])")
_RAND_BODY_END = re.compile(r"[{}\n]")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RAND_USAGE = "use {rand int A B} or {rand float A B}"


def _draw(form: str, body: str, rng: random.Random) -> str:
    def bad(why: str) -> TaskRejected:
        return TaskRejected(f"bad random form {_show(form)}: {why}")

    args = body.split()
    if not args:
        raise bad(_RAND_USAGE)
    kind = args[0]
    if kind not in ("int", "float"):
        raise bad(f"unknown kind {_show(kind)}; {_RAND_USAGE}")
    if len(args) != 3:
        raise bad(f"expected two bounds A and B; {_RAND_USAGE}")
    low_text, high_text = args[1], args[2]
    if kind == "int":
        if not (_INT.fullmatch(low_text) and _INT.fullmatch(high_text)):
            raise bad("A and B must be whole numbers")
        try:
            low_i, high_i = int(low_text), int(high_text)
        except ValueError:
            raise bad("number too long") from None
        if low_i > high_i:
            raise bad(f"A ({low_i}) is greater than B ({high_i})")
        return str(rng.randint(low_i, high_i))
    if not (_FLOAT.fullmatch(low_text) and _FLOAT.fullmatch(high_text)):
        raise bad("A and B must be numbers")
    low_f, high_f = float(low_text), float(high_text)
    if not (math.isfinite(low_f) and math.isfinite(high_f)):
        raise bad("A and B must be finite numbers")
    if low_f > high_f:
        raise bad(f"A ({low_text}) is greater than B ({high_text})")
    # A convex mix cannot overflow the way `low + (high - low) * r` does for ±1e308.
    r = rng.random()
    value = min(max(low_f * (1.0 - r) + high_f * r, low_f), high_f)
    return repr(value)


def expand_rand(text: str, *, rng: random.Random) -> str:
    """Substitute each `{rand int A B}` (inclusive) and `{rand float A B}`, one draw each.

    Braces that do not open with `{rand ` (`${HOME}`, `awk '{print $1}'`) are left alone; a
    `{rand ` form that is malformed or not closed on its line is refused.
    """
    out: list[str] = []
    pos = 0
    while (match := _RAND_OPEN.search(text, pos)) is not None:
        end = _RAND_BODY_END.search(text, match.end())
        if end is None or end.group() != "}":
            stop = end.start() if end is not None else len(text)
            raise TaskRejected(
                f"bad random form {_show(text[match.start() : stop])}: no closing '}}' on its "
                f"line; {_RAND_USAGE}"
            )
        form = text[match.start() : end.end()]
        out.append(text[pos : match.start()])
        out.append(_draw(form, text[match.end() : end.start()], rng))
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)
