"""The store's tag index (task_tags, kept by triggers): filled on insert, emptied on delete,
moved by a rename (one UPDATE of task_id), and built for rows of an older schema."""

from __future__ import annotations

from pathlib import Path

from ant_scheduler.core.task import TaskState
from ant_scheduler.store import MIGRATIONS, Store
from tests.unit.test_store import insert_into_old_schema, task


def index(s: Store) -> list[tuple[str, str]]:
    return [tuple(r) for r in s._db.execute("SELECT tag, task_id FROM task_tags ORDER BY 1, 2")]


def test_the_index_follows_inserts_updates_renames_and_deletes(tmp_path: Path) -> None:
    with Store(tmp_path / "ant.db") as s:
        s.insert_tasks([task("a", tags=["x", "y"]), task("b", tags=["x"]), task("c")])
        assert index(s) == [("x", "a"), ("x", "b"), ("y", "a")]
        assert s.tagged_ids("x") == {"a": TaskState.QUEUED, "b": TaskState.QUEUED}
        assert s.get_task("a").tags == ["x", "y"]  # type: ignore[union-attr]
        # A rename is one UPDATE of task_id: the trigger moves the task's tags with it.
        with s._tx() as db:
            db.execute("UPDATE tasks SET task_id = 'a2' WHERE task_id = 'a'")
        assert index(s) == [("x", "a2"), ("x", "b"), ("y", "a2")]
        changed = task("b", tags=["z"])
        s.update_tasks([changed])
        assert index(s) == [("x", "a2"), ("y", "a2"), ("z", "b")]
        s.delete_tasks(["a2"])
        assert index(s) == [("z", "b")]
        assert s.tag_counts(10) == [("z", 1)]
        page, total = s.list_tasks(tags=["z"])
        assert [t.task_id for t in page] == ["b"] and total == 1


def test_an_older_database_gets_empty_tags(tmp_path: Path) -> None:
    path = tmp_path / "ant.db"
    with Store(path, migrations=MIGRATIONS[:-1]) as s:
        insert_into_old_schema(s, [task("old", TaskState.SUCCEEDED, finished_at=1.0)])
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert s.get_task("old").tags == []  # type: ignore[union-attr]
        s.insert_tasks([task("new", tags=["t"])])
        assert index(s) == [("t", "new")]
