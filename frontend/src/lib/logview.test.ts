import { describe, expect, it } from "vitest";
import { farthest, markMatches, missingRun, nextMatch, shownLine, windowStart } from "./logview";

describe("windowStart", () => {
  it("is 0 while the log fits in one window", () => {
    expect(windowStart(0, 10, 100)).toBe(0);
    expect(windowStart(99, 100, 100)).toBe(0);
  });
  it("puts the line near the middle, within the log", () => {
    expect(windowStart(500, 1000, 100)).toBe(450);
    expect(windowStart(10, 1000, 100)).toBe(0);
    expect(windowStart(999, 1000, 100)).toBe(900);
  });
});

describe("missingRun", () => {
  const have = (lines: number[]) => (n: number) => lines.includes(n);
  it("finds the first run of missing lines, at most max long", () => {
    expect(missingRun(have([0, 1, 2]), 0, 3)).toBeNull();
    expect(missingRun(have([0, 1, 5]), 0, 10)).toEqual([2, 3]);
    expect(missingRun(have([]), 0, 10, 4)).toEqual([0, 4]);
    expect(missingRun(have([]), -50, 3)).toEqual([0, 3]);
    expect(missingRun(have([]), 5, 5)).toBeNull();
  });
});

describe("farthest", () => {
  it("forgets the lines farthest from the view first", () => {
    expect(farthest([1, 2, 3], 2, 5)).toEqual([]);
    expect(farthest([0, 1, 2, 3, 100], 2, 3).sort((a, b) => a - b)).toEqual([0, 100]);
  });
});

describe("markMatches", () => {
  it("marks every match, case ignored, across coloured segments", () => {
    const out = markMatches([{ text: "an Err" }, { text: "or here, error", fg: "#c33" }], "error");
    expect(out.filter((s) => s.mark).map((s) => s.text)).toEqual(["Err", "or", "error"]);
    expect(out.map((s) => s.text).join("")).toBe("an Error here, error");
    expect(out.find((s) => s.text === "or")?.fg).toBe("#c33");
  });
  it("matches case when asked, and leaves lines without a query alone", () => {
    expect(markMatches([{ text: "Error error" }], "error", true).filter((s) => s.mark).map((s) => s.text)).toEqual(["error"]);
    const plain = [{ text: "x" }];
    expect(markMatches(plain, "")).toBe(plain);
  });
});

describe("nextMatch", () => {
  it("is the first match at or after a line, wrapping", () => {
    expect(nextMatch([3, 10, 20], 0)).toBe(0);
    expect(nextMatch([3, 10, 20], 10)).toBe(1);
    expect(nextMatch([3, 10, 20], 11)).toBe(2);
    expect(nextMatch([3, 10, 20], 21)).toBe(0);
  });
});

describe("shownLine", () => {
  it("shows what a terminal shows: \\r overwrites, hidden sequences go", () => {
    expect(shownLine("10%\r50%\r100%")).toBe("100%");
    expect(shownLine("a\x1b]0;title\x07b")).toBe("ab");
    expect(shownLine("crlf\r")).toBe("crlf");
  });
});
