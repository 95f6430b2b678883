import pytest

from ant_scheduler.core.terminal import parse_progress, render_terminal, strip_ansi

RED = "\x1b[31m"
RESET = "\x1b[0m"


def test_tqdm_updates_are_one_line() -> None:
    text = "start\n" + "".join(f"\r{i:3d}%|{'#' * (i // 10):<10}| {i}/100" for i in range(101))
    lines = render_terminal(text + "\ndone\n", 10)
    assert lines == ["start", "100%|##########| 100/100", "done"]


def test_crlf_is_a_newline_and_trailing_newline_adds_no_line() -> None:
    assert render_terminal("a\r\nb\r\n", 5) == ["a", "b"]
    assert render_terminal("a\nb", 5) == ["a", "b"]  # partial last line is shown


def test_shorter_overwrite_keeps_tail_unless_erased() -> None:
    assert render_terminal("longer line\rshort\n", 5) == ["shortr line"]
    assert render_terminal("longer line\rshort\x1b[K\n", 5) == ["short"]
    assert render_terminal("longer line\rshort\x1b[0K\n", 5) == ["short"]
    assert render_terminal("longer\x1b[2K\rx\n", 5) == ["x"]


def test_colours_are_kept_and_take_no_columns() -> None:
    lines = render_terminal(f"{RED}error{RESET} ok\rE\n", 5)
    assert lines == [f"{RED}Error{RESET} ok"]
    assert strip_ansi(lines[0]) == "Error ok"


def test_other_escapes_and_controls_are_dropped() -> None:
    text = "a\x1b]0;title\x07b\x1b[?25lc\x07d\x00e\n"
    assert render_terminal(text, 5) == ["abcde"]


def test_backspace_tab_and_cursor_up() -> None:
    assert render_terminal("abc\b\bX\n", 5) == ["aXc"]
    assert render_terminal("a\tb\n", 5) == ["a       b"]
    # tqdm multi-bar: move up one line and rewrite it.
    assert render_terminal("bar1 10%\nbar2 10%\x1b[A\rbar1 50%\n", 5) == ["bar1 50%", "bar2 10%"]


def test_max_lines_keeps_the_last() -> None:
    text = "".join(f"line{i}\n" for i in range(100))
    assert render_terminal(text, 3) == ["line97", "line98", "line99"]
    assert render_terminal(text, 0) == []


def test_cut_escape_at_the_start_of_a_tail_is_harmless() -> None:
    assert render_terminal("[31mred\x1b", 5) == ["[31mred"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([" 45%|████▌     | 45/100 [00:01<00:01]"], 0.45),
        (["x", "100%|██████████| 10/10"], 1.0),
        ([f"{RED} 7%|{RESET}#   | 7/100"], 0.07),
        (["[=====>    ] 55%"], 0.55),
        (["12.5% [####      ]"], 0.125),
        (["epoch 1  30%|###  |", "loss 0.1"], 0.30),
        (["accuracy is 95% today"], None),
        (["disk 100% full"], None),
        ([], None),
    ],
)
def test_parse_progress(lines: list[str], expected: float | None) -> None:
    assert parse_progress(lines) == expected


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ant_scheduler.core.terminal import _render_cells  # noqa: E402

pieces = st.sampled_from(
    ["a", "bc", "defgh", "\r", "\n", "\r\n", "\x1b[31m", "\x1b[0m", "\x1b[K", "\t", "\b", "é"]
)


@given(st.lists(pieces, max_size=60), st.integers(1, 8))
@settings(max_examples=500)
def test_fast_path_matches_the_full_emulation(parts: list[str], n: int) -> None:
    text = "".join(parts)
    fast, full = render_terminal(text, n), _render_cells(text, n)
    # Same visible text; colours set before the last n lines may be lost in the fast path.
    assert [strip_ansi(x) for x in fast] == [strip_ansi(x) for x in full]
    if "\x1b" not in text:
        assert fast == full


def test_colour_carries_to_the_next_line() -> None:
    assert render_terminal(f"x\n{RED}\na\n", 5) == ["x", "", f"{RED}a"]
