// The task store: every task the UI knows, keyed by task_id, kept current by the server's task
// events. Pure functions only (the reducer and its selectors), so they are tested without a browser.
//
// Events carry a whole task (task_added), what changed in one (task_changed: applied onto the task
// as the store knows it; one the store does not know is read, see LiveProvider) or an id
// (task_removed), so they are applied as they come; lists are read again only for what events do
// not carry (see LiveProvider). A read
// ("snapshot") and the event stream race: an event can arrive while a read is in flight, and the
// read's answer may be older than it. So each read remembers the event count when it started
// (`since`), events are journaled while reads are in flight, and a read's answer is applied with
// every journaled event after `since` replayed on top. Replaying an event older than the answer is
// harmless: every later change of that task has its own, later event, replayed after it.
import { endedStateValues } from "../api/types";
import type { TaskChange, TaskOut, TaskRemoved, TaskState } from "../api/types";

export type TaskEvent =
  | { type: "task_added"; data: TaskOut }
  | { type: "task_changed"; data: TaskChange }
  | { type: "task_removed"; data: TaskRemoved };

// What a read replaces: the tasks in these states and with these ids are dropped before the
// answer's tasks are put in (a read of the queue drops tasks that left it; a read of one task that
// answered 404 drops that task). An empty scope only adds and updates.
export interface Scope {
  states?: readonly TaskState[];
  ids?: readonly string[];
}

export interface TasksState {
  // In the order they were last written (oldest first), which is the order pruning follows.
  byId: ReadonlyMap<string, TaskOut>;
  queued: number; // tasks in the queue, as the server last said (it can be more than byId holds)
  ended: number; // bumped when a task ends or an ended task changes or goes: views of ended tasks re-read
  // The tasks the last batch of events ended (each held before, and not ended then), for the
  // desktop notifications: a task that had ended before the UI read it is no news.
  justEnded: readonly string[];
  seq: number; // task events applied so far
  journal: readonly { seq: number; event: TaskEvent }[]; // events kept for reads in flight
  pending: readonly number[]; // the `since` of each read in flight
  // Renamed tasks, old id -> new id (the last RENAMES_KEPT), so a page showing the old id follows.
  renamed: ReadonlyMap<string, string>;
}

export type TasksAction =
  | { type: "events"; events: readonly TaskEvent[] }
  | { type: "begin"; since: number }
  | { type: "loaded"; since: number; scope: Scope; tasks: readonly TaskOut[]; queued?: number }
  | { type: "abort"; since: number }
  | { type: "queue"; queued: number };

// Ended tasks are kept for the views that show them; past this many tasks in all, the ended ones
// written longest ago are dropped (a view that still shows one reads it again when it needs it).
export const MAX_TASKS = 5000;
const PRUNE_TO = 4000;
const RENAMES_KEPT = 100;

const ENDED: ReadonlySet<string> = new Set(endedStateValues);

export function isEnded(task: Pick<TaskOut, "state">): boolean {
  return ENDED.has(task.state);
}

export const emptyTasks: TasksState = {
  byId: new Map(),
  queued: 0,
  ended: 0,
  justEnded: [],
  seq: 0,
  journal: [],
  pending: [],
  renamed: new Map(),
};

function put(byId: Map<string, TaskOut>, task: TaskOut): void {
  byId.delete(task.task_id); // moves it to the end: written last
  byId.set(task.task_id, task);
}

// Applies one event to a Map being built; true when it touched an ended task (for `ended`).
function apply(byId: Map<string, TaskOut>, event: TaskEvent): boolean {
  const before = byId.get(event.data.task_id);
  if (event.type === "task_removed") {
    byId.delete(event.data.task_id);
    return before !== undefined && isEnded(before);
  }
  if (event.type === "task_added") {
    put(byId, event.data);
    return isEnded(event.data) || (before !== undefined && isEnded(before));
  }
  // Not known here: nothing to apply it onto (LiveProvider reads it); an end still counts.
  if (before === undefined) return isEnded(event.data);
  put(byId, changed(before, event.data));
  return isEnded(event.data) || isEnded(before);
}

// A task with a task_changed applied: the fields sent replace the known ones; the fields only a
// state has (computed when read, not sent when the task leaves that state) are null in others.
export function changed(task: TaskOut, change: TaskChange): TaskOut {
  const next: TaskOut = { ...task, ...change };
  if (next.state !== "queued") {
    next.queue_position = null;
    next.pending_reason = null;
  }
  if (next.state !== "running") next.gpu_mem_used = null;
  return next;
}

function prune(byId: Map<string, TaskOut>): void {
  if (byId.size <= MAX_TASKS) return;
  for (const [id, task] of byId) {
    if (byId.size <= PRUNE_TO) break;
    if (isEnded(task)) byId.delete(id);
  }
}

