"""Lines of a task's log by number, and search in it, for a viewer that never loads the whole file.

A `LineIndex` counts the lines of one output once, reading it in blocks through the executor's
`TaskOutput.read_range`, and keeps a checkpoint (byte offset, line number) at the first line start
after every CHECKPOINT_BYTES: any line is then found by reading at most about that much. A
growing log (a running task) is counted on from where the count stopped; a log that shrank (was
replaced) is counted again. Counting and searching read files: they run in worker threads, each
bounded in time, and say how far they got, so a multi-GB log is answered in steps.

A line longer than MAX_LINE_BYTES is cut when shown (the answer names it; the download has it
whole). Line numbers are 0-based here; the UI shows them 1-based.
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from ant_scheduler.executors.base import TaskOutput

CHECKPOINT_BYTES = 64 * 1024
READ_BLOCK = 1 << 20
SEARCH_BLOCK = 4 << 20
MAX_LINE_BYTES = 64 * 1024
INDEXES_KEPT = 32  # outputs whose count is kept (least recently used dropped)


@dataclass
class Lines:
    start: int  # number of the first line in `lines`
    lines: list[str]
    cut: list[int]  # numbers of the lines cut at MAX_LINE_BYTES
    bytes: int = 0  # how much text they hold


@dataclass
class Matches:
    lines: list[int]  # numbers of the lines holding the text, in order
    next_line: int | None  # the search stopped before this line (limit or time): go on from it


@dataclass
class LineIndex:
    """Where the lines of one output start (see the module's docstring)."""

    offsets: array[int] = field(default_factory=lambda: array("q", [0]))  # checkpoint offsets
    numbers: array[int] = field(default_factory=lambda: array("q", [0]))  # their line numbers
    counted: int = 0  # bytes counted
    newlines: int = 0  # newlines in the bytes counted
    last_start: int = 0  # where the last (maybe unfinished) line starts
    size: int = 0  # the output's size when last read
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        """Lines counted: a last line without a newline counts."""
        return self.newlines + (1 if self.counted > self.last_start else 0)

    @property
    def complete(self) -> bool:
        return self.counted >= self.size

    def count(self, output: TaskOutput, deadline: float) -> None:
        """Count on until the end of the output or the deadline (time.monotonic())."""
        while True:
            data, size = output.read_range(self.counted, READ_BLOCK)
            if size < self.counted:  # shrank: another file now, count it again
                self._reset()
                continue
            self.size = size
            if not data:
                return
            self._add(data)
            if time.monotonic() >= deadline:
                return

    def _reset(self) -> None:
        self.offsets, self.numbers = array("q", [0]), array("q", [0])
        self.counted = self.newlines = self.last_start = 0

    def _add(self, data: bytes) -> None:
        base, pos = self.counted, 0
        while True:
            want = self.offsets[-1] + CHECKPOINT_BYTES - base
            newline = data.find(b"\n", max(want, pos)) if want < len(data) else -1
            if newline < 0:
                break
            self.newlines += data.count(b"\n", pos, newline + 1)
            pos = newline + 1
            self.offsets.append(base + pos)
            self.numbers.append(self.newlines)
        self.newlines += data.count(b"\n", pos)
        last = data.rfind(b"\n")
        if last >= 0:
            self.last_start = base + last + 1
        self.counted = base + len(data)

    def _checkpoint(self, line: int) -> tuple[int, int]:
        """(offset, number) of the last checkpoint at or before `line`."""
        i = bisect_right(self.numbers, line) - 1
        return self.offsets[i], self.numbers[i]

    def _next_start_after(self, offset: int) -> int | None:
        """The first checkpoint after `offset`: past a line longer than CHECKPOINT_BYTES, the
        next line's start is always one."""
        i = bisect_right(self.offsets, offset)
        return self.offsets[i] if i < len(self.offsets) else None

    def read(self, output: TaskOutput, start: int, count: int, max_bytes: int) -> Lines:
        """Lines start .. start+count-1 of those counted; fewer at the end, or once they hold
        max_bytes (at least one line is given)."""
        end = min(start + count, self.total)
        offset, line = self._checkpoint(start)
        out = Lines(start=start, lines=[], cut=[])
        while line < end:
            data, _ = output.read_range(offset, READ_BLOCK)
            if not data:
                break
            pos = 0
            while line < end and out.bytes < max_bytes:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    break
                if line >= start:
                    self._keep(out, line, data[pos:newline])
                line += 1
                pos = newline + 1
            if line >= end or out.bytes >= max_bytes:
                break
            if pos > 0:
                offset += pos  # the next read starts at the unfinished line
                continue
            # A line without its end in a whole block: a long one, or the last, unfinished one.
            following = self._next_start_after(offset)
            if line >= start:
                self._keep(out, line, data[: MAX_LINE_BYTES + 1])
            line += 1
            if following is None or following > self.counted:
                break
            offset = following
        return out

    @staticmethod
    def _keep(out: Lines, number: int, raw: bytes) -> None:
        out.bytes += min(len(raw), MAX_LINE_BYTES) + 1
        if len(raw) > MAX_LINE_BYTES:
            raw = raw[:MAX_LINE_BYTES]
            out.cut.append(number)
        out.lines.append(raw.decode("utf-8", errors="replace"))

    def search_from(self, line: int) -> tuple[int, int, int, bool]:
        """What a search from `line` needs, read together: (checkpoint offset, its number, bytes
        counted, complete). The search then runs without the lock."""
        offset, number = self._checkpoint(line)
        return offset, number, self.counted, self.complete


def search(
    output: TaskOutput,
    needle: bytes,
    *,
    start: int,
    at: tuple[int, int, int, bool],
    limit: int,
    fold: bool,
    deadline: float,
) -> Matches:
    """Lines from `start` on that hold `needle`, at most `limit`, until the deadline, reading as
    far as counted. `at` is LineIndex.search_from(start). With `fold`, ASCII letters match in
    either case (needle given in lower case)."""
    offset, line, counted, complete = at
    found: list[int] = []
    while offset < counted:
        data, _ = output.read_range(offset, min(SEARCH_BLOCK, counted - offset))
        if not data:
            break
        # Whole lines only, so a match never spans two blocks; a line longer than a block (or
        # the last, unfinished one) is searched in pieces.
        cut = data.rfind(b"\n") + 1 or len(data)
        block = data[:cut].lower() if fold else data[:cut]
        pos = 0
        while True:
            hit = block.find(needle, pos)
            if hit < 0:
                break
            line += block.count(b"\n", pos, hit)
            if line >= start and (not found or found[-1] != line):
                found.append(line)
                if len(found) >= limit:
                    return Matches(found, line + 1)
            end = block.find(b"\n", hit)
            if end < 0:
                pos = len(block)
                break
            line += 1
            pos = end + 1
        line += block.count(b"\n", pos)
        offset += cut
        if time.monotonic() >= deadline and offset < counted:
            # On from the next whole line (a long line cut here is not searched further).
            return Matches(found, line if block.endswith(b"\n") else line + 1)
    return Matches(found, None if complete else line)


class LineIndexes:
    """The indexes of the outputs viewed lately, by key (task, rank, log); least recently used
    dropped past INDEXES_KEPT."""

    def __init__(self) -> None:
        self._indexes: OrderedDict[Hashable, LineIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> LineIndex:
        with self._lock:
            index = self._indexes.pop(key, None) or LineIndex()
            self._indexes[key] = index
            while len(self._indexes) > INDEXES_KEPT:
                self._indexes.popitem(last=False)
            return index
