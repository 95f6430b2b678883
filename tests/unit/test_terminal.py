import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.terminal import _Screen, parse_progress, render_terminal, strip_ansi

RED = "\x1b[31m"
GREEN = "\x1b[32m"
RESET = "\x1b[0m"
UP = "\x1b[A"


# --------------------------------------------------------------------------- lines and \r


def test_tqdm_updates_are_one_line_showing_the_latest_state() -> None:
    text = "start\n" + "".join(f"\r{i:3d}%|{'#' * (i // 10):<10}| {i}/100" for i in range(101))
    assert render_terminal(text + "\ndone\n", 10) == ["start", "100%|##########| 100/100", "done"]


def test_crlf_and_lf_end_lines_and_a_final_newline_adds_no_line() -> None:
    assert render_terminal("a\r\nb\r\n", 5) == ["a", "b"]
    assert render_terminal("a\nb\n", 5) == ["a", "b"]
    assert render_terminal("a\n\n\nb\n", 5) == ["a", "", "", "b"]
    assert render_terminal("", 5) == []
    assert render_terminal("\n", 5) == [""]


def test_a_trailing_partial_line_is_shown() -> None:
    assert render_terminal("a\nb", 5) == ["a", "b"]
    assert render_terminal("a\n 10%|#", 5) == ["a", " 10%|#"]
    assert render_terminal("abc\r", 5) == ["abc"]  # \r alone erases nothing


def test_shorter_overwrite_keeps_the_tail_of_the_longer_line() -> None:
    assert render_terminal("longer line\rshort\n", 5) == ["shortr line"]
    assert render_terminal("short\rlonger line\n", 5) == ["longer line"]


@pytest.mark.parametrize("erase", ["\x1b[K", "\x1b[0K"])
def test_erase_to_end_of_line_is_honoured(erase: str) -> None:
    assert render_terminal(f"longer line\rshort{erase}\n", 5) == ["short"]
    assert render_terminal(f"longer line\r{erase}short\n", 5) == ["short"]


def test_erase_whole_line_and_erase_to_start() -> None:
    assert render_terminal("longer\x1b[2K\rx\n", 5) == ["x"]
    # 2K keeps the cursor where it is: the next text lands at column 6.
    assert render_terminal("longer\x1b[2Kx\n", 5) == ["      x"]
    assert render_terminal("abcdef\x1b[3D\x1b[1K\n", 5) == ["    ef"]


def test_backspace_moves_one_column_left_and_stops_at_zero() -> None:
    assert render_terminal("abc\b\bX\n", 5) == ["aXc"]
    assert render_terminal("ab\b\b\b\bX\n", 5) == ["Xb"]


def test_tab_moves_to_the_next_stop_without_erasing() -> None:
    assert render_terminal("a\tb\n", 5) == ["a       b"]
    assert render_terminal("a\t\tb\n", 5) == ["a               b"]
    assert render_terminal("0123456789ab\r\tX\n", 5) == ["01234567X9ab"]


def test_max_lines_keeps_the_last_lines() -> None:
    text = "".join(f"line{i}\n" for i in range(100))
    assert render_terminal(text, 3) == ["line97", "line98", "line99"]
    assert render_terminal(text + "partial", 2) == ["line99", "partial"]
    assert render_terminal(text, 1000) == [f"line{i}" for i in range(100)]
    assert render_terminal(text, 0) == []
    assert render_terminal(text, -1) == []


# --------------------------------------------------------------------------- colour


def test_colours_are_kept_around_the_characters_they_precede() -> None:
    assert render_terminal(f"{RED}error{RESET} ok\n", 5) == [f"{RED}error{RESET} ok"]
    assert render_terminal(f"x {GREEN}ok", 5) == [f"x {GREEN}ok{RESET}"]


