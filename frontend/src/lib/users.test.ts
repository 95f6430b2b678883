import { describe, expect, it } from "vitest";
import { ownedBy, USER_RE, userChoices } from "./users";

describe("users", () => {
  it("keeps every task without a user, else that user's", () => {
    expect(ownedBy({ owner: "alice" }, "")).toBe(true);
    expect(ownedBy({ owner: "alice" }, "alice")).toBe(true);
    expect(ownedBy({ owner: "bob" }, "alice")).toBe(false);
  });
  it("offers the known users, then other owners once", () => {
    expect(userChoices(["admin", "alice"], [{ owner: "alice" }, { owner: "gone" }, { owner: "gone" }])).toEqual([
      "admin",
      "alice",
      "gone",
    ]);
  });
  it("reads user names as the server does", () => {
    expect(USER_RE.test("alice")).toBe(true);
    expect(USER_RE.test("Alice")).toBe(false);
    expect(USER_RE.test("")).toBe(false);
  });
});
