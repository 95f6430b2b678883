// Tags as the server checks them (core/tags.py): the Create form's field, the filter of the task
// lists, and which tags are paused (from the health). Pure: no React, no fetch.
import type { HealthOut, TaskOut } from "../api/types";

export const MAX_TAGS = 16;
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
export const TAG_RULE = "1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'";

// "sweep-lr, seed-1" -> ["sweep-lr", "seed-1"] (duplicates once), or what is wrong with it.
export function parseTags(text: string): { tags: string[]; error: string | null } {
  const tags = [...new Set(text.split(/[,\s]+/).filter(Boolean))];
  const bad = tags.find((t) => !TAG_RE.test(t));
  if (bad !== undefined) return { tags, error: `"${bad}" is not a valid tag: ${TAG_RULE}` };
  if (tags.length > MAX_TAGS) return { tags, error: `at most ${MAX_TAGS} tags, got ${tags.length}` };
  return { tags, error: null };
}

export const hasTag = (task: Pick<TaskOut, "tags">, tag: string): boolean => tag === "" || task.tags.includes(tag);

// When the tag was paused (POSIX seconds), or null.
export function tagPausedAt(health: HealthOut | null, tag: string): number | null {
  return health?.paused_tags.find((p) => p.tag === tag)?.paused_at ?? null;
}