def test_colour_codes_take_no_columns() -> None:
    # "E" is written after the reset, so it is plain; the rest of "error" stays red.
    lines = render_terminal(f"{RED}error{RESET} ok\rE\n", 5)
    assert lines == [f"E{RED}rror{RESET} ok"]
    assert render_terminal(f"{RED}abc{RESET}{GREEN}{RESET}\rxy\n", 5) == [f"xy{RED}c{RESET}"]
    # Bold comes on for "c"; X, written after two backspaces, replaces "b" and is bold too.
    assert render_terminal(f"{RED}ab\x1b[1mc\b\bX\n", 5) == [f"{RED}a\x1b[0;1;31mXc{RESET}"]


def test_each_line_carries_the_colour_in_force() -> None:
    text = f"{RED}one\ntwo{RESET}\nthree\n"
    assert render_terminal(text, 5) == [f"{RED}one{RESET}", f"{RED}two{RESET}", "three"]
    assert render_terminal(f"x\n{RED}\na\n", 5) == ["x", "", f"{RED}a{RESET}"]


def test_colour_set_above_the_shown_lines_still_applies() -> None:
    text = f"{GREEN}" + "".join(f"line{i}\n" for i in range(50))
    assert render_terminal(text, 2) == [f"{GREEN}line48{RESET}", f"{GREEN}line49{RESET}"]
    text = f"{GREEN}a{RESET}\n" + "".join(f"line{i}\n" for i in range(50))
    assert render_terminal(text, 2) == ["line48", "line49"]


def test_sgr_attributes_combine_and_turn_off_one_by_one() -> None:
    text = "\x1b[1m\x1b[31mA\x1b[22mB\x1b[39mC\x1b[4;7mD\x1b[24mE\x1b[mF\n"
    assert render_terminal(text, 5) == [
        "\x1b[1;31mA\x1b[0;31mB\x1b[0mC\x1b[4;7mD\x1b[0;7mE\x1b[0mF"
    ]


def test_256_and_truecolour_are_kept() -> None:
    text = "\x1b[38;5;208mx\x1b[48;2;1;2;3my\x1b[49mz\n"
    assert render_terminal(text, 5) == [
        "\x1b[38;5;208mx\x1b[0;38;5;208;48;2;1;2;3my\x1b[0;38;5;208mz\x1b[0m"
    ]
    # Malformed extended colours are ignored, not passed on to the UI.
    assert render_terminal("\x1b[38;5;999mx\x1b[38;2;1mq\n", 5) == ["xq"]


