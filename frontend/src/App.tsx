import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError } from "./api/client";
import type { GpuOut, RecoveryOut, ServerInfo, SystemPoint, TaskOut } from "./api/types";
import { Completed } from "./components/Completed";
import { CreateTask } from "./components/CreateTask";
import { Dashboard } from "./components/Dashboard";
import { Login } from "./components/Login";
import { Ongoing, type Snapshot } from "./components/Ongoing";
import { RecoveryDialog } from "./components/RecoveryDialog";
import { Terminal } from "./components/Terminal";
import { Toasts, type Toast } from "./components/Toasts";
import { load, save } from "./lib/storage";
import { terminalLines } from "./lib/terminal";

const PAGES = [
  ["dashboard", "Dashboard"],
  ["create", "Create New Task"],
  ["ongoing", "Ongoing Tasks"],
  ["completed", "Completed Tasks"],
] as const;
type Page = (typeof PAGES)[number][0];

function currentPage(): Page {
  const hash = window.location.hash.replace(/^#\/?/, "");
  return (PAGES.find(([p]) => p === hash)?.[0] ?? "dashboard") as Page;
}

export function App() {
  const [auth, setAuth] = useState<"checking" | "in" | "out">("checking");
  const [info, setInfo] = useState<ServerInfo | null>(null);
  const [page, setPage] = useState<Page>(currentPage());
  const [gpus, setGpus] = useState<GpuOut[]>([]);
  const [running, setRunning] = useState<TaskOut[]>([]);
  const [queued, setQueued] = useState<TaskOut[]>([]);
  const [terminals, setTerminals] = useState<Record<string, Snapshot>>({});
  const [history, setHistory] = useState<SystemPoint[]>([]);
  const [historySize, setHistorySize] = useState(300);
  const [alpha, setAlpha] = useState(0.1);
  const [connected, setConnected] = useState(true);
  const [version, setVersion] = useState(0);
  const [recovery, setRecovery] = useState<RecoveryOut | null>(null);
  const [logView, setLogView] = useState<{ task: TaskOut; text: string } | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const toastId = useRef(0);
  const refreshTimer = useRef<number | undefined>(undefined);

  const notify = useCallback((kind: "ok" | "error", message: string) => {
    const id = ++toastId.current;
    setToasts((t) => [...t, { id, kind, message }]);
    window.setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 8000 : 4000);
  }, []);

  const fail = useCallback(
    (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) setAuth("out");
      notify("error", err instanceof ApiError ? err.message : String(err));
    },
    [notify],
  );

  const loadOngoing = useCallback(async () => {
    const [r, q] = await Promise.all([
      api.tasks({ state: "running", limit: 1000 }),
      api.tasks({ state: "queued", limit: 1000 }),
    ]);
    setRunning(r.tasks);
    setQueued(q.tasks);
    setVersion((v) => v + 1);
  }, []);

  const loadAll = useCallback(async () => {
    try {
      const [server, gpuList, system] = await Promise.all([api.server(), api.gpus(), api.system()]);
      setInfo(server);
      setGpus(gpuList);
      setHistory(system.history);
      setHistorySize(system.history_size);
      setAlpha(system.smoother_alpha);
      await loadOngoing();
      setAuth("in");
      return server;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setAuth("out");
      else notify("error", err instanceof ApiError ? err.message : String(err));
      return null;
    }
  }, [loadOngoing, notify]);

  // Coalesce bursts of task events into one refresh of the lists.
  const scheduleRefresh = useCallback(() => {
    window.clearTimeout(refreshTimer.current);
    refreshTimer.current = window.setTimeout(() => void loadOngoing().catch(() => undefined), 100);
  }, [loadOngoing]);

  // Once per server start: the dialog opens on the first load after ANT (re)started, also when
  // this page was already open and reconnected, and not again after it was closed.
  const checkRecovery = useCallback(async (server: ServerInfo | null) => {
    if (!server || load("recoverySeen", 0) === server.session_id) return;
    const rec = await api.recovery();
    if (rec.last_session.length + rec.earlier_sessions.length) setRecovery(rec);
  }, []);

  useEffect(() => {
    const onHash = () => setPage(currentPage());
    window.addEventListener("hashchange", onHash);
    void loadAll().then(checkRecovery);
    return () => window.removeEventListener("hashchange", onHash);
  }, [loadAll, checkRecovery]);

  useEffect(() => {
    if (auth !== "in") return;
    const source = new EventSource("/api/v1/events");
    let lost = false;
    const onTask = () => scheduleRefresh();
    // Events before this stream opened were missed: refresh once it says hello.
    source.addEventListener("hello", onTask);
    for (const type of ["task_added", "task_changed", "task_removed", "queue"]) source.addEventListener(type, onTask);
    source.addEventListener("gpus", (e) => setGpus(JSON.parse((e as MessageEvent).data)));
    source.addEventListener("terminal", (e) => setTerminals(JSON.parse((e as MessageEvent).data)));
    source.addEventListener("system", (e) => {
      const point = JSON.parse((e as MessageEvent).data) as SystemPoint;
      setHistory((h) => [...h.slice(-(historySize - 1)), point]);
    });
    source.addEventListener("resync", () => void loadAll().then(checkRecovery));
    source.onopen = () => {
      if (lost) void loadAll().then(checkRecovery);
      lost = false;
      setConnected(true);
    };
    source.onerror = () => {
      lost = true;
      setConnected(false);
    };
    return () => source.close();
  }, [auth, scheduleRefresh, loadAll, historySize, checkRecovery]);

  const act = async (what: "kill" | "remove" | "promote", task: TaskOut) => {
    try {
      if (what === "kill") await api.kill(task.task_id);
      else if (what === "remove") await api.remove(task.task_id);
      else await api.promote(task.task_id);
      notify("ok", `${what === "kill" ? "Killed" : what === "remove" ? "Deleted" : "Moved to top"}: ${task.task_id}`);
      scheduleRefresh();
    } catch (err) {
      fail(err);
    }
  };

  const copy = async (task: TaskOut) => {
    try {
      await navigator.clipboard.writeText(task.copy_command);
      notify("ok", `Copied the command of ${task.task_id}`);
    } catch {
      window.prompt("Copy the command:", task.copy_command);
    }
  };

  const toggleGpu = async (gpu: GpuOut) => {
    // Optimistic: the switch moves at once; the server's answer (or an error) settles it.
    setGpus((list) => list.map((g) => (g.index === gpu.index ? { ...g, enabled: !gpu.enabled } : g)));
    try {
      const updated = await api.setGpu(gpu.index, !gpu.enabled);
      setGpus((list) => list.map((g) => (g.index === updated.index ? updated : g)));
      notify("ok", `GPU ${gpu.index} ${updated.enabled ? "enabled" : "disabled"}`);
    } catch (err) {
      setGpus((list) => list.map((g) => (g.index === gpu.index ? gpu : g)));
      fail(err);
    }
  };

  const showLog = async (task: TaskOut) => {
    try {
      setLogView({ task, text: await api.fullLog(task.task_id) });
    } catch (err) {
      fail(err);
    }
  };

  const closeRecovery = () => {
    if (info) save("recoverySeen", info.session_id);
    setRecovery(null);
  };

  if (auth === "checking") return <div className="page muted">Connecting to ANT…</div>;
  if (auth === "out" || !info) return <Login onLogin={() => window.location.reload()} />;

  return (
    <div className="app">
      <header className="top">
        <span className="brand">ANT</span>
        <nav>
          {PAGES.map(([p, label]) => (
            <a key={p} href={`#/${p}`} className={page === p ? "active" : ""}>
              {label}
              {p === "ongoing" && ` (${running.length}/${queued.length})`}
            </a>
          ))}
        </nav>
      </header>
      {!connected && (
        <div className="banner" role="alert">
          Lost the connection to the ANT server; reconnecting… (the lists will reload when it is back)
        </div>
      )}
      {page === "dashboard" && (
        <Dashboard gpus={gpus} history={history} historySize={historySize} alpha={alpha} onToggle={(g) => void toggleGpu(g)} />
      )}
      {page === "create" && <CreateTask notify={notify} />}
      {page === "ongoing" && (
        <Ongoing info={info} running={running} queued={queued} terminals={terminals} act={(w, t) => void act(w, t)} copy={(t) => void copy(t)} />
      )}
      {page === "completed" && (
        <Completed info={info} version={version} notify={notify} copy={(t) => void copy(t)} showLog={(t) => void showLog(t)} />
      )}
      {recovery && (
        <RecoveryDialog
          data={recovery}
          onClose={closeRecovery}
          onRestore={async (ids) => {
            try {
              const r = await api.restore(ids);
              notify("ok", `Restored ${r.tasks.map((t) => t.task_id).join(", ")}`);
              setRecovery(await api.recovery());
              scheduleRefresh();
            } catch (err) {
              fail(err);
            }
          }}
          onForget={async (id) => {
            try {
              await api.forget(id);
              notify("ok", `Deleted ${id} from recovery`);
              setRecovery(await api.recovery());
            } catch (err) {
              fail(err);
            }
          }}
        />
      )}
      {logView && (
        <div className="overlay" role="dialog" aria-label={`Log of ${logView.task.task_id}`} onClick={() => setLogView(null)}>
          <div className="dialog card wide" onClick={(e) => e.stopPropagation()}>
            <div className="row spread">
              <h2>{logView.task.task_id}</h2>
              <button className="ghost" aria-label="Close log" onClick={() => setLogView(null)}>✕</button>
            </div>
            <Terminal lines={terminalLines(logView.text, 100000)} minLines={5} maxLines={40} testId="full-log" />
          </div>
        </div>
      )}
      <Toasts toasts={toasts} dismiss={(id) => setToasts((t) => t.filter((x) => x.id !== id))} />
    </div>
  );
}
