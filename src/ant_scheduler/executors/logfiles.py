"""Task log files: where they live, reading their tail fast, following them as they grow, and
the TaskOutput of an executor that writes them (only executors open log files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_BLOCK = 64 * 1024
# A log that is not there (yet) or not ours to read; any other OSError is a real failure.
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
_CONTINUATION_BYTES = bytes(range(0x80, 0xC0))


def log_path_for(log_dir: Path, session_dir_name: str, task_id: str, attempt: int = 1) -> Path:
    """`log_dir / session_dir_name / "<task_id>.log"` (`<task_id>.attempt<N>.log` for a retry:
    each attempt keeps its own log).

    Raises ValueError if the path would not be inside log_dir. The check is on the names alone:
    task ids are validated where they are accepted, and resolving the path here would follow a
    symlink planted at it (opening it is the executor's job, and it never follows one).
    """
    file_name = f"{task_id}.log" if attempt == 1 else f"{task_id}.attempt{attempt}.log"
    for name in (session_dir_name, file_name):
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"the log of task {task_id!r} would be outside {log_dir}")
    return log_dir / session_dir_name / file_name


def exit_path_for(log_path: Path) -> Path:
    """The file the task's wrapper writes its exit code to when it ends: `<task_id>.exit`."""
    return log_path.with_suffix(".exit")


def read_tail_bytes(path: Path, max_bytes: int) -> bytes:
    """The last max_bytes bytes of a file (b"" if it does not exist)."""
    if max_bytes <= 0:
        return b""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            return f.read(max_bytes)
    except _ABSENT:
        return b""


def read_range(path: Path, offset: int, max_bytes: int) -> tuple[bytes, int]:
    """Up to max_bytes from `offset` on, and the file's size then ((b"", 0) if it is missing)."""
    try:
        f = path.open("rb")
    except _ABSENT:
        return b"", 0
    with f:
        size = os.fstat(f.fileno()).st_size
        if offset >= size or max_bytes <= 0:
            return b"", size
        f.seek(offset)
        return f.read(min(max_bytes, size - offset)), size


def read_last_lines(path: Path, n: int, *, max_bytes: int = 8 * 1024 * 1024) -> str:
    """The last n lines of a file, read backwards in blocks from the end: a 1 GB log answers at
    once. A final line without a newline counts as a line; the text keeps the file's final
    newline if it has one. Decoded as UTF-8, bad bytes replaced.

    At most max_bytes are read: if that is not enough for n lines, the text starts mid-line
    (at a character boundary). A missing file reads as "".
    """
    if n <= 0 or max_bytes <= 0:
        return ""
    try:
        f = path.open("rb")
    except _ABSENT:
        return ""
    with f:
        end = f.seek(0, os.SEEK_END)
        limit = max(0, end - max_bytes)
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        while pos > limit:
            step = min(_BLOCK, pos - limit)
            pos -= step
            f.seek(pos)
            chunks.append(f.read(step))
            newlines += chunks[-1].count(b"\n")
            # n lines need the newline before the first of them, and the final one if any.
            if newlines >= n + chunks[0].endswith(b"\n"):
                break
    data = b"".join(reversed(chunks))
    body = data[:-1] if data.endswith(b"\n") else data
    parts = body.rsplit(b"\n", n)
    if len(parts) > n:
        data = data[len(parts[0]) + 1 :]
    elif pos > 0:  # cut by max_bytes: do not start with the end of a character
        data = data.lstrip(_CONTINUATION_BYTES)
    return data.decode("utf-8", errors="replace")


class LogFollower:
    """Reads what was appended to a file since the last call.

    A file that does not exist yet reads as nothing; a file that shrank or was replaced by
    another one is read again from the start.
    """

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self._offset = max(0, offset)
        self._identity: tuple[int, int] | None = None

    @property
    def offset(self) -> int:
        """Bytes of the file consumed so far; the next read starts here."""
        return self._offset

    def read_new(self, max_bytes: int = 1 << 20) -> bytes:
        """Up to max_bytes appended since the last call (b"" if nothing new)."""
        try:
            f = self.path.open("rb")
        except _ABSENT:
            return b""
        with f:
            stat = os.fstat(f.fileno())
            identity = (stat.st_dev, stat.st_ino)
            if stat.st_size < self._offset or self._identity not in (None, identity):
                self._offset = 0
            self._identity = identity
            if stat.st_size <= self._offset or max_bytes <= 0:
                return b""
            f.seek(self._offset)
            data = f.read(min(max_bytes, stat.st_size - self._offset))
        self._offset += len(data)
        return data

    def read_new_text(self, max_bytes: int = 1 << 20, *, final: bool = False) -> str:
        """Like read_new, decoded as UTF-8 (bad bytes replaced).

        A multibyte character cut by the end of what was read is left for the next call, and
        `offset` stays before it, so a reader resuming from `offset` never sees half of one.
        With final=True (the writer is done) such a tail is decoded as a replacement character.
        """
        # Four bytes always hold a whole character, so every call makes progress.
        data = self.read_new(max(max_bytes, 4))
        keep = 0 if final else _incomplete_tail(data)
        if keep:
            data = data[:-keep]
            self._offset -= keep
        return data.decode("utf-8", errors="replace")


def _incomplete_tail(data: bytes) -> int:
    """How many bytes at the end of data are the start of a character still being written."""
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: look further back for the lead byte
            continue
        need = 2 if 0xC0 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4 if byte >= 0xF0 else 1
        return back if need > back and byte < 0xF8 else 0
    return 0


class LogFileOutput:
    """A task's output kept in one local file (TaskOutput, for executors that write files)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def tail_bytes(self, max_bytes: int) -> bytes:
        return read_tail_bytes(self.path, max_bytes)

    def last_lines(self, n: int) -> tuple[str, int]:
        size = self._size()
        return read_last_lines(self.path, n), size

    def follower(self, offset: int | None = None) -> LogFollower:
        return LogFollower(self.path, self._size() if offset is None else offset)

    def read_range(self, offset: int, max_bytes: int) -> tuple[bytes, int]:
        return read_range(self.path, offset, max_bytes)

    def file(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


# ---------------------------------------------------------------------------- renaming a task

_FILE_KEYS = ("log", "exit")  # where a handle names the task's files (and each rank's, "ranks")


def renamed_handle(
    handle: dict[str, Any], old_id: str, new_id: str
) -> tuple[dict[str, Any], list[tuple[Path, Path]]]:
    """The handle with every file named after the task (its log, exit file, rank logs: any name
    that starts with `<old_id>.`) named after new_id in the same directory, and the (old, new)
    pairs of paths. Files the executor names otherwise are left as they are."""
    pairs: list[tuple[Path, Path]] = []

    def rename(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        path = Path(value)
        if not path.name.startswith(f"{old_id}."):
            return value
        new = path.with_name(new_id + path.name[len(old_id) :])
        pairs.append((path, new))
        return str(new)

    def walk(part: dict[str, Any]) -> dict[str, Any]:
        out = dict(part)
        for key in _FILE_KEYS:
            if key in out:
                out[key] = rename(out[key])
        if isinstance(out.get("ranks"), list):
            out["ranks"] = [walk(r) if isinstance(r, dict) else r for r in out["ranks"]]
        return out

    return walk(handle), pairs


def link_files(pairs: list[tuple[Path, Path]]) -> None:
    """Give each existing file its new name too (a hard link: the old name stays until
    `unlink_files`, so a crash in between loses neither). A file left at a new name by a deleted
    task is replaced. OSError (after undoing the links made) if a link cannot be made."""
    made: list[Path] = []
    try:
        for old, new in pairs:
            try:
                os.link(old, new, follow_symlinks=False)
            except FileExistsError:
                new.unlink()
                os.link(old, new, follow_symlinks=False)
            except FileNotFoundError:
                continue  # never written (e.g. no exit file yet): nothing to carry over
            made.append(new)
    except OSError:
        unlink_files(made)
        raise


def unlink_files(paths: list[Path]) -> None:
    """Remove these names of files (missing ones are fine)."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def task_files(handle: dict[str, Any], task_id: str) -> list[Path]:
    """The files a handle names after the task (log, exit file, rank logs)."""
    return [old for old, _ in renamed_handle(handle, task_id, task_id)[1]]
