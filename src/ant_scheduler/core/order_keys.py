"""Order keys of the queue (`queue_seq`): integers with gaps, so that moving a task puts it between
its new neighbours by changing its own key alone.

New tasks get keys `GAP` apart. A move takes the midpoint of its neighbours' keys; only after
about log2(GAP) moves into the same gap are the neighbours too close, and then a few tasks around
the spot are spread out again (`spread`), never the whole queue. Pure: the queue (core/queue.py)
finds the neighbours, the engine stores the new keys.
"""

from __future__ import annotations

GAP = 1 << 16  # between two submitted tasks: 16 moves into one gap before a spread
MIN_STEP = GAP >> 6  # a spread leaves at least this much room between keys (or takes more tasks)


def between(lower: int | None, upper: int | None) -> int | None:
    """A key strictly between two keys (None: no bound on that side); None if there is none."""
    if lower is None and upper is None:
        return 0
    if lower is None:
        assert upper is not None
        return upper - GAP
    if upper is None:
        return lower + GAP
    if upper - lower < 2:
        return None
    return (lower + upper) // 2


def spread(count: int, lower: int | None, upper: int | None) -> list[int] | None:
    """`count` increasing keys strictly between the bounds (None: unbounded), evenly spaced, or
    None when the bounds leave less than MIN_STEP between them (the caller takes more tasks)."""
    if lower is None and upper is None:
        return [i * GAP for i in range(count)]
    if lower is None:
        assert upper is not None
        return [upper - (count - i) * GAP for i in range(count)]
    if upper is None:
        return [lower + (i + 1) * GAP for i in range(count)]
    step = (upper - lower) // (count + 1)
    if step < MIN_STEP:
        return None
    return [lower + (i + 1) * step for i in range(count)]
