// The browser's API client: same-origin fetch with the session cookie and the CSRF header.
import type {
  BulkOut,
  GpuOut,
  GpuTimelineOut,
  HealthOut,
  LogLinesOut,
  QueueOut,
  LogOut,
  LogSearchOut,
  MeOut,
  PreviewOut,
  RecoveryOut,
  ServerInfo,
  SubmitRequest,
  SummaryOut,
  SystemHistoryOut,
  SystemOut,
  TagsOut,
  TaskOut,
  TaskPage,
  TasksOut,
  TerminalOut,
  UsageOut,
} from "./types";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { "X-ANT-CSRF": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "connection_failed", "cannot reach the ANT server");
  }
  if (!response.ok) {
    let code = "http_error";
    let message = `HTTP ${response.status}`;
    try {
      const data = await response.json();
      code = data.error.code;
      message = data.error.message;
    } catch {
      // not our JSON error shape; keep the status line
    }
    throw new ApiError(response.status, code, message);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

const enc = encodeURIComponent;
// `&rank=N` for a rank other than 0 (the first node: what the routes give by default).
const rankParam = (rank: number) => (rank ? `&rank=${rank}` : "");
// `&attempt=K` for one attempt of a retried task (each keeps its log); none: the current one.
const attemptParam = (attempt?: number | null) => (attempt ? `&attempt=${attempt}` : "");

// Where `move` puts a queued task: before or after another queued task, or at the top or bottom.
export type Place = { before: string } | { after: string } | { to: "top" | "bottom" };

export const api = {
  login: (token: string) => call<void>("POST", "/api/v1/login", { token }),
  server: () => call<ServerInfo>("GET", "/api/v1/server"),
  health: () => call<HealthOut>("GET", "/api/v1/health"),
  system: () => call<SystemOut>("GET", "/api/v1/system"),
  // The dashboard: stored samples of a window (seconds), the GPU timeline, the summary strip.
  systemHistory: (window: number) => call<SystemHistoryOut>("GET", `/api/v1/system/history?window=${window}`),
  gpuTimeline: (window: number) => call<GpuTimelineOut>("GET", `/api/v1/gpus/timeline?window=${window}`),
  summary: () => call<SummaryOut>("GET", "/api/v1/system/summary"),
  submit: (body: SubmitRequest) => call<TasksOut>("POST", "/api/v1/tasks", body),
  preview: (body: SubmitRequest) => call<PreviewOut>("POST", "/api/v1/tasks/preview", body),
  tasks: (params: {
    state?: string;
    q?: string;
    limit?: number;
    offset?: number;
    sort?: string;
    order?: string;
    since?: string;
    until?: string;
    tag?: string | string[] | null; // repeated: tasks carrying all of them
    owner?: string; // only this user's tasks
  }) => {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (Array.isArray(v)) for (const one of v) query.append(k, String(one));
      else if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
    }
    return call<TaskPage>("GET", `/api/v1/tasks?${query}`);
  },
  task: (id: string) => call<TaskOut>("GET", `/api/v1/tasks/${enc(id)}`),
  kill: (id: string) => call<TaskOut>("POST", `/api/v1/tasks/${enc(id)}/kill`),
  // withDependents: the tasks waiting for it wait for the copy; its ended dependents run again.
  restart: (id: string, withDependents = false) =>
    call<TaskOut>("POST", `/api/v1/tasks/${enc(id)}/restart${withDependents ? "?with_dependents=true" : ""}`),
  promote: (id: string) => call<TaskOut>("POST", `/api/v1/tasks/${enc(id)}/promote`),
  // Exactly one of before, after (queued task ids) or to: see docs/api.md, "Reordering".
  move: (id: string, place: Place) =>
    call<TaskOut>("POST", `/api/v1/tasks/${enc(id)}/move`, place),
  rename: (id: string, newId: string) => call<TaskOut>("POST", `/api/v1/tasks/${enc(id)}/rename`, { new_id: newId }),
  remove: (id: string) => call<unknown>("DELETE", `/api/v1/tasks/${enc(id)}`),
  log: (id: string, lines: number, rank = 0) =>
    call<LogOut>("GET", `/api/v1/tasks/${enc(id)}/log?lines=${lines}${rankParam(rank)}`),
  fullLog: async (id: string, rank = 0) => {
    const r = await fetch(`/api/v1/tasks/${enc(id)}/log?full=true${rankParam(rank)}`, { credentials: "same-origin" });
    if (!r.ok) throw new ApiError(r.status, "http_error", `HTTP ${r.status}`);
    return r.text();
  },
  // The log by line number, and search in it (the log viewer; see docs/api.md).
  logLines: (id: string, p: { start?: number; count: number; fromEnd?: boolean; rank?: number; attempt?: number | null }) =>
    call<LogLinesOut>(
      "GET",
      `/api/v1/tasks/${enc(id)}/log/lines?count=${p.count}${p.fromEnd ? "&from_end=true" : `&start=${p.start ?? 0}`}${rankParam(p.rank ?? 0)}` +
        attemptParam(p.attempt),
    ),
  logSearch: (id: string, p: { q: string; start?: number; case?: boolean; limit?: number; rank?: number; attempt?: number | null }) =>
    call<LogSearchOut>(
      "GET",
      `/api/v1/tasks/${enc(id)}/log/search?q=${enc(p.q)}&start=${p.start ?? 0}&case=${p.case ? "true" : "false"}` +
        `${p.limit ? `&limit=${p.limit}` : ""}${rankParam(p.rank ?? 0)}${attemptParam(p.attempt)}`,
    ),
  downloadUrl: (id: string, rank = 0, attempt?: number | null) =>
    `/api/v1/tasks/${enc(id)}/log?full=true${rankParam(rank)}${attemptParam(attempt)}`,
  terminal: (id: string, rank = 0, lines?: number) =>
    call<TerminalOut>("GET", `/api/v1/tasks/${enc(id)}/terminal?rank=${rank}${lines ? `&lines=${lines}` : ""}`),
  gpus: () => call<GpuOut[]>("GET", "/api/v1/gpus"),
  // By index on this machine, by label (node-b:1) on a cluster.
  setGpu: (gpu: number | string, enabled: boolean) =>
    call<GpuOut>("PATCH", `/api/v1/gpus/${enc(String(gpu))}`, { enabled }),
  // A drain: queued tasks stop starting, running ones go on (kept across restarts of ANT).
  pauseQueue: () => call<QueueOut>("POST", "/api/v1/queue/pause"),
  resumeQueue: () => call<QueueOut>("POST", "/api/v1/queue/resume"),
  pauseTag: (tag: string) => call<QueueOut>("POST", "/api/v1/queue/pause", { tag }),
  resumeTag: (tag: string) => call<QueueOut>("POST", "/api/v1/queue/resume", { tag }),
  tags: () => call<TagsOut>("GET", "/api/v1/tags"),
  tagAction: (tag: string, action: BulkOut["action"]) => call<BulkOut>("POST", `/api/v1/tags/${enc(tag)}/${action}`),
  recovery: () => call<RecoveryOut>("GET", "/api/v1/recovery"),
  restore: (task_ids: string[]) => call<TasksOut>("POST", "/api/v1/recovery/restore", { task_ids }),
  forget: (id: string) => call<unknown>("DELETE", `/api/v1/recovery/${enc(id)}`),
  // Who is signed in (and every user's name, for the user filter); GPU-hours by user or tag.
  me: () => call<MeOut>("GET", "/api/v1/me"),
  usage: (window: string, by: UsageOut["by"]) => call<UsageOut>("GET", `/api/v1/usage?window=${enc(window)}&by=${by}`),
};
