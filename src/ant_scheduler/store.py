"""The durable store: SQLite in WAL mode, the single source of truth for tasks and sessions.

Every write is one small transaction. By default it is committed with synchronous=FULL (the WAL
is fsync'd), so when a method returns the change survives kill -9 and power loss. The engine's own
start and end records are written with `durable=False` (synchronous=NORMAL: no fsync), which still
survives kill -9 of ANT (the commit is in the operating system's hands) but not a power cut until
`sync()` has run, which the engine does in a thread right after (docs/performance.md, "What a power
cut can cost"). Writes touch only the rows they change; the cost per event does not grow with
history. One connection, used only from the event-loop thread.

Failures are typed: StoreBusy when another connection holds the database (transient: the caller
retries without blocking the event loop, so the busy timeout here is short), StoreUnavailable for
anything else (disk full, I/O error, read-only). A failed write is always rolled back whole.
State changes are compare-and-set (`WHERE task_id = ? AND state = ?`): a row that changed under
the caller is reported back instead of being overwritten, and never fails the rest of the batch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ant_scheduler.core.errors import (
    ConfigError,
    DuplicateTaskId,
    InvalidTransition,
    StoreBusy,
    StoreUnavailable,
    TaskNotFound,
)
from ant_scheduler.core.order_keys import GAP
from ant_scheduler.core.task import (
    ENDED_STATES,
    FINISHED_STATES,
    Attempt,
    Dependency,
    Task,
    TaskState,
)
from ant_scheduler.core.templates import MAX_TASK_ID_LENGTH
from ant_scheduler.core.usage import UsageRow
from ant_scheduler.core.users import ADMIN_NAME, User

Migration = Callable[[sqlite3.Connection], None]


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE sessions (
            session_id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at REAL NOT NULL,
            log_dir TEXT NOT NULL,
            ended_at REAL
        )"""
    )
    db.execute(
        """CREATE TABLE tasks (
            task_id TEXT PRIMARY KEY,
            command TEXT NOT NULL,
            submitted TEXT NOT NULL,
            n_gpus INTEGER NOT NULL,
            env TEXT NOT NULL,
            state TEXT NOT NULL,
            priority INTEGER NOT NULL,
            created_at REAL NOT NULL,
            workdir TEXT,
            gpu_ids TEXT NOT NULL,
            queue_seq INTEGER NOT NULL,
            started_at REAL,
            finished_at REAL,
            exit_code INTEGER,
            log_path TEXT,
            pid INTEGER,
            pid_start_time REAL,
            session_id INTEGER,
            reason TEXT
        )"""
    )
    db.execute("CREATE INDEX tasks_state ON tasks (state)")
    db.execute("CREATE INDEX tasks_finished ON tasks (finished_at)")


def _v2(db: sqlite3.Connection) -> None:
    # History pages (finished tasks, newest first) without sorting the whole table.
    db.execute("CREATE INDEX tasks_state_finished ON tasks (state, finished_at)")
    db.execute("CREATE INDEX tasks_queue ON tasks (state, priority, queue_seq)")


def _v3(db: sqlite3.Connection) -> None:
    # restarted_as: one live restart copy per task. staged: the large submission a row was
    # written by, in chunks (see open_submission); only read to undo an unfinished one.
    db.execute("ALTER TABLE tasks ADD COLUMN restarted_as TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN staged TEXT")
    # The queue is listed `priority DESC, queue_seq ASC`: an index in that direction reads a page
    # straight off it, where the old one made SQLite sort every queued task for each page.
    db.execute("DROP INDEX tasks_queue")
    db.execute("CREATE INDEX tasks_queue ON tasks (state, priority DESC, queue_seq)")


def _v4(db: sqlite3.Connection) -> None:
    # The executor's handle replaces pid_start_time (left in the table, unused): rows of the
    # local executor get {pid, start_time, log, exit}, the handle it makes today.
    db.execute("ALTER TABLE tasks ADD COLUMN handle TEXT")
    rows = db.execute(
        "SELECT task_id, pid, pid_start_time, log_path FROM tasks WHERE log_path IS NOT NULL"
    ).fetchall()
    for task_id, pid, start_time, log_path in rows:
        handle: dict[str, Any] = {"log": log_path, "exit": str(Path(log_path).with_suffix(".exit"))}
        if pid is not None and start_time is not None:
            handle.update(pid=pid, start_time=start_time)
        db.execute("UPDATE tasks SET handle = ? WHERE task_id = ?", (json.dumps(handle), task_id))


def _v5(db: sqlite3.Connection) -> None:
    # Nodes: a task needs n_gpus GPUs on each of n_nodes nodes; nodes (JSON list) is where each
    # rank ran. Tasks before nodes ran on this machine alone: one node, none named.
    db.execute("ALTER TABLE tasks ADD COLUMN n_nodes INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE tasks ADD COLUMN nodes TEXT NOT NULL DEFAULT '[]'")


