// Nodes in the UI: GPU cards grouped by node, GPU labels (node-b:1) for a task's GPUs, and what
// the banner says when the executor cannot start tasks. On one machine (every GPU on node "")
// nothing here shows: one group without a heading, labels that are the indices.
import type { GpuOut, HealthOut, TaskOut } from "../api/types";

export interface NodeGroup {
  node: string; // "" = this machine: no heading
  alive: boolean;
  gpus: GpuOut[];
}

// GPU cards by node, nodes in name order, GPUs by index within each; one unnamed group when no GPU
// has a node. Nodes known from health without GPUs (CPU-only nodes) get an empty group.
export function groupByNode(gpus: GpuOut[], health: HealthOut | null = null): NodeGroup[] {
  const named = gpus.some((g) => g.node) || (health?.nodes.length ?? 0) > 0;
  if (!named) return [{ node: "", alive: true, gpus }];
  const alive = new Map((health?.nodes ?? []).map((n) => [n.name, n.alive]));
  const byNode = new Map<string, GpuOut[]>();
  for (const n of health?.nodes ?? []) byNode.set(n.name, []);
  for (const gpu of gpus) {
    const list = byNode.get(gpu.node) ?? [];
    list.push(gpu);
    byNode.set(gpu.node, list);
  }
  return [...byNode.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((node) => ({
      node,
      alive: alive.get(node) ?? true,
      gpus: (byNode.get(node) ?? []).sort((a, b) => a.index - b.index),
    }));
}

// "node-b:1" on a cluster, "3" on this machine; the index when the GPU is not known (any more).
export function gpuLabel(index: number, gpus: GpuOut[]): string {
  return gpus.find((g) => g.index === index)?.label || String(index);
}

// A task's GPUs as people name them, e.g. "node-a:0, node-a:1" or "0, 1".
export function taskGpuLabels(task: Pick<TaskOut, "gpu_ids">, gpus: GpuOut[]): string {
  return task.gpu_ids.map((i) => gpuLabel(i, gpus)).join(", ");
}

// "2 × 4 GPUs" for a gang of 2 nodes with 4 GPUs each; the GPU count otherwise.
export function taskShape(task: Pick<TaskOut, "n_gpus" | "n_nodes">): string {
  return task.n_nodes > 1 ? `${task.n_nodes} × ${task.n_gpus}` : String(task.n_gpus);
}

// The ranks of a task (one per node): "rank 1 (node-b)" once it knows its nodes.
export function rankOptions(task: Pick<TaskOut, "n_nodes" | "nodes">): { rank: number; label: string }[] {
  return Array.from({ length: Math.max(1, task.n_nodes) }, (_, rank) => ({
    rank,
    label: task.nodes[rank] ? `rank ${rank} (${task.nodes[rank]})` : `rank ${rank}`,
  }));
}

// The banner's text when the executor cannot start tasks now; null when it can (or not known yet).
export function executorBanner(health: HealthOut | null): string | null {
  if (!health || health.executor.available) return null;
  const why = health.executor.detail ? `: ${health.executor.detail}` : "";
  return `ANT cannot start tasks now${why}. Queued tasks wait; running ones are left alone.`;
}
