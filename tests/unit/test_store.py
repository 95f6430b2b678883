import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ant_scheduler import store as store_module
from ant_scheduler.core.errors import (
    ConfigError,
    DuplicateTaskId,
    InvalidTransition,
    StoreBusy,
    StoreUnavailable,
    TaskNotFound,
)
from ant_scheduler.core.task import Attempt, Dependency, Task, TaskState
from ant_scheduler.store import MIGRATIONS, Store
from tests.unit.executor_requests import fill


def task(task_id: str, state: TaskState = TaskState.QUEUED, **fields: object) -> Task:
    t = Task(
        task_id=task_id,
        command=f"echo {task_id}",
        submitted=f"echo {task_id}",
        n_gpus=1,
        env={},
        state=state,
        priority=0,
        created_at=1.0,
    )
    for key, value in fields.items():
        setattr(t, key, value)
    return t


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state" / "ant.db")


def test_every_field_round_trips(store: Store) -> None:
    t = task(
        "full",
        TaskState.RUNNING,
        env={"Q": 'it\'s "quoted"', "U": "ünï"},
        gpu_ids=[1, 3],
        queue_seq=9,
        started_at=2.5,
        exit_code=None,
        log_path="/l/full.log",
        pid=123,
        pid_start_time=99.25,
        session_id=4,
        reason=None,
        workdir="/w",
        priority=-3,
    )
    store.insert_tasks([t])
    assert store.get_task("full") == t
    assert store.get_task("nope") is None


def test_wal_and_full_sync(store: Store) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_duplicates_are_rejected_atomically(store: Store) -> None:
    store.insert_tasks([task("a")])
    with pytest.raises(DuplicateTaskId, match="'a'"):
        store.insert_tasks([task("b"), task("a")])
    with pytest.raises(DuplicateTaskId, match="'c'"):
        store.insert_tasks([task("c"), task("c")])
    assert store.get_task("b") is None and store.get_task("c") is None
    assert store.existing_ids(["a", "b"]) == {"a"}


def test_update_and_delete(store: Store) -> None:
    t = task("a")
    store.insert_tasks([t])
    t.state = TaskState.RUNNING
    t.gpu_ids = [0]
    store.update_task(t)
    assert store.get_task("a") == t
    with pytest.raises(TaskNotFound):
        store.update_task(task("ghost"))
    assert store.delete_task("a") is True
    assert store.delete_task("a") is False


def test_listing_order_paging_and_search(store: Store) -> None:
    store.insert_tasks(
        [
            task("q-low", priority=0, queue_seq=1),
            task("q-high", priority=5, queue_seq=2),
            task("q-low2", priority=0, queue_seq=0),
            task("run", TaskState.RUNNING, started_at=5.0),
            task("held", TaskState.HELD),
            task("old", TaskState.SUCCEEDED, finished_at=10.0),
            task("new", TaskState.FAILED, finished_at=20.0, command="python 100%_done.py"),
        ]
    )
    tasks, total = store.list_tasks()
    assert [t.task_id for t in tasks] == ["run", "q-high", "q-low2", "q-low", "held", "new", "old"]
    assert total == 7
    page, total = store.list_tasks(limit=2, offset=1)
    assert [t.task_id for t in page] == ["q-high", "q-low2"] and total == 7
    done, n = store.list_tasks(states=[TaskState.SUCCEEDED, TaskState.FAILED])
    assert [t.task_id for t in done] == ["new", "old"] and n == 2
    assert [t.task_id for t in store.list_tasks(q="100%")[0]] == ["new"]
    assert store.list_tasks(q="10_%")[1] == 0  # _ and % are literal
    assert [t.task_id for t in store.list_tasks(q="Q-HI")[0]] == ["q-high"]
    assert store.list_tasks(q="'; DROP TABLE tasks; --")[1] == 0
    assert store.count_by_state()[TaskState.QUEUED] == 3
    assert (store.min_queue_seq(), store.max_queue_seq()) == (0, 2)


def test_hundred_thousand_finished_tasks(store: Store) -> None:
    rows = [
        task(f"hist-{i:06d}", TaskState.SUCCEEDED, finished_at=float(i), queue_seq=i)
        for i in range(100_000)
    ]
    store.insert_tasks(rows)
    page, total = store.list_tasks(limit=50)
    assert total == 100_000
    assert page[0].task_id == "hist-099999" and len(page) == 50
    found, n = store.list_tasks(q="hist-04242", limit=50)
    assert n == 10 and found[0].task_id == "hist-042429"


