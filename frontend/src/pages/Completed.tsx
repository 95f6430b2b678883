// Completed: every ended task in a dense table. Filters, sort and page live in the URL
// (lib/completedView.ts); the server filters, sorts and pages (GET /api/v1/tasks), the table
// shows its page (components/CompletedTable.tsx).
import { useEffect, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { api } from "../api/client";
import { endedStateValues, type EndedState, type TaskOut } from "../api/types";
import { CompletedTable, type RowActions } from "../components/CompletedTable";
import { useConfirm } from "../components/ConfirmDialog";
import { LineControl } from "../components/LineControl";
import { LogDialog } from "../components/LogView";
import { TagBar } from "../components/Tags";
import { apiQuery, filtered, firstOrder, PAGE_SIZES, readView, writeView, type CompletedView, type SortKey } from "../lib/completedView";
import { load, save } from "../lib/storage";
import { errorText, useEndedChanges, useEpoch, useServer, useTaskActions, useTaskTable } from "../state/hooks";
import { useLive } from "../state/LiveProvider";
import { submitted } from "../state/notifications";
import { useNotify } from "../state/toasts";
import { uiSettings } from "../state/ui";
import { UserFilter } from "../components/Users";

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
  const [params, setParams] = useSearchParams();
  const view = readView(params);
  const setView = (change: Partial<CompletedView>) => {
    // Any change but the page itself starts again from page 1.
    const next = { ...view, page: 1, ...change };
    setParams(writeView(next));
  };
  const maxLines = settings.logMaxLines;
  const [outLines, setOutLines] = useState<number>(() => load("outputLines", settings.doneDefaultLines));
  const lines = settings.doneLineControl ? Math.min(Math.max(1, outLines), maxLines) : settings.doneDefaultLines;
  // The page on screen: what the server answered, for which query ("": none read yet), from
  // which offset. Until a new view's answer comes, the last one stays, and so does its range.
  const [shownPage, setShownPage] = useState({ ids: [] as string[], total: 0, offset: 0, key: "" });
  const { ids, total } = shownPage;
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [logOf, setLogOf] = useState<string | null>(null);
  const [confirm, dialog] = useConfirm();

  // Which tasks are on this page is read: when the view changes, after a full read (epoch), and
  // shortly after tasks end or ended ones change or go. The tasks themselves then live in the
  // task store, so events update them in place.
  const query = apiQuery(view);
  const queryKey = JSON.stringify(query);
  const lastKey = useRef("");
  useEffect(() => {
    const key = `${queryKey}\n${epoch}`;
    const delay = key === lastKey.current ? REREAD_DELAY_MS : 0;
    if (key !== lastKey.current) setSelected(new Set());
    lastKey.current = key;
    let live = true;
    const timer = window.setTimeout(() => {
      read({}, async () => {
        const page = await api.tasks(JSON.parse(queryKey));
        if (live) {
          const offset = JSON.parse(queryKey).offset as number;
          setShownPage({ ids: page.tasks.map((t) => t.task_id), total: page.total, offset, key: queryKey });
        }
        return { tasks: page.tasks };
      }).catch((err) => live && fail(err));
    }, delay);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [queryKey, epoch, endedChanges, read, fail]);

  // Past the last page (its tasks were deleted, a hand-edited link): the last page instead.
  const lastPage = Math.max(1, Math.ceil(total / view.size));
  useEffect(() => {
    if (shownPage.key === queryKey && view.page > lastPage) setParams(writeView({ ...view, page: lastPage }), { replace: true });
  });

  const setLines = (n: number) => {
    const v = Math.min(Math.max(1, Math.round(n) || 1), maxLines);
    setOutLines(v);
    save("outputLines", v);
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

  const actions: RowActions = {
    restart: (t) => void each([t.task_id], "restart"),
    remove: (t) => void each([t.task_id], "remove"),
    copy: (t) => void copy(t),
    viewLog: (t) => setLogOf(t.task_id),
  };
  const sortBy = (key: SortKey) =>
    setView({ sort: key, order: key === view.sort ? (view.order === "asc" ? "desc" : "asc") : firstOrder(key) });
  const toggle = (set: Set<string>, id: string) => {
    const next = new Set(set);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    return next;
  };

  const tasks = ids.map((id) => byId.get(id)).filter((t): t is TaskOut => t !== undefined);
  const shown = tasks.map((t) => t.task_id);
  const chosen = shown.filter((id) => selected.has(id));
  return (
    <div className="page completed">
      <TagBar tag={view.tag} onTag={(tag) => setView({ tag })} />
      <UserFilter user={view.user} onUser={(user) => setView({ user })} tasks={tasks} />
      <Filters view={view} onChange={setView} />
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
        {settings.doneLineControl && <LineControl label="Output lines" value={lines} max={maxLines} onChange={setLines} />}
        <span className="row wrap pager">
          <span className="muted" data-testid="completed-range">
            {total === 0 ? "none" : ids.length ? `${shownPage.offset + 1}-${shownPage.offset + ids.length} of ${total}` : `none of ${total}`}
          </span>
          <label className="row">
            <span className="muted">Rows</span>
            <select aria-label="Rows per page" value={view.size} onChange={(e) => setView({ size: Number(e.target.value) })}>
              {PAGE_SIZES.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          <button className="ghost" aria-label="Previous page" disabled={view.page <= 1} onClick={() => setView({ page: view.page - 1 })}>
            ‹ Previous
          </button>
          <button className="ghost" aria-label="Next page" disabled={view.page >= lastPage} onClick={() => setView({ page: view.page + 1 })}>
            Next ›
          </button>
        </span>
      </div>
      {shownPage.key && total === 0 ? (
        <p className="muted" data-testid="completed-empty">
          {filtered(view) ? "No ended task matches these filters." : "No task has ended yet."}
        </p>
      ) : (
        <CompletedTable
          tasks={tasks}
          sort={view.sort}
          order={view.order}
          onSort={sortBy}
          selected={selected}
          onSelect={(id) => setSelected(toggle(selected, id))}
          actions={actions}
          preview={{ lines, minLines: settings.minLines, maxLines: settings.maxLines }}
        />
      )}
      {logOf && <LogDialog taskId={logOf} onClose={() => setLogOf(null)} />}
      {dialog}
    </div>
  );
}

// The filter bar: state chips, a search, a range of end days (the tag has its bar: TagBar).
function Filters(props: { view: CompletedView; onChange: (change: Partial<CompletedView>) => void }) {
  const { view, onChange } = props;
  const [text, setText] = useState(view.q);
  useEffect(() => setText(view.q), [view.q]); // back/forward, a link
  const flip = (state: EndedState) =>
    onChange({ states: view.states.includes(state) ? view.states.filter((s) => s !== state) : endedStateValues.filter((s) => s === state || view.states.includes(s)) });
  return (
    <form
      className="row wrap filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onChange({ q: text.trim() });
      }}
    >
      <span className="row wrap chips" role="group" aria-label="Show only these states">
        {endedStateValues.map((state) => (
          <button
            key={state}
            type="button"
            className={`chip-toggle badge-${state}`}
            aria-pressed={view.states.includes(state)}
            onClick={() => flip(state)}
          >
            {state}
          </button>
        ))}
      </span>
      <span className="row search-box">
        <input aria-label="Search tasks" placeholder="Search id or command" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Search</button>
      </span>
      <span className="row wrap dates">
        <label className="row">
          <span className="muted">Ended from</span>
          <input type="date" aria-label="Ended from" value={view.from} max={view.to || undefined} onChange={(e) => onChange({ from: e.target.value })} />
        </label>
        <label className="row">
          <span className="muted">to</span>
          <input type="date" aria-label="Ended to" value={view.to} min={view.from || undefined} onChange={(e) => onChange({ to: e.target.value })} />
        </label>
      </span>
      {filtered(view) && (
        <button type="button" className="ghost" onClick={() => onChange({ states: [], q: "", tag: "", user: "", from: "", to: "" })}>
          Clear filters
        </button>
      )}
    </form>
  );
}
