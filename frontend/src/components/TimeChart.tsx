// One time-series chart, drawn by uPlot (a maintained, small canvas charting library): a time
// axis over the whole window, a value axis with units, a legend that shows each series' value
// under the cursor, and a click on a legend entry hides or shows that series. Charts of the page
// share the cursor (hovering one shows the same time in the others).
import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatValue, lineStyle } from "../lib/history";
import { axisClock } from "../lib/timeline";

export interface ChartLine {
  key: string;
  name: string;
  values: (number | null)[];
}

interface Props {
  id: string; // for data-testid: chart-<id>
  title: string;
  unit: "percent" | "bytes";
  times: number[];
  lines: ChartLine[];
  since: number;
  now: number;
  top: number | null; // the value axis' top (100 %, the memory there is); null: from the data
  hidden?: Set<string>; // keys of the series the user turned off: shared, to outlive this chart
}

const HEIGHT = 170;
const BYTE_STEPS = [0, 10, 20, 30, 40].flatMap((shift) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 2 ** shift));

function cssVar(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

// Re-read the theme's colours when the system switches between light and dark.
function useScheme(): string {
  const [query] = useState(() =>
    typeof window !== "undefined" && window.matchMedia ? window.matchMedia("(prefers-color-scheme: light)") : null,
  );
  const [scheme, setScheme] = useState(query?.matches ? "light" : "dark");
  useEffect(() => {
    if (!query) return;
    const change = () => setScheme(query.matches ? "light" : "dark");
    query.addEventListener("change", change);
    return () => query.removeEventListener("change", change);
  }, [query]);
  return scheme;
}

export function TimeChart(props: Props) {
  const holder = useRef<HTMLDivElement>(null);
  const axesText = useRef<HTMLParagraphElement>(null);
  const plot = useRef<uPlot | null>(null);
  const own = useRef(new Set<string>());
  const hidden = props.hidden ?? own.current; // series the user turned off, kept across re-creation
  const view = useRef({ since: props.since, now: props.now, top: props.top });
  view.current = { since: props.since, now: props.now, top: props.top };
  const scheme = useScheme();
  const shape = `${props.unit}|${props.lines.map((l) => `${l.key}=${l.name}`).join(",")}`;
  const data = (): uPlot.AlignedData => [props.times, ...props.lines.map((l) => l.values)];

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const ticks = { x: [] as string[], y: [] as string[] };
    const text = cssVar(el, "--muted", "#888");
    const grid = cssVar(el, "--line", "#444");
    const unit = props.unit;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      cursor: { sync: { key: "ant-dashboard" }, drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => [view.current.since, view.current.now] },
        y: {
          range: (_u, _min, max) => [0, view.current.top ?? (max > 0 ? max * 1.1 : 1)],
        },
      },
      axes: [
        {
          stroke: text,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          space: 56, // px between time ticks at least: labels never touch
          values: (_u, splits) => (ticks.x = splits.map(axisClock)),
        },
        {
          stroke: text,
          size: unit === "bytes" ? 72 : 56,
          // Bytes step in powers of two (0, 4, 8, 12, 16 GiB), not in decimal tenths of a GiB.
          incrs: unit === "bytes" ? BYTE_STEPS : undefined,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          values: (_u, splits) => (ticks.y = splits.map((v) => formatValue(v, unit))),
        },
      ],
      series: [
        { label: "time", value: (_u, t) => (t === null ? "–" : new Date(t * 1000).toLocaleTimeString()) },
        ...props.lines.map((line, k) => {
          const style = lineStyle(k);
          return {
            label: line.name,
            show: !hidden.has(line.key),
            stroke: cssVar(el, `--series-${style.colour}`, "#4f8cff"),
            dash: style.dash,
            width: style.width,
            spanGaps: false,
            points: { show: false },
            value: (_u: uPlot, v: number | null) => formatValue(v, unit),
          };
        }),
      ],
      hooks: {
        // The axes' labels as text too: for screen readers (the canvas has none) and for tests.
        draw: [
          () => {
            if (axesText.current) axesText.current.textContent = `Time: ${ticks.x.join(", ")}. Values: ${ticks.y.join(", ")}.`;
          },
        ],
        setSeries: [
          (u, index) => {
            if (index === null || index === 0) return;
            const key = props.lines[index - 1]?.key;
            if (!key) return;
            if (u.series[index].show) hidden.delete(key);
            else hidden.add(key);
            const row = u.root.querySelectorAll(".u-legend .u-series")[index];
            row?.setAttribute("aria-pressed", String(u.series[index].show !== false));
          },
        ],
      },
    };
    const u = new uPlot(opts, data(), el);
    plot.current = u;
    // The legend's entries toggle their series with the keyboard too (uPlot: a click).
    u.root.querySelectorAll<HTMLElement>(".u-legend .u-series").forEach((row, i) => {
      if (i === 0) return; // the time
      row.tabIndex = 0;
      row.setAttribute("role", "button");
      row.setAttribute("aria-pressed", String(u.series[i].show !== false));
      row.addEventListener("keydown", (e) => {
        if (e.key !== "Enter" && e.key !== " ") return;
        e.preventDefault();
        u.setSeries(i, { show: u.series[i].show === false });
      });
    });
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Re-created only when the series or the theme change; new data goes through setData below.
  }, [shape, scheme]);

  useEffect(() => {
    plot.current?.setData(data());
  }, [props.times, props.lines, props.since, props.now, props.top]);

  return (
    <figure className="card chart" data-testid={`chart-${props.id}`} data-points={props.times.length}
      data-window={Math.round(props.now - props.since)}
      aria-label={props.title}>
      <figcaption>{props.title}</figcaption>
      <div ref={holder} className="chart-plot" />
      <p ref={axesText} className="sr-only" data-testid={`chart-${props.id}-axes`} />
    </figure>
  );
}