def test_a_rich_progress_bar_renders_as_one_coloured_line() -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="truecolor", width=70)
    columns = (TextColumn("train"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=console, auto_refresh=False) as progress:
        task = progress.add_task("train", total=200)
        for done in range(1, 91):
            progress.update(task, completed=done)
            progress.refresh()
    lines = render_terminal(out.getvalue(), 5)
    assert len(lines) == 1
    assert "\x1b[38;2;249;38;114m" in lines[0]
    plain = strip_ansi(lines[0])
    assert plain.startswith("train ━") and plain.endswith(" 45%")
    assert parse_progress(lines) == 0.45


# --------------------------------------------------------------------------- cursor movement


def test_tqdm_nested_bars_rewrite_their_own_lines() -> None:
    # tqdm draws a bar at position 1 by going down a line, drawing, then moving back up.
    def inner(p: int) -> str:
        return f"\n\rinner {p:3d}%|{'#' * (p // 10):<10}|{UP}"

    text = "\router   0%|          |" + inner(0)
    for outer in range(3):
        for p in range(0, 101, 25):
            text += inner(p)
        text += f"\router {(outer + 1) * 33:3d}%|{'#' * (outer + 1) * 3:<10}|"
    lines = render_terminal(text, 5)
    assert lines == ["outer  99%|#########.|".replace(".", " "), "inner 100%|##########|"]
    assert parse_progress(lines) == 1.0  # the lowest bar wins


def test_cursor_up_moves_one_line_if_possible() -> None:
    assert render_terminal(f"bar1 10%\nbar2 10%{UP}\rbar1 50%\n", 5) == ["bar1 50%", "bar2 10%"]
    assert render_terminal(f"top{UP}{UP}\rT\n", 5) == ["Top"]
    assert render_terminal("a\nb\nc\x1b[2A\rA\n", 5) == ["A", "b", "c"]


def test_cursor_up_reaches_lines_above_max_lines() -> None:
    text = "".join(f"l{i}\n" for i in range(10)) + "\x1b[10A\rX"
    assert render_terminal(text, 10)[0] == "X0"
    assert render_terminal(text, 3) == ["l7", "l8", "l9"]


def test_cursor_forward_back_column_and_next_previous_line() -> None:
    assert render_terminal("abcdef\x1b[4DX\x1b[CY\n", 5) == ["abXdYf"]
    assert render_terminal("ab\x1b[3CZ\n", 5) == ["ab   Z"]
    assert render_terminal("abcdef\x1b[2GX\n", 5) == ["aXcdef"]
    assert render_terminal("one\ntwo\x1b[FO\x1b[EX\n", 5) == ["One", "Xwo"]


def test_save_restore_and_erase_below() -> None:
    assert render_terminal("a\x1b7\nb\nc\x1b8X\n", 5) == ["aX", "b", "c"]
    assert render_terminal("a\x1b[s\nb\x1b[uX\n", 5) == ["aX", "b"]
    assert render_terminal("a\nb\nc\x1b[2A\rz\x1b[J", 5) == ["z"]


def test_delete_erase_and_insert_characters() -> None:
    assert render_terminal("abcdef\r\x1b[2P\n", 5) == ["cdef"]
    assert render_terminal("abcdef\r\x1b[2X\n", 5) == ["  cdef"]
    assert render_terminal("abcdef\r\x1b[2@\n", 5) == ["  abcdef"]


# --------------------------------------------------------------------------- dropped input


def test_other_escapes_and_control_characters_are_dropped() -> None:
    text = (
        "a\x1b]0;title\x07b\x1b[?25lc\x07d\x00e\x1b(Bf\x1b]8;;http://x\x1b\\g\x1b[2Jh\x1b[5;5Hi\n"
    )
    assert render_terminal(text, 5) == ["abcdefghi"]
    assert render_terminal("a\x0bb\x0cc\x7fd\x9be\n", 5) == ["abcde"]


def test_an_unterminated_osc_does_not_hide_the_rest() -> None:
    assert render_terminal("\x1b]0;title\nnext\n", 5) == ["", "next"]


def test_escapes_cut_by_the_tail_are_harmless() -> None:
    assert render_terminal("[31mred\x1b", 5) == ["[31mred"]
    assert render_terminal("red\x1b[3", 5) == ["red"]
    assert render_terminal("red\x1b[", 5) == ["red"]


def test_hostile_sequences_stay_bounded() -> None:
    lines = render_terminal("\x1b[999999999999Cx\x1b[" + "9" * 5000 + "Cy\n", 5)
    assert len(lines) == 1 and len(lines[0]) <= 4100 and lines[0].endswith("xy")
    assert render_terminal("\x1b[" + "9" * 5000 + "A\x1b[99999999999@z\n", 5) == ["z"]
    assert render_terminal("\x1b[" + "1;" * 2000 + "31mx\n", 5) == ["\x1b[1;31mx\x1b[0m"]


def test_a_64_kib_tail_of_progress_output_is_one_line() -> None:
    text = "".join(f"\r{i % 101:3d}%|{'█' * (i % 101 // 10):<10}| {i}/5000" for i in range(5000))
    text = text[-64 * 1024 :]
    assert render_terminal(text, 20) == [" 50%|█████     | 4999/5000"]


def test_strip_ansi() -> None:
    assert strip_ansi(f"{RED}a{RESET}b\x1b]0;t\x07c\x1b[?25ld\x1b(Be\x1b[3") == "abcde"
    assert strip_ansi("plain\ttext\r\n") == "plain\ttext\r\n"


# --------------------------------------------------------------------------- properties


def _reference(text: str) -> list[str]:
    """A character-at-a-time terminal for text without escapes: the oracle for the fast code."""
    lines: list[list[str]] = [[]]
    col = 0
    for ch in text:
        line = lines[-1]
        if ch == "\n":
            lines.append([])
            col = 0
        elif ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(0, col - 1)
        elif ch == "\t":
            col = col // 8 * 8 + 8
        elif ch.isprintable():
            line.extend(" " * (col + 1 - len(line)))
            line[col] = ch
            col += 1
    if not lines[-1]:
        lines.pop()
    return ["".join(line) for line in lines]


plain_pieces = st.sampled_from(["a", "bc", "defgh", "é€", "\r", "\n", "\r\n", "\t", "\b", "\x00"])
sgr_pieces = st.sampled_from([RED, GREEN, RESET, "\x1b[m", "\x1b[1m", "\x1b[22m", "\x1b[4;42m"])
any_pieces = (
    plain_pieces
    | sgr_pieces
    | st.sampled_from(
        [
            "\x1b[K",
            "\x1b[1K",
            "\x1b[2K",
            "\x1b[J",
            "\x1b[2D",
            "\x1b[3C",
            "\x1b]0;t\x07",
            UP,
            "\x1b7",
        ]
    )
)


@given(st.lists(plain_pieces, max_size=60), st.integers(1, 8))
@settings(max_examples=400)
def test_plain_text_matches_a_character_at_a_time_terminal(parts: list[str], n: int) -> None:
    text = "".join(parts)
    expected = _reference(text)[-n:]
    assert render_terminal(text, n) == expected


@given(st.lists(plain_pieces | sgr_pieces, max_size=60), st.integers(1, 8))
@settings(max_examples=400)
def test_colour_never_changes_the_visible_text(parts: list[str], n: int) -> None:
    text = "".join(parts)
    without_colour = "".join(p for p in parts if not p.startswith("\x1b"))
    assert [strip_ansi(line) for line in render_terminal(text, n)] == _reference(without_colour)[
        -n:
    ]


@given(st.lists(any_pieces, max_size=60), st.integers(1, 8))
@settings(max_examples=400)
def test_emulating_only_the_tail_equals_emulating_everything(parts: list[str], n: int) -> None:
    text = "".join(parts)
    screen = _Screen("")
    screen.feed(text, 0)
    assert render_terminal(text, n) == screen.render(n)


# --------------------------------------------------------------------------- progress


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([" 45%|████▌     | 45/100 [00:01<00:01, 3.40it/s]"], 0.45),
        (["train:  45%|####5     | 45/100"], 0.45),  # tqdm ascii=True
        (["  0%|          | 0/100 [00:00<?, ?it/s]"], 0.0),
        (["x", "100%|██████████| 10/10"], 1.0),
        ([f"{RED} 7%|{RESET}#   | 7/100"], 0.07),
        (["epoch 1  30%|###  |", "loss 0.1"], 0.30),
        (["[=====>    ] 55%"], 0.55),
        (["|#####     | 50%"], 0.5),
        (["12.5% [####      ]"], 0.125),
        (["download ━━━━━━━━━━╸━━━━━━━━━  52%"], 0.52),
        (["  45/100 [============>.................] - ETA: 1s - loss: 0.2"], 0.45),
        (["45/100 ━━━━━━━━━━━━━━━━━━━━ 1s 10ms/step"], 0.45),
        (["10%|#         |", "80%|########  |"], 0.8),  # the lowest bar wins
        (["a 10%|#         | b [==>   ] 20%"], 0.2),  # the rightmost bar in a line wins
        (["40%|####      |", "note: 95% of disk used"], 0.4),
    ],
)
def test_progress_bars_are_recognised(lines: list[str], expected: float) -> None:
    assert parse_progress(lines) == pytest.approx(expected)


@pytest.mark.parametrize(
    "line",
    [
        "accuracy is 95% today",
        "disk 100% full",
        "cpu 45%|mem 30%|",
        "| gpu0 | 45%| 30%|",
        "=== 50% ===",
        "copied 5/10 files",
        "150%|##########|",
        "1000%|##########|",
        "12/0 [=====>....]",
        "",
    ],
)
def test_other_percentages_are_not_progress(line: str) -> None:
    assert parse_progress([line]) is None


def test_no_lines_no_progress() -> None:
    assert parse_progress([]) is None
