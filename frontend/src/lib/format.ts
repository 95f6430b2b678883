export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "-";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(0)} MiB`;
  return `${n} B`;
}

// A size as the server reads gpu_mem (20G, 512M, 20GiB, 1.5T or bytes; binary units). Only
// checked here: the text goes to the server as typed, which parses it again.
export function isSize(text: string): boolean {
  return /^\s*\d+(\.\d+)?\s*[kmgtp]?(i?b)?\s*$/i.test(text);
}

// "6 GiB declared; using 4.2 GiB" or, past it, "... — over: used up to 9 GiB"; null for a task
// that takes whole GPUs.
export function gpuMemText(task: { gpu_mem: number | null; gpu_mem_used: number | null; gpu_mem_over: number | null }): string | null {
  if (task.gpu_mem === null) return null;
  let out = `${bytes(task.gpu_mem)} declared (shares one GPU)`;
  if (task.gpu_mem_used !== null) out += `; using ${bytes(task.gpu_mem_used)}`;
  return out;
}

// The over-use flag: "GPU memory over: 9.0 GiB used of 4.0 GiB declared".
export function gpuMemOverText(task: { gpu_mem: number | null; gpu_mem_over: number | null }): string | null {
  if (task.gpu_mem === null || task.gpu_mem_over === null) return null;
  return `GPU memory over: ${bytes(task.gpu_mem_over)} used of ${bytes(task.gpu_mem)} declared`;
}

export function when(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toLocaleString() : "-";
}

// Exponential moving average, as MONITORING_smoother_alpha asks.
export function smooth(values: number[], alpha: number): number[] {
  const out: number[] = [];
  let prev: number | null = null;
  for (const v of values) {
    prev = prev === null ? v : alpha * v + (1 - alpha) * prev;
    out.push(prev);
  }
  return out;
}

// A timeout as users write it (90, 90s, 15m, 2h, 1h30m, 1.5h; a bare number is seconds), in
// seconds; null when it is not one. The server checks it again (and its range).
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase().replace(/\s+/g, "");
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const m = /^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(t);
  if (!t || !m) return null;
  const [d, h, min, s] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v)));
  return d * 86400 + h * 3600 + min * 60 + s;
}

// The shortest exact way to write it back: 7200 -> "2h", 5400 -> "1h30m".
export function formatDuration(seconds: number): string {
  if (!Number.isInteger(seconds)) return `${seconds}s`;
  let left = seconds;
  let out = "";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (left >= size) {
      out += `${Math.floor(left / size)}${unit}`;
      left %= size;
    }
  }
  return out || "0s";
}

// "2h" or, while it runs, "2h (1h 03m left)".
export function timeoutText(timeout: number | null, startedAt: number | null, running: boolean, now: number): string | null {
  if (timeout === null) return null;
  if (!running || startedAt === null) return formatDuration(timeout);
  return `${formatDuration(timeout)} (${duration(startedAt + timeout - now)} left)`;
}

// A compact time for dense tables: the clock today, day and clock this year, else the date.
export function shortWhen(ts: number | null | undefined, now: number = Date.now() / 1000): string {
  if (!ts) return "-";
  const d = new Date(ts * 1000);
  const today = new Date(now * 1000);
  if (d.toDateString() === today.toDateString()) {
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  if (d.getFullYear() === today.getFullYear()) {
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  return d.toLocaleDateString();
}

// How a task retries: "3 on failure, lost · backoff 30s, doubling · attempt 2 of 4" (null: it
// does not, and never ran more than once).
export function retriesText(task: {
  retries: number;
  retry_on: string[];
  retry_backoff: number;
  attempt: number;
  attempts: unknown[];
}): string | null {
  if (task.retries === 0 && task.attempts.length <= 1) return null;
  const backoff = task.retry_backoff > 0 ? `backoff ${formatDuration(task.retry_backoff)}, doubling` : "no backoff";
  return `${task.retries} on ${task.retry_on.join(", ")} · ${backoff} · attempt ${task.attempt} of ${task.retries + 1}`;
}
