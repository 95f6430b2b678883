import { describe, expect, it } from "vitest";
import { taskFixture } from "../test/fixtures";
import type { TaskChange, TaskOut } from "../api/types";
import { emptyTasks, MAX_TASKS, reduceTasks, selectHeld, selectQueued, selectRunning, type TaskEvent, type TasksAction, type TasksState } from "./tasks";

const task = taskFixture;

const added = (t: TaskOut): TaskEvent => ({ type: "task_added", data: t });
const changed = (t: TaskOut): TaskEvent => ({ type: "task_changed", data: t });
// What the server sends: the id, the state and the fields that changed.
const change = (data: TaskChange): TaskEvent => ({ type: "task_changed", data });
const removed = (id: string): TaskEvent => ({ type: "task_removed", data: { task_id: id } });
const run = (state: TasksState, ...actions: TasksAction[]) => actions.reduce(reduceTasks, state);
const events = (...list: TaskEvent[]): TasksAction => ({ type: "events", events: list });
const states = (s: TasksState) => Object.fromEntries([...s.byId].map(([id, t]) => [id, t.state]));

describe("task events", () => {
  it("task_added and task_changed put the task, task_removed drops it", () => {
    let s = run(emptyTasks, events(added(task("a")), added(task("b"))));
    expect(states(s)).toEqual({ a: "queued", b: "queued" });
    s = run(s, events(changed(task("a", { state: "running", started_at: 5 }))));
    expect(states(s)).toEqual({ a: "running", b: "queued" });
    expect(s.byId.get("a")?.started_at).toBe(5);
    s = run(s, events(removed("b")));
    expect(states(s)).toEqual({ a: "running" });
    expect(s.seq).toBe(4);
  });

  it("does not change the state it was given", () => {
    const before = run(emptyTasks, events(added(task("a"))));
    const map = before.byId;
    run(before, events(changed(task("a", { state: "running" })), removed("a")));
    expect(before.byId).toBe(map);
    expect(states(before)).toEqual({ a: "queued" });
  });

  it("a change is applied onto the task as known: fields not sent stay as they were", () => {
    let s = run(emptyTasks, events(added(task("a", { queue_position: 3, pending_reason: "waiting" }))));
    s = run(s, events(change({ task_id: "a", state: "running", started_at: 5, pid: 42, log_path: "/l" })));
    const a = s.byId.get("a");
    expect(a).toMatchObject({ state: "running", started_at: 5, pid: 42, log_path: "/l", command: "echo a" });
    // Fields only a queued task has are null once it left the queue (they are not sent).
    expect(a?.queue_position).toBeNull();
    expect(a?.pending_reason).toBeNull();
    s = run(s, { type: "begin", since: s.seq }, { type: "loaded", since: s.seq, scope: { ids: ["a"] }, tasks: [{ ...a!, gpu_mem_used: 7 }] });
    s = run(s, events(change({ task_id: "a", state: "succeeded", finished_at: 9, exit_code: 0 })));
    expect(s.byId.get("a")).toMatchObject({ state: "succeeded", started_at: 5, finished_at: 9, exit_code: 0, gpu_mem_used: null });
    expect(s.ended).toBe(1);
  });

  it("a change of a task it never saw is not applied (LiveProvider reads it); an end counts", () => {
    let s = run(emptyTasks, events(change({ task_id: "x", state: "running", pid: 1 })));
    expect(s.byId.has("x")).toBe(false);
    expect(s.ended).toBe(0);
    s = run(s, events(change({ task_id: "y", state: "succeeded", exit_code: 0 })));
    expect(s.byId.has("y")).toBe(false);
    expect(s.ended).toBe(1);
  });

  it("counts changes of ended tasks, so views of ended tasks know to read again", () => {
    let s = run(emptyTasks, events(added(task("a")), changed(task("a", { state: "running" }))));
    expect(s.ended).toBe(0);
    s = run(s, events(changed(task("a", { state: "killed" }))));
    expect(s.ended).toBe(1);
    s = run(s, events(removed("a")));
    expect(s.ended).toBe(2);
    s = run(s, events(removed("never-seen")));
    expect(s.ended).toBe(2);
  });

  it("an empty batch changes nothing", () => {
    expect(reduceTasks(emptyTasks, events())).toBe(emptyTasks);
  });

  it("queue events set the queue's length", () => {
    const s = run(emptyTasks, { type: "queue", queued: 7 });
    expect(s.queued).toBe(7);
    expect(reduceTasks(s, { type: "queue", queued: 7 })).toBe(s);
  });
});

