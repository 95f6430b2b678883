// The live data of the whole UI: one store (state/live.ts), filled by reads and kept current by
// the event stream. Reads happen on `hello` and `resync` (the stream's first event, also after a
// reconnect: everything is read again) and for what events do not carry: queue positions and
// pending reasons (the queued tasks, read again shortly after a `queue` event). Task events are
// applied to the task store as they come; a task_changed carries only what changed, so one of a
// task the store does not hold (a big submission sends no task_added) makes the UI read it: the
// active lists once per burst for a running or queued task, the task itself otherwise. Held tasks
// (queued when ANT stopped) are read with the active lists: they only appear when ANT starts.
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { api, ApiError } from "../api/client";
import { connectEvents, type EventHandlers } from "../api/events";
import type { GpuOut, TaskOut } from "../api/types";
import { Store } from "./live";
import { hasQueued, isEnded, type Scope, type TaskEvent } from "./tasks";
import { useNotify } from "./toasts";

const ACTIVE = ["running", "queued", "held"] as const;
const QUEUE_READ_DELAY_MS = 200;
const RETRY_MS = 3000;
const QUEUE_READ_LIMIT = 1000;

export interface TaskRead {
  tasks: TaskOut[];
  queued?: number;
}

export interface Live {
  store: Store;
  // Reads tasks into the store: the tasks in `scope` are replaced by the answer (events that came
  // meanwhile are applied on top). Resolves with the answer, rejects as the fetch does.
  read: (scope: Scope, fetch: () => Promise<TaskRead>) => Promise<TaskRead>;
  // Reports an error; a 401 means the session is gone: back to the login form.
  fail: (err: unknown) => void;
  toggleGpu: (gpu: GpuOut) => Promise<void>;
}

const LiveContext = createContext<Live | null>(null);

export function useLive(): Live {
  const live = useContext(LiveContext);
  if (!live) throw new Error("useLive outside LiveProvider");
  return live;
}

export function LiveProvider(props: { children: ReactNode }) {
  const notify = useNotify();
  const [store] = useState(() => new Store());
  const dispatch = store.dispatch;

  const fail = useCallback(
    (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) dispatch({ type: "auth", auth: "out" });
      notify("error", err instanceof ApiError ? err.message : String(err));
    },
    [dispatch, notify],
  );

  const read = useCallback(
    async (scope: Scope, fetch: () => Promise<TaskRead>): Promise<TaskRead> => {
      const since = store.getState().tasks.seq;
      dispatch({ type: "tasks", action: { type: "begin", since } });
      try {
        const answer = await fetch();
        dispatch({ type: "tasks", action: { type: "loaded", since, scope, tasks: answer.tasks, queued: answer.queued } });
        return answer;
      } catch (err) {
        dispatch({ type: "tasks", action: { type: "abort", since } });
        throw err;
      }
    },
    [store, dispatch],
  );

  const toggleGpu = useCallback(
    async (gpu: GpuOut) => {
      // Optimistic: the switch moves at once; the server's answer (or an error) settles it.
      dispatch({ type: "gpu", gpu: { ...gpu, enabled: !gpu.enabled } });
      try {
        const updated = await api.setGpu(gpu.node ? gpu.label : gpu.index, !gpu.enabled);
        dispatch({ type: "gpu", gpu: updated });
        notify("ok", `GPU ${gpu.label || gpu.index} ${updated.enabled ? "enabled" : "disabled"}`);
      } catch (err) {
        dispatch({ type: "gpu", gpu });
        fail(err);
      }
    },
    [dispatch, notify, fail],
  );

  // Logged in? The first question; asked again every few seconds while ANT cannot be reached.
  const auth = useLiveAuth(store);
  useEffect(() => {
    if (auth !== "checking") return;
    let live = true;
    let timer: number | undefined;
    const check = () =>
      api.server().then(
        (server) => live && dispatch({ type: "auth", auth: "in", server }),
        (err) => {
          if (!live) return;
          if (err instanceof ApiError && err.status === 401) dispatch({ type: "auth", auth: "out" });
          else {
            notify("error", err instanceof ApiError ? err.message : String(err));
            timer = window.setTimeout(check, RETRY_MS);
          }
        },
      );
    void check();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [auth, dispatch, notify]);

  useEventStream(auth === "in", store, read, fail);

  const value = useMemo<Live>(() => ({ store, read, fail, toggleGpu }), [store, read, fail, toggleGpu]);
  return <LiveContext.Provider value={value}>{props.children}</LiveContext.Provider>;
}

