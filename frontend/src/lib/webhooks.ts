// The dashboard's one line on webhook deliveries (health's `notifications`, P12): nothing until a
// webhook was used, so a server without one shows no noise.
import type { NotificationsOut } from "../api/types";

export function webhookText(n: NotificationsOut | undefined): string | null {
  if (!n || n.sent + n.failed + n.dropped + n.pending === 0) return null;
  const parts = [`${n.sent} sent`, `${n.failed} failed`];
  if (n.dropped) parts.push(`${n.dropped} dropped`);
  if (n.pending) parts.push(`${n.pending} pending`);
  return `Webhooks: ${parts.join(" · ")}${n.last_error ? ` — last error: ${n.last_error}` : ""}`;
}
