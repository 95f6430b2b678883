"""Task log files: where they live, reading their tail fast, and following them as they grow."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import BinaryIO

_BLOCK = 64 * 1024


def log_path_for(log_dir: Path, session_dir_name: str, task_id: str) -> Path:
    """`<log_dir>/<session>/<task_id>.log`, refusing anything that would land outside log_dir."""
    root = log_dir.resolve()
    path = (root / session_dir_name / f"{task_id}.log").resolve()
    if root not in path.parents:
        raise ValueError(f"log path for {task_id!r} would leave the log directory")
    return path


def exit_path_for(log_path: Path) -> Path:
    """Where the task's wrapper writes its exit code when it ends."""
    return log_path.with_suffix(".exit")


def read_tail_bytes(path: Path, max_bytes: int) -> bytes:
    """The last max_bytes bytes of a file (b"" if it does not exist)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            return f.read(max_bytes)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return b""


def read_last_lines(path: Path, n: int, *, max_bytes: int = 8 * 1024 * 1024) -> str:
    """The last n lines, read backwards in blocks from the end: a 1 GB log answers at once.

    A final line without a newline counts as a line. At most max_bytes are read.
    """
    if n <= 0:
        return ""
    try:
        f = path.open("rb")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return ""
    with f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        # A trailing newline ends the last line; it does not start a new one.
        need = n + 1 if end > 0 and _last_byte(f, end) == b"\n" else n
        while pos > 0 and newlines < need and end - pos < max_bytes:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
    lines = data.split(b"\n")
    trailing = data.endswith(b"\n")
    if trailing:
        lines = lines[:-1]
    tail = lines[-n:]
    text = b"\n".join(tail) + (b"\n" if trailing else b"")
    return text.decode("utf-8", errors="replace")


def _last_byte(f: BinaryIO, end: int) -> bytes:
    f.seek(end - 1)
    return f.read(1)


class LogFollower:
    """Reads what was appended to a file since the last call (restarts if it was truncated)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self._offset = offset
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def offset(self) -> int:
        return self._offset

    def read_new(self, max_bytes: int = 1 << 20) -> bytes:
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < self._offset:  # truncated or replaced: start over
                    self._offset = 0
                    self._decoder.reset()
                if size == self._offset:
                    return b""
                f.seek(self._offset)
                data = f.read(max_bytes)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return b""
        self._offset += len(data)
        return data

    def read_new_text(self, max_bytes: int = 1 << 20) -> str:
        """Like read_new, decoded; an incomplete UTF-8 sequence waits for the next call."""
        return self._decoder.decode(self.read_new(max_bytes))