// The running, the queued and the held tasks (the first of each, as many as the UI holds).
async function readActiveLists(): Promise<TaskRead> {
  const [running, queued, held] = await Promise.all([
    api.tasks({ state: "running", limit: QUEUE_READ_LIMIT }),
    api.tasks({ state: "queued", limit: QUEUE_READ_LIMIT }),
    api.tasks({ state: "held", limit: QUEUE_READ_LIMIT }),
  ]);
  return { tasks: [...running.tasks, ...queued.tasks, ...held.tasks], queued: queued.total };
}

function useLiveAuth(store: Store) {
  return useSyncExternalStore(store.subscribe, () => store.getState().auth);
}

// While logged in: the event stream, applied to the store.
export function useEventStream(
  enabled: boolean,
  store: Store,
  read: Live["read"],
  fail: (err: unknown) => void,
): void {
  useEffect(() => {
    if (!enabled) return;
    const dispatch = store.dispatch;
    let stopped = false;
    let buffered: TaskEvent[] = [];
    let flushTimer: number | undefined;
    let queueTimer: number | undefined;
    let activeTimer: number | undefined;

    // A burst of task events (a multi submit of 10,000 tasks) is applied in one go.
    const flush = () => {
      window.clearTimeout(flushTimer);
      flushTimer = undefined;
      const events = buffered;
      buffered = [];
      dispatch({ type: "tasks", action: { type: "events", events } });
      // Changes of tasks the store does not hold: read them (ended ones are read by their views).
      const byId = store.getState().tasks.byId;
      for (const event of events) {
        if (event.type !== "task_changed" || byId.has(event.data.task_id) || isEnded(event.data)) continue;
        const { task_id, state } = event.data;
        if (state === "running" || state === "queued") activeTimer ??= window.setTimeout(readActive, QUEUE_READ_DELAY_MS);
        else readTask(task_id);
      }
    };
    const taskEvent = (event: TaskEvent) => {
      buffered.push(event);
      flushTimer ??= window.setTimeout(flush, 0);
    };

    const sync = async () => {
      try {
        const [server, gpus, system, health] = await Promise.all([
          api.server(),
          api.gpus(),
          api.system(),
          api.health(),
          read({ states: ACTIVE }, readActiveLists),
        ]);
        if (!stopped) dispatch({ type: "synced", server, gpus, system, health });
      } catch (err) {
        if (!stopped) fail(err);
      }
    };

    // Positions and reasons are not in the events: read the queue again, once per burst.
    const readQueue = () => {
      queueTimer = undefined;
      read({ states: ["queued"] }, async () => {
        const page = await api.tasks({ state: "queued", limit: QUEUE_READ_LIMIT });
        return { tasks: page.tasks, queued: page.total };
      }).catch((err) => stopped || fail(err));
    };

    const readActive = () => {
      activeTimer = undefined;
      read({ states: ACTIVE }, readActiveLists).catch((err) => stopped || fail(err));
    };
    const readTask = (id: string) => {
      read({ ids: [id] }, async () => {
        try {
          return { tasks: [await api.task(id)] };
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) return { tasks: [] }; // gone meanwhile
          throw err;
        }
      }).catch((err) => stopped || fail(err));
    };

    const handlers: EventHandlers = {
      hello: () => void sync(),
      resync: () => void sync(),
      task_added: (data) => taskEvent({ type: "task_added", data }),
      task_changed: (data) => taskEvent({ type: "task_changed", data }),
      task_removed: (data) => taskEvent({ type: "task_removed", data }),
      queue: (data) => {
        if (buffered.length) flush(); // the task events before it first: they may have emptied the queue
        dispatch({ type: "tasks", action: { type: "queue", queued: data.queued } });
        // An empty queue of which the store holds nothing has nothing to read.
        if (data.queued === 0 && !hasQueued(store.getState().tasks.byId)) return;
        queueTimer ??= window.setTimeout(readQueue, QUEUE_READ_DELAY_MS);
      },
      gpus: (gpus) => dispatch({ type: "gpus", gpus }),
      terminal: (terminals) => dispatch({ type: "terminal", terminals }),
      system: (point) => dispatch({ type: "system", point }),
      health: (health) => dispatch({ type: "health", health }),
      // The flag itself comes with the task (task_changed: gpu_mem_over): its card and page show it.
      gpu_mem_over: () => undefined,
    };

    const close = connectEvents(handlers, {
      onOpen: () => dispatch({ type: "connected", connected: true }),
      onError: () => dispatch({ type: "connected", connected: false }),
      // Refused rather than dropped: a 401 means the session is gone (back to the login form).
      onClosed: () => void api.server().catch((err) => err instanceof ApiError && err.status === 401 && fail(err)),
    });
    return () => {
      stopped = true;
      close();
      window.clearTimeout(queueTimer);
      window.clearTimeout(activeTimer);
      window.clearTimeout(flushTimer);
    };
  }, [enabled, store, read, fail]);
}
