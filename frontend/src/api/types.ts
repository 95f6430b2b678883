// Generated from the ANT OpenAPI schema by `make types` (python -m ant_scheduler.api.typescript).
// Do not edit by hand.

export interface Deleted {
  task_id: string;
  deleted: boolean;
}

export interface DoctorOut {
  ok: boolean;
  problems: string[];
  checked: Record<string, number>;
}

export interface GpuOut {
  index: number;
  uuid: string;
  name: string;
  enabled: boolean;
  state: "free" | "allocated" | "disabled" | "busy_external" | "unavailable";
  task_ids: string[];
  util: number;
  mem_used: number;
  mem_total: number;
  external: string | null;
  error: string | null;
  note: string | null;
  pci_bus_id: string;
  temperature: number | null;
  power_watts: number | null;
  processes: GpuProcessOut[];
}

export interface GpuPatch {
  enabled: boolean;
}

export interface GpuPoint {
  index: number;
  util: number;
  mem_used: number;
  mem_total: number;
}

export interface GpuProcessOut {
  pid: number;
  used_memory: number;
  task_id: string | null;
  user: string | null;
  command: string | null;
}

export interface HTTPValidationError {
  detail?: ValidationError[];
}

export interface Health {
  status: "ok";
  version: string;
}

export interface HostOut {
  cpu_percent: number;
  per_core: number[];
  mem_used: number;
  mem_total: number;
  load_avg: number[];
}

export interface LogOut {
  task_id: string;
  text: string;
  lines: number;
  size: number;
}

export interface LoginRequest {
  token: string;
}

export interface RecoveryOut {
  last_session: TaskOut[];
  earlier_sessions: TaskOut[];
}

export interface RestoreRequest {
  task_ids: string[];
}

export interface ServerInfo {
  version: string;
  session_id: number;
  started_at: number;
  gpu_backend: string;
  policy: string;
  recovery: Record<string, number>;
  ui: Record<string, number | boolean>;
}

export interface SubmitRequest {
  command: string;
  mode?: "single" | "multi";
  n_gpus?: number | null;
  task_id?: string | null;
  env?: Record<string, string>;
  priority?: number;
}

export interface SystemOut {
  current: SystemPoint;
  history: SystemPoint[];
  history_size: number;
  smoother_alpha: number;
}

export interface SystemPoint {
  time: number;
  host: HostOut | null;
  gpus: GpuPoint[];
}

export interface TaskOut {
  task_id: string;
  command: string;
  submitted: string;
  n_gpus: number;
  env: Record<string, string>;
  state: TaskState;
  priority: number;
  created_at: number;
  workdir: string | null;
  gpu_ids: number[];
  queue_seq: number;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  log_path: string | null;
  pid: number | null;
  handle: Record<string, unknown> | null;
  session_id: number | null;
  reason: string | null;
  restarted_as: string | null;
  queue_position: number | null;
  pending_reason: string | null;
  gpu_mem_used: number | null;
  lingering_processes: number;
  copy_command: string;
}

export interface TaskPage {
  tasks: TaskOut[];
  total: number;
}

export type TaskState = "queued" | "held" | "running" | "succeeded" | "failed" | "killed" | "lost";

export interface TasksOut {
  tasks: TaskOut[];
}

export interface TerminalOut {
  task_id: string;
  lines: string[];
  progress: number | null;
}

export interface ValidationError {
  loc: (string | number)[];
  msg: string;
  type: string;
  input?: unknown;
  ctx?: Record<string, unknown>;
}
