import { useEffect, useState } from "react";
import type { ServerInfo, TaskOut } from "../api/types";
import { duration } from "../lib/format";
import { load, save } from "../lib/storage";
import { LineControl } from "./LineControl";
import { Terminal } from "./Terminal";

export interface Snapshot {
  lines: string[];
  progress: number | null;
}

function useNow(): number {
  const [now, setNow] = useState(Date.now() / 1000);
  useEffect(() => {
    // A clock for elapsed times; it asks the server nothing.
    const t = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function Ongoing(props: {
  info: ServerInfo;
  running: TaskOut[];
  queued: TaskOut[];
  terminals: Record<string, Snapshot>;
  act: (what: "kill" | "remove" | "promote", task: TaskOut) => void;
  copy: (task: TaskOut) => void;
}) {
  const ui = props.info.ui as Record<string, number | boolean>;
  const winHeight = Number(ui.terminal_win_height);
  const control = Boolean(ui.ongoing_output_line_control_enabled);
  const [liveLines, setLiveLines] = useState<number>(() => load("liveLines", winHeight));
  const lines = control ? Math.min(Math.max(1, liveLines), winHeight) : winHeight;
  const setLines = (n: number) => {
    const v = Math.min(Math.max(1, Math.round(n) || 1), winHeight);
    setLiveLines(v);
    save("liveLines", v);
  };
  const now = useNow();
  return (
    <div className="page">
      <div className="row spread wrap">
        <h2>Running ({props.running.length})</h2>
        {control && (
          <LineControl label="Live lines" value={lines} max={winHeight} onChange={setLines} />
        )}
      </div>
      {props.running.length === 0 && <p className="muted">Nothing is running.</p>}
      {props.running.map((task) => {
        const snap = props.terminals[task.task_id];
        const progress = snap?.progress ?? null;
        return (
          <div className="card task" key={task.task_id} data-testid={`running-${task.task_id}`}>
            <div className="row spread wrap">
              <strong className="task-id">{task.task_id}</strong>
              <span className="muted">
                GPUs {task.gpu_ids.length ? task.gpu_ids.join(", ") : "none"} · {duration(task.started_at ? now - task.started_at : null)}
              </span>
              <span className="row">
                <button className="ghost" onClick={() => props.copy(task)}>Copy command</button>
                <button className="danger" onClick={() => props.act("kill", task)}>Kill</button>
              </span>
            </div>
            <code className="command">{task.command}</code>
            {progress !== null && (
              <div className="progress" data-testid={`progress-${task.task_id}`}>
                <div className="progress-fill" style={{ width: `${progress * 100}%` }} />
                <span>{(progress * 100).toFixed(0)}%</span>
              </div>
            )}
            <Terminal
              lines={(snap?.lines ?? []).slice(-lines)}
              minLines={Number(ui.output_min_lines)}
              maxLines={Number(ui.output_max_lines)}
              testId={`terminal-${task.task_id}`}
            />
          </div>
        );
      })}
      <h2>Queue ({props.queued.length})</h2>
      {props.queued.length === 0 && <p className="muted">The queue is empty.</p>}
      {props.queued.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>#</th>
                <th>Task</th>
                <th>GPUs</th>
                <th>Waiting because</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {props.queued.map((task) => (
                <tr key={task.task_id} data-testid={`queued-${task.task_id}`}>
                  <td>{task.queue_position}</td>
                  <td>
                    <strong>{task.task_id}</strong>
                    <div className="muted small">{task.command}</div>
                  </td>
                  <td>{task.n_gpus}</td>
                  <td className="reason">{task.pending_reason ?? "starting…"}</td>
                  <td className="actions">
                    <button className="ghost" title="Move to top" onClick={() => props.act("promote", task)}>Move to top</button>
                    <button className="danger" onClick={() => props.act("remove", task)}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
