// Desktop notifications when a watched task ends (opt-in, per browser). Watched: the tasks
// submitted from this browser (remembered), those the user watches with the task page's Watch
// switch (remembered), and a task whose page is open. The option and the watched ids live in
// localStorage; the browser is asked for its permission only when the user turns the option on.
// Which changes notify, and what the notification says: lib/notices.ts.
import { useEffect, useSyncExternalStore } from "react";
import { useNavigate } from "react-router";
import type { TaskOut } from "../api/types";
import { justEnded, notices, RecentEnds, type Notice } from "../lib/notices";
import { taskPath } from "../lib/paths";
import { load, save } from "../lib/storage";
import { useLive } from "./LiveProvider";

// The newest ids are kept (a multi submission of 10,000 tasks keeps its last ones).
const MAX_WATCHED = 2000;

export type Permission = NotificationPermission | "unsupported";

let enabled = load<boolean>("notifications", false);
let watched = new Set(load<string[]>("watched", []));
const openPages = new Map<string, number>(); // task id → task pages showing it
const recentEnds = new RecentEnds();
let openPath = (path: string) => window.location.assign(path); // the router's, once the frame is up

// Go to a page of the app from outside the router (a toast's link): no reload once the frame is up.
export function openInApp(path: string): void {
  openPath(path);
}
let version = 0; // bumped on every change, for useSyncExternalStore
const listeners = new Set<() => void>();

function changed(): void {
  version++;
  for (const listener of [...listeners]) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// No Notification at all in a page that is not a secure context (plain http but to localhost).
export function permission(): Permission {
  return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
}

export async function setEnabled(on: boolean): Promise<void> {
  enabled = on;
  save("notifications", on);
  changed();
  if (on && permission() === "default") {
    await Notification.requestPermission();
    changed(); // the answer shows next to the switch
  }
}

export function isWatched(taskId: string): boolean {
  return watched.has(taskId) || openPages.has(taskId);
}

export function watch(ids: readonly string[], on = true): void {
  const next = new Set(watched);
  for (const id of ids) {
    next.delete(id); // re-added last: the newest are kept
    if (on) next.add(id);
  }
  watched = new Set([...next].slice(-MAX_WATCHED));
  save("watched", [...watched]);
  changed();
}

// Tasks submitted from this browser: watched, and those of them that ended before the answer came
// are told of now.
export function submitted(ids: readonly string[]): void {
  watch(ids);
  notify(recentEnds.take(ids));
}

// The switch's state and the browser's answer, for the header.
export function useNotificationOption(): { enabled: boolean; permission: Permission } {
  useSyncExternalStore(subscribe, () => version);
  return { enabled, permission: permission() };
}

// The Watch switch of a task page.
export function useWatched(taskId: string): boolean {
  return useSyncExternalStore(subscribe, () => watched.has(taskId));
}

// A task page is open: its task is watched while it stays open.
export function useWatchWhileOpen(taskId: string): void {
  useEffect(() => {
    openPages.set(taskId, (openPages.get(taskId) ?? 0) + 1);
    return () => {
      const n = (openPages.get(taskId) ?? 1) - 1;
      if (n > 0) openPages.set(taskId, n);
      else openPages.delete(taskId);
    };
  }, [taskId]);
}

// Follows the task store (once, in the page frame) and notifies of the watched tasks that end.
export function useEndNotifications(): void {
  const { store } = useLive();
  const navigate = useNavigate();
  useEffect(() => {
    openPath = (path) => navigate(path);
  }, [navigate]);
  useEffect(() => {
    let last = store.getState().tasks.justEnded;
    return store.subscribe(() => {
      const tasks = store.getState().tasks;
      if (tasks.justEnded === last) return;
      last = tasks.justEnded;
      const ended = justEnded(tasks);
      notify(ended.filter((t) => isWatched(t.task_id)));
      recentEnds.add(ended.filter((t) => !isWatched(t.task_id)));
    });
  }, [store]);
}

function notify(ended: readonly TaskOut[]): void {
  if (ended.length === 0 || !enabled || permission() !== "granted") return;
  for (const notice of notices(ended)) show(notice);
}

// Clicking it brings this window forward on the task's page.
function show(notice: Notice): void {
  try {
    const n = new Notification(notice.title, { body: notice.body, tag: notice.taskId ?? undefined });
    n.onclick = () => {
      window.focus();
      openPath(notice.taskId === null ? "/completed" : taskPath(notice.taskId));
      n.close();
    };
  } catch {
    // a browser that only notifies from a service worker (Chrome on Android): nothing to show
  }
}