function keepJournal(state: TasksState, pending: readonly number[], added: TaskEvent[] = []): TasksState["journal"] {
  if (pending.length === 0) return [];
  const oldest = Math.min(...pending);
  const kept = state.journal.filter((entry) => entry.seq > oldest);
  added.forEach((event, i) => kept.push({ seq: state.seq + i + 1, event }));
  return kept;
}

// Renames as the events tell them; an id in use again (renamed back, or a new task) is dropped.
function withRenames(renamed: ReadonlyMap<string, string>, events: readonly TaskEvent[]): ReadonlyMap<string, string> {
  let next: Map<string, string> | null = null;
  for (const event of events) {
    const id = event.data.task_id;
    if (event.type === "task_removed" && event.data.renamed_to) {
      next ??= new Map(renamed);
      next.delete(event.data.renamed_to);
      next.delete(id); // set again below: the newest last, for the bound
      next.set(id, event.data.renamed_to);
      if (next.size > RENAMES_KEPT) next.delete(next.keys().next().value as string);
    } else if (event.type === "task_added" && (next ?? renamed).has(id)) {
      next ??= new Map(renamed);
      next.delete(id);
    }
  }
  return next ?? renamed;
}

export function reduceTasks(state: TasksState, action: TasksAction): TasksState {
  switch (action.type) {
    case "events": {
      if (action.events.length === 0) return state;
      const byId = new Map(state.byId);
      let touchedEnded = false;
      const justEnded: string[] = [];
      for (const event of action.events) {
        const id = event.data.task_id;
        const was = byId.get(id);
        touchedEnded = apply(byId, event) || touchedEnded;
        const now = byId.get(id);
        if (was && !isEnded(was) && now && isEnded(now)) justEnded.push(id);
      }
      prune(byId);
      return {
        ...state,
        byId,
        renamed: withRenames(state.renamed, action.events),
        ended: state.ended + (touchedEnded ? 1 : 0),
        justEnded,
        seq: state.seq + action.events.length,
        journal: keepJournal(state, state.pending, [...action.events]),
      };
    }
    case "begin":
      return { ...state, pending: [...state.pending, action.since] };
    case "abort":
    case "loaded": {
      const i = state.pending.indexOf(action.since);
      const pending = i < 0 ? state.pending : [...state.pending.slice(0, i), ...state.pending.slice(i + 1)];
      if (action.type === "abort") return { ...state, pending, journal: keepJournal(state, pending) };
      const byId = new Map(state.byId);
      const states = new Set<string>(action.scope.states ?? []);
      const ids = new Set(action.scope.ids ?? []);
      if (states.size || ids.size) {
        for (const [id, task] of state.byId) if (states.has(task.state) || ids.has(id)) byId.delete(id);
      }
      for (const task of action.tasks) put(byId, task);
      // Replayed events were counted in `ended` when they first came: not again.
      for (const entry of state.journal) if (entry.seq > action.since) apply(byId, entry.event);
      prune(byId);
      return {
        ...state,
        byId,
        queued: action.queued ?? state.queued,
        pending,
        journal: keepJournal(state, pending),
      };
    }
    case "queue":
      return action.queued === state.queued ? state : { ...state, queued: action.queued };
  }
}

// ---------------------------------------------------------------------------- selectors

// Running tasks in the order they started (as the server lists them).
export function selectRunning(byId: ReadonlyMap<string, TaskOut>): TaskOut[] {
  return [...byId.values()]
    .filter((t) => t.state === "running")
    .sort((a, b) => (a.started_at ?? 0) - (b.started_at ?? 0) || a.task_id.localeCompare(b.task_id));
}

// Queued tasks by queue position (from the last read of the queue; a task added since has the
// position it had when added), then as the queue orders them: priority, then arrival.
export function selectQueued(byId: ReadonlyMap<string, TaskOut>): TaskOut[] {
  const position = (t: TaskOut) => t.queue_position ?? Number.MAX_SAFE_INTEGER;
  return [...byId.values()]
    .filter((t) => t.state === "queued")
    .sort((a, b) => position(a) - position(b) || b.priority - a.priority || a.queue_seq - b.queue_seq);
}

// Held tasks (queued when ANT stopped, waiting for the user to restore or delete them), oldest first.
export function selectHeld(byId: ReadonlyMap<string, TaskOut>): TaskOut[] {
  return [...byId.values()]
    .filter((t) => t.state === "held")
    .sort((a, b) => a.created_at - b.created_at || a.task_id.localeCompare(b.task_id));
}

export function hasQueued(byId: ReadonlyMap<string, TaskOut>): boolean {
  for (const task of byId.values()) if (task.state === "queued") return true;
  return false;
}
