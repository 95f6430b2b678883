// Links from before pages had URLs: `/#/ongoing` and the like land on `/ongoing`.
const PAGES: Record<string, string> = { "": "/", dashboard: "/", create: "/create", ongoing: "/ongoing", completed: "/completed" };

// The path an old hash link means, or null when the hash is not one (or there is none).
export function legacyHashPath(hash: string): string | null {
  const match = /^#(\/?)([^?]*)$/.exec(hash);
  if (!match) return null;
  const [, slash, rest] = match;
  const page = rest.replace(/\/+$/, "");
  if (page in PAGES) return PAGES[page];
  return slash ? "/" : null; // `#/anything` was the dashboard; a plain `#anchor` is not ours
}
