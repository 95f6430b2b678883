// GPU-hours per user or per tag over a window (GET /api/v1/usage): GPUs held x hours, from the
// store; running tasks count up to now, so the table is read again as tasks end and every minute.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { UsageOut } from "../api/types";
import { useEndedChanges } from "../state/hooks";
import { useMe } from "../state/me";

const WINDOWS = [
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
  { value: "30d", label: "Last 30 days" },
] as const;

export function UsagePage() {
  const [window, setWindow] = useState<string>("7d");
  const [by, setBy] = useState<UsageOut["by"]>("user");
  const [usage, setUsage] = useState<UsageOut | null>(null);
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);
  const ended = useEndedChanges();
  const me = useMe();

  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), 60_000);
    return () => clearInterval(timer);
  }, []);
  useEffect(() => {
    let live = true;
    api.usage(window, by).then(
      (answer) => {
        if (!live) return;
        setUsage(answer);
        setError("");
      },
      (err: Error) => live && setError(err.message),
    );
    return () => {
      live = false;
    };
  }, [window, by, ended, tick]);

  const most = Math.max(...(usage?.rows.map((r) => r.gpu_hours) ?? [0]), 0);
  return (
    <div className="page usage">
      <div className="row wrap spread">
        <h2>GPU usage</h2>
        <span className="row wrap">
          <label className="row">
            <span className="muted">Window</span>
            <select aria-label="Window" value={window} onChange={(e) => setWindow(e.target.value)}>
              {WINDOWS.map((w) => (
                <option key={w.value} value={w.value}>
                  {w.label}
                </option>
              ))}
            </select>
          </label>
          <label className="row">
            <span className="muted">By</span>
            <select aria-label="Group by" value={by} onChange={(e) => setBy(e.target.value as UsageOut["by"])}>
              <option value="user">User</option>
              <option value="tag">Tag</option>
            </select>
          </label>
        </span>
      </div>
      <p className="muted">GPU-hours: GPUs held × hours, counting only the part of each run inside the window; running tasks count up to now.</p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {usage && usage.rows.length === 0 && <p className="muted">No GPU was used in this window.</p>}
      {usage && usage.rows.length > 0 && (
        <table className="usage-table" data-testid="usage-table">
          <thead>
            <tr>
              <th scope="col">{by === "user" ? "User" : "Tag"}</th>
              <th scope="col" className="num">
                GPU-hours
              </th>
              <th scope="col" className="bar-col">
                <span className="sr-only">Share</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {usage.rows.map((row) => (
              <tr key={row.key} data-testid={`usage-row-${row.key || "untagged"}`}>
                <td>
                  {row.key || <span className="muted">(no tag)</span>}
                  {by === "user" && me && row.key === me.name && <span className="muted"> (me)</span>}
                </td>
                <td className="num">{row.gpu_hours.toFixed(2)}</td>
                <td className="bar-col">
                  <span className="usage-bar" style={{ width: `${most ? (100 * row.gpu_hours) / most : 0}%` }} />
                </td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row">Total</th>
              <td className="num">{usage.total.toFixed(2)}</td>
              <td />
            </tr>
          </tfoot>
        </table>
      )}
    </div>
  );
}
