import { describe, expect, it } from "vitest";
import { taskFixture } from "../test/fixtures";
import { recoveryGroups, wasInterrupted } from "./recovery";

const lostAttempt = {
  attempt: 1,
  state: "lost" as const,
  exit_code: null,
  started_at: 1,
  finished_at: 2,
  log_path: null,
  reason: "interrupted when ANT 1.1 stopped",
  handle: null,
};

describe("recovery groups", () => {
  it("puts lost tasks and held tasks whose last run was lost with the interrupted ones", () => {
    const lost = { ...taskFixture("was-running"), state: "lost" as const };
    const imported = { ...taskFixture("ant1-interrupted"), state: "held" as const, attempts: [lostAttempt] };
    const queued = { ...taskFixture("was-queued"), state: "held" as const };
    const { interrupted, queued: waiting } = recoveryGroups([lost, imported, queued]);
    expect(interrupted.map((t) => t.task_id)).toEqual(["was-running", "ant1-interrupted"]);
    expect(waiting.map((t) => t.task_id)).toEqual(["was-queued"]);
  });

  it("does not take a held task whose last attempt ended otherwise for an interrupted one", () => {
    const failedOnce = {
      ...taskFixture("retried"),
      state: "held" as const,
      attempts: [{ ...lostAttempt, state: "failed" as const, exit_code: 1 }],
    };
    expect(wasInterrupted(failedOnce)).toBe(false);
  });
});
