import { describe, expect, it } from "vitest";
import { duration, formatDuration, parseDuration, retriesText, smooth, timeoutText } from "./format";

describe("format", () => {
  it("durations", () => {
    expect(duration(5)).toBe("5s");
    expect(duration(125)).toBe("2m 05s");
    expect(duration(3 * 3600 + 60)).toBe("3h 01m");
    expect(duration(null)).toBe("-");
  });
  it("smooths with an EMA", () => {
    expect(smooth([0, 10, 10], 0.5)).toEqual([0, 5, 7.5]);
    expect(smooth([], 0.1)).toEqual([]);
  });
});

describe("durations (timeouts)", () => {
  it("reads what the server reads and writes it back", () => {
    const cases: [string, number][] = [["90", 90], ["90s", 90], ["15m", 900], ["2h", 7200], ["1d", 86400], ["1h30m", 5400], ["1.5h", 5400], [" 2H ", 7200]];
    for (const [text, seconds] of cases) {
      expect(parseDuration(text)).toBe(seconds);
      expect(parseDuration(formatDuration(seconds))).toBe(seconds);
    }
    for (const bad of ["", "soon", "2x", "1m2h", "h"]) expect(parseDuration(bad)).toBeNull();
  });
  it("says the time left while it runs", () => {
    expect(timeoutText(null, 0, true, 10)).toBeNull();
    expect(timeoutText(7200, 1000, false, 5000)).toBe("2h");
    expect(timeoutText(7200, 1000, true, 1000 + 3600 - 180)).toBe("2h (1h 03m left)");
  });
});

describe("retries", () => {
  it("says how a task retries and which attempt it is on", () => {
    const plain = { retries: 0, retry_on: ["failure"], retry_backoff: 30, attempt: 1, attempts: [] };
    expect(retriesText(plain)).toBeNull();
    expect(retriesText({ ...plain, retries: 3, retry_on: ["failure", "lost"], attempt: 2, attempts: [{}] })).toBe(
      "3 on failure, lost · backoff 30s, doubling · attempt 2 of 4",
    );
    expect(retriesText({ ...plain, retries: 1, retry_backoff: 0 })).toBe("1 on failure · no backoff · attempt 1 of 2");
  });
});
