// What a desktop notification says when a task ends, and which ends call for one (the task store
// says which tasks its last batch of events ended: state/tasks.ts). Pure functions, tested without a browser (the Notification itself: state/notifications.ts).
import type { TaskOut } from "../api/types";
import type { TasksState } from "../state/tasks";
import { duration } from "./format";

export interface Notice {
  taskId: string | null; // the task the notification opens; null for a summary of several
  title: string;
  body: string;
}

// More ends than this in one go (a multi submission finishing) make one summary instead.
export const MAX_NOTICES = 3;

// "train-3 succeeded", "train-3 failed (exit 1)", "train-3 killed", "train-3 lost".
export function endTitle(task: TaskOut): string {
  if (task.state === "failed" && task.exit_code !== null) return `${task.task_id} failed (exit ${task.exit_code})`;
  return `${task.task_id} ${task.state}`;
}

export function endBody(task: TaskOut): string {
  const ran =
    task.started_at !== null && task.finished_at !== null
      ? `Ran for ${duration(task.finished_at - task.started_at)}`
      : "It did not start";
  return task.reason ? `${ran}\n${task.reason}` : ran;
}

// The tasks the last batch of task events ended (see TasksState.justEnded).
export function justEnded(tasks: TasksState): TaskOut[] {
  const ended: TaskOut[] = [];
  for (const id of tasks.justEnded) {
    const task = tasks.byId.get(id);
    if (task) ended.push(task);
  }
  return ended;
}

// Ends of tasks that were not watched when they ended, kept a little: the answer to a submission
// can come after the events of its tasks, and a quick one (`true`) has ended by then. The ids the
// answer brings are taken from here.
export class RecentEnds {
  private ended: TaskOut[] = [];

  constructor(private readonly keep = 200) {}

  add(tasks: readonly TaskOut[]): void {
    if (tasks.length) this.ended = [...this.ended, ...tasks].slice(-this.keep);
  }

  take(ids: readonly string[]): TaskOut[] {
    const wanted = new Set(ids);
    const taken = this.ended.filter((t) => wanted.has(t.task_id));
    if (taken.length) this.ended = this.ended.filter((t) => !wanted.has(t.task_id));
    return taken;
  }
}

// One notice per task, or one summary when many ended at once.
export function notices(ended: readonly TaskOut[]): Notice[] {
  if (ended.length <= MAX_NOTICES) {
    return ended.map((task) => ({ taskId: task.task_id, title: endTitle(task), body: endBody(task) }));
  }
  const ok = ended.filter((t) => t.state === "succeeded").length;
  const ids = ended.map((t) => t.task_id);
  return [
    {
      taskId: null,
      title: `${ended.length} tasks ended (${ok} succeeded, ${ended.length - ok} not)`,
      body: ids.length > 6 ? `${ids.slice(0, 6).join(", ")}, …` : ids.join(", "),
    },
  ];
}
