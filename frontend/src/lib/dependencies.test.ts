import { describe, expect, it } from "vitest";
import { conditionText, parseAfter } from "./dependencies";

describe("the After field", () => {
  it("reads ids with their conditions, ok by default, [prev] as it is", () => {
    expect(parseAfter(" prep , train-3:any,[prev]:fail,")).toEqual([
      { task_id: "prep", condition: "ok" },
      { task_id: "train-3", condition: "any" },
      { task_id: "[prev]", condition: "fail" },
    ]);
    expect(parseAfter("")).toEqual([]);
  });
  it("says which condition it does not know", () => {
    expect(parseAfter("a, b:maybe")).toBe('After: the condition of "b:maybe" must be ok, any or fail');
  });
  it("shows a condition only when it is not ok", () => {
    expect(conditionText({ task_id: "a", condition: "ok" })).toBe("");
    expect(conditionText({ task_id: "a", condition: "fail" })).toBe(" (fail)");
  });
});