def test_sessions(store: Store) -> None:
    first = store.begin_session(1.0, "20260101-000000")
    second = store.begin_session(2.0, "20260101-000001")
    store.end_session(first, 1.5)
    rows = store.sessions()
    assert [r.session_id for r in rows] == [second, first]
    assert rows[1].ended_at == 1.5 and rows[0].ended_at is None


def test_restart_ids(store: Store) -> None:
    store.insert_tasks([task("job"), task("job-restart-1")])
    assert store.next_free_restart_id("job") == "job-restart-2"
    assert store.next_free_restart_id("job-restart-1") == "job-restart-2"
    long_id = "x" * 128
    assert len(store.next_free_restart_id(long_id)) == 128


def test_survives_reopen_and_migrates_forward(tmp_path: Path) -> None:
    path = tmp_path / "ant.db"
    with Store(path) as s:
        s.insert_tasks([task("keep")])
        assert s.schema_version == len(MIGRATIONS)

    def v2(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE tasks ADD COLUMN notes TEXT")

    with Store(path, migrations=[*MIGRATIONS, v2]) as s:
        assert s.schema_version == len(MIGRATIONS) + 1
        assert s.get_task("keep") is not None
        cols = [r[1] for r in s._db.execute("PRAGMA table_info(tasks)")]
        assert "notes" in cols
    with pytest.raises(ConfigError, match="newer than this ANT understands"):
        Store(path)


def run_then_kill_minus_9(script: str) -> None:
    """Run the script's writes in a child process, then SIGKILL it, as if ANT crashed."""
    body = script + '\nprint("ok", flush=True)\nimport time\ntime.sleep(60)\n'
    child = subprocess.Popen([sys.executable, "-c", body], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ok"
    child.kill()
    child.wait()


def test_commit_survives_kill_minus_9(tmp_path: Path) -> None:
    path = tmp_path / "ant.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from ant_scheduler.core.task import Task, TaskState
        from ant_scheduler.store import Store
        s = Store(__import__("pathlib").Path({str(path)!r}))
        s.insert_tasks([Task("durable", "c", "c", 0, {{}}, TaskState.QUEUED, 0, 1.0)])
        """
    )
    run_then_kill_minus_9(script)
    with Store(path) as s:
        assert s.get_task("durable") is not None


def test_a_commit_without_fsync_survives_kill_minus_9_and_sync_flushes_it(tmp_path: Path) -> None:
    """P10: the scheduler's own records skip the fsync; a crash of ANT still keeps them (the
    WAL is in the OS's hands); sync() is what makes them survive a power cut too."""
    path = tmp_path / "ant.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from ant_scheduler.core.task import Task, TaskState
        from ant_scheduler.store import Store
        s = Store(__import__("pathlib").Path({str(path)!r}))
        t = Task("t", "c", "c", 0, {{}}, TaskState.QUEUED, 0, 1.0)
        s.insert_tasks([t])
        assert not s.unsynced
        ran = t.copy()
        ran.state = TaskState.RUNNING
        assert s.apply(updates=[(ran, TaskState.QUEUED)], durable=False) == set()
        assert s.unsynced
        assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
        """
    )
    run_then_kill_minus_9(script)
    with Store(path) as s:
        got = s.get_task("t")
        assert got is not None and got.state is TaskState.RUNNING
        done = got.copy()
        done.state = TaskState.SUCCEEDED
        s.apply(updates=[(done, TaskState.RUNNING)], durable=False)
        assert s.unsynced
        s.sync()
        assert not s.unsynced
        s.apply(updates=[(got, TaskState.SUCCEEDED)], durable=False)
        s.insert_tasks([task("x")])  # a durable commit flushes the WAL: earlier commits too
        assert not s.unsynced


def test_changes_are_compare_and_set_and_a_miss_never_blocks_the_batch(store: Store) -> None:
    store.insert_tasks([task("a"), task("b"), task("c")])
    a, b, c = task("a", TaskState.RUNNING), task("b", TaskState.RUNNING), task("gone")
    missed = store.apply(
        updates=[(a, TaskState.QUEUED), (b, TaskState.HELD), (c, TaskState.QUEUED)],
        deletes=[("c", TaskState.QUEUED), ("a", TaskState.QUEUED)],
    )
    assert missed == {"b", "gone", "a"}  # b was not held; gone does not exist; a moved first
    assert store.get_task("a").state is TaskState.RUNNING  # type: ignore[union-attr]
    assert store.get_task("b").state is TaskState.QUEUED  # type: ignore[union-attr]
    assert store.get_task("c") is None
    with pytest.raises(InvalidTransition):
        store.apply(
            inserts=[task("d")],
            updates=[(task("b", TaskState.KILLED), TaskState.HELD)],
            strict=True,
        )
    assert store.get_task("d") is None  # strict: all or nothing


def test_a_locked_database_is_busy_and_changes_nothing(store: Store) -> None:
    store.insert_tasks([task("a")])
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy, match="locked by another process"):
            store.apply(updates=[(task("a", TaskState.RUNNING), TaskState.QUEUED)])
        with pytest.raises(StoreBusy):
            store.insert_tasks([task("b")])
        assert store.get_task("a").state is TaskState.QUEUED  # type: ignore[union-attr]
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.apply(updates=[(task("a", TaskState.RUNNING), TaskState.QUEUED)])  # and works again
    assert store.get_task("a").state is TaskState.RUNNING  # type: ignore[union-attr]


def test_a_full_disk_is_unavailable_and_the_store_recovers(tmp_path: Path) -> None:
    target = tmp_path / "tiny"
    target.mkdir()
    # Room for the empty database's WAL (it grows with the schema) and a few writes.
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(target)])
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        store = Store(target / "ant.db")
        store.insert_tasks([task("a")])
        filler = fill(target)
        big = [task(f"t{i}", command="x" * 2000) for i in range(200)]
        with pytest.raises(StoreUnavailable) as err:
            store.insert_tasks(big)
        assert not isinstance(err.value, StoreBusy) and err.value.status == 503
        filler.unlink()
        store.insert_tasks([task("b")])  # no transaction was left open by the failure
        assert {t.task_id for t in store.load_tasks([TaskState.QUEUED])} == {"a", "b"}
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_database_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ant.db"
    path.parent.mkdir()
    path.touch(mode=0o644)
    path.chmod(0o644)
    store = Store(path)
    store.insert_tasks([task("a")])
    for name in ("ant.db", "ant.db-wal", "ant.db-shm"):
        assert (path.parent / name).stat().st_mode & 0o777 == 0o600, name
    store.close()


def test_an_unfinished_large_submission_can_be_dropped(store: Store) -> None:
    store.insert_tasks([task("kept")])
    store.open_submission("tok")
    store.insert_tasks([task("s1"), task("s2")], staged="tok")
    assert store.drop_unfinished_submissions() == 2
    assert {t.task_id for t in store.load_tasks([TaskState.QUEUED])} == {"kept"}
    store.open_submission("tok2")
    store.insert_tasks([task("s3")], staged="tok2")
    store.close_submission("tok2")
    assert store.drop_unfinished_submissions() == 0
    assert store.get_task("s3") is not None


def test_tasks_from_before_nodes_get_one_node(tmp_path: Path) -> None:
    """A database of the schema before nodes (4 migrations) gains n_nodes 1 and no nodes."""
    path = tmp_path / "ant.db"
    with Store(path, migrations=MIGRATIONS[:4]) as s:
        s._db.execute(
            "INSERT INTO tasks (task_id, command, submitted, n_gpus, env, state, priority, "
            "created_at, gpu_ids, queue_seq) VALUES ('old', 'c', 'c', 2, '{}', 'queued', 0, 1.0, "
            "'[]', 1)"
        )
    with Store(path) as s:
        old = s.get_task("old")
        assert old is not None and (old.n_nodes, old.nodes) == (1, [])
        gang = task("gang")
        gang.n_nodes, gang.nodes = 2, ["node-a", "node-b"]
        s.insert_tasks([gang])
        back = s.get_task("gang")
        assert back is not None and (back.n_nodes, back.nodes) == (2, ["node-a", "node-b"])


# ---------------------------------------------------------------- search index and kept counts

_ALPHABET = list('aBc%_\\\x27" -éÉß日本xX0')


def _like_reference(tasks: list[Task], q: str) -> set[str]:
    """SQLite's LIKE without ESCAPE surprises: a substring, case folded for ASCII only."""

    def fold(text: str) -> str:
        return "".join(c.lower() if c.isascii() else c for c in text)

    needle = fold(q)
    return {
        t.task_id
        for t in tasks
        if any(needle in fold(text) for text in (t.task_id, t.command, t.submitted))
    }


def test_search_matches_like_on_random_data(store: Store) -> None:
    """The trigram index answers exactly what the LIKE scan does, on hostile text, in order."""
    import random

    rng = random.Random(6)

    def text(n: int) -> str:
        return "".join(rng.choice(_ALPHABET) for _ in range(n))

    states = list(TaskState)
    tasks = [
        task(
            f"t{i}-{text(3)}",
            rng.choice(states),
            command=text(rng.randint(0, 30)),
            submitted=text(rng.randint(0, 12)),
            finished_at=float(rng.randint(0, 50)),
            started_at=float(rng.randint(0, 50)),
            priority=rng.randint(0, 2),
            queue_seq=i,
        )
        for i in range(400)
    ]
    store.insert_tasks(tasks)
    assert store._fts  # this SQLite has FTS5 with trigrams (3.34+)
    queries = [text(rng.randint(1, 6)) for _ in range(300)]
    queries += ["%", "_", "\\", "a%", "_B", "\\%", "é", "É", "ÉCO", "ss", "日本", '"', "'", "   "]
    queries += [t.command[2:7] for t in tasks[:40] if len(t.command) > 7]
    for q in queries:
        expected = _like_reference(tasks, q)
        page, total = store.list_tasks(q=q, limit=1000)
        assert {t.task_id for t in page} == expected, q
        assert total == len(expected), q
        store._fts = False  # the LIKE scan: the same page in the same order
        scanned = store.list_tasks(q=q, limit=1000)
        store._fts = True
        assert [t.task_id for t in page] == [t.task_id for t in scanned[0]], q
        assert total == scanned[1]
        finished = [TaskState.SUCCEEDED, TaskState.FAILED]
        part, n = store.list_tasks(states=finished, q=q, limit=7, offset=2)
        store._fts = False
        assert ([t.task_id for t in part], n) == (
            [t.task_id for t in store.list_tasks(states=finished, q=q, limit=7, offset=2)[0]],
            store.list_tasks(states=finished, q=q, limit=7, offset=2)[1],
        )
        store._fts = True


def test_index_and_counts_follow_every_write(store: Store) -> None:
    """Updates (state and text), deletes and undone submissions keep the index and the counts."""
    store.insert_tasks([task(f"a{i}", command=f"train --seed {i}") for i in range(10)])
    store.insert_tasks([task("staged", command="train big")], staged="tok")
    store.open_submission("tok")
    first = store.get_task("a1")
    assert first is not None
    first.command = "evaluate model"
    first.state = TaskState.RUNNING
    store.apply(updates=[(first, TaskState.QUEUED)])
    store.delete_task("a2")
    assert store.drop_unfinished_submissions() == 1
    ids = {t.task_id for t in store.list_tasks(q="train", limit=100)[0]}
    assert ids == {f"a{i}" for i in range(10)} - {"a1", "a2"}
    assert [t.task_id for t in store.list_tasks(q="evaluate")[0]] == ["a1"]
    assert store.list_tasks(q="seed 1")[1] == 0  # a1's old command is gone from the index
    counted = dict(store._read("SELECT state, COUNT(*) FROM tasks GROUP BY state"))
    kept = {s: n for s, n in store._counts().items() if n}
    assert kept == counted == {"queued": 8, "running": 1}
    assert store.list_tasks(states=[TaskState.QUEUED], limit=1)[1] == 8
    assert store._read("INSERT INTO tasks_fts (tasks_fts) VALUES ('integrity-check')") == []


def insert_into_old_schema(s: Store, tasks: list[Task]) -> None:
    """Insert tasks into a store opened with fewer migrations: only the columns its table has
    (later migrations add the others, with their defaults)."""
    with s._tx("adding tasks") as db:
        present = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
        names = [name for name in store_module._COLUMNS if name in present]
        marks = ", ".join("?" * len(names))
        rows = [dict(zip(store_module._COLUMNS, store_module._row(t), strict=True)) for t in tasks]
        db.executemany(
            f"INSERT INTO tasks ({', '.join(names)}) VALUES ({marks})",
            [[row[name] for name in names] for row in rows],
        )


def test_migration_builds_the_index_and_counts(tmp_path: Path) -> None:
    """A database of schema 5 (before the index) is searched and counted the same after."""
    path = tmp_path / "ant.db"
    old_tasks = [
        task(f"old-{i}", TaskState.SUCCEEDED, command=f"python eval.py --run {i}", finished_at=i)
        for i in range(50)
    ] + [task("waiting", command="Python TRAIN.py")]
    with Store(path, migrations=MIGRATIONS[:5]) as s:
        insert_into_old_schema(s, old_tasks)  # (the old schema: no reading with today's columns)
        assert not s._fts and s.schema_version == 5
    matching = [t for t in old_tasks if "run 1" in t.command]  # newest end first
    expected = [t.task_id for t in sorted(matching, key=lambda t: -(t.finished_at or 0))]
    with Store(path) as s:
        assert s._fts and s.schema_version == len(MIGRATIONS)
        after = s.list_tasks(q="run 1", limit=100)
        assert [t.task_id for t in after[0]] == expected
        assert after[1] == 11
        assert [t.task_id for t in s.list_tasks(q="python train")[0]] == ["waiting"]
        assert s.count_by_state()[TaskState.SUCCEEDED] == 50
        assert s.list_tasks()[1] == 51


def test_tasks_from_before_retries_get_none_and_attempts_round_trip(tmp_path: Path) -> None:
    """A database of schema 10 (before retries) gains retries 0, retry on failure, attempt 1 and
    no attempts; a task's ended attempts are stored and read back as they were."""
    path = tmp_path / "ant.db"
    with Store(path, migrations=MIGRATIONS[:10]) as s:
        insert_into_old_schema(s, [task("old", TaskState.FAILED, finished_at=5.0)])
    with Store(path) as s:
        old = s.get_task("old")
        assert old is not None
        assert (old.retries, old.retry_on, old.retry_backoff) == (0, ["failure"], 30.0)
        assert (old.attempt, old.attempts, old.retry_at) == (1, [], None)
        retried = task("again")
        retried.retries, retried.retry_on, retried.retry_backoff = 2, ["failure", "lost"], 0.0
        retried.attempt, retried.retry_at = 2, 99.5
        first = Attempt(1, TaskState.FAILED, 3, 1.0, 2.0, "/l/again.log", "x", {"log": "/l"})
        retried.attempts = [first]
        s.insert_tasks([retried])
        back = s.get_task("again")
        assert back is not None and back.attempts == [first]
        assert (back.retries, back.retry_on, back.retry_backoff) == (2, ["failure", "lost"], 0.0)
        assert (back.attempt, back.retry_at) == (2, 99.5)


def test_the_dependencies_migration(tmp_path: Path) -> None:
    """Tasks stored before `after` existed wait for nothing; dependency_failed tasks are in the
    Completed page's sorted indexes; a rename of a parent is one UPDATE of every `after`."""
    path = tmp_path / "ant.db"
    before = MIGRATIONS.index(store_module._v11)
    old = [task("old", TaskState.SUCCEEDED, finished_at=1.0, started_at=0.5)]
    with Store(path, migrations=MIGRATIONS[:before]) as s:
        insert_into_old_schema(s, old)
    with Store(path) as s:
        stored = s.get_task("old")
        assert stored is not None and stored.after == []
        child = task("child", TaskState.DEPENDENCY_FAILED, finished_at=2.0)
        child.after = [Dependency("old"), Dependency("other", "any")]
        s.insert_tasks([child, task("other")])
        page, total = s.list_tasks(
            states=[TaskState.DEPENDENCY_FAILED, TaskState.SUCCEEDED], sort="finished_at"
        )
        assert [t.task_id for t in page] == ["child", "old"] and total == 2
        assert [t.task_id for t in s.dependents("old")] == ["child"]
        assert s.rename_in_after("old", "renamed") == 1
        renamed = s.get_task("child")
        assert renamed is not None
        assert renamed.after == [Dependency("renamed"), Dependency("other", "any")]
