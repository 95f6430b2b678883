import type { TaskOut } from "../api/types";

// The recovery dialog's two groups. A task was running when ANT stopped if it came back `lost`
// (ANT's own restart), or held with a last attempt that was lost: an interrupted task imported
// from ANT 1.1 (docs/migration.md) comes in held, its interrupted run kept as attempt 1.
export function wasInterrupted(task: TaskOut): boolean {
  if (task.state === "lost") return true;
  const last = task.attempts.length ? task.attempts[task.attempts.length - 1] : undefined;
  return task.state === "held" && last?.state === "lost";
}

export function recoveryGroups(tasks: TaskOut[]): { interrupted: TaskOut[]; queued: TaskOut[] } {
  const interrupted = tasks.filter(wasInterrupted);
  const queued = tasks.filter((t) => t.state === "held" && !wasInterrupted(t));
  return { interrupted, queued };
}
