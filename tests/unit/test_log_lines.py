"""log_lines.py: lines by number and search over an output read in blocks, against the plain
split of the same text (long lines, an unfinished last line, growth, a replaced file)."""

from __future__ import annotations

import random
import time
from typing import Any

from ant_scheduler import log_lines
from ant_scheduler.executors.fake import FakeOutput
from ant_scheduler.log_lines import MAX_LINE_BYTES, LineIndex, search

FOREVER = 1e18


def expected_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def find(index: LineIndex, out: FakeOutput, q: str, start: int = 0, limit: int = 10**6) -> Any:
    at = index.search_from(start)
    return search(
        out, q.lower().encode(), start=start, at=at, limit=limit, fold=True, deadline=FOREVER
    )


def test_lines_and_search_match_a_plain_split() -> None:
    rng = random.Random(7)
    for _ in range(200):
        parts = []
        for i in range(rng.randint(1, 200)):
            long = rng.random() < 0.05
            width = rng.choice([0, 70_000, 1_500_000]) if long else rng.randint(0, 30)
            parts.append("x" * width + f"L{i}")
        text = "\n".join(parts) + rng.choice(["", "\n"])
        out = FakeOutput(bytearray(text.encode()))
        index = LineIndex()
        index.count(out, FOREVER)
        want = expected_lines(text)
        assert index.total == len(want) and index.complete
        for _ in range(5):
            start, count = rng.randint(0, len(want)), rng.randint(1, 50)
            got = index.read(out, start, count, 1 << 30)
            assert got.start == start and len(got.lines) == len(want[start : start + count])
            for n, (line, whole) in enumerate(zip(got.lines, want[start:], strict=False)):
                assert line == whole[:MAX_LINE_BYTES]
                assert (start + n in got.cut) == (len(whole) > MAX_LINE_BYTES)
        q = f"l{rng.randint(0, len(parts) - 1)}"
        found = find(index, out, q)
        assert found.lines == [n for n, line in enumerate(want) if q in line.lower()]
        assert found.next_line is None


def test_a_growing_output_is_counted_on_and_a_replaced_one_again() -> None:
    data = bytearray(b"a\nb")
    out, index = FakeOutput(data), LineIndex()
    index.count(out, FOREVER)
    assert index.total == 2 and index.read(out, 0, 10, 1 << 30).lines == ["a", "b"]
    data.extend(b"c\nd\n")
    index.count(out, FOREVER)
    assert index.total == 3 and index.read(out, 0, 10, 1 << 30).lines == ["a", "bc", "d"]
    data[:] = b"new\n"  # shorter: another file
    index.count(out, FOREVER)
    assert index.total == 1 and index.read(out, 0, 10, 1 << 30).lines == ["new"]


def test_answers_stop_at_their_byte_budget_and_searches_at_their_limit() -> None:
    out = FakeOutput(bytearray(b"".join(b"%05d %s\n" % (i, b"z" * 994) for i in range(3000))))
    index = LineIndex()
    index.count(out, FOREVER)
    part = index.read(out, 10, 3000, 100_000)
    assert len(part.lines) == 100 and part.lines[0].startswith("00010 ")
    found = find(index, out, "00", start=5, limit=3)
    assert found.lines == [5, 6, 7] and found.next_line == 8


def test_counting_stops_at_the_deadline_and_goes_on(monkeypatch: Any) -> None:
    monkeypatch.setattr(log_lines, "READ_BLOCK", 1000)
    out = FakeOutput(bytearray(b"line\n" * 1000))
    index = LineIndex()
    index.count(out, time.monotonic() - 1)  # one block, then the deadline has passed
    assert index.counted == 1000 and index.total == 200 and not index.complete
    partial = find(index, out, "line", limit=10**6)
    assert len(partial.lines) == 200 and partial.next_line == 200
    index.count(out, FOREVER)
    assert index.total == 1000 and index.complete
