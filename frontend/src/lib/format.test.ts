import { describe, expect, it } from "vitest";
import { duration, formatDuration, gpuMemOverText, gpuMemText, isSize, parseDuration, retriesText, smooth, timeoutText } from "./format";

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

describe("GPU memory packing", () => {
  const G = 2 ** 30;
  it("reads sizes as the server does", () => {
    for (const ok of ["20G", "20GiB", "512m", "1.5 T", "1048576", " 20 gb "]) expect(isSize(ok)).toBe(true);
    for (const bad of ["", "G", "lots", "-1G", "20X", "1,5G"]) expect(isSize(bad)).toBe(false);
  });
  it("says what a memory task declared, uses and whether it went over", () => {
    const whole = { gpu_mem: null, gpu_mem_used: 3 * G, gpu_mem_over: null };
    expect(gpuMemText(whole)).toBeNull();
    expect(gpuMemOverText(whole)).toBeNull();
    const mem = { gpu_mem: 6 * G, gpu_mem_used: 4 * G, gpu_mem_over: null };
    expect(gpuMemText(mem)).toBe("6.0 GiB declared (shares one GPU); using 4.0 GiB");
    expect(gpuMemOverText(mem)).toBeNull();
    expect(gpuMemOverText({ ...mem, gpu_mem_over: 9 * G })).toBe("GPU memory over: 9.0 GiB used of 6.0 GiB declared");
  });
});
