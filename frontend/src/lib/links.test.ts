import { describe, expect, it } from "vitest";
import { linkIds } from "./links";

describe("linkIds", () => {
  it("splits out whole ids only", () => {
    expect(linkIds("Queued 2 task(s): a, b-1", ["a", "b-1"])).toEqual([
      { text: "Queued 2 task(s): " },
      { text: "a", id: "a" },
      { text: ", " },
      { text: "b-1", id: "b-1" },
    ]);
    expect(linkIds("Killed: job.v2", ["job"])).toEqual([{ text: "Killed: job.v2" }]);
  });
  it("prefers the longer of two ids and leaves a message without ids whole", () => {
    expect(linkIds("Queued x-restart-1", ["x", "x-restart-1"])).toEqual([{ text: "Queued " }, { text: "x-restart-1", id: "x-restart-1" }]);
    expect(linkIds("GPU 1 enabled", [])).toEqual([{ text: "GPU 1 enabled" }]);
  });
  it("escapes ids that look like patterns", () => {
    expect(linkIds("Killed: a+b", ["a+b"])).toEqual([{ text: "Killed: " }, { text: "a+b", id: "a+b" }]);
  });
});
