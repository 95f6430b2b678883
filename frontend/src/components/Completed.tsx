import { useCallback, useEffect, useState } from "react";
import { api, ApiError } from "../api/client";
import type { ServerInfo, TaskOut } from "../api/types";
import { duration, when } from "../lib/format";
import { load, save } from "../lib/storage";
import { terminalLines } from "../lib/terminal";
import { LineControl } from "./LineControl";
import { Terminal } from "./Terminal";

const PAGE = 25;
const FINISHED = "succeeded,failed,killed,lost";

function Preview(props: { task: TaskOut; lines: number; minLines: number; maxLines: number; version: number }) {
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.log(props.task.task_id, props.lines).then(
      (log) => live && setText(log.text),
      () => live && setText(""),
    );
    return () => {
      live = false;
    };
  }, [props.task.task_id, props.lines, props.version]);
  if (text === null) return <div className="muted">loading output…</div>;
  return (
    <Terminal
      lines={terminalLines(text, props.lines)}
      minLines={props.minLines}
      maxLines={props.maxLines}
      testId={`output-${props.task.task_id}`}
    />
  );
}

export function Completed(props: {
  info: ServerInfo;
  version: number;
  notify: (kind: "ok" | "error", msg: string) => void;
  copy: (task: TaskOut) => void;
  showLog: (task: TaskOut) => void;
}) {
  const ui = props.info.ui as Record<string, number | boolean>;
  const maxLines = Number(ui.view_log_max_lines);
  const control = Boolean(ui.completed_output_line_control_enabled);
  const [outLines, setOutLines] = useState<number>(() => load("outputLines", Number(ui.completed_output_default_lines)));
  const lines = control ? Math.min(Math.max(1, outLines), maxLines) : Number(ui.completed_output_default_lines);
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState("");
  const [offset, setOffset] = useState(0);
  const [tasks, setTasks] = useState<TaskOut[]>([]);
  const [total, setTotal] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [hidden, setHidden] = useState<Set<string>>(new Set());

  const refresh = useCallback(async () => {
    try {
      const page = await api.tasks({ state: FINISHED, q: search, limit: PAGE, offset });
      setTasks(page.tasks);
      setTotal(page.total);
    } catch (err) {
      props.notify("error", err instanceof ApiError ? err.message : String(err));
    }
  }, [search, offset, props.notify]);

  useEffect(() => {
    void refresh();
  }, [refresh, props.version]);

  const setLines = (n: number) => {
    const v = Math.min(Math.max(1, Math.round(n) || 1), maxLines);
    setOutLines(v);
    save("outputLines", v);
  };
  const toggle = (set: Set<string>, id: string) => {
    const next = new Set(set);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    return next;
  };

  const each = async (ids: string[], what: "restart" | "remove") => {
    const done: string[] = [];
    for (const id of ids) {
      try {
        if (what === "restart") done.push((await api.restart(id)).task_id);
        else {
          await api.remove(id);
          done.push(id);
        }
      } catch (err) {
        props.notify("error", `${id}: ${err instanceof ApiError ? err.message : String(err)}`);
      }
    }
    if (done.length) props.notify("ok", what === "restart" ? `Queued ${done.join(", ")}` : `Deleted ${done.join(", ")}`);
    setSelected(new Set());
    void refresh();
  };

  const bulkDownload = async (ids: string[]) => {
    try {
      const parts = await Promise.all(ids.map(async (id) => `===== ${id} =====\n${await api.fullLog(id)}`));
      const url = URL.createObjectURL(new Blob([parts.join("\n")], { type: "text/plain" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = ids.length === 1 ? `${ids[0]}.log` : "ant-logs.txt";
      a.click();
      URL.revokeObjectURL(url);
      props.notify("ok", `Downloaded ${ids.length} log(s)`);
    } catch (err) {
      props.notify("error", err instanceof ApiError ? err.message : String(err));
    }
  };

  const ids = tasks.map((t) => t.task_id);
  const chosen = ids.filter((id) => selected.has(id));
  return (
    <div className="page">
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          setOffset(0);
          setSearch(query.trim());
        }}
      >
        <input aria-label="Search tasks" placeholder="Search id or command" value={query} onChange={(e) => setQuery(e.target.value)} />
        <button type="submit">Search</button>
        {control && (
          <LineControl label="Output lines" value={lines} max={maxLines} onChange={setLines} />
        )}
      </form>
      <div className="row wrap bulk">
        <label className="row">
          <input
            type="checkbox"
            aria-label="Select all on this page"
            checked={ids.length > 0 && chosen.length === ids.length}
            onChange={(e) => setSelected(e.target.checked ? new Set(ids) : new Set())}
          />
          {chosen.length} selected
        </label>
        <button disabled={!chosen.length} onClick={() => void each(chosen, "restart")}>Restart selected</button>
        <button disabled={!chosen.length} onClick={() => void bulkDownload(chosen)}>Download selected</button>
        <button className="danger" disabled={!chosen.length} onClick={() => void each(chosen, "remove")}>Delete selected</button>
        <span className="muted">
          {total === 0 ? "no finished tasks" : `${offset + 1}-${Math.min(offset + PAGE, total)} of ${total}`}
        </span>
        <button className="ghost" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>‹ Newer</button>
        <button className="ghost" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Older ›</button>
      </div>
      {tasks.map((task) => (
        <div className="card task" key={task.task_id} data-testid={`completed-${task.task_id}`}>
          <div className="row spread wrap">
            <label className="row">
              <input
                type="checkbox"
                aria-label={`Select ${task.task_id}`}
                checked={selected.has(task.task_id)}
                onChange={() => setSelected(toggle(selected, task.task_id))}
              />
              <strong className="task-id">{task.task_id}</strong>
            </label>
            <span className={`badge badge-${task.state}`}>
              {task.state}
              {task.exit_code !== null ? ` (exit ${task.exit_code})` : ""}
            </span>
            <span className="muted">
              {duration(task.started_at && task.finished_at ? task.finished_at - task.started_at : null)} · {when(task.finished_at)}
            </span>
          </div>
          <code className="command">{task.command}</code>
          {task.reason && <div className="muted small">{task.reason}</div>}
          <div className="row wrap actions">
            <button className="ghost" onClick={() => setHidden(toggle(hidden, task.task_id))}>
              {hidden.has(task.task_id) ? "Show output" : "Hide output"}
            </button>
            <button className="ghost" onClick={() => props.showLog(task)}>View full log</button>
            <a className="button ghost" href={api.downloadUrl(task.task_id)} download={`${task.task_id}.log`}>
              Download
            </a>
            <button className="ghost" onClick={() => props.copy(task)}>Copy command</button>
            <button onClick={() => void each([task.task_id], "restart")}>Restart</button>
            <button className="danger" onClick={() => void each([task.task_id], "remove")}>Delete</button>
          </div>
          {!hidden.has(task.task_id) && (
            <Preview
              task={task}
              lines={lines}
              minLines={Number(ui.output_min_lines)}
              maxLines={Number(ui.output_max_lines)}
              version={props.version}
            />
          )}
        </div>
      ))}
    </div>
  );
}
