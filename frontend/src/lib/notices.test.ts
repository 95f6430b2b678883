import { describe, expect, it } from "vitest";
import { taskFixture } from "../test/fixtures";
import type { TaskChange, TaskOut } from "../api/types";
import { emptyTasks, reduceTasks, type TaskEvent, type TasksAction, type TasksState } from "../state/tasks";
import { endBody, endTitle, justEnded, MAX_NOTICES, notices, RecentEnds } from "./notices";

const task = taskFixture;

const change = (data: TaskChange): TaskEvent => ({ type: "task_changed", data });
const events = (...list: TaskEvent[]): TasksAction => ({ type: "events", events: list });
const loaded = (...tasks: TaskOut[]): TasksAction => ({ type: "loaded", since: 0, scope: {}, tasks });
const all = () => true;

// The store after an action, and the tasks the notifier would tell of.
function step(state: TasksState, action: TasksAction, watched: (id: string) => boolean = all) {
  const next = reduceTasks(state, action);
  return { next, ended: justEnded(next).filter((t) => watched(t.task_id)).map((t) => t.task_id) };
}

describe("which changes notify", () => {
  it("a watched task that ends, once", () => {
    let s = reduceTasks(emptyTasks, events({ type: "task_added", data: task("a") }));
    let r = step(s, events(change({ task_id: "a", state: "running", started_at: 10 })));
    expect(r.ended).toEqual([]);
    r = step(r.next, events(change({ task_id: "a", state: "succeeded", finished_at: 75, exit_code: 0 })));
    expect(r.ended).toEqual(["a"]);
    // A later change of the ended task (it was restarted) is no news.
    s = r.next;
    r = step(s, events(change({ task_id: "a", state: "succeeded", restarted_as: "a-2" })));
    expect(r.ended).toEqual([]);
  });

  it("each end of a burst, failed, killed or lost", () => {
    const s = reduceTasks(emptyTasks, loaded(task("f", { state: "running" }), task("k", { state: "running" }), task("l", { state: "queued" })));
    const r = step(
      s,
      events(
        change({ task_id: "f", state: "failed", exit_code: 1 }),
        change({ task_id: "k", state: "killed" }),
        change({ task_id: "l", state: "lost" }),
      ),
    );
    expect(r.ended).toEqual(["f", "k", "l"]);
  });

  it("a quick task added and ended in one burst", () => {
    const r = step(
      emptyTasks,
      events(
        { type: "task_added", data: task("quick") },
        change({ task_id: "quick", state: "running", started_at: 1 }),
        change({ task_id: "quick", state: "succeeded", finished_at: 2, exit_code: 0 }),
      ),
    );
    expect(r.ended).toEqual(["quick"]);
    expect(endBody(r.next.byId.get("quick")!)).toBe("Ran for 1s");
  });

  it("a read does not repeat the last burst's ends", () => {
    const s = reduceTasks(emptyTasks, loaded(task("a", { state: "running" })));
    let r = step(s, events(change({ task_id: "a", state: "failed", exit_code: 1 })));
    expect(r.ended).toEqual(["a"]);
    const last = r.next.justEnded;
    r = step(r.next, loaded(task("a", { state: "failed", exit_code: 1 })));
    expect(r.next.justEnded).toBe(last); // the notifier tells of a batch once: when it changes
    r = step(r.next, events(change({ task_id: "b", state: "running" })));
    expect(r.ended).toEqual([]);
  });

  it("not a task that had ended before the page loaded, nor one the store did not hold", () => {
    let r = step(emptyTasks, loaded(task("old", { state: "failed", exit_code: 2 })));
    expect(r.ended).toEqual([]);
    r = step(r.next, events(change({ task_id: "unknown", state: "succeeded" })));
    expect(r.ended).toEqual([]);
  });

  it("only the watched ones", () => {
    const s = reduceTasks(emptyTasks, loaded(task("mine", { state: "running" }), task("theirs", { state: "running" })));
    const r = step(
      s,
      events(change({ task_id: "mine", state: "failed" }), change({ task_id: "theirs", state: "failed" })),
      (id) => id === "mine",
    );
    expect(r.ended).toEqual(["mine"]);
  });
});

describe("ends that came before the submission's answer", () => {
  it("are taken by the ids the answer brings, once", () => {
    const recent = new RecentEnds(3);
    recent.add([task("a", { state: "succeeded" }), task("b", { state: "failed" })]);
    recent.add([task("c", { state: "killed" }), task("d", { state: "lost" })]); // "a" is forgotten
    expect(recent.take(["a", "b", "x"]).map((t) => t.task_id)).toEqual(["b"]);
    expect(recent.take(["b"])).toEqual([]);
    expect(recent.take(["d", "c"]).map((t) => t.task_id)).toEqual(["c", "d"]);
  });
});

describe("what a notification says", () => {
  it("titles", () => {
    expect(endTitle(task("train-3", { state: "succeeded", exit_code: 0 }))).toBe("train-3 succeeded");
    expect(endTitle(task("train-3", { state: "failed", exit_code: 1 }))).toBe("train-3 failed (exit 1)");
    expect(endTitle(task("train-3", { state: "failed" }))).toBe("train-3 failed");
    expect(endTitle(task("train-3", { state: "killed", exit_code: -15 }))).toBe("train-3 killed");
    expect(endTitle(task("train-3", { state: "lost" }))).toBe("train-3 lost");
  });

  it("bodies say how long it ran, and why when the server says", () => {
    expect(endBody(task("a", { state: "succeeded", started_at: 100, finished_at: 225 }))).toBe("Ran for 2m 05s");
    expect(endBody(task("a", { state: "lost", reason: "node-b left the cluster" }))).toBe(
      "It did not start\nnode-b left the cluster",
    );
  });

  it("many ends at once make one summary", () => {
    const few = [task("a", { state: "succeeded" }), task("b", { state: "failed", exit_code: 3 })];
    expect(notices(few).map((n) => [n.taskId, n.title])).toEqual([
      ["a", "a succeeded"],
      ["b", "b failed (exit 3)"],
    ]);
    const many = Array.from({ length: MAX_NOTICES + 5 }, (_, i) => task(`t${i}`, { state: i % 2 ? "failed" : "succeeded" }));
    const [summary, ...rest] = notices(many);
    expect(rest).toEqual([]);
    expect(summary.taskId).toBeNull();
    expect(summary.title).toBe("8 tasks ended (4 succeeded, 4 not)");
    expect(summary.body).toBe("t0, t1, t2, t3, t4, t5, …");
  });
});
