// Data hooks: each reads one slice of the live store and re-renders only when that slice changes.
import { useCallback, useMemo, useState, useSyncExternalStore } from "react";
import { api, ApiError, type Place } from "../api/client";
import type { TaskOut } from "../api/types";
import type { LiveState } from "./live";
import { useLive } from "./LiveProvider";
import { submitted } from "./notifications";
import { selectHeld, selectQueued, selectRunning } from "./tasks";
import { useNotify } from "./toasts";

export function useLiveState<T>(select: (state: LiveState) => T): T {
  const { store } = useLive();
  return useSyncExternalStore(store.subscribe, () => select(store.getState()));
}

export const useServer = () => useLiveState((s) => s.server);
export const useAuth = () => useLiveState((s) => s.auth);
export const useConnected = () => useLiveState((s) => s.connected);
export const useEpoch = () => useLiveState((s) => s.epoch);
export const useGpus = () => useLiveState((s) => s.gpus);
export const useHealth = () => useLiveState((s) => s.health);
export const useSystem = () => useLiveState((s) => s.system);
export const useTerminals = () => useLiveState((s) => s.terminals);
export const useTaskTable = () => useLiveState((s) => s.tasks.byId);
export const useQueueLength = () => useLiveState((s) => s.tasks.queued);
// Bumped when a task ends, or an ended task changes or goes: views of ended tasks read again.
export const useEndedChanges = () => useLiveState((s) => s.tasks.ended);

export function useTask(taskId: string): TaskOut | undefined {
  return useLiveState((s) => s.tasks.byId.get(taskId));
}

export function useTasks(): { running: TaskOut[]; queued: TaskOut[]; queueLength: number } {
  const byId = useTaskTable();
  const queueLength = useQueueLength();
  const running = useMemo(() => selectRunning(byId), [byId]);
  const queued = useMemo(() => selectQueued(byId), [byId]);
  return { running, queued, queueLength: Math.max(queueLength, queued.length) };
}

// Held tasks: queued when ANT stopped, waiting to be restored or deleted (see HeldTasks).
export function useHeld(): TaskOut[] {
  const byId = useTaskTable();
  return useMemo(() => selectHeld(byId), [byId]);
}

export type TaskAction = "kill" | "remove" | "promote" | "restart" | "restartWithDependents" | "restore";
const DONE: Record<TaskAction, (id: string) => string> = {
  kill: (id) => `Killed: ${id}`,
  remove: (id) => `Deleted: ${id}`,
  promote: (id) => `Moved to top: ${id}`,
  restart: (id) => `Queued ${id}`,
  restartWithDependents: (id) => `Queued ${id}, and again what waits for it`,
  restore: (id) => `Restored: ${id} (queued again)`,
};

// Acting on a task: the server's events then update every view; nothing is read again here.
// Resolves with whether it worked and the task the server answered (the new one for restart).
export function useTaskActions() {
  const { fail } = useLive();
  const notify = useNotify();
  const act = useCallback(
    async (what: TaskAction, taskId: string): Promise<{ ok: boolean; task?: TaskOut }> => {
      try {
        let task: TaskOut | undefined;
        if (what === "kill") task = await api.kill(taskId);
        else if (what === "remove") await api.remove(taskId);
        else if (what === "promote") task = await api.promote(taskId);
        else if (what === "restore") task = (await api.restore([taskId])).tasks[0];
        else task = await api.restart(taskId, what === "restartWithDependents");
        const restarted = what === "restart" || what === "restartWithDependents";
        // Run again from this browser: watched, as a submission from here is.
        if (task && (restarted || what === "restore")) submitted([task.task_id]);
        const named = task && restarted ? task.task_id : taskId;
        notify("ok", DONE[what](named), what === "remove" ? [] : [named]);
        return { ok: true, task };
      } catch (err) {
        fail(err);
        return { ok: false };
      }
    },
    [fail, notify],
  );
  const copy = useCallback(
    async (task: TaskOut) => {
      try {
        await navigator.clipboard.writeText(task.copy_command);
        notify("ok", `Copied the command of ${task.task_id}`, [task.task_id]);
      } catch {
        window.prompt("Copy the command:", task.copy_command);
      }
    },
    [notify],
  );
  return { act, copy };
}

export function errorText(err: unknown): string {
  return err instanceof ApiError ? err.message : String(err);
}

// Moving a queued task (drag and drop on Ongoing): its answer goes into the task store at once,
// so the rows stand as dropped; the other tasks' positions come with the queue's next read.
export function useMoveTask() {
  const { read, fail } = useLive();
  return useCallback(
    async (taskId: string, place: Place) => {
      try {
        const task = await api.move(taskId, place);
        await read({ ids: [taskId] }, async () => ({ tasks: [task] }));
      } catch (err) {
        fail(err);
      }
    },
    [read, fail],
  );
}

// A button's action: `busy` while it runs (to disable the buttons), what it says as an "ok"
// toast, a failure through the live provider's fail() (an error toast, or the login form).
export function useBusyAction(): [boolean, (work: () => Promise<string>) => Promise<void>] {
  const { fail } = useLive();
  const notify = useNotify();
  const [busy, setBusy] = useState(false);
  const run = useCallback(
    async (work: () => Promise<string>) => {
      setBusy(true);
      try {
        notify("ok", await work());
      } catch (err) {
        fail(err);
      } finally {
        setBusy(false);
      }
    },
    [fail, notify],
  );
  return [busy, run];
}
