import { Link } from "react-router";
import type { GpuOut } from "../api/types";
import { bytes, smooth } from "../lib/format";
import { groupByNode } from "../lib/nodes";
import { taskPath } from "../lib/paths";
import { useGpus, useHealth, useSystem } from "../state/hooks";
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

// The charts' colours are the theme's (--series-0 … --series-7 in styles.css): darker when light.
const SERIES_COLOURS = 8;
const seriesColour = (k: number) => `var(--series-${k % SERIES_COLOURS})`;

function Plot(props: { title: string; series: { name: string; values: number[] }[]; alpha: number; size: number }) {
  const width = 600;
  const height = 140;
  return (
    <div className="card plot">
      <h3>{props.title}</h3>
      <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={props.title}>
        <rect x="0" y="0" width={width} height={height} className="plot-bg" />
        {props.series.map((s, k) => {
          const values = smooth(s.values, props.alpha);
          const step = width / Math.max(1, props.size - 1);
          const offset = props.size - values.length;
          const points = values
            .map((v, i) => `${((offset + i) * step).toFixed(1)},${(height - Math.max(0, Math.min(1, v)) * height).toFixed(1)}`)
            .join(" ");
          return <polyline key={s.name} points={points} fill="none" style={{ stroke: seriesColour(k) }} strokeWidth="2" />;
        })}
      </svg>
      <div className="legend">
        {props.series.map((s, k) => (
          <span key={s.name} style={{ color: seriesColour(k) }}>
            ■ {s.name}
          </span>
        ))}
      </div>
    </div>
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

export function DashboardPage() {
  const gpus = useGpus();
  const health = useHealth();
  const { history, size, alpha } = useSystem();
  const { toggleGpu } = useLive();
  const current = history[history.length - 1];
  const host = current?.host;
  const toggle = (gpu: GpuOut) => void toggleGpu(gpu);
  const named = gpus.map((g) => ({ index: g.index, name: `GPU ${g.label || g.index}` }));
  const utilSeries = named.map(({ index, name }) => ({
    name,
    values: history.map((p) => p.gpus.find((g) => g.index === index)?.util ?? 0),
  }));
  const memSeries = named.map(({ index, name }) => ({
    name,
    values: history.map((p) => {
      const g = p.gpus.find((x) => x.index === index);
      return g && g.mem_total ? g.mem_used / g.mem_total : 0;
    }),
  }));
  const groups = groupByNode(gpus, health);
  return (
    <div className="page">
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
            <div className="grid">
              {group.gpus.length === 0 && <div className="card muted">No GPUs: CPU (0-GPU) tasks run here.</div>}
              {group.gpus.map((gpu) => (
                <GpuCard key={gpu.index} gpu={gpu} onToggle={toggle} />
              ))}
            </div>
          </section>
        ) : null,
      )}
      <section className="grid">
        {gpus.length === 0 && !groups[0].node && <div className="card">No GPUs: only CPU (0-GPU) tasks run here.</div>}
        {groups.length === 1 && !groups[0].node && groups[0].gpus.map((gpu) => <GpuCard key={gpu.index} gpu={gpu} onToggle={toggle} />)}
        <div className="card host">
          <strong>Host</strong>
          {host ? (
            <>
              <Bar value={host.cpu_percent / 100} label={`CPU ${host.cpu_percent.toFixed(0)}% (${host.per_core.length} cores)`} />
              <Bar value={host.mem_total ? host.mem_used / host.mem_total : 0} label={`RAM ${bytes(host.mem_used)} / ${bytes(host.mem_total)}`} />
              <div className="muted">load {host.load_avg.map((l) => l.toFixed(2)).join(" ")}</div>
            </>
          ) : (
            <div className="muted">waiting for the first sample…</div>
          )}
        </div>
      </section>
      <section className="plots">
        <Plot title="GPU utilisation" series={utilSeries} alpha={alpha} size={size} />
        <Plot title="GPU memory" series={memSeries} alpha={alpha} size={size} />
        <Plot
          title="Host CPU and RAM"
          series={[
            { name: "CPU", values: history.map((p) => (p.host ? p.host.cpu_percent / 100 : 0)) },
            { name: "RAM", values: history.map((p) => (p.host && p.host.mem_total ? p.host.mem_used / p.host.mem_total : 0)) },
          ]}
          alpha={alpha}
          size={size}
        />
      </section>
    </div>
  );
}
