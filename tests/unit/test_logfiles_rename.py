"""A task's files take its new name (executors/logfiles.py): hard links first, the old names
dropped once the rename is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ant_scheduler.executors.logfiles import link_files, renamed_handle, task_files, unlink_files


def test_a_rename_links_then_drops_every_file_named_after_the_task(tmp_path: Path) -> None:
    session = tmp_path / "20260101-120000"
    session.mkdir()
    (session / "job.log").write_text("epoch 1\n")
    (session / "job.exit").write_text("0\n")
    (session / "job.log.rank1").write_text("rank 1\n")
    (session / "job-restart-1.log").write_text("the copy's\n")
    (session / "new.log").write_text("left by a deleted task\n")
    handle = {
        "log": str(session / "job.log"),
        "exit": str(session / "job.exit"),
        "pid": 42,
        "ranks": [{"log": str(session / "job.log")}, {"log": str(session / "job.log.rank1")}],
    }
    renamed, pairs = renamed_handle(handle, "job", "new")
    assert renamed == {
        "log": str(session / "new.log"),
        "exit": str(session / "new.exit"),
        "pid": 42,
        "ranks": [{"log": str(session / "new.log")}, {"log": str(session / "new.log.rank1")}],
    }
    link_files(pairs)
    assert (session / "new.log").read_text() == "epoch 1\n"  # the deleted task's file replaced
    assert (session / "job.log").exists()  # both names until the rename is stored
    unlink_files(task_files(handle, "job"))
    names = sorted(p.name for p in session.iterdir())
    assert names == ["job-restart-1.log", "new.exit", "new.log", "new.log.rank1"]
    assert (session / "new.log.rank1").read_text() == "rank 1\n"


def test_a_failed_link_undoes_the_links_made(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x")
    (tmp_path / "a.exit").write_text("0")
    (tmp_path / "b.exit").mkdir()  # in the way: the link cannot be made
    pairs = [(tmp_path / "a.log", tmp_path / "b.log"), (tmp_path / "a.exit", tmp_path / "b.exit")]
    with pytest.raises(OSError):
        link_files(pairs)
    assert not (tmp_path / "b.log").exists() and (tmp_path / "a.log").exists()


def test_a_file_never_written_is_skipped(tmp_path: Path) -> None:
    handle = {"log": str(tmp_path / "a.log"), "exit": str(tmp_path / "a.exit")}
    renamed, pairs = renamed_handle(handle, "a", "b")
    link_files(pairs)  # neither exists yet: nothing to carry over, no error
    assert renamed["log"] == str(tmp_path / "b.log")
    assert list(tmp_path.iterdir()) == []
