"""Raw program output -> the lines a terminal would show (colours kept), and the progress-bar
percentage those lines display. A small, pure emulation: no I/O, no terminal width.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

# Bidirectional formatting characters: embeddings and overrides (U+202A-U+202E), isolates
# (U+2066-U+2069) and the marks (LRM, RLM, ALM). A terminal gives them no column and most ignore
# them, but a browser obeys them: after U+202E the rest of a line shows reversed, so a program's
# output could make the page show text it never printed. They are dropped.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# A string sequence (OSC, DCS, SOS, PM, APC): the 7-bit introducer ESC ] P X ^ _ or its 8-bit C1
# form (U+009D, U+0090, U+0098, U+009E, U+009F), a payload, then BEL or ST (ESC \ or U+009C).
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"

# One token of output. Groups: 1 printable run; 2-4 CSI (params, intermediates, final);
# 5-6 other ESC sequence (intermediates, final); 7 a run of one repeated control character.
# String sequences also stop at ESC and newline: a terminal would wait for the terminator, but
# one stray "\x1b]" must not hide the rest of a log. Bidi controls match no group: dropped.
_TOKEN = re.compile(
    rf"([^\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]+)"
    rf"|[{BIDI_CONTROLS}]+"
    r"|\x1b\[([0-?]*)([ -/]*)([@-~])"
    rf"|{_STRING}"
    r"|\x1b\[[0-?]*[ -/]*\Z"  # a CSI cut off by the end of the text: wait for the rest
    r"|\x1b([ -/]*)([0-~])"
    r"|([\x00-\x1a\x1c-\x1f\x7f-\x9f])\7*"
    r"|\x1b"
)
_TEXT, _CSI_FINAL, _ESC_FINAL, _CONTROL = 1, 4, 6, 7

# Anything that can move the cursor to an earlier line. Without one, every "\n" starts a line
# that nothing later can touch, so only the last lines need emulating.
_UPWARD = re.compile(r"\x1b\[[0-?]*[ -/]*[AFu]|\x1b[8M]")
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_NUMERIC = "0123456789;:"
_MAX_COL = 4096  # cursor moves past this are clamped: a hostile "\x1b[999999999C" is one escape
_RESET = "\x1b[0m"


def render_terminal(text: str, max_lines: int) -> list[str]:
    """The last `max_lines` lines a terminal would show after printing `text`.

    - `\\n` and `\\r\\n` end a line; a lone `\\r` returns to column 0 and later text overwrites
      the line from there, keeping the rest of a longer line (as a terminal does) unless
      erase-in-line (`\\x1b[K`, `[0K`, `[1K`, `[2K`) clears it. `\\b` moves one column left, `\\t`
      moves to the next multiple of 8. Cursor up/down/forward/back/column (`A B C D E F G`),
      save/restore (`ESC 7/8`, `CSI s/u`) and erase-below (`\\x1b[J`) are honoured; positions
      relative to the screen (`H`, scroll regions) and all other escapes and control characters
      are dropped, string sequences (OSC, DCS, SOS, PM, APC) with their payload in both their
      7-bit (`ESC ]`) and 8-bit C1 (`\\x9d`) forms, and so are bidi controls (BIDI_CONTROLS).
      Every code point takes one column and lines never wrap.
    - Colour (SGR) is kept: each returned line is self-contained, opening with the colour in force
      at its first character and ending with `\\x1b[0m` if any colour is still on, so lines can
      be rendered one by one.
    - A trailing line without a newline is shown; the empty line after a final newline is not.

    Callers pass only the tail of a log (tens of KiB), so the first line may be partial and a
    colour set before the tail is lost. Lines above the last `max_lines` are not emulated at
    all unless the text moves the cursor up.
    """
    if max_lines <= 0:
        return []
    start = 0
    if _UPWARD.search(text) is None:
        cut = len(text)
        for _ in range(max_lines + 1):
            cut = text.rfind("\n", 0, cut)
            if cut < 0:
                break
        start = cut + 1
    screen = _Screen(_style_at(text, start) if start else "")
    screen.feed(text, start)
    return screen.render(max_lines)


def strip_ansi(text: str) -> str:
    """`text` without escape sequences (CSI, OSC and other ESC forms); everything else kept."""
    return _ANSI.sub("", text)


_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    rf"|{_STRING}"
    r"|\x1b\[[0-?]*[ -/]*\Z"
    r"|\x1b[ -/]*[0-~]"
    r"|\x1b"
)


class _Screen:
    """Each line is a str plus, once anything on it is coloured, one style per column: writing a
    run of text is a few string slices, not a Python step per character."""

    __slots__ = ("col", "pending", "pending_len", "row", "saved", "style", "styles", "texts")

    def __init__(self, style: str) -> None:
        self.texts: list[str] = [""]
        # Canonical SGR parameters per column ("" = default); None while the line has no colour.
        self.styles: list[list[str] | None] = [None]
        self.row = 0
        self.col = 0
        self.style = style
        self.saved: tuple[int, int] | None = None
        # Text appended at the end of the current line, joined lazily: a long line built from
        # many small runs (a colour per character) would otherwise be copied once per run.
        self.pending: list[str] = []
        self.pending_len = 0

    def feed(self, text: str, pos: int) -> None:
        write = self._write
        for match in _TOKEN.finditer(text, pos):
            kind = match.lastindex
            if kind == _TEXT:
                write(match[1])
            elif kind == _CONTROL:
                ch = match[7]
                if ch == "\n":
                    for _ in range(len(match[0])):
                        self._newline()
                elif ch == "\r":
                    self.col = 0
                elif ch == "\b":
                    self.col = max(0, self.col - len(match[0]))
                elif ch == "\t":
                    self.col = (self.col // 8 + len(match[0])) * 8
            elif kind == _CSI_FINAL:
                params = match[2]
                if not (match[3] or params.strip(_NUMERIC)):  # private forms are not ours
                    self._csi(params, match[4])
            elif kind == _ESC_FINAL and not match[5]:
                self._esc(match[6])

    def _write(self, run: str) -> None:
        row, col, style = self.row, self.col, self.style
        styles = self.styles[row]
        length = len(self.texts[row]) + self.pending_len
        end = col + len(run)
        if col >= length:
            gap = col - length
            self.pending.append(" " * gap + run if gap else run)
            self.pending_len += gap + len(run)
            if style and styles is None:
                styles = self.styles[row] = [""] * length
            if styles is not None:
                if gap:
                    styles.extend([""] * gap)
                styles.extend([style] * len(run))
        else:
            self._flush()
            line = self.texts[row]
            self.texts[row] = line[:col] + run + line[end:]
            if style and styles is None:
                styles = self.styles[row] = [""] * len(line)
            if styles is not None:
                styles[col:end] = [style] * len(run)
        self.col = end

    def _flush(self) -> None:
        if self.pending:
            self.texts[self.row] += "".join(self.pending)
            self.pending.clear()
            self.pending_len = 0

    def _replace(self, start: int, end: int, new: str) -> None:
        """Put `new` (uncoloured) in place of columns start..end of the current line."""
        self._flush()
        self.texts[self.row] = self.texts[self.row][:start] + new + self.texts[self.row][end:]
        styles = self.styles[self.row]
        if styles is not None:
            styles[start:end] = [""] * len(new)

    def _newline(self) -> None:
        self._flush()
        self.row += 1
        self.col = 0
        if self.row == len(self.texts):
            self.texts.append("")
            self.styles.append(None)

    def _csi(self, params: str, final: str) -> None:
        if final == "m":
            self.style = _apply_sgr(self.style, params)
            return
        self._flush()
        length = len(self.texts[self.row])
        col = self.col
        if final == "K" or final == "J":
            mode = _number(params, 0)
            if mode == 0:
                self._replace(col, length, "")
                if final == "J":  # and every line below
                    del self.texts[self.row + 1 :], self.styles[self.row + 1 :]
            elif mode == 1 and final == "K":
                width = min(col + 1, length)
                self._replace(0, width, " " * width)
            elif mode == 2 and final == "K":
                self.texts[self.row] = ""
                self.styles[self.row] = None
            # 1J/2J/3J clear the screen; the lines stay, as they do in the scrollback.
            return
        n = max(1, _number(params, 1))
        if final == "A" or final == "F":
            self.row = max(0, self.row - n)
        elif final == "B" or final == "E":
            self.row = min(len(self.texts) - 1, self.row + n)  # no screen below the last line
        elif final == "C":
            self.col = min(col + n, max(col, _MAX_COL))
        elif final == "D":
            self.col = max(0, col - n)
        elif final == "G" or final == "`":
            self.col = min(n, _MAX_COL) - 1
        elif final == "P" and col < length:
            self._replace(col, col + n, "")
        elif final == "X" and col < length:
            width = min(n, length - col)
            self._replace(col, col + width, " " * width)
        elif final == "@" and col < length:
            self._replace(col, col, " " * min(n, _MAX_COL))
        elif final == "s":
            self.saved = (self.row, col)
        elif final == "u":
            self._restore()
        if final == "E" or final == "F":
            self.col = 0

    def _esc(self, final: str) -> None:
        self._flush()
        if final == "7":
            self.saved = (self.row, self.col)
        elif final == "8":
            self._restore()
        elif final == "M":
            self.row = max(0, self.row - 1)

    def _restore(self) -> None:
        if self.saved is not None:
            row, self.col = self.saved
            self.row = min(row, len(self.texts) - 1)  # erase-below may have removed it

    def render(self, max_lines: int) -> list[str]:
        self._flush()
        end = len(self.texts)
        if not self.texts[-1]:
            end -= 1  # the empty line the cursor waits on after a final newline
        start = max(0, end - max_lines)
        return [_render_line(self.texts[i], self.styles[i]) for i in range(start, end)]


def _render_line(text: str, styles: list[str] | None) -> str:
    if not text or styles is None:
        return text
    parts: list[str] = []
    current = ""
    start = 0
    for col, style in enumerate(styles):
        if style != current:
            parts.append(text[start:col])
            start = col
            if not style:
                parts.append(_RESET)
            else:
                parts.append(f"\x1b[0;{style}m" if current else f"\x1b[{style}m")
            current = style
    parts.append(text[start:])
    if current:
        parts.append(_RESET)
    return "".join(parts)


def _style_at(text: str, end: int) -> str:
    """The colour in force at `end`: only the SGRs since the last plain reset can matter."""
    since = max(text.rfind("\x1b[0m", 0, end), text.rfind("\x1b[m", 0, end), 0)
    style = ""
    for match in _SGR.finditer(text, since, end):
        style = _apply_sgr(style, match.group(1))
    return style


def _number(param_list: str, default: int) -> int:
    head = param_list.split(";", 1)[0]
    if not head.isdigit():
        return default
    # int() refuses more than 4300 digits; any long number means "as far as possible" anyway.
    return int(head) if len(head) <= 9 else 10**9


_FLAGS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 21, 53})
_FLAGS_OFF = {
    22: {1, 2},
    23: {3},
    24: {4, 21},
    25: {5, 6},
    27: {7},
    28: {8},
    29: {9},
    55: {53},
}


@lru_cache(maxsize=4096)
def _apply_sgr(style: str, params: str) -> str:
    """Canonical SGR parameters after applying `params` on top of `style`.

    The canonical form (sorted attributes, then foreground, then background) is bounded however
    many codes a program emits, and equal states compare equal, so runs of cells share a style.
    """
    codes = f"{style};{params}".split(";") if style else params.split(";")
    flags: set[int] = set()
    fg = bg = ""
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if ":" in code:  # ITU colour form "38:2::r:g:b" is one parameter
            head = code.split(":", 1)[0]
            if head == "38":
                fg = code
            elif head == "48":
                bg = code
            continue
        if len(code) > 3 or not (code.isdigit() or code == ""):
            continue
        n = int(code) if code else 0
        if n == 0:
            flags.clear()
            fg = bg = ""
        elif n in _FLAGS:
            flags.add(n)
        elif n in _FLAGS_OFF:
            flags -= _FLAGS_OFF[n]
        elif 30 <= n <= 37 or 90 <= n <= 97:
            fg = code
        elif 40 <= n <= 47 or 100 <= n <= 107:
            bg = code
        elif n == 39:
            fg = ""
        elif n == 49:
            bg = ""
        elif n in (38, 48, 58):
            mode = codes[i] if i < len(codes) else ""
            size = 2 if mode == "5" else 4 if mode == "2" else 0
            args = codes[i + 1 : i + size]
            if size == 0 or len(args) < size - 1:
                break  # malformed extended colour: a terminal ignores the rest too
            i += size
            if all(a.isdigit() and int(a) <= 255 for a in args) and n != 58:
                value = ";".join([str(n), mode, *args])
                if n == 38:
                    fg = value
                else:
                    bg = value
    return ";".join([*(str(f) for f in sorted(flags)), *(c for c in (fg, bg) if c)])


# --------------------------------------------------------------------------- progress

_NUM = r"(?<![\d.])(\d{1,3}(?:\.\d+)?)"
# Inside [..] or |..|: ASCII and block glyphs, digits for tqdm's ascii partial steps, spaces.
_INNER = r"[ =#>.\-~*0-9█▉▊▋▌▍▎▏━╸╺─░▒▓■□]"
# A bare bar (rich, keras 3) must be drawn with box/block glyphs: "=== 50% ===" is not a bar.
_BARE = r"[█▉▊▋▌▍▎▏━╸╺─░▒▓■]{3,}"
_BAR = rf"(?:\[{_INNER}{{3,}}\]|\|{_INNER}{{3,}}\||{_BARE})"
_PROGRESS = re.compile(
    rf"{_NUM}%\|[ 0-9#█▉▊▋▌▍▎▏]*\|"  # tqdm:  45%|████▌     | 45/100
    rf"|{_NUM}%\s*{_BAR}"  # 45% [####      ]   45% ━━━━━━╸━━━━
    rf"|{_BAR}\s*{_NUM}%"  # [=====>    ] 55%   ━━━━━━╸━━━━ 55%
    rf"|(?<!\d)(\d+)/(\d+)\s*(?:\[[=>.]{{3,}}\]|{_BARE})"  # keras: 45/100 [====>.....]
)


def parse_progress(lines: Sequence[str]) -> float | None:
    """The latest progress-bar fraction (0..1): the rightmost bar on the lowest line that has one.

    Accepted, after removing escape codes:
    - tqdm's `NN%|<bar>|` where the bar holds only blocks, `#`, digits and spaces;
    - a percentage directly before or after a bar: `NN% [####  ]`, `[===>   ] NN%`,
      `|####  | NN%`, or a bare run of three or more block/box glyphs (`━━━╸━━ NN%`, rich);
    - keras' `N/M [=====>....]` (or `N/M ━━━━`), read as N/M.
    A percentage in prose ("disk 95% full", "cpu 45%|mem") is not a bar; values above 100% are
    ignored. Returns None when no line shows a bar.
    """
    for line in reversed(lines):
        if "%" not in line and "/" not in line:
            continue
        for match in reversed(list(_PROGRESS.finditer(strip_ansi(line)))):
            value = _fraction(match)
            if value is not None:
                return value
    return None


def _fraction(match: re.Match[str]) -> float | None:
    done, total = match.group(4), match[5]
    if done is not None and total is not None:
        d, t = int(done), int(total)
        return d / t if t > 0 and d <= t else None
    percent = float(next(g for g in match.group(1, 2, 3) if g is not None))
    return percent / 100 if percent <= 100 else None
