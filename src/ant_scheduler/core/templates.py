"""Task-id templates (`[uuid8]`, `[phrase]`, …), `{rand …}` substitution, and id validation.

Randomness comes in as a `random.Random` and time as a `datetime`, so every expansion is
reproducible in tests.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime

from ant_scheduler.core.errors import TaskRejected

MAX_TASK_ID_LENGTH = 128
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

_ADJECTIVES = (
    "amber agile ancient azure bold brave breezy bright brisk calm clever cobalt cosmic crimson "
    "curious daring dusty eager electric emerald fancy fearless fuzzy gentle gilded glowing golden "
    "grand happy hidden humble icy jolly keen kind lively lucky lunar mellow merry misty nimble "
    "noble olive polar proud quick quiet rapid rosy rustic scarlet serene shiny silent silver "
    "sleek snowy solar spry steady stellar sunny swift tidy vivid wild witty"
).split()
_NOUNS = (
    "falcon otter badger beaver bison cheetah condor coyote crane dingo dolphin eagle ferret finch "
    "fox gazelle gecko heron ibis jackal jaguar koala lemur leopard lynx magpie marmot meerkat "
    "moose narwhal ocelot orca osprey panda panther pelican penguin puffin quokka rabbit raven "
    "robin salmon seal sparrow squid stork swan tapir tiger toucan turtle walrus weasel whale wolf "
    "wombat yak zebra"
).split()

# Anything in square brackets is a placeholder (known or not), plus the seed's `uuid.uuid4()`.
_PLACEHOLDER = re.compile(r"\[([^\[\]]*)\]|uuid\.uuid4\(\)")
_SIMPLE = ("uuid", "uuid8", "date", "time", "datetime", "random_phrase", "phrase")
SUPPORTED_PLACEHOLDERS = (
    "[uuid], uuid.uuid4(), [uuid8], [date], [time], [datetime], [random_phrase], [phrase], "
    "[randint:START:END]"
)


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _randint(spec: str, rng: random.Random) -> str:
    parts = spec.split(":")
    if len(parts) != 3:
        raise TaskRejected(f"bad placeholder '[{spec}]': use [randint:START:END]")
    try:
        low, high = int(parts[1]), int(parts[2])
    except ValueError:
        raise TaskRejected(f"bad placeholder '[{spec}]': START and END must be integers") from None
    if low > high:
        raise TaskRejected(
            f"bad placeholder '[{spec}]': START ({low}) is greater than END ({high})"
        )
    return str(rng.randint(low, high))


def _expand_one(name: str, rng: random.Random, now: datetime) -> str:
    if name == "uuid":
        return _uuid4(rng)
    if name == "uuid8":
        return _uuid4(rng)[:8]
    if name == "date":
        return now.strftime("%Y%m%d")
    if name == "time":
        return now.strftime("%H%M%S")
    if name == "datetime":
        return now.strftime("%Y%m%d-%H%M%S")
    if name in ("random_phrase", "phrase"):
        return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
    raise AssertionError(name)


def expand_task_id(template: str, *, rng: random.Random, now: datetime) -> str:
    """Replace every placeholder; unknown ones are rejected, naming the supported set."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "uuid.uuid4()":
            return _uuid4(rng)
        inner = match.group(1)
        if inner in _SIMPLE:
            return _expand_one(inner, rng, now)
        if inner.split(":", 1)[0] == "randint":
            return _randint(inner, rng)
        raise TaskRejected(
            f"unknown placeholder '[{inner}]' in task id; supported: {SUPPORTED_PLACEHOLDERS}"
        )

    return _PLACEHOLDER.sub(replace, template)


def validate_task_id(task_id: str) -> str:
    """A final id is 1-128 chars of [A-Za-z0-9._-], not starting with '.' or '-'.

    It becomes a file name under the log directory, so it is refused, never rewritten.
    """
    if not task_id:
        raise TaskRejected("task id is empty")
    if len(task_id) > MAX_TASK_ID_LENGTH:
        raise TaskRejected(
            f"task id is {len(task_id)} characters long; the limit is {MAX_TASK_ID_LENGTH}"
        )
    if not _SAFE_ID.fullmatch(task_id):
        bad = sorted({c for c in task_id if not re.fullmatch(r"[A-Za-z0-9._-]", c)})
        shown = " ".join(repr(c) for c in bad[:5])
        raise TaskRejected(
            f"task id {task_id!r} has characters other than letters, digits, '.', '_' and '-': "
            f"{shown}"
        )
    if task_id[0] in ".-":
        raise TaskRejected(f"task id {task_id!r} must not start with '.' or '-'")
    return task_id


_RAND = re.compile(r"\{rand(?:\s+([^{}]*))?\}")


def expand_rand(text: str, *, rng: random.Random) -> str:
    """Substitute `{rand int A B}` (inclusive) and `{rand float A B}` per occurrence."""

    def replace(match: re.Match[str]) -> str:
        args = (match.group(1) or "").split()
        form = match.group(0)
        if len(args) != 3 or args[0] not in ("int", "float"):
            raise TaskRejected(
                f"bad random form {form!r}: use {{rand int A B}} or {{rand float A B}}"
            )
        kind, low_text, high_text = args
        try:
            if kind == "int":
                low_i, high_i = int(low_text), int(high_text)
                if low_i > high_i:
                    raise TaskRejected(
                        f"bad random form {form!r}: {low_i} is greater than {high_i}"
                    )
                return str(rng.randint(low_i, high_i))
            low_f, high_f = float(low_text), float(high_text)
        except ValueError:
            raise TaskRejected(f"bad random form {form!r}: A and B must be {kind}s") from None
        if not (low_f == low_f and high_f == high_f) or abs(low_f) == float("inf"):
            raise TaskRejected(f"bad random form {form!r}: A and B must be finite numbers")
        if abs(high_f) == float("inf"):
            raise TaskRejected(f"bad random form {form!r}: A and B must be finite numbers")
        if low_f > high_f:
            raise TaskRejected(f"bad random form {form!r}: {low_f} is greater than {high_f}")
        return repr(rng.uniform(low_f, high_f))

    return _RAND.sub(replace, text)
