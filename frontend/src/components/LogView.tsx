import { useEffect, useState } from "react";
import { api, ApiError } from "../api/client";
import { terminalLines } from "../lib/terminal";
import { Terminal } from "./Terminal";

// The last `lines` lines of a task's log, read again when `version` changes (the task ended...).
export function LogTail(props: { taskId: string; lines: number; minLines: number; maxLines: number; version: string }) {
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.log(props.taskId, props.lines).then(
      (log) => live && setText(log.text),
      () => live && setText(""),
    );
    return () => {
      live = false;
    };
  }, [props.taskId, props.lines, props.version]);
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

// The whole log in a dialog.
export function LogDialog(props: { taskId: string; onClose: () => void }) {
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.fullLog(props.taskId).then(
      (t) => live && setText(t),
      (err) => live && setText(`(cannot read the log: ${err instanceof ApiError ? err.message : String(err)})`),
    );
    return () => {
      live = false;
    };
  }, [props.taskId]);
  return (
    <div className="overlay" role="dialog" aria-label={`Log of ${props.taskId}`} onClick={props.onClose}>
      <div className="dialog card wide" onClick={(e) => e.stopPropagation()}>
        <div className="row spread">
          <h2>{props.taskId}</h2>
          <button className="ghost" aria-label="Close log" onClick={props.onClose}>✕</button>
        </div>
        {text === null ? (
          <div className="muted">loading the log…</div>
        ) : (
          <Terminal lines={terminalLines(text, 100000)} minLines={5} maxLines={40} testId="full-log" />
        )}
      </div>
    </div>
  );
}
