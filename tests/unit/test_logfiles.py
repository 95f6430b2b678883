import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.executors import logfiles
from ant_scheduler.executors.logfiles import (
    LogFollower,
    exit_path_for,
    log_path_for,
    read_last_lines,
    read_tail_bytes,
)

# --------------------------------------------------------------------------- read_last_lines


def test_last_lines_with_and_without_a_trailing_newline(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"1\n2\n3\n")
    assert read_last_lines(f, 1) == "3\n"
    assert read_last_lines(f, 2) == "2\n3\n"
    assert read_last_lines(f, 10) == "1\n2\n3\n"
    f.write_bytes(b"1\n2\n3")
    assert read_last_lines(f, 1) == "3"
    assert read_last_lines(f, 2) == "2\n3"
    assert read_last_lines(f, 3) == "1\n2\n3"


def test_last_lines_count_blank_lines_and_keep_carriage_returns(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"a\n\n\nb\n")
    assert read_last_lines(f, 3) == "\n\nb\n"
    f.write_bytes(b"x\r\ny\r\n")
    assert read_last_lines(f, 1) == "y\r\n"


def test_last_lines_of_nothing(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"1\n2\n")
    assert read_last_lines(f, 0) == ""
    assert read_last_lines(f, -3) == ""
    f.write_bytes(b"")
    assert read_last_lines(f, 3) == ""
    assert read_last_lines(tmp_path / "missing.log", 3) == ""
    assert read_last_lines(tmp_path, 3) == ""  # a directory


def test_last_lines_of_a_50_mb_file(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    block = b"".join(b"filler line number %08d\n" % i for i in range(40_000))  # 1 MB
    with f.open("wb") as out:
        for _ in range(50):
            out.write(block)
        out.write(b"second to last\nthe very last line\n")
    assert f.stat().st_size > 50_000_000
    assert read_last_lines(f, 2) == "second to last\nthe very last line\n"
    # 3,000 lines span several 64 KiB blocks read from the end.
    expected = [b"filler line number %08d\n" % i for i in range(40_000 - 2_998, 40_000)]
    text = read_last_lines(f, 3_000)
    assert text == (b"".join(expected) + b"second to last\nthe very last line\n").decode()


def test_max_bytes_bounds_what_is_read(tmp_path: Path) -> None:
    f = tmp_path / "long.log"
    f.write_bytes(b"first\n" + b"x" * 100_000 + b"\nlast\n")
    assert read_last_lines(f, 1, max_bytes=10) == "last\n"
    tail = read_last_lines(f, 2, max_bytes=1000)
    assert tail == "x" * (1000 - len("\nlast\n")) + "\nlast\n"
    # A tqdm log without newlines is one huge line: it comes back cut to max_bytes.
    f.write_bytes(b"\r 50%|#####     |" * 50_000)
    assert len(read_last_lines(f, 200, max_bytes=4096)) == 4096


def test_a_cut_never_starts_in_the_middle_of_a_character(tmp_path: Path) -> None:
    f = tmp_path / "euro.log"
    f.write_text("€" * 1000, encoding="utf-8")  # 3 bytes each
    for max_bytes in (999, 1000, 1001):
        text = read_last_lines(f, 1, max_bytes=max_bytes)
        assert text == "€" * (max_bytes // 3)


def test_bad_utf8_is_replaced(tmp_path: Path) -> None:
    f = tmp_path / "bin.log"
    f.write_bytes(b"ok\n\xff\xfe\n")
    assert read_last_lines(f, 1) == "\ufffd\ufffd\n"


lines_strategy = st.lists(st.text(st.sampled_from("ab€\r"), max_size=12), max_size=30)


@given(lines_strategy, st.booleans(), st.integers(1, 35), st.integers(1, 9))
@settings(max_examples=300, deadline=None)
def test_last_lines_match_splitlines_whatever_the_block_size(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    final_newline: bool,
    n: int,
    block: int,
) -> None:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    f = tmp_path_factory.mktemp("p") / "x.log"
    f.write_bytes(text.encode())
    expected = _last_lines(text, n)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logfiles, "_BLOCK", block)  # many blocks on a small file: every boundary case
        assert read_last_lines(f, n) == expected


def _last_lines(text: str, n: int) -> str:
    pieces = text.split("\n")
    if text.endswith("\n"):
        pieces = pieces[:-1]
        return "".join(p + "\n" for p in pieces[-n:])
    return "\n".join(pieces[-n:]) if text else ""


# --------------------------------------------------------------------------- read_tail_bytes


def test_tail_bytes(tmp_path: Path) -> None:
    f = tmp_path / "t.log"
    f.write_bytes(b"abcdef")
    assert read_tail_bytes(f, 3) == b"def"
    assert read_tail_bytes(f, 6) == b"abcdef"
    assert read_tail_bytes(f, 100) == b"abcdef"
    assert read_tail_bytes(f, 0) == b""
    assert read_tail_bytes(tmp_path / "nope", 3) == b""


# --------------------------------------------------------------------------- LogFollower


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)


