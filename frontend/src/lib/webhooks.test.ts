import { describe, expect, it } from "vitest";
import { webhookText } from "./webhooks";

const none = { sent: 0, failed: 0, dropped: 0, pending: 0, last_error: null };

describe("webhookText", () => {
  it("says nothing until a webhook was used", () => {
    expect(webhookText(undefined)).toBeNull();
    expect(webhookText(none)).toBeNull();
  });

  it("counts the deliveries, and names the last error", () => {
    expect(webhookText({ ...none, sent: 3 })).toBe("Webhooks: 3 sent · 0 failed");
    expect(webhookText({ sent: 3, failed: 1, dropped: 2, pending: 1, last_error: "https://h/…: timed out" })).toBe(
      "Webhooks: 3 sent · 1 failed · 2 dropped · 1 pending — last error: https://h/…: timed out",
    );
  });
});
