import { useEffect, useMemo, useRef, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import type { GpuOut, GpuTimelineOut, SummaryOut, SystemHistoryOut } from "../api/types";
import { GpuTimeline } from "../components/GpuTimeline";
import { SummaryStrip } from "../components/SummaryStrip";
import { TimeChart } from "../components/TimeChart";
import { bytes } from "../lib/format";
import { appendPoint, axisTop, CHARTS, DEFAULT_WINDOW, knownWindow, seriesFor, windowsKept } from "../lib/history";
import { groupByNode } from "../lib/nodes";
import { taskPath } from "../lib/paths";
import { webhookText } from "../lib/webhooks";
import { load, save } from "../lib/storage";
import { useEpoch, useGpus, useHealth, useServer, useSystem, useTaskTable } from "../state/hooks";
import { useLive } from "../state/LiveProvider";

function Bar(props: { value: number; label: string }) {
  const pct = Math.max(0, Math.min(1, props.value)) * 100;
  return (
    <div className="bar" title={props.label}>
      <div className="bar-fill" style={{ width: `${pct}%` }} />
      <span className="bar-label">{props.label}</span>
    </div>
  );
}

export function gpuStateText(gpu: GpuOut): string {
  // A finished task's left-behind processes still hold it: say so rather than "in use".
  if (gpu.state === "allocated" && gpu.note) return gpu.note;
  if (gpu.state === "allocated") return `in use by ${gpu.task_ids.join(", ")}`;
  if (gpu.state === "busy_external") return `busy outside ANT${gpu.external ? ` (${gpu.external})` : ""}`;
  if (gpu.state === "unavailable") return `unavailable${gpu.error ? ` (${gpu.error})` : ""}`;
  return gpu.state;
}

// gpuStateText, with the tasks holding the GPU as links to their pages.
function GpuState({ gpu }: { gpu: GpuOut }) {
  if (gpu.state !== "allocated" || gpu.note) return <>{gpuStateText(gpu)}</>;
  return (
    <>
      in use by{" "}
      {gpu.task_ids.map((id, i) => (
        <span key={id}>
          {i > 0 && ", "}
          <Link to={taskPath(id)}>{id}</Link>
        </span>
      ))}
    </>
  );
}

// One GPU's card. Its name is its label: the index on this machine, node:index on a cluster.
function GpuCard({ gpu, onToggle }: { gpu: GpuOut; onToggle: (gpu: GpuOut) => void }) {
  const name = gpu.label || String(gpu.index);
  return (
    <div className={`card gpu gpu-${gpu.state}`} data-testid={`gpu-${gpu.index}`}>
      <div className="row spread">
        <strong>GPU {name}</strong>
        <label className="switch">
          <input
            type="checkbox"
            checked={gpu.enabled}
            onChange={() => onToggle(gpu)}
            aria-label={`GPU ${name} enabled`}
          />
          {gpu.enabled ? "enabled" : "disabled"}
        </label>
      </div>
      <div className="muted">{gpu.name}</div>
      <div className="gpu-state" data-testid={`gpu-${gpu.index}-state`}>
        <GpuState gpu={gpu} />
      </div>
      {(gpu.temperature !== null && gpu.temperature !== undefined) && (
        <div className="muted small">
          {gpu.temperature.toFixed(0)}°C{gpu.power_watts ? ` · ${gpu.power_watts.toFixed(0)} W` : ""}
        </div>
      )}
      <Bar value={gpu.util} label={`util ${(gpu.util * 100).toFixed(0)}%`} />
      <Bar
        value={gpu.mem_total ? gpu.mem_used / gpu.mem_total : 0}
        label={`mem ${bytes(gpu.mem_used)} / ${bytes(gpu.mem_total)}`}
      />
      {(gpu.mem_declared ?? 0) > 0 && (
        <div className="muted small" data-testid={`gpu-${gpu.index}-shared`}>
          shared by {gpu.task_ids.length} task{gpu.task_ids.length === 1 ? "" : "s"} ·{" "}
          {bytes(gpu.mem_declared ?? 0)} declared of {bytes(gpu.mem_total)}
        </div>
      )}
      {(gpu.processes ?? []).length > 0 && (
        <ul className="procs small" data-testid={`gpu-${gpu.index}-processes`}>
          {(gpu.processes ?? []).map((p) => (
            <li key={p.pid}>
              {p.task_id ? (
                <>
                  task <Link to={taskPath(p.task_id)}>{p.task_id}</Link>
                </>
              ) : (
                `outside ANT: ${p.user ?? "?"} ${p.command ?? ""}`
              )}{" "}
              · pid {p.pid} ·{" "}
              {bytes(p.used_memory)}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// `key`, passed on at most once per `delay` ms (the last value always comes through): a burst of
// task events reads the server once, and a steady stream still reads it now and then.
function useThrottled<T>(key: T, delay: number): T {
  const [value, setValue] = useState(key);
  const latest = useRef(key);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  latest.current = key;
  useEffect(() => {
    if (timer.current !== null || Object.is(key, value)) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      setValue(latest.current);
    }, delay);
  }, [key, value, delay]);
  useEffect(
    () => () => {
      if (timer.current !== null) clearTimeout(timer.current);
    },
    [],
  );
  return value;
}

function WindowPicker(props: { value: number; keep: number | undefined; onChange: (seconds: number) => void }) {
  const { value, onChange } = props;
  return (
    <div className="window-picker" role="group" aria-label="Time window">
      {windowsKept(props.keep).map((w) => (
        <button
          key={w.seconds}
          type="button"
          className={w.seconds === value ? "tab active" : "tab"}
          aria-pressed={w.seconds === value}
          onClick={() => onChange(w.seconds)}
        >
          {w.label}
        </button>
      ))}
    </div>
  );
}

// The charts and the GPU timeline over the chosen window (remembered by this browser). The
// history is read from the server when the window changes (and now and then), and each live
// sample is appended to it.
function Monitoring() {
  const gpus = useGpus();
  const { history: recent } = useSystem();
  const epoch = useEpoch();
  const { fail } = useLive();
  const keep = useServer()?.ui.history_keep_seconds as number | undefined;
  const [chosen, setChosen] = useState(() => load<unknown>("dashboard.window", DEFAULT_WINDOW));
  const seconds = knownWindow(chosen, keep);
  const [history, setHistory] = useState<SystemHistoryOut | null>(null);
  const [timeline, setTimeline] = useState<GpuTimelineOut | null>(null);
  const [tick, setTick] = useState(0);
  const tasks = useThrottled(useTaskTable(), 1000);
  const labels = useMemo(() => new Map(gpus.map((g) => [g.index, g.label || String(g.index)])), [gpus]);
  const latest = recent[recent.length - 1];
  const hidden = useRef(new Set<string>()).current; // series turned off: kept when the window changes

  const choose = (picked: number) => {
    save("dashboard.window", picked);
    setChosen(picked);
  };

  // Now and then, read it all again: the coarse points replace the live ones appended meanwhile,
  // and running tasks' bars reach the new now.
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), seconds > 900 ? 300_000 : 120_000);
    return () => clearInterval(timer);
  }, [seconds]);

  useEffect(() => {
    let stale = false;
    api.systemHistory(seconds).then((h) => !stale && setHistory(h), fail);
    return () => {
      stale = true;
    };
  }, [seconds, epoch, tick, fail]);

  // The timeline is read again when tasks change, and often enough that running tasks' bars grow
  // (every 5 s over 15 minutes, every 5 minutes over a day).
  const [timelineTick, setTimelineTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTimelineTick((t) => t + 1), Math.max(5, seconds / 300) * 1000);
    return () => clearInterval(timer);
  }, [seconds]);
  useEffect(() => {
    let stale = false;
    api.gpuTimeline(seconds).then((t) => !stale && setTimeline(t), fail);
    return () => {
      stale = true;
    };
  }, [seconds, epoch, tick, timelineTick, tasks, fail]);

  // Each new sample is appended (to the history of the window shown).
  useEffect(() => {
    if (latest) setHistory((h) => (h && h.window === seconds ? appendPoint(h, latest, labels) : h));
  }, [latest, seconds, labels]);

  const current = history && history.window === seconds ? history : null;
  const since = current ? current.now - seconds : 0;
  return (
    <section className="monitoring" aria-label="Monitoring">
      <div className="row spread">
        <h2>Monitoring</h2>
        <WindowPicker value={seconds} keep={keep} onChange={choose} />
      </div>
      {!current ? (
        <div className="card muted">Loading the history…</div>
      ) : (
        <div className="charts">
          {CHARTS.map((chart) => {
            const lines = seriesFor(current, chart.kind);
            if (lines.length === 0) return null;
            return (
              <TimeChart
                key={chart.kind}
                id={chart.kind}
                title={chart.title}
                unit={chart.unit}
                times={current.times}
                lines={lines}
                since={since}
                now={current.now}
                top={axisTop(lines, chart.unit)}
                hidden={hidden}
              />
            );
          })}
        </div>
      )}
      <GpuTimeline data={timeline && Math.abs(timeline.now - timeline.since - seconds) < 1 ? timeline : null} />
    </section>
  );
}

