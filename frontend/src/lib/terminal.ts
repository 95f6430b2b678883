// Terminal text for the browser: apply carriage returns, turn ANSI colours into styled segments,
// and find tqdm-style progress. The server already sends live terminals with \r applied; full
// logs (Completed page) are raw, so the same rules run here too.

export interface Segment {
  text: string;
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

const SGR = /\x1b\[([0-9;]*)m/g;
const SGR_ONLY = /^\x1b\[[0-9;]*m$/;
// Everything a terminal consumes without printing, as the server's render_terminal drops it:
// - string sequences (OSC, DCS, SOS, PM, APC) with their payload, in the 7-bit form (ESC ] P X ^ _)
//   and the 8-bit C1 form (U+009D U+0090 U+0098 U+009E U+009F); they end at BEL or ST, and also
//   at ESC and newline, so one stray introducer cannot hide the rest of a log;
// - CSI and other ESC sequences (SGR colour codes are kept: `clean` leaves them in place);
// - control characters other than tab, newline and carriage return, C1 controls included;
// - bidi formatting characters (embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069,
//   marks LRM RLM ALM): a browser obeys them, so U+202E in a log would show the rest of its line
//   reversed, text the program never printed.
const HIDDEN = new RegExp(
  [
    /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?/,
    /\x1b\[[0-?]*[ -/]*[@-~]/,
    /\x1b\[[0-?]*[ -/]*$/,
    /\x1b[ -/]*[0-~]/,
    /\x1b/,
    /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/,
    /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/,
  ]
    .map((r) => r.source)
    .join("|"),
  "g",
);

// Raw output without anything a terminal would not print: only text, tabs, newlines, carriage
// returns and SGR colour codes are left.
export function clean(text: string): string {
  return text.replace(HIDDEN, (m) => (SGR_ONLY.test(m) ? m : ""));
}

// Apply \r the way a terminal does: text after a lone \r overwrites the line from column 0.
// Colour codes take no columns and stay attached to the characters after them.
export function applyCarriageReturns(text: string): string {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  return lines
    .map((line) => {
      if (!line.includes("\r")) return line;
      let cells: string[] = [];
      for (const part of line.split("\r")) {
        const tokens = part.match(/\x1b\[[0-9;]*m|[\s\S]/g) ?? [];
        let col = 0;
        let pending = "";
        for (const token of tokens) {
          if (token.startsWith("\x1b[")) {
            pending += token;
            continue;
          }
          cells[col] = pending + token;
          pending = "";
          col += 1;
        }
        if (pending) cells[col] = (cells[col] ?? "") + pending;
        cells = cells.slice(0, Math.max(cells.length, col));
      }
      return cells.join("");
    })
    .join("\n");
}

// Readable on the terminals' dark background in both themes (contrast >= 4.5:1, the axe check):
// black is a grey and the dark red, blue and magenta are lighter than a classic xterm's.
const COLORS = ["#8c8c8c", "#e86a6a", "#3a3", "#c90", "#5b94ea", "#d070d0", "#2aa", "#ccc"];
const BRIGHT = ["#a0a0a0", "#f55", "#5d5", "#fd5", "#59f", "#d6d", "#5dd", "#fff"];

function color256(n: number): string {
  if (n < 8) return COLORS[n];
  if (n < 16) return BRIGHT[n - 8];
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const steps = [0, 95, 135, 175, 215, 255];
  return `rgb(${steps[Math.floor(i / 36)]},${steps[Math.floor(i / 6) % 6]},${steps[i % 6]})`;
}

// One line of text with ANSI SGR codes -> styled segments (everything `clean` drops is dropped).
export function ansiToSegments(line: string, start: Partial<Segment> = {}): Segment[] {
  const text = clean(line).replace(/\r/g, "");
  const out: Segment[] = [];
  let style: Partial<Segment> = { ...start };
  let last = 0;
  SGR.lastIndex = 0;
  let match: RegExpExecArray | null;
  const push = (text: string) => {
    if (text) out.push({ ...style, text });
  };
  while ((match = SGR.exec(text)) !== null) {
    push(text.slice(last, match.index));
    last = match.index + match[0].length;
    const codes = match[1] === "" ? [0] : match[1].split(";").map((c) => Number(c) || 0);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) style = {};
      else if (c === 1) style = { ...style, bold: true };
      else if (c === 2) style = { ...style, dim: true };
      else if (c === 3) style = { ...style, italic: true };
      else if (c === 4) style = { ...style, underline: true };
      else if (c === 22) style = { ...style, bold: false, dim: false };
      else if (c === 23) style = { ...style, italic: false };
      else if (c === 24) style = { ...style, underline: false };
      else if (c >= 30 && c <= 37) style = { ...style, fg: COLORS[c - 30] };
      else if (c >= 90 && c <= 97) style = { ...style, fg: BRIGHT[c - 90] };
      else if (c === 39) style = { ...style, fg: undefined };
      else if (c >= 40 && c <= 47) style = { ...style, bg: COLORS[c - 40] };
      else if (c >= 100 && c <= 107) style = { ...style, bg: BRIGHT[c - 100] };
      else if (c === 49) style = { ...style, bg: undefined };
      else if ((c === 38 || c === 48) && codes[i + 1] === 5 && i + 2 < codes.length) {
        const value = color256(codes[i + 2]);
        style = c === 38 ? { ...style, fg: value } : { ...style, bg: value };
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2 && i + 4 < codes.length) {
        const value = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`;
        style = c === 38 ? { ...style, fg: value } : { ...style, bg: value };
        i += 4;
      }
    }
  }
  push(text.slice(last));
  return out;
}

export function stripAnsi(text: string): string {
  return clean(text).replace(SGR, "");
}

const TQDM = /(\d{1,3}(?:\.\d+)?)%\|/g;
const BAR_BEFORE = /\[[=#>.\- █▏▎▍▌▋▊▉*]{3,}\]\s*(\d{1,3}(?:\.\d+)?)%/g;
const BAR_AFTER = /(\d{1,3}(?:\.\d+)?)%\s*\[[=#>.\- █▏▎▍▌▋▊▉*]{3,}\]/g;

// The latest progress-bar percentage as 0..1, scanning from the last line up; a bare "95%" in
// prose is not a bar.
export function parseProgress(lines: string[]): number | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const plain = stripAnsi(lines[i]);
    let found: number | null = null;
    for (const pattern of [TQDM, BAR_BEFORE, BAR_AFTER]) {
      pattern.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = pattern.exec(plain)) !== null) found = Number(m[1]);
    }
    if (found !== null && found >= 0 && found <= 100) return found / 100;
  }
  return null;
}

// Raw log text -> the lines a terminal shows (last `max` of them), with hidden sequences dropped
// before carriage returns are applied, so they take no columns.
export function terminalLines(text: string, max: number): string[] {
  const lines = applyCarriageReturns(clean(text)).split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return max > 0 ? lines.slice(-max) : [];
}
