import { describe, expect, it } from "vitest";
import type { HealthOut } from "../api/types";
import { hasTag, parseTags, tagPausedAt } from "./tags";

describe("parseTags", () => {
  it("reads commas and blanks, keeps the first of duplicates", () => {
    expect(parseTags(" sweep-lr, seed_1 sweep-lr,,")).toEqual({ tags: ["sweep-lr", "seed_1"], error: null });
    expect(parseTags("")).toEqual({ tags: [], error: null });
  });
  it("says what is wrong, as the server would refuse it", () => {
    expect(parseTags("ok, -bad").error).toContain('"-bad" is not a valid tag');
    expect(parseTags("a/b").error).toContain("not a valid tag");
    expect(parseTags("x".repeat(65)).error).toContain("not a valid tag");
    expect(parseTags(Array.from({ length: 17 }, (_, i) => `t${i}`).join(",")).error).toBe("at most 16 tags, got 17");
  });
});

describe("tag filter and pauses", () => {
  it("keeps tasks carrying the tag, all without one", () => {
    expect(hasTag({ tags: ["a", "b"] }, "b")).toBe(true);
    expect(hasTag({ tags: ["a"] }, "b")).toBe(false);
    expect(hasTag({ tags: [] }, "")).toBe(true);
  });
  it("finds when a tag was paused", () => {
    const health = { paused_tags: [{ tag: "sw", paused_at: 5 }] } as unknown as HealthOut;
    expect(tagPausedAt(health, "sw")).toBe(5);
    expect(tagPausedAt(health, "other")).toBeNull();
    expect(tagPausedAt(null, "sw")).toBeNull();
  });
});
