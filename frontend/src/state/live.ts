// Everything the UI shows live, in one store: the server, the connection, tasks (state/tasks.ts),
// GPUs, terminals and the monitoring history. Pure reducer plus a tiny external store that React
// reads with useSyncExternalStore (state/hooks.ts), so a component re-renders only when the slice
// it reads changes.
import type { EventPayloads, GpuOut, HealthOut, ServerInfo, SystemOut, SystemPoint } from "../api/types";
import { emptyTasks, reduceTasks, type TasksAction, type TasksState } from "./tasks";

export type Auth = "checking" | "in" | "out";

export interface LiveState {
  auth: Auth;
  server: ServerInfo | null;
  connected: boolean;
  epoch: number; // full reads done (hello/resync): views that read data of their own read it again
  tasks: TasksState;
  gpus: GpuOut[];
  health: HealthOut | null; // can the executor start tasks; the nodes (GET /api/v1/health, events)
  terminals: EventPayloads["terminal"];
  system: { history: SystemPoint[]; size: number; alpha: number };
}

export type LiveAction =
  | { type: "auth"; auth: Auth; server?: ServerInfo }
  | { type: "connected"; connected: boolean }
  | { type: "synced"; server: ServerInfo; gpus: GpuOut[]; system: SystemOut; health: HealthOut }
  | { type: "gpus"; gpus: GpuOut[] }
  | { type: "health"; health: HealthOut }
  | { type: "gpu"; gpu: GpuOut }
  | { type: "terminal"; terminals: EventPayloads["terminal"] }
  | { type: "system"; point: SystemPoint }
  | { type: "tasks"; action: TasksAction };

export const initialLive: LiveState = {
  auth: "checking",
  server: null,
  connected: true,
  epoch: 0,
  tasks: emptyTasks,
  gpus: [],
  health: null,
  terminals: {},
  system: { history: [], size: 300, alpha: 0.1 },
};

export function reduceLive(state: LiveState, action: LiveAction): LiveState {
  switch (action.type) {
    case "auth":
      return { ...state, auth: action.auth, server: action.server ?? state.server };
    case "connected":
      return state.connected === action.connected ? state : { ...state, connected: action.connected };
    case "synced":
      return {
        ...state,
        server: action.server,
        gpus: action.gpus,
        health: action.health,
        system: { history: action.system.history, size: action.system.history_size, alpha: action.system.smoother_alpha },
        epoch: state.epoch + 1,
      };
    case "gpus":
      return { ...state, gpus: action.gpus };
    case "health":
      return { ...state, health: action.health };
    case "gpu":
      return { ...state, gpus: state.gpus.map((g) => (g.index === action.gpu.index ? action.gpu : g)) };
    case "terminal":
      return { ...state, terminals: action.terminals };
    case "system": {
      const { history, size } = state.system;
      return { ...state, system: { ...state.system, history: [...history.slice(-(size - 1)), action.point] } };
    }
    case "tasks": {
      const tasks = reduceTasks(state.tasks, action.action);
      return tasks === state.tasks ? state : { ...state, tasks };
    }
  }
}

// A minimal external store. Listeners are told at once (a controlled input needs its new value
// before its event handler returns); React batches the renders that follow. Bursts of task events
// are applied as one action (see LiveProvider).
export class Store {
  private state: LiveState;
  private listeners = new Set<() => void>();

  constructor(initial: LiveState = initialLive) {
    this.state = initial;
  }

  getState = (): LiveState => this.state;

  dispatch = (action: LiveAction): void => {
    const next = reduceLive(this.state, action);
    if (next === this.state) return;
    this.state = next;
    for (const listener of [...this.listeners]) listener();
  };

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}
