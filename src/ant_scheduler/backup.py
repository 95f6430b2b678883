"""A consistent copy of the state database while ANT runs: `ant backup FILE` (cli/operations.py)
downloads it from GET /api/v1/backup (api/routes/backup.py), which makes it here."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def snapshot(db_path: Path, target: Path) -> None:
    """Copy the database into `target` (a new or empty file) with SQLite's online backup API.

    The copy is made in one step, so in one read transaction: it is the database as of one
    commit, while ANT's own connection goes on writing (WAL lets a reader and a writer run at
    once). The copy is one self-contained file (rollback journal, not WAL), ready to open."""
    source = sqlite3.connect(str(db_path), timeout=10)
    try:
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)  # pages=-1: every page in one step
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        source.close()


def describe(path: Path) -> dict[str, int]:
    """Check a backup as SQLite reads it: its integrity, and how many tasks it holds. Raises
    sqlite3.DatabaseError (or ValueError with the reason) when it is not a good ANT database."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise ValueError("integrity check: " + "; ".join(problems[:3]))
        (tasks,) = db.execute("SELECT count(*) FROM tasks").fetchone()
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return {"tasks": int(tasks), "schema_version": int(row[0]) if row else 0}
    finally:
        db.close()
