import { describe, expect, it } from "vitest";
import { ansiToSegments, applyCarriageReturns, parseProgress, stripAnsi, terminalLines } from "./terminal";

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
      { text: "red bold", bold: true, fg: "#c33" },
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
