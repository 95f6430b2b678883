"""Durations as users write them (`90`, `90s`, `15m`, `2h`, `1d`, `1h30m`, `1.5h`) and back."""

from __future__ import annotations

import math
import re

from ant_scheduler.core.errors import TaskRejected

MAX_SECONDS = 366 * 86400  # a timeout longer than a year is a typo
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def parse_duration(text: str, what: str = "timeout") -> float:
    """Seconds (> 0) from `text`; a bare number is seconds. TaskRejected names `what`."""
    cleaned = text.strip().lower().replace(" ", "")
    seconds: float | None = None
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        seconds = float(cleaned)
    elif cleaned and _PART.sub("", cleaned) == "":
        units = [unit for _, unit in _PART.findall(cleaned)]
        if len(set(units)) == len(units) and units == sorted(units, key="dhms".index):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(cleaned))
    if seconds is None or not math.isfinite(seconds):
        raise TaskRejected(
            f"{what}: expected a duration such as 90s, 15m, 2h or 1h30m, got {text!r}"
        )
    return check_seconds(seconds, what)


def check_seconds(seconds: float, what: str = "timeout") -> float:
    if not 0 < seconds <= MAX_SECONDS:
        raise TaskRejected(f"{what} must be more than 0 s and at most 366 days, got {seconds:g} s")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact form parse_duration reads back: 7200 -> 2h, 5400 -> 1h30m."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"