def _fts5_trigram(db: sqlite3.Connection) -> bool:
    """Can this SQLite build an FTS5 index with the trigram tokenizer (3.34 and later)?"""
    try:
        db.execute("CREATE VIRTUAL TABLE temp.ant_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error:
        return False
    db.execute("DROP TABLE temp.ant_probe")
    return True


def _v6(db: sqlite3.Connection) -> None:
    # Counts by state, kept by triggers in the transaction of each write: a listing's total
    # is read here instead of counting the rows of its states again for every page.
    db.execute("CREATE TABLE task_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    db.execute("INSERT INTO task_counts SELECT state, COUNT(*) FROM tasks GROUP BY state")
    db.execute(
        """CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO task_counts (state, n) VALUES (new.state, 1)
                ON CONFLICT(state) DO UPDATE SET n = n + 1;
        END"""
    )
    db.execute(
        """CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
            UPDATE task_counts SET n = n - 1 WHERE state = old.state;
        END"""
    )
    db.execute(
        """CREATE TRIGGER task_counts_update AFTER UPDATE OF state ON tasks
        WHEN old.state IS NOT new.state BEGIN
            UPDATE task_counts SET n = n - 1 WHERE state = old.state;
            INSERT INTO task_counts (state, n) VALUES (new.state, 1)
                ON CONFLICT(state) DO UPDATE SET n = n + 1;
        END"""
    )
    # Substring search: a trigram index of the three searched columns (external content: the
    # text stays in tasks once), kept by triggers, built here for the rows already stored.
    # Without FTS5/trigram in this SQLite the search keeps scanning the rows with LIKE.
    if not _fts5_trigram(db):
        return
    db.execute(
        "CREATE VIRTUAL TABLE tasks_fts USING fts5(task_id, command, submitted, "
        "content='tasks', tokenize='trigram')"
    )
    db.execute(
        """CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO tasks_fts (rowid, task_id, command, submitted)
                VALUES (new.rowid, new.task_id, new.command, new.submitted);
        END"""
    )
    db.execute(
        """CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
            INSERT INTO tasks_fts (tasks_fts, rowid, task_id, command, submitted)
                VALUES ('delete', old.rowid, old.task_id, old.command, old.submitted);
        END"""
    )
    db.execute(
        """CREATE TRIGGER tasks_fts_update AFTER UPDATE OF task_id, command, submitted ON tasks
        WHEN old.task_id IS NOT new.task_id OR old.command IS NOT new.command
            OR old.submitted IS NOT new.submitted BEGIN
            INSERT INTO tasks_fts (tasks_fts, rowid, task_id, command, submitted)
                VALUES ('delete', old.rowid, old.task_id, old.command, old.submitted);
            INSERT INTO tasks_fts (rowid, task_id, command, submitted)
                VALUES (new.rowid, new.task_id, new.command, new.submitted);
        END"""
    )
    db.execute("INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild')")


# Ended tasks (the UI's Completed page) sorted by a column: an index per sort key, of ended
# tasks only (queued and running rows, written most, are not in them), so a page in any order is
# read straight off one. The WHERE is part of the schema: a query uses these indexes only when its
# own WHERE repeats `_ENDED_WHERE` word for word, so changing it takes a new migration.
_ENDED_WHERE = (
    "state IN ('succeeded', 'failed', 'killed', 'timed_out', 'dependency_failed', 'lost')"
)
# Sort key -> the SQL it sorts by: the Completed table's sortable columns. The state (filtered
# from the index alone) and the end time (the date range) follow it in each index, so neither
# needs the table row. Each index costs every task's end a few inserts (docs/performance.md).
SORT_KEYS: dict[str, str] = {
    "finished_at": "finished_at",
    "started_at": "started_at",
    "task_id": "task_id",
    "duration": "finished_at - started_at",
    "exit_code": "exit_code",
}


def _v7(db: sqlite3.Connection) -> None:
    _ended_indexes(db)


def _ended_indexes(db: sqlite3.Connection) -> None:
    for key, expr in SORT_KEYS.items():
        rest = "state" if key == "finished_at" else "state, finished_at"
        db.execute(
            f"CREATE INDEX tasks_ended_by_{key} ON tasks ({expr}, {rest}) WHERE {_ENDED_WHERE}"
        )


def _v8(db: sqlite3.Connection) -> None:
    # Timeouts (P12): seconds a task may run before ANT kills it (it ends timed_out).
    db.execute("ALTER TABLE tasks ADD COLUMN timeout REAL")


def _v9(db: sqlite3.Connection) -> None:
    # Monitor samples for the dashboard's charts (monitor/sample_log.py): step 0 the samples as
    # taken, step 10 and 60 averages over those seconds; data is JSON (monitor/downsample.py).
    db.execute(
        """CREATE TABLE samples (
            step REAL NOT NULL,
            t REAL NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (step, t)
        ) WITHOUT ROWID"""
    )


def _v10(db: sqlite3.Connection) -> None:
    # restarted_from: the task a restart copy was made from (restarted_as points the other way).
    db.execute("ALTER TABLE tasks ADD COLUMN restarted_from TEXT")


def _v11(db: sqlite3.Connection) -> None:
    # Dependencies (P12): `after`, a JSON list of {task_id, condition} (the tasks it waits for).
    # A JSON column, so that a rename rewrites every reference in one UPDATE (RENAME_AFTER).
    db.execute("ALTER TABLE tasks ADD COLUMN after TEXT NOT NULL DEFAULT '[]'")
    db.execute("CREATE INDEX tasks_with_after ON tasks (task_id) WHERE after != '[]'")
    # The new ended state dependency_failed joins the Completed page's sort indexes.
    for key in SORT_KEYS:
        db.execute(f"DROP INDEX IF EXISTS tasks_ended_by_{key}")
    _ended_indexes(db)


def _v12(db: sqlite3.Connection) -> None:
    # Retries (P12): how a task retries, its current attempt, the attempts that ended (JSON, each
    # with its exit code and log) and, while it waits out its backoff, when it may start again.
    db.execute("ALTER TABLE tasks ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")
    db.execute("""ALTER TABLE tasks ADD COLUMN retry_on TEXT NOT NULL DEFAULT '["failure"]'""")
    db.execute("ALTER TABLE tasks ADD COLUMN retry_backoff REAL NOT NULL DEFAULT 30")
    db.execute("ALTER TABLE tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE tasks ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]'")
    db.execute("ALTER TABLE tasks ADD COLUMN retry_at REAL")


def _v13(db: sqlite3.Connection) -> None:
    # Tags (P12): the task's list (JSON, the column of Task.tags) and an index of it, task_tags,
    # kept by triggers in the transaction of each write (as task_counts), so a listing filtered
    # by a tag and a bulk action on one read only that tag's rows. A rename (UPDATE of task_id)
    # moves its rows too: the update trigger follows task_id as it follows tags.
    db.execute("ALTER TABLE tasks ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'")
    db.execute(
        """CREATE TABLE task_tags (
            tag TEXT NOT NULL,
            task_id TEXT NOT NULL,
            PRIMARY KEY (tag, task_id)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX task_tags_task ON task_tags (task_id)")
    db.execute(
        """CREATE TRIGGER task_tags_insert AFTER INSERT ON tasks WHEN new.tags != '[]' BEGIN
            INSERT OR IGNORE INTO task_tags (tag, task_id)
                SELECT value, new.task_id FROM json_each(new.tags);
        END"""
    )
    db.execute(
        """CREATE TRIGGER task_tags_delete AFTER DELETE ON tasks WHEN old.tags != '[]' BEGIN
            DELETE FROM task_tags WHERE task_id = old.task_id;
        END"""
    )
    db.execute(
        """CREATE TRIGGER task_tags_update AFTER UPDATE OF task_id, tags ON tasks
        WHEN old.task_id IS NOT new.task_id OR old.tags IS NOT new.tags BEGIN
            DELETE FROM task_tags WHERE task_id = old.task_id;
            INSERT OR IGNORE INTO task_tags (tag, task_id)
                SELECT value, new.task_id FROM json_each(new.tags);
        END"""
    )


def _v14(db: sqlite3.Connection) -> None:
    # Reordering (P12): queue_seq keys get gaps (core/order_keys.py) so that a move changes one
    # row. The order is unchanged. One statement; no trigger watches queue_seq.
    db.execute(f"UPDATE tasks SET queue_seq = queue_seq * {GAP}")
    # Renaming (P12) updates the rows that name the task; these keep that to a lookup.
    for column in ("restarted_as", "restarted_from"):
        db.execute(f"CREATE INDEX tasks_{column} ON tasks ({column}) WHERE {column} IS NOT NULL")


def _v15(db: sqlite3.Connection) -> None:
    # Notifications (P12): a task's own webhook URL, POSTed to when it ends.
    db.execute("ALTER TABLE tasks ADD COLUMN notify TEXT")


def _v16(db: sqlite3.Connection) -> None:
    # GPU memory packing and placement (P13): declared bytes of a shared GPU, why a task got its
    # GPUs, and the most memory seen while it used more than it declared.
    db.execute("ALTER TABLE tasks ADD COLUMN gpu_mem INTEGER")
    db.execute("ALTER TABLE tasks ADD COLUMN placement TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN gpu_mem_over INTEGER")


def _v17(db: sqlite3.Connection) -> None:
    # Several users (P13): each task's owner (tasks from before users are the admin's), and the
    # users, each with the sha256 of its token (the token itself is shown once, never stored).
    db.execute(f"ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '{ADMIN_NAME}'")
    db.execute(
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            admin INTEGER NOT NULL DEFAULT 0,
            max_gpus INTEGER,
            max_queued INTEGER,
            created_at REAL NOT NULL
        )"""
    )
    # `ant ls --user NAME` and the UI's user filter: a user's tasks by state, not a scan.
    db.execute("CREATE INDEX tasks_owner ON tasks (owner, state)")


MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10]
MIGRATIONS += [_v11, _v12, _v13, _v14, _v15]  # P12
MIGRATIONS += [_v16]  # P13: GPU memory packing, placement
MIGRATIONS += [_v17]  # P13: several users

# `ant rename OLD NEW`: every task's `after` follows the new id (parameters: old, new, old).
RENAME_AFTER = """UPDATE tasks SET after = (
        SELECT json_group_array(json_object(
            'task_id', CASE json_extract(d.value, '$.task_id')
                WHEN ?1 THEN ?2 ELSE json_extract(d.value, '$.task_id') END,
            'condition', json_extract(d.value, '$.condition')))
        FROM json_each(tasks.after) AS d)
    WHERE after != '[]' AND EXISTS (
        SELECT 1 FROM json_each(tasks.after) AS d WHERE json_extract(d.value, '$.task_id') = ?1)"""

# One column per field of Task (core/task.py declares a task once); these are JSON text.
_COLUMNS = [f.name for f in dataclasses.fields(Task)]
assert _COLUMNS[0] == "task_id"  # the key: _UPDATE and the row tuples rely on its place
_JSON_COLUMNS = frozenset({"env", "gpu_ids", "handle", "nodes", "retry_on", "attempts", "tags"})
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM tasks"
_MARKS = ", ".join("?" * (len(_COLUMNS) + 1))
_INSERT = f"INSERT INTO tasks ({', '.join(_COLUMNS)}, staged) VALUES ({_MARKS})"
_UPDATE = f"UPDATE tasks SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE task_id = ?"
_UPDATE_IF = f"{_UPDATE} AND state = ?"
# SQLite result codes (the low byte of extended codes) that mean "try again in a moment".
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
_SUBMISSION = "open_submission:"

# Listing order: running, queued (queue order), held and lost, then finished newest first.
_FINISHED_SQL = ", ".join(f"'{s.value}'" for s in FINISHED_STATES)
_ORDER = f"""ORDER BY
    CASE state WHEN 'running' THEN 0 WHEN 'queued' THEN 1 WHEN 'held' THEN 2 WHEN 'lost' THEN 2
               ELSE 3 END,
    CASE WHEN state = 'running' THEN started_at END ASC,
    CASE WHEN state = 'queued' THEN -priority END ASC,
    CASE WHEN state = 'queued' THEN queue_seq END ASC,
    CASE WHEN state IN ('held', 'lost') THEN created_at END ASC,
    CASE WHEN state IN ({_FINISHED_SQL}) THEN finished_at END DESC,
    rowid DESC"""


# (states, index hint, order). History is read newest first straight off the finished_at index;
# left to itself the planner picks the state index and sorts all of history for every page.
_GROUPS: list[tuple[list[TaskState], str, str]] = [
    ([TaskState.RUNNING], "", "started_at ASC, rowid ASC"),
    ([TaskState.QUEUED], "", "priority DESC, queue_seq ASC"),
    ([TaskState.HELD, TaskState.LOST], "", "created_at ASC, rowid ASC"),
    (
        sorted(FINISHED_STATES),
        "INDEXED BY tasks_finished",
        "finished_at DESC, rowid DESC",
    ),
]


@dataclass(frozen=True)
class SessionRow:
    session_id: int
    started_at: float
    log_dir: str
    ended_at: float | None


def _row(task: Task) -> tuple[Any, ...]:
    values = []
    for name in _COLUMNS:
        value = getattr(task, name)
        if name == "attempts":
            value = json.dumps([a.as_json() for a in value]) if value else "[]"
        elif name == "after":
            value = json.dumps([{"task_id": d.task_id, "condition": d.condition} for d in value])
        elif name in _JSON_COLUMNS:
            value = json.dumps(value)
        elif isinstance(value, TaskState):
            value = value.value
        values.append(value)
    return tuple(values)


def _task(row: Sequence[Any]) -> Task:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        raw = values[name]
        values[name] = None if raw is None else json.loads(raw)
    values["state"] = TaskState(values["state"])
    values["attempts"] = [_attempt(a) for a in values["attempts"] or ()]
    after = json.loads(values["after"])
    values["after"] = [Dependency(d["task_id"], d["condition"]) for d in after]
    return Task(**values)


def _attempt(data: dict[str, Any]) -> Attempt:
    return Attempt(**{**data, "state": TaskState(data["state"])})


def _check_unique(ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            raise DuplicateTaskId(f"duplicate task id {task_id!r}")
        seen.add(task_id)


# Trigrams index substrings of three characters or more; shorter searches scan with LIKE.
_FTS_MIN_CHARS = 3
_LIKE_SEARCH = (
    "(task_id LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\' OR submitted LIKE ? ESCAPE '\\')"
)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _failure(exc: sqlite3.Error, doing: str) -> StoreUnavailable:
    code = getattr(exc, "sqlite_errorcode", None)
    if (
        isinstance(exc, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF in (_BUSY_CODES)
    ):
        return StoreBusy(f"the database is locked by another process ({doing})")
    return StoreUnavailable(f"the database cannot be used ({doing}): {exc}")


def _private_file(path: Path) -> None:
    """Create the file 0600 if missing, tighten it if not: SQLite gives -wal/-shm its mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        try:
            if not side.is_symlink() and side.stat().st_mode & 0o077:
                side.chmod(0o600)
        except FileNotFoundError:
            pass


class Store:
    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration] | None = None,
        *,
        busy_timeout_ms: int = 100,
    ) -> None:
        self.path = path
        # Commits made without an fsync, counted (on the loop's thread), and how many of them
        # are known to be on disk (sync(), or a durable commit, which flushes the WAL too).
        self.committed = 0
        self.flushed = 0
        self._wal = str(path) + "-wal"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            _private_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot open the database {path}: {exc.strerror}") from None
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # Short on purpose: a lock held elsewhere must not stall the event loop; the engine
            # retries later instead (StoreBusy).
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise _failure(exc, "opening it") from None
        self._migrate(list(MIGRATIONS if migrations is None else migrations))
        # The trigram index, when the migrations made one (not without FTS5 in SQLite).
        tables = {r[0] for r in self._read("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self._fts = "tasks_fts" in tables
        self._kept_counts = "task_counts" in tables
        indexes = {r[0] for r in self._read("SELECT name FROM sqlite_master WHERE type = 'index'")}
        self._sort_indexes = all(f"tasks_ended_by_{key}" in indexes for key in SORT_KEYS)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self, doing: str = "writing", *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back whole and a typed error raised."""
        try:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._restore_sync(durable)
            raise _failure(exc, doing) from None
        try:
            yield self._db
            self._db.execute("COMMIT")
            if durable:  # the WAL was flushed: with every earlier commit in it
                self.flushed = max(self.flushed, self.committed)
            else:
                self.committed += 1
        except BaseException as exc:
            # A failed COMMIT (disk full) leaves the transaction open: close it, or every
            # later BEGIN would fail too.
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            if isinstance(exc, sqlite3.Error):
                raise _failure(exc, doing) from None
            raise
        finally:
            self._restore_sync(durable)

    def _restore_sync(self, durable: bool) -> None:
        if not durable:
            try:
                self._db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error:
                pass  # no transaction is open here; this only fails on a closed connection

    @property
    def unsynced(self) -> bool:
        """A commit made without an fsync is not known to be on disk yet."""
        return self.flushed < self.committed

    def sync(self) -> None:
        """Make every commit made so far durable: fsync the WAL, where the commits are. Safe
        from any thread (it uses its own file descriptor, never the connection). Raises
        StoreUnavailable if the disk refuses (the commits stay unsynced)."""
        seq = self.committed  # commits counted here are written: the fsync covers them
        try:
            fd = os.open(self._wal, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            fd = -1  # no WAL (yet, or any more, after a checkpoint that flushed it all)
        if fd >= 0:
            try:
                os.fsync(fd)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot flush the database to disk ({exc.strerror or exc})"
                ) from None
            finally:
                os.close(fd)
        self.flushed = max(self.flushed, seq)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _failure(exc, "reading") from None

    def _migrate(self, migrations: list[Migration]) -> None:
        with self._tx("creating it"):
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        current = self.schema_version
        if current > len(migrations):
            raise ConfigError(
                f"the database {self.path} has schema version {current}, newer than this ANT "
                f"understands ({len(migrations)}); upgrade ANT or use another state directory"
            )
        for version in range(current + 1, len(migrations) + 1):
            with self._tx("upgrading its schema") as db:
                migrations[version - 1](db)
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx("saving a setting") as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def server_id(self) -> str:
        """A random id made once per database: it marks this server's task processes."""
        rows = self._read("SELECT value FROM meta WHERE key = 'server_id'")
        if rows:
            return str(rows[0][0])
        value = secrets.token_hex(8)
        with self._tx("saving the server id") as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('server_id', ?)", (value,))
        return str(self._read("SELECT value FROM meta WHERE key = 'server_id'")[0][0])

    @property
    def schema_version(self) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sessions

    def begin_session(self, started_at: float, log_dir: str) -> int:
        with self._tx("starting a session") as db:
            cur = db.execute(
                "INSERT INTO sessions (started_at, log_dir) VALUES (?, ?)", (started_at, log_dir)
            )
            return int(cur.lastrowid or 0)

    def end_session(self, session_id: int, ended_at: float) -> None:
        with self._tx("ending the session") as db:
            db.execute(
                "UPDATE sessions SET ended_at = ? WHERE session_id = ?", (ended_at, session_id)
            )

    def sessions(self) -> list[SessionRow]:
        rows = self._read(
            "SELECT session_id, started_at, log_dir, ended_at FROM sessions "
            "ORDER BY session_id DESC"
        )
        return [SessionRow(*row) for row in rows]

    # ------------------------------------------------------------------ tasks: writes

    def insert_tasks(
        self, tasks: Sequence[Task], *, staged: str | None = None, durable: bool = True
    ) -> None:
        """All or nothing: a duplicate id (in the batch or stored) rejects the whole batch.

        `staged` names the open large submission (open_submission) these rows belong to.
        `durable=False`: see apply().
        """
        _check_unique(t.task_id for t in tasks)
        try:
            with self._tx("adding tasks", durable=durable) as db:
                db.executemany(_INSERT, [(*_row(t), staged) for t in tasks])
        except sqlite3.IntegrityError:
            self._raise_duplicate([t.task_id for t in tasks])

    # A submission too large for one short transaction is written in chunks. Its token is
    # recorded first; while it is recorded the chunks are provisional, and a start-up after a
    # crash deletes them (drop_unfinished_submissions). close_submission makes them final.

    def open_submission(self, token: str) -> None:
        with self._tx("adding tasks") as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, '')", (_SUBMISSION + token,))

    def close_submission(self, token: str) -> None:
        with self._tx("adding tasks") as db:
            db.execute("DELETE FROM meta WHERE key = ?", (_SUBMISSION + token,))

    def drop_submission(self, token: str) -> int:
        """Undo an unfinished large submission: delete its rows and its token."""
        with self._tx("undoing an unfinished submission") as db:
            cur = db.execute("DELETE FROM tasks WHERE staged = ?", (token,))
            db.execute("DELETE FROM meta WHERE key = ?", (_SUBMISSION + token,))
            return int(cur.rowcount)

    def drop_unfinished_submissions(self) -> int:
        rows = self._read("SELECT key FROM meta WHERE key LIKE ?", (_SUBMISSION + "%",))
        return sum(self.drop_submission(key[len(_SUBMISSION) :]) for (key,) in rows)

    def apply(
        self,
        *,
        inserts: Sequence[Task] = (),
        updates: Sequence[tuple[Task, TaskState]] = (),
        deletes: Sequence[tuple[str, TaskState]] = (),
        strict: bool = False,
        durable: bool = True,
    ) -> set[str]:
        """Write a batch of changes in one transaction.

        `durable=False`: committed without an fsync (see the module docstring); `unsynced` is
        then true until `sync()` (or a durable commit) has flushed it.

        Updates and deletes are compare-and-set: each applies only if the stored row is still
        in the expected state. The ids that did not apply (row gone or in another state) are
        returned; the rest of the batch is committed regardless, unless `strict`: then a miss
        rolls the whole batch back and raises InvalidTransition. Inserts are all or nothing
        (DuplicateTaskId rolls back the whole batch).
        """
        missed: set[str] = set()
        if inserts:
            _check_unique(t.task_id for t in inserts)
        try:
            with self._tx("saving task changes", durable=durable) as db:
                if inserts:
                    db.executemany(_INSERT, [(*_row(t), None) for t in inserts])
                for task, expected in updates:
                    row = _row(task)
                    cur = db.execute(_UPDATE_IF, (*row[1:], row[0], expected.value))
                    if cur.rowcount == 0:
                        missed.add(task.task_id)
                for task_id, expected in deletes:
                    cur = db.execute(
                        "DELETE FROM tasks WHERE task_id = ? AND state = ?",
                        (task_id, expected.value),
                    )
                    if cur.rowcount == 0:
                        missed.add(task_id)
                if strict and missed:
                    raise InvalidTransition(
                        f"task {min(missed)!r} changed meanwhile; nothing was done, try again"
                    )
        except sqlite3.IntegrityError:
            self._raise_duplicate([t.task_id for t in inserts])
        return missed

    def rename_task(self, old_id: str, renamed: Task, expected: TaskState) -> None:
        """Give a task a new id, in one fsync'd transaction: its row (`renamed`, written whole:
        the new id, the handle that names the moved files) and every reference to it.

        InvalidTransition if the row is gone or no longer in `expected`; DuplicateTaskId if the
        new id is taken (nothing is written then).
        """
        # Every table or column that names a task by id gets one UPDATE here: restarts'
        # references, the dependencies (`after`: RENAME_AFTER) and the tags.
        new_id = renamed.task_id
        row = _row(renamed)
        try:
            with self._tx("renaming a task") as db:
                cur = db.execute(
                    f"UPDATE tasks SET {', '.join(f'{c} = ?' for c in _COLUMNS)} "
                    "WHERE task_id = ? AND state = ?",
                    (*row, old_id, expected.value),
                )
                if cur.rowcount == 0:
                    raise InvalidTransition(
                        f"task {old_id!r} changed meanwhile; nothing was done, try again"
                    )
                db.execute(
                    "UPDATE tasks SET restarted_as = ? WHERE restarted_as = ?", (new_id, old_id)
                )
                db.execute(
                    "UPDATE tasks SET restarted_from = ? WHERE restarted_from = ?",
                    (new_id, old_id),
                )
                db.execute(RENAME_AFTER, (old_id, new_id))
        except sqlite3.IntegrityError:
            raise DuplicateTaskId(f"task id {new_id!r} is taken") from None

    def update_task(self, task: Task) -> None:
        self.update_tasks([task])

    def update_tasks(self, tasks: Sequence[Task]) -> None:
        """Unconditional writes (start-up recovery, tests); the engine otherwise uses apply()."""
        if not tasks:
            return
        with self._tx("saving task changes") as db:
            for task in tasks:
                row = _row(task)
                cur = db.execute(_UPDATE, (*row[1:], row[0]))
                if cur.rowcount == 0:
                    raise TaskNotFound(f"no task with id {task.task_id!r}")

    def delete_task(self, task_id: str) -> bool:
        return self.delete_tasks([task_id]) == 1

    def delete_tasks(self, task_ids: Sequence[str]) -> int:
        with self._tx("deleting tasks") as db:
            cur = db.executemany("DELETE FROM tasks WHERE task_id = ?", [(i,) for i in task_ids])
            return int(cur.rowcount)

    def _raise_duplicate(self, ids: list[str]) -> None:
        taken = sorted(self.existing_ids(ids))
        raise DuplicateTaskId(
            f"duplicate task id {taken[0]!r}" if taken else "duplicate task id"
        ) from None

    # ------------------------------------------------------------------ tasks: reads

    def get_task(self, task_id: str) -> Task | None:
        rows = self._read(f"{_SELECT} WHERE task_id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    def exists(self, task_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM tasks WHERE task_id = ?", (task_id,)))

    def existing_ids(self, task_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        ids = list(task_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._read(f"SELECT task_id FROM tasks WHERE task_id IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found

    def load_tasks(self, states: Collection[TaskState]) -> list[Task]:
        if not states:
            return []
        marks = ", ".join("?" * len(states))
        rows = self._read(
            f"{_SELECT} WHERE state IN ({marks}) {_ORDER}",
            [s.value for s in states],
        )
        return [_task(r) for r in rows]

    def list_tasks(
        self,
        *,
        states: Collection[TaskState] | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str | None = None,
        descending: bool = True,
        ended_since: float | None = None,
        ended_before: float | None = None,
        tags: Sequence[str] = (),
        owner: str | None = None,
    ) -> tuple[list[Task], int]:
        """One page, and how many tasks match in all. `owner`: only that user's tasks.

        Without `sort`, in listing order: a sequence of state groups, each read on its own with
        its own index-friendly ORDER BY, instead of sorting the whole table. With `sort` (a key
        of SORT_KEYS), by that column (ties by state, end time, then insertion); a sort of ended
        tasks only is read off that key's index, any other is sorted by SQLite. Tasks without
        the value (never started: no start time or duration) sort as the smallest.

        `ended_since` (inclusive) and `ended_before` (exclusive) keep tasks whose end time is in
        that range (tasks that have not ended have none, so they are left out).

        `tags` keeps tasks carrying every one of them, looked up in task_tags (a tag's tasks
        first, then their rows by key: the cost follows the tag, not the history).

        Without a search or a range the total comes from the counts the triggers keep; with one,
        from one count of the matches. The search is a case-insensitive (ASCII, as SQLite's LIKE)
        substring of the id, the command or the submitted text. Three characters or more are
        looked up in the trigram index (whose candidates are then checked with the same LIKE, so
        the answer is LIKE's to the letter); shorter ones scan the rows.
        """
        if sort is not None and sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {sort!r}")
        wanted = set(states) if states else set(TaskState)
        search = ""
        search_args: list[Any] = []
        via_index = False
        if q:
            search = f" AND {_LIKE_SEARCH}"
            search_args = [_like(q)] * 3
            if self._fts and len(q) >= _FTS_MIN_CHARS and "\x00" not in q:
                via_index = True
                search = (
                    " AND rowid IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?)" + search
                )
                search_args = ['"' + q.replace('"', '""') + '"', *search_args]
        for tag in tags:
            via_index = True  # the tag's few rows first: no index hint that walks them all
            search += " AND task_id IN (SELECT task_id FROM task_tags WHERE tag = ?)"
            search_args.append(tag)
        if owner is not None:
            search += " AND owner = ?"
            search_args.append(owner)
        if ended_since is not None:
            search += " AND finished_at >= ?"
            search_args.append(ended_since)
        if ended_before is not None:
            search += " AND finished_at < ?"
            search_args.append(ended_before)
        counts = self._counts(search, search_args, wanted) if search else self._counts()
        if sort is not None:
            return self._sorted_page(
                wanted, counts, search, search_args, via_index, sort, descending, limit, offset
            )
        page: list[Task] = []
        total = 0
        skip, room = offset, limit
        for group, hint, order in _GROUPS:
            chosen = [s.value for s in group if s in wanted]
            if not chosen:
                continue
            n = sum(counts.get(s, 0) for s in chosen)
            total += n
            if room > 0 and skip < n:
                where = f"WHERE state IN ({', '.join('?' * len(chosen))}){search}"
                rows = self._read(
                    f"{_SELECT} {'' if via_index else hint} {where} "
                    f"ORDER BY {order} LIMIT ? OFFSET ?",
                    [*chosen, *search_args, room, skip],
                )
                page += [_task(r) for r in rows]
                room -= len(rows)
                skip = 0
            else:
                skip = max(0, skip - n)
        return page, total

    def _sorted_page(
        self,
        wanted: set[TaskState],
        counts: dict[str, int],
        search: str,
        search_args: list[Any],
        via_index: bool,
        sort: str,
        descending: bool,
        limit: int,
        offset: int,
    ) -> tuple[list[Task], int]:
        chosen = [s.value for s in TaskState if s in wanted]
        total = sum(counts.get(s, 0) for s in chosen)
        if offset >= total:
            return [], total
        way = "DESC" if descending else "ASC"
        order = f"{SORT_KEYS[sort]} {way}, state {way}"
        if sort != "finished_at":
            order += f", finished_at {way}"
        order += f", rowid {way}"
        where, hint = "WHERE", ""
        if wanted <= ENDED_STATES and self._sort_indexes:
            where = f"WHERE {_ENDED_WHERE} AND"
            # A trigram search picks its few candidates first; anything else reads the index in
            # order (left to itself, the planner would take the state index and sort).
            hint = "" if via_index else f"INDEXED BY tasks_ended_by_{sort}"
            if len(chosen) == 1:
                # `state IN (x)` would become `state = x`, a constant the planner then drops
                # from the ORDER BY, sorting every tie of the key; a state no row has keeps it.
                chosen.append("")
        rows = self._read(
            f"{_SELECT} {hint} {where} state IN ({', '.join('?' * len(chosen))}){search} "
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            [*chosen, *search_args, limit, offset],
        )
        return [_task(r) for r in rows], total

    def _counts(
        self, search: str = "", args: Sequence[Any] = (), states: Collection[TaskState] = ()
    ) -> dict[str, int]:
        """Tasks by state: all (kept by triggers), or those of `states` matching a search."""
        if not search and self._kept_counts:
            rows = self._read("SELECT state, n FROM task_counts")
        else:
            chosen = [s.value for s in states or TaskState]
            rows = self._read(
                f"SELECT state, COUNT(*) FROM tasks WHERE state IN "
                f"({', '.join('?' * len(chosen))}){search} GROUP BY state",
                [*chosen, *args],
            )
        return {str(state): int(n) for state, n in rows}

    def tagged(self, tag: str, states: Collection[TaskState]) -> list[Task]:
        """The tasks carrying `tag` in one of `states`, in listing order (off task_tags)."""
        if not states:
            return []
        marks = ", ".join("?" * len(states))
        rows = self._read(
            f"{_SELECT} WHERE task_id IN (SELECT task_id FROM task_tags WHERE tag = ?) "
            f"AND state IN ({marks}) {_ORDER}",
            [tag, *(s.value for s in states)],
        )
        return [_task(r) for r in rows]

    def tagged_ids(self, tag: str, states: Collection[TaskState] = ()) -> dict[str, TaskState]:
        """The tasks carrying `tag` (in one of `states`; all if none), id -> state, off
        task_tags: the cost follows the tag, not the table."""
        chosen = [s.value for s in states or TaskState]
        rows = self._read(
            "SELECT t.task_id, t.state FROM task_tags g JOIN tasks t ON t.task_id = g.task_id "
            f"WHERE g.tag = ? AND t.state IN ({', '.join('?' * len(chosen))})",
            [tag, *chosen],
        )
        return {str(task_id): TaskState(state) for task_id, state in rows}

    def tag_owners(self, tag: str) -> set[str]:
        """The owners of the tasks carrying `tag` (off task_tags)."""
        rows = self._read(
            "SELECT DISTINCT t.owner FROM task_tags g JOIN tasks t ON t.task_id = g.task_id "
            "WHERE g.tag = ?",
            (tag,),
        )
        return {str(owner) for (owner,) in rows}

    def tag_counts(self, limit: int) -> list[tuple[str, int]]:
        """(tag, how many tasks carry it), by tag, at most `limit` tags."""
        rows = self._read(
            "SELECT tag, COUNT(*) FROM task_tags GROUP BY tag ORDER BY tag LIMIT ?", (limit,)
        )
        return [(str(tag), int(n)) for tag, n in rows]

    def max_queue_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(queue_seq), 0) FROM tasks")[0][0])

    def min_queue_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MIN(queue_seq), 0) FROM tasks")[0][0])

    def count_by_state(self) -> dict[TaskState, int]:
        counts = {state: 0 for state in TaskState}
        for state, n in self._counts().items():
            counts[TaskState(state)] = n
        return counts

    def count_ended_since(self, states: Iterable[TaskState], since: float) -> int:
        """Tasks that ended in one of `states` at `since` or later (off the (state, finished_at)
        index: one search per state)."""
        values = [state.value for state in states]
        marks = ", ".join("?" * len(values))
        rows = self._read(
            f"SELECT COUNT(*) FROM tasks WHERE state IN ({marks}) AND finished_at >= ?",
            (*values, since),
        )
        return int(rows[0][0])

    def gpu_intervals(self, since: float, limit: int) -> list[tuple[Any, ...]]:
        """Tasks that held GPUs and ended at `since` or later, newest end first, at most `limit`:
        (task_id, command, state, started_at, finished_at, gpu_ids, exit_code). Read off the
        finished_at index: the cost follows the window, not the history."""
        rows = self._read(
            "SELECT task_id, command, state, started_at, finished_at, gpu_ids, exit_code "
            "FROM tasks INDEXED BY tasks_finished WHERE finished_at >= ? "
            "AND started_at IS NOT NULL AND gpu_ids != '[]' ORDER BY finished_at DESC LIMIT ?",
            (since, limit),
        )
        return [(*row[:5], json.loads(row[5]), row[6]) for row in rows]

    def usage_rows(self, since: float) -> list[UsageRow]:
        """The runs that held GPUs at `since` or later, for core/usage.py: tasks that ended
        since (off the finished_at index), running ones, and queued ones between retries (their
        earlier attempts)."""
        columns = "owner, tags, n_gpus * n_nodes, state, started_at, finished_at, attempts"
        rows = self._read(
            f"SELECT {columns} FROM tasks INDEXED BY tasks_finished "
            "WHERE finished_at >= ? AND n_gpus > 0",
            (since,),
        )
        rows += self._read(
            f"SELECT {columns} FROM tasks WHERE n_gpus > 0 AND (state = 'running' "
            "OR (state = 'queued' AND attempts != '[]'))"
        )
        return [
            UsageRow(
                owner=str(owner),
                tags=tuple(json.loads(tags)),
                gpus=int(gpus),
                running=state == TaskState.RUNNING.value,
                started_at=started,
                finished_at=finished,
                attempts=tuple(
                    (a.get("started_at"), a.get("finished_at")) for a in json.loads(attempts)
                ),
            )
            for owner, tags, gpus, state, started, finished, attempts in rows
        ]

    # ------------------------------------------------------------------ users

    def users(self) -> list[User]:
        rows = self._read(
            "SELECT name, admin, max_gpus, max_queued, created_at, token_hash FROM users "
            "ORDER BY name"
        )
        return [User(str(n), bool(a), mg, mq, float(c), str(h)) for n, a, mg, mq, c, h in rows]

    def add_user(self, user: User) -> None:
        """DuplicateUser if the name is taken."""
        from ant_scheduler.core.errors import DuplicateUser

        try:
            with self._tx("adding a user") as db:
                db.execute(
                    "INSERT INTO users (name, token_hash, admin, max_gpus, max_queued, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        user.name,
                        user.token_hash,
                        int(user.admin),
                        user.max_gpus,
                        user.max_queued,
                        user.created_at,
                    ),
                )
        except sqlite3.IntegrityError:
            raise DuplicateUser(f"a user named {user.name!r} exists already") from None

    def update_user(self, user: User) -> bool:
        with self._tx("changing a user") as db:
            cursor = db.execute(
                "UPDATE users SET token_hash = ?, admin = ?, max_gpus = ?, max_queued = ? "
                "WHERE name = ?",
                (user.token_hash, int(user.admin), user.max_gpus, user.max_queued, user.name),
            )
            return cursor.rowcount > 0

    def delete_user(self, name: str) -> bool:
        with self._tx("removing a user") as db:
            return db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    # ------------------------------------------------------------------ monitor samples

    def add_samples(self, rows: Sequence[tuple[float, float, str]]) -> None:
        """(step, t, data) rows, committed without an fsync: samples are not worth one (a
        power cut may cost the last few, never the tasks)."""
        with self._tx("saving monitor samples", durable=False) as db:
            db.executemany("INSERT OR REPLACE INTO samples (step, t, data) VALUES (?, ?, ?)", rows)

    def samples(self, step: float, since: float) -> list[tuple[float, str]]:
        """One tier's rows from `since` on, oldest first."""
        rows = self._read(
            "SELECT t, data FROM samples WHERE step = ? AND t >= ? ORDER BY t", (step, since)
        )
        return [(float(t), str(data)) for t, data in rows]

    def prune_samples(self, oldest: Mapping[float, float]) -> None:
        """Delete each tier's rows older than its `oldest` time (step -> t)."""
        with self._tx("pruning monitor samples", durable=False) as db:
            db.executemany("DELETE FROM samples WHERE step = ? AND t < ?", list(oldest.items()))

    def dependents(self, task_id: str) -> list[Task]:
        """The tasks whose `after` names this one (off the index of tasks with dependencies)."""
        rows = self._read(
            f"{_SELECT} WHERE after != '[]' AND EXISTS (SELECT 1 FROM json_each(tasks.after) "
            "AS d WHERE json_extract(d.value, '$.task_id') = ?) ORDER BY queue_seq",
            (task_id,),
        )
        return [_task(r) for r in rows]

    def rename_in_after(self, old: str, new: str) -> int:
        """Point every `after` naming `old` at `new` (for `ant rename`); how many tasks changed."""
        with self._tx("renaming a dependency") as db:
            return int(db.execute(RENAME_AFTER, (old, new)).rowcount)

    def next_free_restart_id(self, base: str, skip: Collection[str] = ()) -> str:
        """`<base>-restart-N` with the smallest unused N >= 1 (not stored, not in `skip`),
        trimmed to the id length limit.

        Restarting `job-restart-1` gives `job-restart-2`, not `job-restart-1-restart-1`.
        """
        base = re.sub(r"-restart-\d+$", "", base) or base
        n = 1
        while True:
            suffix = f"-restart-{n}"
            candidate = base[: MAX_TASK_ID_LENGTH - len(suffix)] + suffix
            if candidate not in skip and not self.exists(candidate):
                return candidate
            n += 1
