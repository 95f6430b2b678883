"""Raw program output -> what a terminal would show: carriage returns applied, colours kept.

A tqdm bar rewrites one line with `\\r` thousands of times; the live view must show one line with
its latest state. ANSI colour (SGR) sequences are kept for the UI to render and take no columns;
other escape sequences are dropped, except erase-in-line and cursor-up, which tqdm uses. Callers
pass only the tail of a log (tens of KiB), so the first line may be partial.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# CSI: ESC [ params intermediates final; OSC: ESC ] ... (BEL | ESC \); other 2-byte ESC forms.
_ESCAPE = re.compile(
    r"\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Cell = tuple[str, str]  # (SGR codes that apply from this cell on, the character)


class _Screen:
    def __init__(self) -> None:
        self.lines: list[list[Cell]] = [[]]
        self.row = 0
        self.col = 0
        self.pending_sgr = ""

    def write(self, text: str) -> None:
        text = _CONTROL.sub("", text)
        line = self.lines[self.row]
        for ch in text:
            if ch == "\t":
                spaces = 8 - self.col % 8
                for _ in range(spaces):
                    self._put(line, " ")
                continue
            self._put(line, ch)

    def _put(self, line: list[Cell], ch: str) -> None:
        cell = (self.pending_sgr, ch)
        self.pending_sgr = ""
        if self.col < len(line):
            # Overwriting keeps the colour that was active at that cell unless a new one arrived.
            old_sgr = line[self.col][0]
            line[self.col] = (cell[0] or old_sgr, ch) if not cell[0] else cell
        else:
            while len(line) < self.col:
                line.append(("", " "))
            line.append(cell)
        self.col += 1

    def newline(self) -> None:
        self.row += 1
        self.col = 0
        if self.row == len(self.lines):
            self.lines.append([])

    def carriage_return(self) -> None:
        self.col = 0

    def backspace(self) -> None:
        self.col = max(0, self.col - 1)

    def csi(self, params: str, final: str) -> None:
        if final == "m":
            self.pending_sgr += f"\x1b[{params}m"
        elif final == "K":
            line = self.lines[self.row]
            mode = params or "0"
            if mode == "0":
                del line[self.col :]
            elif mode == "1":
                for i in range(min(self.col + 1, len(line))):
                    line[i] = ("", " ")
            elif mode == "2":
                line.clear()
        elif final == "A":
            steps = int(params) if params.isdigit() else 1
            self.row = max(0, self.row - max(1, steps))
        elif final == "B":
            steps = int(params) if params.isdigit() else 1
            for _ in range(max(1, steps)):
                col = self.col
                self.newline()
                self.col = col
        elif final == "G":
            self.col = max(0, (int(params) if params.isdigit() else 1) - 1)

    def render(self) -> list[str]:
        out = []
        for line in self.lines:
            out.append("".join(sgr + ch for sgr, ch in line))
        return out  # colour codes after the last character colour nothing: dropped


_CURSOR_MOVE = re.compile(r"\x1b\[[0-9;]*[ABG]")
_NEEDS_CELLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\t]")  # \r and \n are handled


def render_terminal(text: str, max_lines: int) -> list[str]:
    """The last `max_lines` lines a terminal would show after printing `text`."""
    if max_lines <= 0:
        return []
    if _CURSOR_MOVE.search(text):
        return _render_cells(text, max_lines)
    # Fast path, line by line: only the last lines matter, and most lines are plain text or a
    # progress bar redrawn with \r, which string slicing handles without per-character work.
    lines = text.replace("\r\n", "\n").split("\n")
    lines = lines[-(max_lines + 1) :]
    if "\x1b" in text:
        # Colour state carries across lines, so emulate; the tail alone is enough (colours
        # set before it are lost, as they are for any tail of a log).
        return _render_cells("\n".join(lines), max_lines)
    out = []
    for line in lines:
        if _NEEDS_CELLS.search(line):
            out.extend(_render_cells(line, 1) or [""])
        elif "\r" in line:
            shown = ""
            for segment in line.split("\r"):
                shown = segment + shown[len(segment) :]
            out.append(shown)
        else:
            out.append(line)
    if out and out[-1] == "":
        out.pop()
    return out[-max_lines:]


def _render_cells(text: str, max_lines: int) -> list[str]:
    screen = _Screen()
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "\x1b":
            match = _ESCAPE.match(text, pos)
            if match is None:
                pos += 1  # a lone ESC (maybe cut in half at the tail's end): drop it
                continue
            if match.group("final") is not None:
                screen.csi(match.group("params") or "", match.group("final"))
            pos = match.end()
            continue
        if ch == "\n":
            screen.newline()
            pos += 1
            continue
        if ch == "\r":
            if text.startswith("\r\n", pos):
                screen.newline()
                pos += 2
            else:
                screen.carriage_return()
                pos += 1
            continue
        if ch == "\b":
            screen.backspace()
            pos += 1
            continue
        end = pos
        while end < len(text) and text[end] not in "\x1b\r\n\b":
            end += 1
        screen.write(text[pos:end])
        pos = end
    lines = screen.render()
    if lines and lines[-1] == "":
        lines.pop()  # output ending in a newline has no extra empty line
    return lines[-max_lines:]


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# tqdm: " 45%|████▌     | 45/100 [...]" ; other bars: "[=====>    ] 45%" or "45% [####   ]".
_TQDM = re.compile(r"(\d{1,3}(?:\.\d+)?)%\|")
_BRACKET_BAR = re.compile(r"\[[=#>.\- █▏▎▍▌▋▊▉*]{3,}\]\s*(\d{1,3}(?:\.\d+)?)%")
_BAR_AFTER = re.compile(r"(\d{1,3}(?:\.\d+)?)%\s*\[[=#>.\- █▏▎▍▌▋▊▉*]{3,}\]")


def parse_progress(lines: Sequence[str]) -> float | None:
    """The latest progress-bar percentage (0..1), scanning from the last line up.

    Accepted shapes: tqdm's `NN%|`, `[====>   ] NN%` and `NN% [####  ]`; a bare "NN%" in
    prose is not a progress bar and is ignored.
    """
    for line in reversed(lines):
        plain = strip_ansi(line)
        found = None
        for pattern in (_TQDM, _BRACKET_BAR, _BAR_AFTER):
            for match in pattern.finditer(plain):
                found = match
        if found is not None:
            value = float(found.group(1))
            if 0 <= value <= 100:
                return value / 100
    return None