describe("reads and the events that race them", () => {
  it("a read replaces the tasks in its scope and keeps the others", () => {
    let s = run(emptyTasks, events(added(task("q1")), added(task("q2")), added(task("r", { state: "running" }))));
    s = run(
      s,
      { type: "begin", since: s.seq },
      { type: "loaded", since: s.seq, scope: { states: ["queued"] }, tasks: [task("q2", { queue_position: 1 })], queued: 1 },
    );
    expect(states(s)).toEqual({ r: "running", q2: "queued" });
    expect(s.byId.get("q2")?.queue_position).toBe(1);
    expect(s.queued).toBe(1);
    expect(s.pending).toEqual([]);
    expect(s.journal).toEqual([]);
  });

  it("events that came while a read was in flight are applied on top of its answer", () => {
    let s = run(emptyTasks, events(added(task("a"))));
    const since = s.seq;
    s = run(s, { type: "begin", since });
    // Meanwhile: a starts and ends, b is submitted, c is deleted.
    s = run(s, events(changed(task("a", { state: "running" })), added(task("b"))));
    s = run(s, events(changed(task("a", { state: "succeeded" })), removed("c")));
    expect(s.journal).toHaveLength(4);
    // The answer was made before some of them: a still queued, c still there.
    s = run(s, {
      type: "loaded",
      since,
      scope: { states: ["queued", "running"] },
      tasks: [task("a"), task("c", { state: "running" })],
    });
    expect(states(s)).toEqual({ a: "succeeded", b: "queued" });
    expect(s.journal).toEqual([]);
  });

  it("replaying events older than the answer is harmless", () => {
    let s = run(emptyTasks, { type: "begin", since: 0 });
    s = run(s, events(changed(task("a", { state: "running" }))), events(changed(task("a", { state: "failed" }))));
    s = run(s, { type: "loaded", since: 0, scope: {}, tasks: [task("a", { state: "failed" })] });
    expect(states(s)).toEqual({ a: "failed" });
  });

  it("does not count replayed events as new changes of ended tasks", () => {
    let s = run(emptyTasks, { type: "begin", since: 0 }, events(changed(task("a", { state: "killed" }))));
    expect(s.ended).toBe(1);
    s = run(s, { type: "loaded", since: 0, scope: {}, tasks: [] });
    expect(s.ended).toBe(1);
  });

  it("a read of one task that is gone drops it, unless it came back meanwhile", () => {
    let s = run(emptyTasks, events(added(task("a"))));
    s = run(s, { type: "begin", since: s.seq }, { type: "loaded", since: s.seq, scope: { ids: ["a"] }, tasks: [] });
    expect(s.byId.has("a")).toBe(false);
    const since = s.seq;
    s = run(s, { type: "begin", since }, events(added(task("a"))));
    s = run(s, { type: "loaded", since, scope: { ids: ["a"] }, tasks: [] });
    expect(s.byId.has("a")).toBe(true);
  });

  it("keeps the journal while any read is in flight, and only what they need", () => {
    let s = run(emptyTasks, { type: "begin", since: 0 }, events(added(task("a"))));
    s = run(s, { type: "begin", since: 1 }, events(added(task("b"))));
    expect(s.journal.map((e) => e.seq)).toEqual([1, 2]);
    s = run(s, { type: "loaded", since: 0, scope: {}, tasks: [] });
    expect(s.journal.map((e) => e.seq)).toEqual([2]);
    s = run(s, { type: "abort", since: 1 });
    expect(s.journal).toEqual([]);
    expect(s.pending).toEqual([]);
    s = run(s, events(added(task("c"))));
    expect(s.journal).toEqual([]);
  });
});

