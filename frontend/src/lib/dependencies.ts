import type { Dependency, DependencyIn } from "../api/types";

const CONDITIONS = ["ok", "any", "fail"] as const;
type Condition = (typeof CONDITIONS)[number];

// The Create form's After field, `prep, train-3:any, [prev]`, as the API's `after`; a message
// when a condition is not ok/any/fail. The server checks the ids (valid, existing, no cycle).
export function parseAfter(text: string): DependencyIn[] | string {
  const deps: DependencyIn[] = [];
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (!item) continue;
    const colon = item.indexOf(":");
    const taskId = (colon < 0 ? item : item.slice(0, colon)).trim();
    const condition = colon < 0 ? "ok" : item.slice(colon + 1).trim() || "ok";
    if (!(CONDITIONS as readonly string[]).includes(condition)) {
      return `After: the condition of "${item}" must be ok, any or fail`;
    }
    deps.push({ task_id: taskId, condition: condition as Condition });
  }
  return deps;
}

// How a condition reads after the parent's id ("" for ok, the default).
export function conditionText(dep: Dependency): string {
  return dep.condition === "ok" ? "" : ` (${dep.condition})`;
}
