import { describe, expect, it } from "vitest";
import { legacyHashPath } from "./legacy";

describe("legacyHashPath", () => {
  it("maps the old hash pages to their paths", () => {
    expect(legacyHashPath("#/ongoing")).toBe("/ongoing");
    expect(legacyHashPath("#/completed")).toBe("/completed");
    expect(legacyHashPath("#/create")).toBe("/create");
    expect(legacyHashPath("#/dashboard")).toBe("/");
    expect(legacyHashPath("#ongoing")).toBe("/ongoing");
    expect(legacyHashPath("#/")).toBe("/");
    expect(legacyHashPath("#/ongoing/")).toBe("/ongoing");
  });
  it("sends an unknown old page to the dashboard, as the old UI did", () => {
    expect(legacyHashPath("#/nothing")).toBe("/");
  });
  it("leaves other URLs alone", () => {
    expect(legacyHashPath("")).toBeNull();
    expect(legacyHashPath("#section")).toBeNull();
  });
});
