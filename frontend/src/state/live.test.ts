import { describe, expect, it } from "vitest";
import type { HealthOut, SystemPoint } from "../api/types";
import { initialLive, reduceLive, Store, type LiveState } from "./live";

const point = (time: number): SystemPoint => ({ time, host: null, gpus: [] });

describe("live state", () => {
  it("keeps the last history_size monitoring samples", () => {
    let s: LiveState = { ...initialLive, system: { history: [], size: 3, alpha: 0.1 } };
    for (let t = 1; t <= 5; t++) s = reduceLive(s, { type: "system", point: point(t) });
    expect(s.system.history.map((p) => p.time)).toEqual([3, 4, 5]);
  });

  it("routes task actions to the task store", () => {
    const s = reduceLive(initialLive, { type: "tasks", action: { type: "queue", queued: 2 } });
    expect(s.tasks.queued).toBe(2);
    expect(reduceLive(s, { type: "tasks", action: { type: "queue", queued: 2 } })).toBe(s);
  });

  it("tells listeners of changes, not of actions that change nothing", () => {
    const store = new Store();
    let told = 0;
    const stop = store.subscribe(() => told++);
    store.dispatch({ type: "tasks", action: { type: "queue", queued: 3 } });
    store.dispatch({ type: "tasks", action: { type: "queue", queued: 3 } });
    expect(store.getState().tasks.queued).toBe(3);
    expect(told).toBe(1);
    stop();
    store.dispatch({ type: "connected", connected: false });
    expect(told).toBe(1);
  });

  it("keeps the health the server last sent (the executor banner reads it)", () => {
    const down: HealthOut = {
      status: "degraded",
      version: "2",
      executor: { name: "ray", available: false, detail: "cluster unreachable" },
      nodes: [{ name: "node-a", alive: true, gpus: 2, usable: 2 }],
      paused: false,
      paused_at: null,
      notifications: { sent: 0, failed: 0, dropped: 0, pending: 0, last_error: null },
      paused_tags: [],
    };
    expect(initialLive.health).toBeNull();
    const s = reduceLive(initialLive, { type: "health", health: down });
    expect(s.health?.executor.available).toBe(false);
    const up = reduceLive(s, { type: "health", health: { ...down, status: "ok", executor: { name: "ray", available: true, detail: null } } });
    expect(up.health?.status).toBe("ok");
  });
});
