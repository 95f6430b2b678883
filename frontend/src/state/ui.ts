// Display settings from the server (`ui` of GET /api/v1/server) and per-browser preferences.
import { useEffect, useState } from "react";
import type { ServerInfo } from "../api/types";
import { load, save } from "../lib/storage";

export function useNow(): number {
  const [now, setNow] = useState(Date.now() / 1000);
  useEffect(() => {
    // A clock for elapsed times; it asks the server nothing.
    const t = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function uiSettings(server: ServerInfo | null) {
  const ui = server?.ui ?? {};
  return {
    winHeight: Number(ui.terminal_win_height ?? 20),
    liveLineControl: Boolean(ui.ongoing_output_line_control_enabled),
    doneLineControl: Boolean(ui.completed_output_line_control_enabled),
    doneDefaultLines: Number(ui.completed_output_default_lines ?? 10),
    minLines: Number(ui.output_min_lines ?? 3),
    maxLines: Number(ui.output_max_lines ?? 30),
    logMaxLines: Number(ui.view_log_max_lines ?? 1000),
  };
}

// The live-lines preference (a slider on Ongoing), shared with the task page.
export function useLiveLines(server: ServerInfo | null): [number, ((n: number) => void) | null] {
  const { winHeight, liveLineControl } = uiSettings(server);
  const [liveLines, setLiveLines] = useState<number>(() => load("liveLines", winHeight));
  const lines = liveLineControl ? Math.min(Math.max(1, liveLines), winHeight) : winHeight;
  const setLines = (n: number) => {
    const v = Math.min(Math.max(1, Math.round(n) || 1), winHeight);
    setLiveLines(v);
    save("liveLines", v);
  };
  return [lines, liveLineControl ? setLines : null];
}
