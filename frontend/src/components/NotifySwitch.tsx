// The header's switch for desktop notifications (state/notifications.ts), with the browser's
// answer next to it when it will not show them.
import { useEffect, useReducer } from "react";
import { setEnabled, useNotificationOption, type Permission } from "../state/notifications";

const WHY_NOT: Partial<Record<Permission, string>> = {
  denied: "blocked by the browser: allow them in the site settings",
  unsupported: "not available here (the browser needs HTTPS or localhost)",
};

export function NotifySwitch() {
  const { enabled, permission } = useNotificationOption();
  // The permission can change in the browser's settings: read it again when the window is back.
  const [, refresh] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    window.addEventListener("focus", refresh);
    return () => window.removeEventListener("focus", refresh);
  }, []);
  const why = enabled ? WHY_NOT[permission] : undefined;
  return (
    <div className="notify row small">
      <label
        className="switch"
        title="A desktop notification when a task submitted here, watched or open in a page ends"
      >
        <input
          type="checkbox"
          checked={enabled}
          onChange={(e) => void setEnabled(e.target.checked)}
          aria-label="Desktop notifications"
        />
        Notify
      </label>
      {why && (
        <span className="muted" role="status" data-testid="notify-blocked">
          {why}
        </span>
      )}
    </div>
  );
}
