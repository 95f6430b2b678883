"""GET /api/v1/backup: a consistent copy of the state database (backup.py), for `ant backup`."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ant_scheduler.api.deps import engine_of
from ant_scheduler.backup import snapshot
from ant_scheduler.core.errors import StoreUnavailable

router = APIRouter(tags=["system"])

SQLITE_TYPE = "application/vnd.sqlite3"
STALE_SECONDS = 24 * 3600


def _drop_stale(directory: Path) -> None:
    """Copies left behind when a download was cut off before its clean-up ran."""
    for old in directory.glob(".backup-*.db"):
        try:
            if time.time() - old.stat().st_mtime > STALE_SECONDS:
                old.unlink()
        except OSError:
            pass


@router.get(
    "/api/v1/backup",
    response_class=FileResponse,
    responses={200: {"content": {SQLITE_TYPE: {}}, "description": "The database, one file."}},
)
async def backup(request: Request) -> FileResponse:
    """The state database as of one moment, made with SQLite's online backup API while ANT goes
    on (tasks, their history, the queue's order, toggles, samples). Open it with sqlite3, or
    put it back as `ant.db` in a state directory while ANT is stopped (docs/deployment.md)."""
    db = Path(engine_of(request).store.path)
    _drop_stale(db.parent)
    # Next to the database: the same disk, and only the server's user can read it (0700).
    fd, name = tempfile.mkstemp(prefix=".backup-", suffix=".db", dir=db.parent)
    os.close(fd)
    copy = Path(name)
    try:
        await asyncio.to_thread(snapshot, db, copy)
    except (sqlite3.Error, OSError) as exc:
        copy.unlink(missing_ok=True)
        raise StoreUnavailable(f"could not copy the database: {exc}") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        copy,
        media_type=SQLITE_TYPE,
        filename=f"ant-{stamp}.db",
        background=BackgroundTask(copy.unlink, missing_ok=True),
    )