def test_follower_waits_for_the_file_and_reads_what_is_appended(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    follower = LogFollower(f)
    assert follower.read_new() == b""  # not created yet
    assert follower.offset == 0
    f.write_bytes(b"one\n")
    assert follower.read_new() == b"one\n"
    assert follower.read_new() == b""
    _append(f, b"two\nthree\n")
    assert follower.read_new(max_bytes=4) == b"two\n"
    assert follower.read_new(max_bytes=4) == b"thre"
    assert follower.read_new() == b"e\n"
    assert follower.offset == f.stat().st_size


def test_follower_starts_from_an_offset(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    f.write_bytes(b"old\n")
    follower = LogFollower(f, offset=f.stat().st_size)
    assert follower.read_new() == b""
    _append(f, b"more\n")
    assert follower.read_new_text() == "more\n"


def test_follower_restarts_after_truncation(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    f.write_bytes(b"a long first version\n")
    follower = LogFollower(f)
    assert follower.read_new() == b"a long first version\n"
    f.write_bytes(b"new\n")  # truncated in place and rewritten
    assert follower.read_new() == b"new\n"
    assert follower.offset == 4


def test_follower_restarts_when_the_file_is_replaced(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    f.write_bytes(b"abc\n")
    follower = LogFollower(f)
    assert follower.read_new() == b"abc\n"
    replacement = tmp_path / "other.log"
    replacement.write_bytes(b"a different, longer file\n")
    os.replace(replacement, f)  # bigger than the offset, so only its identity gives it away
    assert follower.read_new() == b"a different, longer file\n"


def test_follower_keeps_a_partial_utf8_character_for_the_next_call(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    follower = LogFollower(f)
    euro = "€".encode()
    f.write_bytes(b"two " + euro[:1])
    assert follower.read_new_text() == "two "
    assert follower.offset == 4  # before the half character: resuming here is safe
    assert LogFollower(f, offset=follower.offset).read_new_text() == ""
    _append(f, euro[1:2])
    assert follower.read_new_text() == ""
    _append(f, euro[2:] + b"\n")
    assert follower.read_new_text() == "€\n"
    assert follower.offset == f.stat().st_size


def test_follower_makes_progress_one_byte_at_a_time(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    f.write_text("a😀b€", encoding="utf-8")
    follower = LogFollower(f)
    text = ""
    for _ in range(20):
        text += follower.read_new_text(max_bytes=1)
    assert text == "a😀b€"


def test_follower_final_read_decodes_a_dangling_byte(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    f.write_bytes(b"end\xe2")
    follower = LogFollower(f)
    assert follower.read_new_text() == "end"
    assert follower.read_new_text(final=True) == "\ufffd"
    assert follower.read_new_text(final=True) == ""
    f.write_bytes(b"ok\xff\n")  # invalid bytes in the middle are replaced at once
    assert LogFollower(f).read_new_text() == "ok\ufffd\n"


# --------------------------------------------------------------------------- paths


def test_log_and_exit_paths(tmp_path: Path) -> None:
    path = log_path_for(tmp_path, "20260101-000000", "job-1")
    assert path == tmp_path / "20260101-000000" / "job-1.log"
    assert exit_path_for(path) == tmp_path / "20260101-000000" / "job-1.exit"
    dotted = log_path_for(tmp_path, "s", "run.v2")
    assert dotted.name == "run.v2.log"
    assert exit_path_for(dotted).name == "run.v2.exit"


@pytest.mark.parametrize(
    ("session", "task_id"),
    [
        ("s", "../../etc/passwd"),
        ("s", "/etc/passwd"),
        ("s", "../../x"),
        ("..", "x"),
        ("../other", "x"),
        ("/tmp", "x"),
    ],
)
def test_log_paths_refuse_to_leave_the_log_dir(tmp_path: Path, session: str, task_id: str) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    with pytest.raises(ValueError, match="outside"):
        log_path_for(log_dir, session, task_id)


def test_log_paths_never_follow_a_symlink(tmp_path: Path) -> None:
    """The path is made from names alone: a symlink planted in the log directory is not
    followed here (it made the whole scheduling pass fail); the executor refuses to open it."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (log_dir / "s").symlink_to(tmp_path / "elsewhere")
    (log_dir / "t").mkdir()
    (log_dir / "t" / "x.log").symlink_to(tmp_path / "elsewhere" / "x.log")
    assert log_path_for(log_dir, "s", "x") == log_dir / "s" / "x.log"
    assert log_path_for(log_dir, "t", "x") == log_dir / "t" / "x.log"
