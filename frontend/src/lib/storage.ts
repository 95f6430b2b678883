// Per-browser preferences in localStorage (never required: a blocked storage just forgets).
export function load<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(`ant.${key}`);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

export function save(key: string, value: unknown): void {
  try {
    localStorage.setItem(`ant.${key}`, JSON.stringify(value));
  } catch {
    // storage full or disabled: the preference is simply not remembered
  }
}
