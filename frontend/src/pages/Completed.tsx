import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import { endedStateValues, type TaskOut } from "../api/types";
import { useConfirm } from "../components/ConfirmDialog";
import { LineControl } from "../components/LineControl";
import { LogDialog, LogTail } from "../components/LogView";
import { duration, when } from "../lib/format";
import { taskPath } from "../lib/paths";
import { load, save } from "../lib/storage";
import { errorText, useEndedChanges, useEpoch, useServer, useTaskActions, useTaskTable } from "../state/hooks";
import { useLive } from "../state/LiveProvider";
import { submitted } from "../state/notifications";
import { useNotify } from "../state/toasts";
import { uiSettings } from "../state/ui";

const PAGE = 25;
const ENDED = endedStateValues.join(",");
// Tasks ending come in bursts: the page is read once, this long after the last.
const REREAD_DELAY_MS = 300;
// A few of the ids a bulk action takes, for its question.
const named = (ids: string[]) => (ids.length <= 5 ? ids.join(", ") : `${ids.slice(0, 5).join(", ")} and ${ids.length - 5} more`);

export function CompletedPage() {
  const server = useServer();
  const settings = uiSettings(server);
  const { read, fail } = useLive();
  const notify = useNotify();
  const { copy } = useTaskActions();
  const byId = useTaskTable();
  const epoch = useEpoch();
  const endedChanges = useEndedChanges();
  const maxLines = settings.logMaxLines;
  const [outLines, setOutLines] = useState<number>(() => load("outputLines", settings.doneDefaultLines));
  const lines = settings.doneLineControl ? Math.min(Math.max(1, outLines), maxLines) : settings.doneDefaultLines;
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState("");
  const [offset, setOffset] = useState(0);
  const [ids, setIds] = useState<string[]>([]);
  const [total, setTotal] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const [logOf, setLogOf] = useState<string | null>(null);
  const [confirm, dialog] = useConfirm();

  // Which tasks are on this page (search and paging are the server's) is read: when the search or
  // page changes, after a full read (epoch), and shortly after tasks end or ended ones change or
  // go. The tasks themselves then live in the task store, so events update them in place.
  const lastKey = useRef("");
  useEffect(() => {
    const key = `${search}\n${offset}\n${epoch}`;
    const delay = key === lastKey.current ? REREAD_DELAY_MS : 0;
    lastKey.current = key;
    let live = true;
    const timer = window.setTimeout(() => {
      read({}, async () => {
        const page = await api.tasks({ state: ENDED, q: search, limit: PAGE, offset });
        if (live) {
          setIds(page.tasks.map((t) => t.task_id));
          setTotal(page.total);
        }
        return { tasks: page.tasks };
      }).catch((err) => live && fail(err));
    }, delay);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [search, offset, epoch, endedChanges, read, fail]);

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

  // Deleting asks first, and so does restarting several tasks at once (one is harmless).
  const ask = (chosen: string[], what: "restart" | "remove") => {
    const one = chosen.length === 1;
    const which = one ? `task ${chosen[0]}` : `${chosen.length} tasks`;
    if (what === "remove") {
      return confirm({
        title: `Delete ${which}?`,
        body: `${one ? "It goes" : `${named(chosen)} go`} from the finished tasks for good. This cannot be undone.`,
        confirm: "Delete",
      });
    }
    if (one) return Promise.resolve(true);
    return confirm({
      title: `Restart ${which}?`,
      body: `${named(chosen)}: each is queued again as a new task.`,
      confirm: "Restart",
      danger: false,
    });
  };

  const each = async (chosen: string[], what: "restart" | "remove") => {
    if (!(await ask(chosen, what))) return;
    const done: string[] = [];
    for (const id of chosen) {
      try {
        if (what === "restart") done.push((await api.restart(id)).task_id);
        else {
          await api.remove(id);
          done.push(id);
        }
      } catch (err) {
        notify("error", `${id}: ${errorText(err)}`);
      }
    }
    if (what === "restart") submitted(done); // run again from this browser: watched
    if (done.length) notify("ok", what === "restart" ? `Queued ${done.join(", ")}` : `Deleted ${done.join(", ")}`);
    setSelected(new Set());
  };

  const bulkDownload = async (chosen: string[]) => {
    try {
      const parts = await Promise.all(chosen.map(async (id) => `===== ${id} =====\n${await api.fullLog(id)}`));
      const url = URL.createObjectURL(new Blob([parts.join("\n")], { type: "text/plain" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = chosen.length === 1 ? `${chosen[0]}.log` : "ant-logs.txt";
      a.click();
      URL.revokeObjectURL(url);
      notify("ok", `Downloaded ${chosen.length} log(s)`);
    } catch (err) {
      notify("error", errorText(err));
    }
  };

  const tasks = ids.map((id) => byId.get(id)).filter((t): t is TaskOut => t !== undefined);
  const shown = tasks.map((t) => t.task_id);
  const chosen = shown.filter((id) => selected.has(id));
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
        {settings.doneLineControl && <LineControl label="Output lines" value={lines} max={maxLines} onChange={setLines} />}
      </form>
      <div className="row wrap bulk">
        <label className="row">
          <input
            type="checkbox"
            aria-label="Select all on this page"
            checked={shown.length > 0 && chosen.length === shown.length}
            onChange={(e) => setSelected(e.target.checked ? new Set(shown) : new Set())}
          />
          {chosen.length} selected
        </label>
        <button disabled={!chosen.length} onClick={() => void each(chosen, "restart")}>Restart selected</button>
        <button disabled={!chosen.length} onClick={() => void bulkDownload(chosen)}>Download selected</button>
        <button className="danger apart" disabled={!chosen.length} onClick={() => void each(chosen, "remove")}>Delete selected</button>
        <span className="row wrap pager">
          <span className="muted">
            {total === 0 ? "no finished tasks" : `${offset + 1}-${Math.min(offset + PAGE, total)} of ${total}`}
          </span>
          <button className="ghost" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>‹ Newer</button>
          <button className="ghost" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Older ›</button>
        </span>
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
              <Link className="task-id" to={taskPath(task.task_id)}>
                <strong>{task.task_id}</strong>
              </Link>
            </label>
            <span className={`badge badge-${task.state}`}>
              {task.state}
              {task.exit_code !== null ? ` (exit ${task.exit_code})` : ""}
            </span>
            <span className="muted">
              {duration(task.started_at && task.finished_at ? task.finished_at - task.started_at : null)} · {when(task.finished_at)}
              {task.nodes.length > 0 && ` · on ${task.nodes.join(", ")}`}
            </span>
          </div>
          <code className="command">{task.command}</code>
          {task.reason && <div className="muted small">{task.reason}</div>}
          <div className="row wrap actions">
            <button onClick={() => void each([task.task_id], "restart")}>Restart</button>
            <button className="ghost" onClick={() => setHidden(toggle(hidden, task.task_id))}>
              {hidden.has(task.task_id) ? "Show output" : "Hide output"}
            </button>
            <button className="ghost" onClick={() => setLogOf(task.task_id)}>View full log</button>
            <a className="button ghost" href={api.downloadUrl(task.task_id)} download={`${task.task_id}.log`}>
              Download
            </a>
            <button className="ghost" onClick={() => void copy(task)}>Copy command</button>
            <button className="danger apart" onClick={() => void each([task.task_id], "remove")}>Delete</button>
          </div>
          {!hidden.has(task.task_id) && (
            <LogTail
              taskId={task.task_id}
              lines={lines}
              minLines={settings.minLines}
              maxLines={settings.maxLines}
              version={`${task.state}:${task.finished_at}`}
            />
          )}
        </div>
      ))}
      {logOf && <LogDialog taskId={logOf} onClose={() => setLogOf(null)} />}
      {dialog}
    </div>
  );
}
