// Users in the UI: the user filter's value (kept in the URL as ?user=) and which tasks it keeps.
import type { TaskOut } from "../api/types";

export const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

// "" keeps every task.
export const ownedBy = (task: Pick<TaskOut, "owner">, user: string) => !user || task.owner === user;

// The names the filter offers: every user the server knows, then any other owner seen on a task
// (a removed user's), each once.
export function userChoices(known: readonly string[], tasks: readonly Pick<TaskOut, "owner">[]): string[] {
  const names = [...known];
  for (const task of tasks) if (!names.includes(task.owner)) names.push(task.owner);
  return names;
}
