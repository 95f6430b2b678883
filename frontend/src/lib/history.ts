// The dashboard charts' data: the stored history of a window (GET /api/v1/system/history, columns
// with units) with the live samples (`system` events) appended, and what each chart plots.
import type { HistorySeries, SystemHistoryOut, SystemPoint } from "../api/types";
import { bytes } from "./format";

export const WINDOWS = [
  { seconds: 900, label: "15 min" },
  { seconds: 3600, label: "1 h" },
  { seconds: 86400, label: "24 h" },
] as const;
export const DEFAULT_WINDOW = 3600;

// The windows the server keeps samples for (MONITORING_keep_hours: 1 h at least).
export function windowsKept(keepSeconds: number | undefined): (typeof WINDOWS)[number][] {
  const kept = WINDOWS.filter((w) => keepSeconds === undefined || w.seconds <= keepSeconds);
  return kept.length ? kept : [WINDOWS[0]];
}

// A remembered window, if it is one offered (else the default, or the longest one kept).
export function knownWindow(seconds: unknown, keepSeconds?: number): number {
  const offered = windowsKept(keepSeconds);
  if (offered.some((w) => w.seconds === seconds)) return seconds as number;
  return offered.some((w) => w.seconds === DEFAULT_WINDOW) ? DEFAULT_WINDOW : offered[offered.length - 1].seconds;
}

// One live sample's value for a series key, as the history has it (percent 0-100, bytes).
function valueOf(key: string, p: SystemPoint): number | null {
  if (key === "cpu") return p.host ? p.host.cpu_percent : null;
  if (key === "ram") return p.host ? p.host.mem_used : null;
  const m = /^gpu(\d+)\.(util|mem)$/.exec(key);
  if (!m) return null;
  const gpu = p.gpus.find((g) => g.index === Number(m[1]));
  if (!gpu) return null;
  if (m[2] === "mem") return gpu.mem_used ?? null;
  return gpu.util == null ? null : Math.round(gpu.util * 10000) / 100;
}

// The history with a live sample added at its end, and the points older than the window dropped.
// A sample not newer than the last point is ignored (it is in the history already). A GPU the
// history does not have yet gets its series (null before).
export function appendPoint(h: SystemHistoryOut, p: SystemPoint, labels: Map<number, string> = new Map()): SystemHistoryOut {
  const last = h.times[h.times.length - 1];
  if (last !== undefined && p.time <= last) return h;
  const series = [...h.series];
  for (const g of p.gpus) {
    if (series.some((s) => s.gpu === g.index)) continue;
    const name = `GPU ${labels.get(g.index) ?? g.index}`;
    const empty = h.times.map(() => null);
    series.push(
      { key: `gpu${g.index}.util`, name, unit: "percent", values: empty, gpu: g.index, total: null },
      { key: `gpu${g.index}.mem`, name, unit: "bytes", values: [...empty], gpu: g.index, total: g.mem_total },
    );
  }
  const from = h.times.findIndex((t) => t >= p.time - h.window);
  const drop = from < 0 ? h.times.length : from;
  return {
    ...h,
    now: p.time,
    times: [...h.times.slice(drop), p.time],
    series: series.map((s) => ({ ...s, values: [...s.values.slice(drop), valueOf(s.key, p)] })),
  };
}

export type ChartKind = "cpu" | "ram" | "gpu-util" | "gpu-mem";

export const CHARTS: { kind: ChartKind; title: string; unit: "percent" | "bytes" }[] = [
  { kind: "gpu-util", title: "GPU utilisation (%)", unit: "percent" },
  { kind: "gpu-mem", title: "GPU memory (bytes used)", unit: "bytes" },
  { kind: "cpu", title: "Host CPU (%)", unit: "percent" },
  { kind: "ram", title: "Host RAM (bytes used)", unit: "bytes" },
];

// The series a chart plots, in order.
export function seriesFor(h: SystemHistoryOut, kind: ChartKind): HistorySeries[] {
  if (kind === "cpu" || kind === "ram") return h.series.filter((s) => s.key === kind);
  const unit = kind === "gpu-util" ? "percent" : "bytes";
  return h.series.filter((s) => s.gpu !== null && s.gpu !== undefined && s.unit === unit);
}

// The top of a chart's value axis: 100 % for percentages; the largest total for bytes (RAM, GPU
// memory), so a line's height reads as a share of what there is.
export function axisTop(series: HistorySeries[], unit: "percent" | "bytes"): number | null {
  if (unit === "percent") return 100;
  const totals = series.map((s) => s.total ?? 0).filter((t) => t > 0);
  return totals.length ? Math.max(...totals) : null;
}

export function formatValue(v: number | null | undefined, unit: "percent" | "bytes"): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return unit === "percent" ? `${v.toFixed(v >= 10 || v === 0 ? 0 : 1)} %` : bytes(Math.round(v));
}

// Line styles: eight theme colours (--series-0 … 7), and a dash pattern per series so equal lines
// (idle GPUs all at 0 %) stay told apart where they overlap.
const DASHES: number[][] = [[], [8, 4], [2, 3], [12, 3, 3, 3]];
export function lineStyle(k: number): { colour: number; dash: number[]; width: number } {
  return { colour: k % 8, dash: DASHES[k % DASHES.length], width: k < 4 ? 2 : 1.5 };
}
