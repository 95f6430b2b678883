import { describe, expect, it } from "vitest";
import type { GpuOut } from "../api/types";
import { gpuStateText } from "./Dashboard";

const gpu = (over: Partial<GpuOut>): GpuOut => ({
  index: 0,
  uuid: "GPU-0",
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
  node: "",
  local_index: 0,
  label: "0",
  mem_declared: 0,
  ...over,
});

describe("gpuStateText", () => {
  it("names the task that holds a GPU", () => {
    expect(gpuStateText(gpu({ state: "allocated", task_ids: ["train"] }))).toBe("in use by train");
  });
  it("says when processes a finished task left behind still hold it", () => {
    const held = gpu({ state: "allocated", task_ids: ["train"], note: "2 stray processes of train" });
    expect(gpuStateText(held)).toBe("2 stray processes of train");
  });
});
