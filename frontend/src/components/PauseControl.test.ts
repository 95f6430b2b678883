import { describe, expect, it } from "vitest";
import type { HealthOut } from "../api/types";
import { pausedSince } from "./PauseControl";

const health = (paused: boolean, paused_at: number | null): HealthOut => ({
  status: "ok",
  version: "x",
  executor: { name: "local", available: true, detail: null },
  nodes: [],
  paused,
  paused_at,
  notifications: { sent: 0, failed: 0, dropped: 0, pending: 0, last_error: null },
  paused_tags: [],
});

describe("pausedSince", () => {
  it("says nothing unless paused", () => {
    expect(pausedSince(null)).toBeNull();
    expect(pausedSince(health(false, null))).toBeNull();
  });
  it("gives the time today, and the day too when it was earlier", () => {
    const now = new Date(2026, 10, 25, 15, 0);
    const today = new Date(2026, 10, 25, 14, 5).getTime() / 1000;
    expect(pausedSince(health(true, today), now)).toMatch(/^The queue is paused since \d\d:05/);
    const before = new Date(2026, 10, 20, 9, 30).getTime() / 1000;
    expect(pausedSince(health(true, before), now)).toMatch(/^The queue is paused since \S+ 20,? \d\d:30/);
  });
});
