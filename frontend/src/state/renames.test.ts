import { describe, expect, it } from "vitest";
import type { TaskOut } from "../api/types";
import { placeOf } from "../components/SortableQueue";
import { emptyTasks, reduceTasks, type TaskEvent } from "./tasks";

const task = (id: string) => ({ task_id: id, state: "queued" }) as TaskOut;
const renamed = (from: string, to: string): TaskEvent => ({ type: "task_removed", data: { task_id: from, renamed_to: to } });
const added = (id: string): TaskEvent => ({ type: "task_added", data: task(id) });
const apply = (...events: TaskEvent[]) => reduceTasks(emptyTasks, { type: "events", events });

describe("renamed tasks", () => {
  it("remembers where a renamed task went, so its old page follows it", () => {
    const s = apply(added("a"), renamed("a", "b"), added("b"));
    expect(s.renamed.get("a")).toBe("b");
    expect([...s.byId.keys()]).toEqual(["b"]);
  });

  it("forgets a rename once the old id is in use again (renamed back, or a new task)", () => {
    expect([...apply(renamed("a", "b"), renamed("b", "a")).renamed]).toEqual([["b", "a"]]);
    expect(apply(renamed("a", "b"), added("a")).renamed.size).toBe(0);
  });

  it("a plain delete is no rename", () => {
    const s = apply(added("a"), { type: "task_removed", data: { task_id: "a" } });
    expect(s.renamed.size).toBe(0);
  });
});

describe("where a dropped task goes", () => {
  const ids = ["a", "b", "c", "d"];
  it("first: to the top; up: before its new next; down: after its new previous", () => {
    expect(placeOf(ids, 2, 0)).toEqual({ to: "top" });
    expect(placeOf(ids, 3, 1)).toEqual({ before: "b" });
    expect(placeOf(ids, 0, 2)).toEqual({ after: "c" });
    expect(placeOf(ids, 1, 3)).toEqual({ after: "d" });
  });
});
