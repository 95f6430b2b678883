import { describe, expect, it } from "vitest";
import type { TimelineBar } from "../api/types";
import { axisClock, barText, busyShare, busyText, MIN_WIDTH, placeBars, timeTicks } from "./timeline";

const bar = (task_id: string, start: number, end: number | null, state: TimelineBar["state"] = "succeeded"): TimelineBar => ({
  task_id,
  command: `run ${task_id}`,
  state,
  start,
  end,
  exit_code: state === "failed" ? 2 : state === "running" ? null : 0,
});

describe("placeBars", () => {
  it("places bars as a share of the window, a running one up to now", () => {
    const placed = placeBars([bar("a", 1000, 1250), bar("b", 1500, null, "running")], 1000, 2000);
    expect(placed.map((p) => [p.bar.task_id, p.left, p.width])).toEqual([
      ["a", 0, 25],
      ["b", 50, 50],
    ]);
  });

  it("clips bars to the window and keeps a short task visible", () => {
    const placed = placeBars([bar("early", 500, 1100), bar("blip", 1999.9, 2000)], 1000, 2000);
    expect(placed[0].left).toBe(0);
    expect(placed[0].width).toBeCloseTo(10);
    expect(placed[1].width).toBe(MIN_WIDTH);
    expect(placed[1].left).toBeCloseTo(100 - MIN_WIDTH); // still inside the track
  });
});

describe("busyShare", () => {
  it("counts overlapping bars once and idle time not at all", () => {
    expect(busyShare([], 0, 100)).toBe(0);
    expect(busyShare([bar("a", 0, 30), bar("b", 20, 50), bar("c", 80, null, "running")], 0, 100)).toBeCloseTo(0.7);
    expect(busyShare([bar("old", -50, 10)], 0, 100)).toBeCloseTo(0.1);
    expect(busyText(0.004)).toBe("<1 % busy");
    expect(busyText(0)).toBe("0 % busy");
    expect(busyText(0.456)).toBe("46 % busy");
  });
});

describe("timeTicks", () => {
  it("puts ticks on round local times inside the window", () => {
    const since = new Date(2026, 0, 5, 13, 7, 0).getTime() / 1000;
    const ticks = timeTicks(since, since + 3600);
    expect(ticks.map((t) => t.label)).toEqual(["13:15", "13:30", "13:45", "14:00"]);
    expect(ticks[0].left).toBeCloseTo((8 * 60 * 100) / 3600);
    const day = timeTicks(since, since + 86400);
    expect(day.length).toBe(6);
    expect(day[0].label).toMatch(/16:00$/);
  });
});

describe("barText", () => {
  it("says what a bar is: id, outcome, command, start and end", () => {
    const failed = barText(bar("train-1", 0, 90, "failed"), 100);
    expect(failed.title).toBe("train-1: failed (exit 2)");
    expect(failed.lines[0]).toBe("run train-1");
    expect(failed.lines[2]).toMatch(/ · 2 min$/);
    const running = barText(bar("train-2", 0, null, "running"), 7200);
    expect(running.title).toBe("train-2: running");
    expect(running.lines[2]).toBe("end running · 2.0 h");
  });
});

describe("axisClock", () => {
  it("names the day at midnight and the time otherwise", () => {
    expect(axisClock(new Date(2026, 0, 5, 9, 5).getTime() / 1000)).toBe("09:05");
    const midnight = axisClock(new Date(2026, 0, 5, 0, 0).getTime() / 1000);
    expect(midnight).toBe(new Date(2026, 0, 5).toLocaleDateString(undefined, { weekday: "short" }));
  });
});