describe("size", () => {
  it("drops the ended tasks written longest ago, never active ones", () => {
    const many = Array.from({ length: MAX_TASKS }, (_, i) => added(task(`done-${i}`, { state: "succeeded" })));
    let s = run(emptyTasks, events(added(task("waiting")), added(task("busy", { state: "running" }))));
    s = run(s, events(...many));
    expect(s.byId.size).toBeLessThanOrEqual(MAX_TASKS);
    expect(s.byId.has("waiting") && s.byId.has("busy")).toBe(true);
    expect(s.byId.has(`done-${MAX_TASKS - 1}`)).toBe(true); // the newest stay
    expect(s.byId.has("done-0")).toBe(false);
  });
});

describe("selectors", () => {
  it("lists running tasks by start and queued tasks by position, priority and arrival", () => {
    const s = run(
      emptyTasks,
      events(
        added(task("late", { state: "running", started_at: 20 })),
        added(task("early", { state: "running", started_at: 10 })),
        added(task("second", { queue_position: 2, queue_seq: 1 })),
        added(task("first", { queue_position: 1, queue_seq: 2 })),
        added(task("new-low", { queue_seq: 9 })),
        added(task("new-high", { queue_seq: 10, priority: 5 })),
      ),
    );
    expect(selectRunning(s.byId).map((t) => t.task_id)).toEqual(["early", "late"]);
    expect(selectQueued(s.byId).map((t) => t.task_id)).toEqual(["first", "second", "new-high", "new-low"]);
  });

  it("lists held tasks oldest first, and drops them when restored or deleted", () => {
    let s = run(
      emptyTasks,
      events(
        added(task("newer", { state: "held", created_at: 5 })),
        added(task("older", { state: "held", created_at: 2 })),
        added(task("gone", { state: "held", created_at: 3 })),
        added(task("waiting", { created_at: 1 })),
      ),
    );
    expect(selectHeld(s.byId).map((t) => t.task_id)).toEqual(["older", "gone", "newer"]);
    s = run(s, events(change({ task_id: "older", state: "queued" }), removed("gone")));
    expect(selectHeld(s.byId).map((t) => t.task_id)).toEqual(["newer"]);
    expect(selectQueued(s.byId).map((t) => t.task_id)).toContain("older");
  });
});

describe("retries", () => {
  it("a retried attempt goes from running back to the queue, not ended, its attempt kept", () => {
    let s = run(emptyTasks, events(added(task("r", { retries: 2 })), change({ task_id: "r", state: "running", started_at: 5, pid: 7 })));
    const attempt = { attempt: 1, state: "failed" as const, exit_code: 1, started_at: 5, finished_at: 6, log_path: "/l/r.log", reason: null, handle: null };
    s = run(s, events(change({ task_id: "r", state: "queued", started_at: null, pid: null, attempt: 2, attempts: [attempt], retry_at: 36, pending_reason: "retrying in 30s (attempt 2 of 3; attempt 1 failed with exit 1)" })));
    expect(selectRunning(s.byId)).toEqual([]);
    const [r] = selectQueued(s.byId);
    expect(r).toMatchObject({ task_id: "r", attempt: 2, retry_at: 36, started_at: null, pid: null });
    expect(r.attempts).toEqual([attempt]);
    expect(r.pending_reason).toContain("retrying in 30s");
    expect(s.justEnded).toEqual([]);
    expect(s.ended).toBe(0);
  });
});
