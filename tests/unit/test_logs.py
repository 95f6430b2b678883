from pathlib import Path

import pytest

from ant_scheduler.logs import (
    LogFollower,
    exit_path_for,
    log_path_for,
    read_last_lines,
    read_tail_bytes,
)


def test_last_lines_with_and_without_trailing_newline(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("1\n2\n3\n")
    assert read_last_lines(f, 2) == "2\n3\n"
    assert read_last_lines(f, 10) == "1\n2\n3\n"
    f.write_text("1\n2\n3")
    assert read_last_lines(f, 2) == "2\n3"
    assert read_last_lines(f, 0) == ""
    f.write_text("")
    assert read_last_lines(f, 3) == ""
    assert read_last_lines(tmp_path / "missing.log", 3) == ""


def test_last_lines_of_a_big_file_read_from_the_end(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    block = b"".join(b"filler line number %08d\n" % i for i in range(40_000))  # ~1 MB
    with f.open("wb") as out:
        for _ in range(50):
            out.write(block)
        out.write(b"second to last\nthe very last line\n")
    assert f.stat().st_size > 50_000_000
    assert read_last_lines(f, 2) == "second to last\nthe very last line\n"
    tail = read_last_lines(f, 200_000, max_bytes=1024)
    assert len(tail.encode()) <= 1024 + 64 * 1024  # bounded by max_bytes (rounded to a block)


def test_last_lines_decode_bad_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bin.log"
    f.write_bytes(b"ok\n\xff\xfe\n")
    assert read_last_lines(f, 1) == "\ufffd\ufffd\n"


def test_tail_bytes(tmp_path: Path) -> None:
    f = tmp_path / "t.log"
    f.write_bytes(b"abcdef")
    assert read_tail_bytes(f, 3) == b"def"
    assert read_tail_bytes(f, 100) == b"abcdef"
    assert read_tail_bytes(tmp_path / "nope", 3) == b""


def test_follower_growth_truncation_and_partial_utf8(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    follower = LogFollower(f)
    assert follower.read_new() == b""  # not created yet
    f.write_bytes(b"one\n")
    assert follower.read_new_text() == "one\n"
    assert follower.read_new_text() == ""
    euro = "€".encode()
    with f.open("ab") as out:
        out.write(b"two " + euro[:1])
    assert follower.read_new_text() == "two "
    with f.open("ab") as out:
        out.write(euro[1:] + b"\n")
    assert follower.read_new_text() == "€\n"
    assert follower.offset == f.stat().st_size
    f.write_bytes(b"new\n")  # truncated and rewritten
    assert follower.read_new_text() == "new\n"
    later = LogFollower(f, offset=f.stat().st_size)
    with f.open("ab") as out:
        out.write(b"more\n")
    assert later.read_new() == b"more\n"


def test_log_paths(tmp_path: Path) -> None:
    path = log_path_for(tmp_path, "20260101-000000", "job-1")
    assert path == (tmp_path / "20260101-000000" / "job-1.log").resolve()
    assert exit_path_for(path).name == "job-1.exit"
    for bad in ("../../etc/passwd", "/etc/passwd", "../../x"):
        with pytest.raises(ValueError):
            log_path_for(tmp_path, "s", bad)
