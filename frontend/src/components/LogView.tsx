import { useEffect, useState } from "react";
import { api } from "../api/client";
import { terminalLines } from "../lib/terminal";
import { LogViewer } from "./LogViewer";
import { Terminal } from "./Terminal";
import { useModal } from "./useModal";

// The last `lines` lines of a task's log (of one rank of a gang: 0, its first node, by default),
// read again when `version` changes (the task ended...).
export function LogTail(props: {
  taskId: string;
  lines: number;
  minLines: number;
  maxLines: number;
  version: string;
  rank?: number;
}) {
  const [text, setText] = useState<string | null>(null);
  const rank = props.rank ?? 0;
  useEffect(() => {
    let live = true;
    api.log(props.taskId, props.lines, rank).then(
      (log) => live && setText(log.text),
      () => live && setText(""),
    );
    return () => {
      live = false;
    };
  }, [props.taskId, props.lines, props.version, rank]);
  if (text === null) return <div className="muted">loading output…</div>;
  return (
    <Terminal
      lines={terminalLines(text, props.lines)}
      minLines={props.minLines}
      maxLines={props.maxLines}
      testId={`output-${props.taskId}`}
    />
  );
}

// The whole log (of one rank) in a dialog: the log viewer, which reads it by line as it scrolls.
export function LogDialog(props: { taskId: string; onClose: () => void; rank?: number }) {
  const rank = props.rank ?? 0;
  const box = useModal<HTMLDivElement>(props.onClose);
  return (
    <div className="overlay" onClick={props.onClose}>
      <div
        ref={box}
        className="dialog card wide"
        role="dialog"
        aria-modal="true"
        aria-label={`Log of ${props.taskId}`}
        tabIndex={-1}
        onClick={(e) => e.stopPropagation()}
      >
        <div className="row spread">
          <h2>
            {props.taskId}
            {rank ? <span className="muted"> · rank {rank}</span> : null}
          </h2>
          <button className="ghost" aria-label="Close log" onClick={props.onClose}>✕</button>
        </div>
        <LogViewer taskId={props.taskId} rank={rank} live={false} testId="full-log" height="min(70vh, 720px)" />
      </div>
    </div>
  );
}

// The live terminal of one rank other than 0 (the events carry rank 0's only): read every
// `intervalMs` while the task runs.
export function RankTerminal(props: { taskId: string; rank: number; lines: number; minLines: number; maxLines: number; intervalMs: number }) {
  const [lines, setLines] = useState<string[]>([]);
  const { taskId, rank, intervalMs } = props;
  useEffect(() => {
    let live = true;
    const read = () =>
      api.terminal(taskId, rank).then(
        (t) => live && setLines(t.lines),
        () => undefined,
      );
    void read();
    const timer = window.setInterval(read, Math.max(500, intervalMs));
    return () => {
      live = false;
      window.clearInterval(timer);
    };
  }, [taskId, rank, intervalMs]);
  return (
    <Terminal lines={lines.slice(-props.lines)} minLines={props.minLines} maxLines={props.maxLines} testId={`terminal-${taskId}-rank-${rank}`} />
  );
}
