"""Empty files made ahead of need, in a thread, so that starting a task renames one into place
instead of creating its log and exit files on the event loop.

Creating a file allocates an inode, and on ext4 that can take 0.4-0.9 ms when many files of the
same block group were deleted recently (measured here under /tmp); a rename within the file
system is ~0.02 ms. A task's start creates two files, so this is about half of an idle start's
time on the loop (P10). The thread keeps KEEP files ready in `<log dir>/.spare`.

A spare is only ever renamed to a name that does not exist, which the caller then opens as it
would have opened a new file (no symlink followed, a plain file with one link, its mode set): a
spare is no more trusted than a fresh file, and whatever is at a name already (a log to append
to, a planted symlink to refuse) is left to the caller, as before. Without a spare ready, or
when anything fails, the caller creates the file itself.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KEEP = 64  # spares kept ready; refilled when a quarter are used (8 slots start 16 files at once)


class SpareFiles:
    def __init__(self, directory: Path, open_dir: Callable[[Path], int], file_mode: int) -> None:
        """open_dir: opens (and makes) a directory the way the caller opens its log directories."""
        self._file_mode = file_mode
        self._ready: collections.deque[str] = collections.deque()  # names in the directory
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ant-spare-files")
        self._refilling = False
        self._fd: int | None = None
        try:
            self._fd = open_dir(directory)
            for entry in os.listdir(self._fd):  # an earlier ANT's (it did not close)
                with contextlib.suppress(OSError):
                    os.unlink(entry, dir_fd=self._fd)
        except OSError:
            pass
        self._broken = self._fd is None  # the directory cannot be used: create files as before
        self._refill_soon()

    def claim(self, dir_fd: int, name: str) -> bool:
        """Rename a spare to `name` in the directory `dir_fd` if nothing has that name. False if
        that was not done: the caller opens or creates the file itself."""
        self._refill_soon()
        if not self._ready or self._fd is None:
            return False
        try:
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            return False  # exists: append to it, truncate it or refuse it, as before
        except FileNotFoundError:
            pass
        except OSError:
            return False
        try:
            spare = self._ready.popleft()
        except IndexError:
            return False
        try:
            os.rename(spare, name, src_dir_fd=self._fd, dst_dir_fd=dir_fd)
        except FileNotFoundError:
            return False  # removed under us: the next claim takes another
        except OSError:
            self._ready.appendleft(spare)  # made meanwhile, or any other trouble
            return False
        return True

    def _refill_soon(self) -> None:
        if self._broken or self._refilling or len(self._ready) > KEEP * 3 // 4:
            return
        self._refilling = True
        try:
            self._thread.submit(self._refill)
        except RuntimeError:  # closed
            self._refilling = False

    def _refill(self) -> None:  # in the thread
        try:
            assert self._fd is not None
            while len(self._ready) < KEEP:
                name = secrets.token_hex(8)
                # A plain file made without opening it (no descriptor comes and goes here); the
                # caller sets its mode exactly when it opens it, as for a file it creates.
                os.mknod(name, stat.S_IFREG | self._file_mode, dir_fd=self._fd)
                self._ready.append(name)
        except OSError:
            self._broken = True  # no space, no permission, ...: tasks create their own files
        finally:
            self._refilling = False

    def close(self) -> None:
        """Wait for the thread, remove the spares left."""
        self._broken = True
        self._thread.shutdown(wait=True)
        if self._fd is not None:
            while self._ready:
                with contextlib.suppress(OSError):
                    os.unlink(self._ready.popleft(), dir_fd=self._fd)
            os.close(self._fd)
            self._fd = None
