// The GPU timeline: a track per GPU over the chosen window, a bar per task that held it (coloured
// by how it ended), the empty track where it was idle, and how busy it was. A bar is a link to its
// task's page; hovering or focusing it shows the task id, command, start and end.
import { Link } from "react-router";
import type { GpuTimelineOut } from "../api/types";
import { taskPath } from "../lib/paths";
import { barText, busyShare, busyText, placeBars, timeTicks } from "../lib/timeline";

const STATES = ["running", "succeeded", "failed", "killed", "timed_out", "lost"] as const;

export function GpuTimeline({ data }: { data: GpuTimelineOut | null }) {
  if (!data) return <div className="card timeline muted">Loading the GPU timeline…</div>;
  const { since, now } = data;
  const ticks = timeTicks(since, now);
  return (
    <section className="card timeline" data-testid="gpu-timeline" aria-label="GPU timeline">
      <div className="row spread">
        <h3>GPU timeline</h3>
        <div className="tl-legend small muted">
          {STATES.map((s) => (
            <span key={s}>
              <i className={`tl-swatch tl-${s}`} /> {s}
            </span>
          ))}
          <span>
            <i className="tl-swatch tl-idle" /> idle
          </span>
        </div>
      </div>
      {data.gpus.length === 0 && <div className="muted">No GPUs.</div>}
      {data.gpus.map((gpu) => {
        // Shorter bars last (on top): a short task next to a long one stays visible and hoverable.
        const placed = placeBars(gpu.bars, since, now).sort((a, b) => b.width - a.width);
        const busy = busyShare(gpu.bars, since, now);
        return (
          <div className="tl-row" key={gpu.index} data-testid={`timeline-gpu-${gpu.index}`}>
            <span className="tl-name">GPU {gpu.label}</span>
            <div className="tl-track">
              {placed.map(({ bar, left, width }) => {
                const text = barText(bar, now);
                return (
                  <Link
                    key={bar.task_id}
                    to={taskPath(bar.task_id)}
                    className={`tl-bar tl-${bar.state}${left > 60 ? " tl-flip" : ""}`}
                    style={{ left: `${left}%`, width: `${width}%` }}
                    aria-label={`${text.title}. ${text.lines.join(". ")}`}
                    data-testid={`timeline-bar-${gpu.index}-${bar.task_id}`}
                  >
                    <span className="tl-tip" role="tooltip">
                      <strong>{text.title}</strong>
                      {text.lines.map((line, i) => (
                        <span key={i} className={i === 0 ? "tl-command" : undefined}>
                          {line}
                        </span>
                      ))}
                    </span>
                  </Link>
                );
              })}
            </div>
            <span className="tl-busy small muted" title="share of the window some task held this GPU">
              {busyText(busy)}
            </span>
          </div>
        );
      })}
      <div className="tl-row tl-axis" aria-hidden="true">
        <span className="tl-name" />
        <div className="tl-track tl-ticks">
          {ticks.map((tick) => (
            <span key={tick.t} className="tl-tick small muted" style={{ left: `${tick.left}%` }}>
              {tick.label}
            </span>
          ))}
        </div>
        <span className="tl-busy small muted">now</span>
      </div>
      {data.truncated && <div className="small muted">Only the 10,000 most recent tasks are shown.</div>}
    </section>
  );
}
