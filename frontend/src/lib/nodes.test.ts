import { describe, expect, it } from "vitest";
import type { GpuOut, HealthOut } from "../api/types";
import { executorBanner, gpuLabel, groupByNode, rankOptions, taskGpuLabels, taskShape } from "./nodes";

const gpu = (index: number, node = "", local = index): GpuOut => ({
  index,
  uuid: `GPU-${index}`,
  name: "Simulated",
  enabled: true,
  state: "free",
  task_ids: [],
  util: 0,
  mem_used: 0,
  mem_total: 1,
  external: null,
  error: null,
  note: null,
  pci_bus_id: "",
  temperature: null,
  power_watts: null,
  processes: [],
  node,
  local_index: local,
  label: node ? `${node}:${local}` : String(index),
  mem_declared: 0,
});

const health = (over: Partial<HealthOut> = {}): HealthOut => ({
  status: "ok",
  version: "2",
  executor: { name: "ray", available: true, detail: null },
  paused: false,
  paused_at: null,
  notifications: { sent: 0, failed: 0, dropped: 0, pending: 0, last_error: null },
  paused_tags: [],
  nodes: [],
  ...over,
});

describe("groupByNode", () => {
  it("keeps one machine's GPUs in one group without a heading, as before nodes", () => {
    const gpus = [gpu(0), gpu(1), gpu(2)];
    expect(groupByNode(gpus)).toEqual([{ node: "", alive: true, gpus }]);
    expect(groupByNode([], health())).toEqual([{ node: "", alive: true, gpus: [] }]);
  });

  it("groups a cluster's GPUs by node, nodes by name, GPUs by index", () => {
    const gpus = [gpu(3, "node-b", 1), gpu(0, "node-a", 0), gpu(2, "node-b", 0), gpu(1, "node-a", 1)];
    const groups = groupByNode(gpus);
    expect(groups.map((g) => g.node)).toEqual(["node-a", "node-b"]);
    expect(groups.map((g) => g.gpus.map((x) => x.label))).toEqual([
      ["node-a:0", "node-a:1"],
      ["node-b:0", "node-b:1"],
    ]);
  });

  it("marks nodes that left and shows nodes without GPUs", () => {
    const h = health({
      nodes: [
        { name: "node-a", alive: true, gpus: 1, usable: 1 },
        { name: "node-b", alive: false, gpus: 1, usable: 0 },
        { name: "cpu-1", alive: true, gpus: 0, usable: 0 },
      ],
    });
    const groups = groupByNode([gpu(0, "node-a", 0), gpu(1, "node-b", 0)], h);
    expect(groups.map((g) => [g.node, g.alive, g.gpus.length])).toEqual([
      ["cpu-1", true, 0],
      ["node-a", true, 1],
      ["node-b", false, 1],
    ]);
  });
});

describe("labels and shapes", () => {
  const gpus = [gpu(0, "node-a", 0), gpu(1, "node-a", 1), gpu(2, "node-b", 0)];
  it("names a task's GPUs by node", () => {
    expect(taskGpuLabels({ gpu_ids: [1, 2] }, gpus)).toBe("node-a:1, node-b:0");
    expect(taskGpuLabels({ gpu_ids: [0, 1] }, [gpu(0), gpu(1)])).toBe("0, 1");
    expect(gpuLabel(9, gpus)).toBe("9"); // a GPU that is not known any more
  });
  it("says a gang's shape and its ranks", () => {
    expect(taskShape({ n_gpus: 4, n_nodes: 2 })).toBe("2 × 4");
    expect(taskShape({ n_gpus: 1, n_nodes: 1 })).toBe("1");
    expect(rankOptions({ n_nodes: 2, nodes: ["node-a", "node-b"] }).map((r) => r.label)).toEqual([
      "rank 0 (node-a)",
      "rank 1 (node-b)",
    ]);
    expect(rankOptions({ n_nodes: 2, nodes: [] }).map((r) => r.label)).toEqual(["rank 0", "rank 1"]);
  });
});

describe("executorBanner", () => {
  it("says nothing while the executor can start tasks, or before health is known", () => {
    expect(executorBanner(null)).toBeNull();
    expect(executorBanner(health())).toBeNull();
  });
  it("says why nothing starts when it cannot", () => {
    const why = "Ray cluster at 127.0.0.1:6379 unreachable since 17:32:01";
    const text = executorBanner(health({ status: "degraded", executor: { name: "ray", available: false, detail: why } }));
    expect(text).toBe(`ANT cannot start tasks now: ${why}. Queued tasks wait; running ones are left alone.`);
    expect(executorBanner(health({ executor: { name: "ray", available: false, detail: null } }))).toBe(
      "ANT cannot start tasks now. Queued tasks wait; running ones are left alone.",
    );
  });
});
