// The whole log of a task (one rank), however long: lines are read by number as they scroll into
// view (GET /log/lines), only the rows on screen are in the page (@tanstack/react-virtual), and
// the server counts the lines once. Start / End, Follow while the task runs, search with
// next/previous, line numbers. What it cannot show (a line past the server's cap, a part of a
// huge log beyond what a browser can scroll at once) it says, with the download at hand.
import { useVirtualizer } from "@tanstack/react-virtual";
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";
import { api, ApiError } from "../api/client";
import type { LogLinesOut } from "../api/types";
import { bytes } from "../lib/format";
import { FETCH_LINES, farthest, markMatches, missingRun, nextMatch, shownLine, WINDOW_LINES, windowStart } from "../lib/logview";
import { ansiToSegments } from "../lib/terminal";

const ROW = 18; // px: every row is one line high (long lines scroll sideways)
const MARGIN = 300; // lines read ahead of the view, above and below
const POLL_MS = 1000; // a running task's log is read again this often
const COUNTING_MS = 300; // ... and a log still being counted

interface Meta {
  total: number;
  size: number;
  counted: number;
  available: boolean;
  maxLineBytes: number;
}

interface Search {
  q: string;
  matchCase: boolean;
  lines: number[]; // the lines holding q (0-based)
  next: number | null; // not searched from this line on
  at: number; // index in lines of the current match (-1: none yet)
  busy: boolean;
}

const NO_SEARCH: Search = { q: "", matchCase: false, lines: [], next: null, at: -1, busy: false };

