"""Reading ANT 1.1 recovery files (core/ant1.py): both versions, tolerance, corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ant_scheduler.core.ant1 import read_ant1
from ant_scheduler.core.errors import InvalidQuery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ant1"


def test_version_2_newest_entry_wins_and_every_skip_is_counted() -> None:
    parsed = read_ant1((FIXTURES / "recovery_v2.json").read_text())
    by_id = {t.task_id: t for t in parsed.tasks}
    assert parsed.version == 2
    assert set(by_id) == {
        "eval-b",
        "train-big",
        "sweep-lr-0.01",
        "sweep-lr-0.1",
        "prep-data",
        "minimal",
        "baseline",
        "old-interrupted",
        "restored-done",
        "forgotten-queued",
    }
    assert parsed.without_id == 1
    assert parsed.older_copies == 1  # sweep-lr-0.01 of the older session
    assert len(parsed.invalid) == 1 and parsed.invalid[0].startswith("bad id with spaces:")
    # The newest session's entry: its log, not the older one's.
    assert by_id["sweep-lr-0.01"].log_file_name.endswith("20250302-080000/sweep-lr-0.01.log")
    # ant_task_id / ant_n_gpus were applied by ANT 1.1: dropped; ant_wd and conda are kept.
    assert by_id["sweep-lr-0.01"].env == {"OMP_NUM_THREADS": "8"}
    big = by_id["train-big"]
    assert big.held and big.section == "ongoing" and big.workdir == "/home/alice/proj"
    assert big.env["ant_conda_env"] == "torch"
    assert by_id["sweep-lr-0.1"].gpu_ids == [2, 3]  # strings read as indices
    assert by_id["sweep-lr-0.1"].terminated
    assert by_id["baseline"].env == {"SEED": "7"}
    assert by_id["forgotten-queued"].hidden and not by_id["forgotten-queued"].held
    minimal = by_id["minimal"]
    assert (minimal.n_gpus, minimal.started_at, minimal.log_file_name) == (0, None, None)


def test_version_1_is_one_session() -> None:
    parsed = read_ant1((FIXTURES / "recovery_v1.json").read_text())
    assert parsed.version == 1
    sections = {t.task_id: (t.section, t.held) for t in parsed.tasks}
    assert sections == {
        "v1-queued": ("queued", True),
        "v1-running": ("ongoing", True),
        "v1-done": ("completed", False),
        "v1-killed": ("completed", False),
    }
    assert next(t for t in parsed.tasks if t.task_id == "v1-running").env == {}


def test_missing_and_odd_values_are_read_as_absent() -> None:
    text = json.dumps(
        {
            "sessions": [
                {
                    "completed": [
                        {"task_id": 12, "command": "true", "n_gpus": "x", "gpu_ids": [1, "a"]},
                        {"task_id": "t", "command": "", "n_gpus": 1},
                        {"task_id": True, "command": "true"},
                        "not an object",
                    ],
                    "ongoing": "not a list",
                    "saved_at": "yesterday",
                },
                "not a session",
            ],
            "hidden": {"not": "a list"},
            "extra": [1, 2, 3],
        }
    )
    parsed = read_ant1(text)
    assert [t.task_id for t in parsed.tasks] == ["12"]
    assert parsed.tasks[0].n_gpus == 1 and parsed.tasks[0].gpu_ids == [1]
    assert parsed.tasks[0].saved_at is None
    assert parsed.without_id == 2
    assert parsed.invalid == ["t: it has no command"]


def test_exit_code_when_a_file_has_one() -> None:
    text = json.dumps(
        {"version": 1, "completed": [{"task_id": "a", "command": "x", "returncode": 3}]}
    )
    assert read_ant1(text).tasks[0].exit_code == 3


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "a JSON object was expected, not a list"),
        ('"text"', "not a string"),
        ('{"version": 2, "tasks": []}', "no `sessions`"),
        ("", "invalid JSON"),
    ],
)
def test_a_corrupt_file_is_a_clear_error(text: str, says: str) -> None:
    with pytest.raises(InvalidQuery) as err:
        read_ant1(text)
    assert says in err.value.message
    assert "\n" not in err.value.message