function Summary() {
  const { history } = useSystem();
  const epoch = useEpoch();
  const { fail } = useLive();
  const [summary, setSummary] = useState<SummaryOut | null>(null);
  const tasks = useThrottled(useTaskTable(), 500);
  const gpus = useThrottled(useGpus().map((g) => g.task_ids.length > 0).join(), 500);
  useEffect(() => {
    let stale = false;
    api.summary().then((s) => !stale && setSummary(s), fail);
    return () => {
      stale = true;
    };
  }, [tasks, gpus, epoch, fail]);
  return <SummaryStrip summary={summary} host={history[history.length - 1]?.host} />;
}

export function DashboardPage() {
  const gpus = useGpus();
  const health = useHealth();
  const { toggleGpu } = useLive();
  const toggle = (gpu: GpuOut) => void toggleGpu(gpu);
  const groups = groupByNode(gpus, health);
  const webhooks = webhookText(health?.notifications);
  return (
    <div className="page dashboard">
      <Summary />
      {webhooks && (
        <p className="muted small" data-testid="webhooks">
          {webhooks}
        </p>
      )}
      {groups.map((group) =>
        group.node ? (
          <section key={group.node} className="node" data-testid={`node-${group.node}`}>
            <h3 className="node-heading">
              {group.node}
              <span className="muted small">
                {" "}
                · {group.gpus.length} GPU{group.gpus.length === 1 ? "" : "s"}
                {group.alive ? "" : " · left the cluster"}
              </span>
            </h3>
            <div className="grid gpu-grid">
              {group.gpus.length === 0 && <div className="card muted">No GPUs: CPU (0-GPU) tasks run here.</div>}
              {group.gpus.map((gpu) => (
                <GpuCard key={gpu.index} gpu={gpu} onToggle={toggle} />
              ))}
            </div>
          </section>
        ) : (
          <section key="" className="grid gpu-grid">
            {gpus.length === 0 && <div className="card">No GPUs: only CPU (0-GPU) tasks run here.</div>}
            {group.gpus.map((gpu) => (
              <GpuCard key={gpu.index} gpu={gpu} onToggle={toggle} />
            ))}
          </section>
        ),
      )}
      <Monitoring />
    </div>
  );
}