export function LogViewer(props: {
  taskId: string;
  rank?: number;
  attempt?: number | null; // one attempt of a retried task (none: the current one)
  live: boolean; // the task runs: read on, follow the end
  testId?: string;
  height?: string; // at most this tall (a short log takes less)
}) {
  const { taskId, live } = props;
  const rank = props.rank ?? 0;
  const attempt = props.attempt ?? null;
  const cache = useRef(new Map<number, string>());
  const cut = useRef(new Set<number>());
  const [version, setVersion] = useState(0);
  const [meta, setMeta] = useState<Meta | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [base, setBase] = useState(0); // the first line of the window the scroller covers
  // Keep the last line in view: while the task runs (Follow), and while a big log is still being
  // counted (its end moves on) until the reader goes elsewhere.
  const [follow, setFollow] = useState(true);
  const [search, setSearch] = useState<Search>(NO_SEARCH);
  const [query, setQuery] = useState("");
  const [matchCase, setMatchCase] = useState(false);
  const metaRef = useRef<Meta | null>(null);
  const busy = useRef(false);
  const touched = useRef(false); // the reader scrolled the log themself
  const pending = useRef<{ line: number; align: "start" | "center" | "end" } | null>(null);
  const scroller = useRef<HTMLDivElement>(null);
  const download = api.downloadUrl(taskId, rank, attempt);
  const fileName = `${taskId}${rank ? `.rank${rank}` : ""}${attempt && attempt > 1 ? `.attempt${attempt}` : ""}.log`;

  const total = meta?.total ?? 0;
  const count = Math.max(0, Math.min(WINDOW_LINES, total - base));
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 20,
  });

  // One read: its lines go into the cache, its counts into meta.
  const read = useCallback(
    async (params: { start?: number; count: number; fromEnd?: boolean }) => {
      const answer: LogLinesOut = await api.logLines(taskId, { ...params, rank, attempt });
      const before = metaRef.current;
      if (before && answer.total_lines > before.total) cache.current.delete(before.total - 1); // it was unfinished
      answer.lines.forEach((line, i) => {
        cache.current.set(answer.start + i, line);
        cut.current.delete(answer.start + i);
      });
      for (const n of answer.cut) cut.current.add(n);
      const next: Meta = {
        total: answer.total_lines,
        size: answer.size,
        counted: answer.counted_bytes,
        available: answer.available,
        maxLineBytes: answer.max_line_bytes,
      };
      metaRef.current = next;
      setMeta(next);
      setError(null);
      setVersion((v) => v + 1);
      return answer;
    },
    [taskId, rank, attempt],
  );

  const jump = useCallback((line: number, align: "start" | "center" | "end") => {
    const known = metaRef.current?.total ?? 0;
    const target = Math.max(0, Math.min(line, known - 1));
    setBase(windowStart(target, known));
    pending.current = { line: target, align };
    setVersion((v) => v + 1);
  }, []);

  // First read: the end of the log (where a running task writes, and where a failure shows).
  useEffect(() => {
    let alive = true;
    read({ fromEnd: true, count: FETCH_LINES / 4 }).then(
      (answer) => alive && jump(answer.total_lines - 1, "end"),
      (err) => alive && setError(err instanceof ApiError ? err.message : String(err)),
    );
    return () => {
      alive = false;
    };
  }, [read, jump]);

  // While the task runs (or the server is still counting a big log), read on.
  const counting = meta !== null && meta.counted < meta.size;
  useEffect(() => {
    if (!live && !counting) return;
    const timer = window.setInterval(
      () => {
        if (busy.current) return;
        busy.current = true;
        read({ fromEnd: true, count: follow ? 500 : 1 })
          .then((answer) => follow && jump(answer.total_lines - 1, "end"))
          .catch(() => undefined)
          .finally(() => (busy.current = false));
      },
      live ? POLL_MS : COUNTING_MS,
    );
    return () => window.clearInterval(timer);
  }, [live, counting, follow, read, jump]);

  // The task ended: read the end once more.
  useEffect(() => {
    if (live || metaRef.current === null) return;
    read({ fromEnd: true, count: 500 }).then(
      (answer) => follow && jump(answer.total_lines - 1, "end"),
      () => undefined,
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [live]);

  // A jump waits for its rows to exist, then scrolls.
  useLayoutEffect(() => {
    const want = pending.current;
    if (!want || want.line - base >= count) return;
    pending.current = null;
    virtualizer.scrollToIndex(want.line - base, { align: want.align });
  });

  // Read what is on screen and near it, one request at a time; forget what is far away.
  const items = virtualizer.getVirtualItems();
  const first = items.length ? base + items[0].index : base;
  const last = items.length ? base + items[items.length - 1].index : base;
  useEffect(() => {
    if (busy.current || !meta || !meta.available) return;
    const run = missingRun((n) => cache.current.has(n), first - MARGIN, Math.min(last + MARGIN + 1, meta.total));
    if (!run) return;
    busy.current = true;
    read({ start: run[0], count: run[1] })
      .catch((err) => setError(err instanceof ApiError ? err.message : String(err)))
      .finally(() => {
        busy.current = false;
        for (const n of farthest(cache.current.keys(), (first + last) >> 1)) {
          cache.current.delete(n);
          cut.current.delete(n);
        }
      });
  }, [first, last, meta, read, version]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el || !touched.current) return;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2 && base + count >= total;
    setFollow(atEnd); // scrolling up to read stops following; back at the end, it goes on
  };
  const onTouch = () => {
    touched.current = true;
  };

  const toStart = () => {
    setFollow(false);
    jump(0, "start");
  };
  const toEnd = () => {
    setFollow(true);
    jump(total - 1, "end");
  };

  const runSearch = async (from: number, previous: number[]) => {
    const q = query;
    setSearch((s) => ({ ...s, q, matchCase, busy: true }));
    try {
      const found = await api.logSearch(taskId, { q, start: from, case: matchCase, rank, attempt });
      const lines = [...previous, ...found.lines];
      // A first search: the first match after where the reader is. Searching on: the first new
      // match, if any (else the reader stays where they are).
      const fresh = previous.length === 0 ? nextMatch(lines, first) : found.lines.length ? previous.length : -1;
      const at = lines.length ? (fresh >= 0 ? fresh : Math.max(0, search.at)) : -1;
      setSearch({ q, matchCase, lines, next: found.next_line ?? null, at, busy: false });
      if (fresh >= 0 && lines.length) {
        setFollow(false);
        jump(lines[fresh], "center");
      }
    } catch (err) {
      setSearch({ ...NO_SEARCH, q });
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  const step = (by: number) => {
    if (!search.lines.length) return;
    const at = (search.at + by + search.lines.length) % search.lines.length;
    setSearch({ ...search, at });
    setFollow(false);
    jump(search.lines[at], "center");
  };
  const onSearchKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    if (query && (query !== search.q || matchCase !== search.matchCase)) void runSearch(0, []);
    else step(e.shiftKey ? -1 : 1);
  };
  const current = search.at >= 0 ? search.lines[search.at] : null;

  return (
    <div className="logv" data-testid={props.testId}>
      <div className="row wrap logv-bar">
        <button className="ghost" onClick={toStart} title="The first line">Start</button>
        <button className="ghost" onClick={toEnd} title="The last line">End</button>
        {live && (
          <label className="switch" title="Keep the newest line in view">
            <input type="checkbox" checked={follow} onChange={(e) => (e.target.checked ? toEnd() : setFollow(false))} aria-label="Follow" />
            Follow
          </label>
        )}
        <input
          className="logv-search"
          type="search"
          placeholder="Search in log"
          aria-label="Search in log"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={onSearchKey}
        />
        <label className="row" title="Match case">
          <input type="checkbox" checked={matchCase} onChange={(e) => setMatchCase(e.target.checked)} aria-label="Match case" />
          Aa
        </label>
        <button className="ghost" onClick={() => (query !== search.q || matchCase !== search.matchCase ? void runSearch(0, []) : step(1))} disabled={!query}>
          Find
        </button>
        <button className="ghost" aria-label="Previous match" onClick={() => step(-1)} disabled={search.lines.length < 2}>▲</button>
        <button className="ghost" aria-label="Next match" onClick={() => step(1)} disabled={search.lines.length < 2}>▼</button>
        <span className="muted" data-testid="log-matches" aria-live="polite">
          {search.busy ? "searching…" : search.q ? matchesText(search) : ""}
        </span>
        {search.next !== null && !search.busy && (
          <button className="ghost" onClick={() => void runSearch(search.next ?? 0, search.lines)}>
            Search on from line {(search.next + 1).toLocaleString()}
          </button>
        )}
        <span className="logv-size muted" data-testid="log-size">
          {meta ? sizeText(meta) : ""}
        </span>
        <a className="button ghost" href={download} download={fileName}>
          Download
        </a>
      </div>
      {error && <p className="logv-error">Cannot read the log: {error}</p>}
      {meta && !meta.available && <p className="muted">No output yet: the task has not started.</p>}
      {meta && meta.available && meta.size === 0 && (
        <p className="muted" data-testid="log-empty">{live ? "No output yet." : "The log is empty (or its file is not on this machine any more)."}</p>
      )}
      {total > WINDOW_LINES && (
        <p className="logv-notice" data-testid="log-window">
          Showing lines {(base + 1).toLocaleString()}–{(base + count).toLocaleString()} of {total.toLocaleString()}: a browser cannot
          scroll more at once.{" "}
          {base > 0 && (
            <button className="link" onClick={() => jump(base - 1, "end")}>Earlier lines</button>
          )}{" "}
          {base + count < total && (
            <button className="link" onClick={() => jump(base + count, "start")}>Later lines</button>
          )}{" "}
          Or <a href={download}>download</a> it whole.
        </p>
      )}
      <div
        ref={scroller}
        className="terminal logv-scroll"
        style={{ maxHeight: props.height ?? "min(70vh, 640px)", minHeight: ROW * 2 }}
        onScroll={onScroll}
        onWheel={onTouch}
        onTouchMove={onTouch}
        onKeyDown={onTouch}
        onMouseDown={onTouch}
        tabIndex={0}
        role="log"
        aria-label={`Log of ${taskId}`}
      >
        <div className="logv-body" style={{ height: virtualizer.getTotalSize() }}>
          {items.map((item) => {
            const n = base + item.index;
            const raw = cache.current.get(n);
            return (
              <div
                key={item.key}
                className={`logv-line${n === current ? " logv-current" : ""}`}
                style={{ transform: `translateY(${item.start}px)` }}
                data-line={n + 1}
              >
                <span className="logv-num">{n + 1}</span>
                {raw === undefined ? (
                  <span className="logv-pending">…</span>
                ) : (
                  <LineText raw={raw} query={search.lines.length ? search.q : ""} matchCase={search.matchCase} />
                )}
                {cut.current.has(n) && (
                  <span className="logv-cut">
                    {" "}
                    [line cut at {Math.round((meta?.maxLineBytes ?? 0) / 1024)} KiB: <a href={download}>download</a> the log for all of it]
                  </span>
                )}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

function LineText(props: { raw: string; query: string; matchCase: boolean }) {
  const segments = markMatches(ansiToSegments(shownLine(props.raw)), props.query, props.matchCase);
  return (
    <>
      {segments.map((seg, j) => {
        const style = {
          color: seg.fg,
          background: seg.bg,
          fontWeight: seg.bold ? 700 : undefined,
          opacity: seg.dim ? 0.7 : undefined,
          fontStyle: seg.italic ? "italic" : undefined,
          textDecoration: seg.underline ? "underline" : undefined,
        };
        return seg.mark ? (
          <mark key={j} style={style}>
            {seg.text}
          </mark>
        ) : (
          <span key={j} style={style}>
            {seg.text}
          </span>
        );
      })}
    </>
  );
}

function matchesText(search: Search): string {
  const more = search.next !== null ? "+" : "";
  if (!search.lines.length) return search.next !== null ? "no match so far" : "no match";
  const n = `${search.lines.length.toLocaleString()}${more}`;
  return `${(search.at + 1).toLocaleString()} of ${n} line${search.lines.length === 1 && !more ? "" : "s"}`;
}

function sizeText(meta: Meta): string {
  const lines = `${meta.total.toLocaleString()} line${meta.total === 1 ? "" : "s"} · ${bytes(meta.size)}`;
  if (meta.counted >= meta.size) return lines;
  return `counting lines… ${Math.floor((100 * meta.counted) / Math.max(1, meta.size))}% (${lines} so far)`;
}
