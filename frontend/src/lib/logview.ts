// The log viewer's arithmetic (components/LogViewer.tsx): which lines to ask for, which window of a
// huge log the scroller covers, what to forget, and where a search hit sits in a rendered line.
import { applyCarriageReturns, clean, type Segment } from "./terminal";

// A browser cannot scroll an element millions of rows tall: the scroller covers at most this many
// lines at once (9 million px at 18 px a row), and says which part of the log it shows.
export const WINDOW_LINES = 500_000;
export const FETCH_LINES = 2000; // lines asked for at once (the server may give fewer)
export const KEEP_LINES = 60_000; // lines kept in memory; those farthest from the view go first

// The first line of the window that shows `line` (near its middle) among `total` lines.
export function windowStart(line: number, total: number, size = WINDOW_LINES): number {
  if (total <= size) return 0;
  const start = Math.max(0, Math.min(line - Math.floor(size / 2), total - size));
  return start;
}

// The first run of lines in [from, to) not in the cache, as [start, count] (count at most max),
// or null when every one is there.
export function missingRun(has: (line: number) => boolean, from: number, to: number, max = FETCH_LINES): [number, number] | null {
  let start = Math.max(0, from);
  while (start < to && has(start)) start++;
  if (start >= to) return null;
  let end = start;
  while (end < to && end - start < max && !has(end)) end++;
  return [start, end - start];
}

// Lines to forget so that at most `keep` remain: the farthest from `center` first.
export function farthest(lines: Iterable<number>, center: number, keep = KEEP_LINES): number[] {
  const all = [...lines];
  if (all.length <= keep) return [];
  all.sort((a, b) => Math.abs(b - center) - Math.abs(a - center));
  return all.slice(0, all.length - keep);
}

// A raw log line as a terminal shows it: hidden sequences dropped, then \r applied.
export function shownLine(raw: string): string {
  return applyCarriageReturns(clean(raw));
}

export interface Marked extends Segment {
  mark?: boolean;
}

// Segments with every occurrence of `query` (ASCII case ignored unless `matchCase`) split out and
// marked, colours kept; a match may span segments.
export function markMatches(segments: Segment[], query: string, matchCase = false): Marked[] {
  if (!query) return segments;
  const fold = (s: string) => (matchCase ? s : s.replace(/[A-Z]/g, (c) => c.toLowerCase()));
  const text = fold(segments.map((s) => s.text).join(""));
  const needle = fold(query);
  const marked = new Array<boolean>(text.length).fill(false);
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) {
    marked.fill(true, at, at + needle.length);
  }
  const out: Marked[] = [];
  let pos = 0;
  for (const seg of segments) {
    let i = 0;
    while (i < seg.text.length) {
      const mark = marked[pos + i];
      let j = i + 1;
      while (j < seg.text.length && marked[pos + j] === mark) j++;
      out.push({ ...seg, text: seg.text.slice(i, j), ...(mark ? { mark: true } : {}) });
      i = j;
    }
    pos += seg.text.length;
  }
  return out;
}

// The index in `matches` (line numbers, ascending) of the first match at or after `line`
// (wrapping to 0), for "next" from where the reader is.
export function nextMatch(matches: number[], line: number): number {
  let lo = 0;
  let hi = matches.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (matches[mid] < line) lo = mid + 1;
    else hi = mid;
  }
  return lo < matches.length ? lo : 0;
}
