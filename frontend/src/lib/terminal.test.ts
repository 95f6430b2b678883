import { describe, expect, it } from "vitest";
import {
  ansiToSegments,
  applyCarriageReturns,
  clean,
  parseProgress,
  stripAnsi,
  terminalLines,
} from "./terminal";

describe("applyCarriageReturns", () => {
  it("keeps the latest state of a tqdm bar on one line", () => {
    const text = "start\n" + [10, 50, 100].map((p) => `\r${p}%|##| ${p}/100`).join("") + "\ndone";
    expect(applyCarriageReturns(text).split("\n")).toEqual(["start", "100%|##| 100/100", "done"]);
  });
  it("overwrites from column 0 and keeps the tail of a longer line", () => {
    expect(applyCarriageReturns("longer line\rshort")).toBe("shortr line");
  });
  it("treats CRLF as a newline", () => {
    expect(applyCarriageReturns("a\r\nb")).toBe("a\nb");
  });
  it("does not count colour codes as columns", () => {
    expect(stripAnsi(applyCarriageReturns("\x1b[31mabc\x1b[0m\rX"))).toBe("Xbc");
  });
});

describe("ansiToSegments", () => {
  it("turns SGR codes into styles", () => {
    const segs = ansiToSegments("plain \x1b[1;31mred bold\x1b[0m end");
    expect(segs).toEqual([
      { text: "plain " },
      { text: "red bold", bold: true, fg: "#e86a6a" },
      { text: " end" },
    ]);
  });
  it("handles 256 and true colour and drops other escapes", () => {
    const segs = ansiToSegments("\x1b[38;5;196mA\x1b[48;2;1;2;3mB\x1b[2K\x1b]0;t\x07C");
    expect(segs[0]).toEqual({ text: "A", fg: "rgb(255,0,0)" });
    expect(segs[1]).toEqual({ text: "BC", fg: "rgb(255,0,0)", bg: "rgb(1,2,3)" });
  });
  it("strips codes", () => {
    expect(stripAnsi("\x1b[32mok\x1b[0m \x1b[2Kdone")).toBe("ok done");
  });
});

describe("parseProgress", () => {
  it.each([
    [[" 45%|████▌     | 45/100 [00:01<00:01]"], 0.45],
    [["x", "100%|██████████| 10/10"], 1],
    [["[=====>    ] 55%"], 0.55],
    [["12.5% [####      ]"], 0.125],
    [["\x1b[31m 7%|\x1b[0m#   | 7/100"], 0.07],
    [["accuracy is 95% today"], null],
    [[], null],
  ])("%j -> %s", (lines, expected) => {
    expect(parseProgress(lines as string[])).toBe(expected);
  });
});

describe("terminalLines", () => {
  it("returns the last N rendered lines", () => {
    expect(terminalLines("1\n2\r3\n4\n", 2)).toEqual(["3", "4"]);
    expect(terminalLines("a\n", 0)).toEqual([]);
  });
});

describe("hidden sequences and bidi controls", () => {
  const text = (line: string) => ansiToSegments(line).map((s) => s.text).join("");

  it.each([
    ["7-bit DCS", "a\x1bPqpayload\x1b\\b"],
    ["8-bit DCS", "a\x90qpayload\x9cb"],
    ["8-bit OSC ended by BEL", "a\x9d0;title\x07b"],
    ["8-bit OSC ended by 7-bit ST", "a\x9d8;;http://x\x1b\\b"],
    ["8-bit PM", "a\x9eprivacy message\x9cb"],
    ["8-bit APC", "a\x9fapplication\x9cb"],
    ["8-bit SOS", "a\x98start of string\x9cb"],
    ["7-bit APC and SOS", "a\x1b_apc\x1b\\\x1bXsos\x1b\\b"],
  ])("drops a %s with its payload", (_name, line) => {
    expect(text(line)).toBe("ab");
    expect(stripAnsi(line)).toBe("ab");
    expect(terminalLines(line + "\n", 5)).toEqual(["ab"]);
  });

  it("ends an unterminated string sequence at the newline", () => {
    expect(terminalLines("a\x90unterminated\nnext\n", 5).map(text)).toEqual(["a", "next"]);
  });

  it.each([
    ["RLO/PDF", "\u202e", "\u202c"],
    ["LRO", "\u202d", "\u202c"],
    ["RLE/LRE", "\u202b", "\u202a"],
    ["isolates", "\u2067", "\u2069"],
    ["FSI/LRI", "\u2068", "\u2066"],
    ["marks", "\u200f", "\u200e"],
    ["ALM", "\u061c", "\u061c"],
  ])("drops bidi controls (%s)", (_name, open, close) => {
    const line = `file${open}txt.exe${close} done`;
    expect(text(line)).toBe("filetxt.exe done");
    expect(terminalLines(line, 5)).toEqual(["filetxt.exe done"]);
  });

  it("keeps right-to-left text itself and the colours around it", () => {
    const segs = ansiToSegments("\x1b[31m\u05e9\u05dc\u05d5\u05dd\u202e\x1b[0m ok");
    expect(segs).toEqual([{ text: "\u05e9\u05dc\u05d5\u05dd", fg: "#e86a6a" }, { text: " ok" }]);
  });

  it("drops control characters, C1 included, but keeps tabs", () => {
    expect(text("a\x00b\x07c\x08d\x7fe\x85f\x9bg\th")).toBe("abcdefg\th");
  });

  it("hidden sequences take no columns when carriage returns are applied", () => {
    expect(terminalLines("\x9d0;title\x07abc\rX\n", 5)).toEqual(["Xbc"]);
  });

  it("clean keeps text, colours, tabs and line ends", () => {
    expect(clean("\x1b[1mA\x1b[0m\tB\r\nC\u202e\x90x\x9c")).toBe("\x1b[1mA\x1b[0m\tB\r\nC");
  });
});
