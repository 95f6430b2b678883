import { describe, expect, it } from "vitest";
import { duration, smooth } from "./format";

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
