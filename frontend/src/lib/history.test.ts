import { describe, expect, it } from "vitest";
import type { SystemHistoryOut, SystemPoint } from "../api/types";
import { appendPoint, axisTop, formatValue, knownWindow, lineStyle, seriesFor, windowsKept } from "./history";

const GIB = 2 ** 30;

const history = (): SystemHistoryOut => ({
  window: 10,
  now: 102,
  step: 1,
  times: [100, 101, 102],
  series: [
    { key: "cpu", name: "CPU", unit: "percent", values: [1, 2, 3], gpu: null, total: null },
    { key: "ram", name: "RAM", unit: "bytes", values: [GIB, GIB, GIB], gpu: null, total: 8 * GIB },
    { key: "gpu0.util", name: "GPU 0", unit: "percent", values: [0, null, 50], gpu: 0, total: null },
    { key: "gpu0.mem", name: "GPU 0", unit: "bytes", values: [0, null, GIB], gpu: 0, total: 16 * GIB },
  ],
});

const point = (time: number, gpus: SystemPoint["gpus"] = [{ index: 0, util: 0.255, mem_used: 2 * GIB, mem_total: 16 * GIB }]): SystemPoint => ({
  time,
  host: { cpu_percent: 42, per_core: [42], mem_used: 2 * GIB, mem_total: 8 * GIB, load_avg: [0, 0, 0] },
  gpus,
});

describe("appendPoint", () => {
  it("adds a live sample as the history's units have it", () => {
    const h = appendPoint(history(), point(103));
    expect(h.times).toEqual([100, 101, 102, 103]);
    expect(h.now).toBe(103);
    expect(h.series.map((s) => s.values[3])).toEqual([42, 2 * GIB, 25.5, 2 * GIB]);
  });

  it("leaves a gap for a GPU not read, not a zero", () => {
    const h = appendPoint(history(), point(103, [{ index: 0, util: null, mem_used: null, mem_total: 16 * GIB }]));
    expect(h.series.map((s) => s.values[3])).toEqual([42, 2 * GIB, null, null]);
  });

  it("ignores a sample the history already has, and drops what left the window", () => {
    const h = history();
    expect(appendPoint(h, point(102))).toBe(h);
    const later = appendPoint(h, point(111.5));
    expect(later.times).toEqual([102, 111.5]);
    expect(later.series[0].values).toEqual([3, 42]);
  });

  it("gives a GPU that appears its series, empty before", () => {
    const h = appendPoint(history(), point(103, [{ index: 5, util: 1, mem_used: 0, mem_total: 8 * GIB }]), new Map([[5, "node-b:1"]]));
    const added = h.series.filter((s) => s.gpu === 5);
    expect(added.map((s) => [s.key, s.name, s.unit])).toEqual([
      ["gpu5.util", "GPU node-b:1", "percent"],
      ["gpu5.mem", "GPU node-b:1", "bytes"],
    ]);
    expect(added[0].values).toEqual([null, null, null, 100]);
    expect(added[1].total).toBe(8 * GIB);
    expect(h.series.find((s) => s.key === "gpu0.util")?.values[3]).toBeNull(); // not in this sample
  });
});

describe("charts", () => {
  it("picks each chart's series and its axis top", () => {
    const h = history();
    expect(seriesFor(h, "cpu").map((s) => s.key)).toEqual(["cpu"]);
    expect(seriesFor(h, "gpu-util").map((s) => s.key)).toEqual(["gpu0.util"]);
    expect(seriesFor(h, "gpu-mem").map((s) => s.key)).toEqual(["gpu0.mem"]);
    expect(axisTop(seriesFor(h, "gpu-util"), "percent")).toBe(100);
    expect(axisTop(seriesFor(h, "gpu-mem"), "bytes")).toBe(16 * GIB);
    expect(axisTop([], "bytes")).toBeNull();
  });

  it("formats values with their unit and says when there is none", () => {
    expect(formatValue(42.4, "percent")).toBe("42 %");
    expect(formatValue(2.25, "percent")).toBe("2.3 %");
    expect(formatValue(0, "percent")).toBe("0 %");
    expect(formatValue(3 * GIB, "bytes")).toBe("3.0 GiB");
    expect(formatValue(null, "bytes")).toBe("–");
  });

  it("tells neighbouring lines apart by colour and dash", () => {
    const styles = [0, 1, 2, 3, 4, 5, 6, 7].map(lineStyle);
    const looks = new Set(styles.map((s) => `${s.colour}/${s.dash.join(",")}`));
    expect(looks.size).toBe(8);
    expect(new Set(styles.slice(0, 4).map((s) => s.dash.join(","))).size).toBe(4);
  });

  it("keeps only the windows it offers", () => {
    expect(knownWindow(900)).toBe(900);
    expect(knownWindow(86400)).toBe(86400);
    expect(knownWindow(5)).toBe(3600);
    expect(knownWindow("900")).toBe(3600);
    // A server that keeps less than a day: the 24 h window is not offered.
    expect(windowsKept(3600 * 12).map((w) => w.label)).toEqual(["15 min", "1 h"]);
    expect(windowsKept(undefined).length).toBe(3);
    expect(knownWindow(86400, 3600 * 12)).toBe(3600);
    expect(knownWindow(86400, 86400 * 2)).toBe(86400);
  });
});
