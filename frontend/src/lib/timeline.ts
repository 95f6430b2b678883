// The GPU timeline's geometry: where each task's bar sits on a GPU's track (percent of the window),
// how busy the GPU was, and the time ticks under the tracks. Pure; GpuTimeline draws it.
import type { TimelineBar } from "../api/types";

export interface PlacedBar {
  bar: TimelineBar;
  left: number; // percent of the track from its start (the window's start)
  width: number; // percent of the track, never less than MIN_WIDTH so a short task stays visible
}

export const MIN_WIDTH = 0.4;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

// A running task's bar (end null) reaches `now`.
export function placeBars(bars: TimelineBar[], since: number, now: number): PlacedBar[] {
  const span = Math.max(1e-9, now - since);
  return bars
    .map((bar) => {
      const start = clamp(bar.start, since, now);
      const end = clamp(bar.end ?? now, since, now);
      const width = Math.min(100, Math.max(MIN_WIDTH, ((end - start) / span) * 100));
      const left = Math.min(((start - since) / span) * 100, 100 - width);
      return { bar, left, width };
    })
    .filter((p) => (p.bar.end ?? now) >= since && p.bar.start <= now);
}

// The share of the window some task held the GPU (overlapping bars counted once), 0 to 1.
export function busyShare(bars: TimelineBar[], since: number, now: number): number {
  const spans = bars
    .map((b) => [clamp(b.start, since, now), clamp(b.end ?? now, since, now)] as const)
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0]);
  let busy = 0;
  let reach = since;
  for (const [s, e] of spans) {
    if (e <= reach) continue;
    busy += e - Math.max(s, reach);
    reach = e;
  }
  return now > since ? busy / (now - since) : 0;
}

// "35 % busy"; "<1 % busy" for a GPU used a little (a short task), never a misleading "0 %".
export function busyText(share: number): string {
  if (share > 0 && share < 0.01) return "<1 % busy";
  return `${Math.round(share * 100)} % busy`;
}

const pad = (n: number) => String(n).padStart(2, "0");

// "14:05", or "Tue 14:05" on a window of more than a few hours (it spans a day change).
export function clockLabel(t: number, window: number): string {
  const d = new Date(t * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return window > 6 * 3600 ? `${d.toLocaleDateString(undefined, { weekday: "short" })} ${hm}` : hm;
}

// A chart's time tick: "14:05", and the day's name at midnight (a 24-hour chart crosses one).
export function axisClock(t: number): string {
  const d = new Date(t * 1000);
  if (d.getHours() === 0 && d.getMinutes() === 0) return d.toLocaleDateString(undefined, { weekday: "short" });
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// Ticks at round times (every 5 min for 15 min, 15 min for 1 h, 4 h for 24 h), each at its place.
export function timeTicks(since: number, now: number): { t: number; left: number; label: string }[] {
  const window = now - since;
  const every = window <= 1800 ? 300 : window <= 2 * 3600 ? 900 : window <= 12 * 3600 ? 3600 : 4 * 3600;
  // Round in local time, so ticks fall on 14:00, not on 14:00 UTC shifted by the zone.
  const offset = new Date(since * 1000).getTimezoneOffset() * 60;
  const first = Math.ceil((since - offset) / every) * every + offset;
  const ticks = [];
  for (let t = first; t <= now; t += every) {
    ticks.push({ t, left: ((t - since) / window) * 100, label: clockLabel(t, window) });
  }
  return ticks;
}

// What a bar's hover card and accessible name say.
export function barText(bar: TimelineBar, now: number): { title: string; lines: string[] } {
  const fmt = (t: number) => new Date(t * 1000).toLocaleString();
  const end = bar.end === null ? "running" : fmt(bar.end);
  const seconds = Math.max(0, (bar.end ?? now) - bar.start);
  const took = seconds >= 3600 ? `${(seconds / 3600).toFixed(1)} h` : seconds >= 60 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
  const outcome = bar.state === "running" ? "running" : bar.exit_code === null ? bar.state : `${bar.state} (exit ${bar.exit_code})`;
  return {
    title: `${bar.task_id}: ${outcome}`,
    lines: [bar.command, `start ${fmt(bar.start)}`, `end ${end} · ${took}`],
  };
}
