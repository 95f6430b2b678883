// Tags in the UI: chips on rows, cards and the task page (a click filters by the tag), and the tag
// bar of the task lists: the filter (kept in the URL as ?tag=) and what can be done to every task
// carrying the tag at once — pause or resume it, kill, restart, delete, restore — each asking first
// when it cannot be taken back, as the single-task actions do.
import { useEffect, useId, useState } from "react";
import { Link, useLocation, useSearchParams } from "react-router";
import { api } from "../api/client";
import type { BulkOut } from "../api/types";
import { TAG_RE, TAG_RULE, tagPausedAt } from "../lib/tags";
import { useBusyAction, useHealth } from "../state/hooks";
import { useConfirm } from "./ConfirmDialog";

// The tag filter of a page that keeps nothing else in its query string (Ongoing).
export function useTagParam(): [string, (tag: string) => void] {
  const [params, setParams] = useSearchParams();
  const tag = params.get("tag") ?? "";
  const setTag = (next: string) => {
    const changed = new URLSearchParams(params); // the user filter stays
    if (next) changed.set("tag", next);
    else changed.delete("tag");
    setParams(changed);
  };
  return [TAG_RE.test(tag) ? tag : "", setTag];
}

// Each tag a link to `base` (this page by default) filtered by it.
export function TagChips(props: { tags: readonly string[]; base?: string }) {
  const here = useLocation().pathname;
  if (!props.tags.length) return null;
  const base = props.base ?? here;
  return (
    <span className="tags">
      {props.tags.map((tag) => (
        <Link
          key={tag}
          className="tag-chip"
          to={`${base}?tag=${encodeURIComponent(tag)}`}
          title={`Show only tasks tagged ${tag}`}
          data-testid={`tag-chip-${tag}`}
        >
          {tag}
        </Link>
      ))}
    </span>
  );
}

type Action = BulkOut["action"];
const DONE: Record<Action, string> = { kill: "Killed", restart: "Restarted", delete: "Deleted", restore: "Restored" };

function said(done: BulkOut): string {
  const n = done.count;
  const left = done.skipped ? ` (${done.skipped} other${done.skipped === 1 ? "" : "s"} left as they were)` : "";
  return `${DONE[done.action]} ${n} task${n === 1 ? "" : "s"} tagged ${done.tag}${left}`;
}

// The filter, and with a tag chosen, the actions on all its tasks.
export function TagBar(props: { tag: string; onTag: (tag: string) => void }) {
  const { tag, onTag } = props;
  const health = useHealth();
  const [confirm, dialog] = useConfirm();
  const [text, setText] = useState(tag);
  const [known, setKnown] = useState<string[]>([]);
  const [busy, run] = useBusyAction();
  const listId = useId();
  useEffect(() => setText(tag), [tag]);
  useEffect(() => {
    let live = true;
    api.tags().then(
      (answer) => live && setKnown(answer.tags.map((t) => t.tag)),
      () => undefined, // only suggestions: the filter works without them
    );
    return () => {
      live = false;
    };
  }, [tag]);
  const paused = tag ? tagPausedAt(health, tag) !== null : false;
  const wanted = text.trim();
  const invalid = wanted !== "" && !TAG_RE.test(wanted);

  const act = async (action: Action) => {
    const asks: Partial<Record<Action, { title: string; body: string; confirm: string; danger?: boolean }>> = {
      kill: {
        title: `Kill every task tagged ${tag}?`,
        body: "Its queued tasks are cancelled; its running ones get SIGTERM, then SIGKILL after the grace. They end as killed.",
        confirm: "Kill all",
      },
      delete: {
        title: `Delete every task tagged ${tag}?`,
        body: "Its queued, held and ended tasks go for good (running ones are left; log files stay). This cannot be undone.",
        confirm: "Delete all",
      },
      restart: {
        title: `Restart the ended tasks tagged ${tag}?`,
        body: "Each ended task not restarted yet is queued again as a new task, with the same tags.",
        confirm: "Restart",
        danger: false,
      },
    };
    const ask = asks[action];
    if (ask && !(await confirm(ask))) return;
    await run(async () => said(await api.tagAction(tag, action)));
  };
  const togglePause = () =>
    run(async () => {
      if (paused) {
        await api.resumeTag(tag);
        return `Tag ${tag} resumed: its queued tasks start as GPUs allow`;
      }
      await api.pauseTag(tag);
      return `Tag ${tag} paused: its queued tasks wait, running ones go on`;
    });

  return (
    <div className="tag-bar card" data-testid="tag-bar">
      <form
        className="row wrap"
        role="search"
        aria-label="Filter by tag"
        onSubmit={(e) => {
          e.preventDefault();
          if (!invalid) onTag(wanted);
        }}
      >
        <label className="row">
          <span className="muted">Tag</span>
          <input
            aria-label="Filter by tag"
            placeholder="e.g. sweep-lr"
            list={listId}
            value={text}
            aria-invalid={invalid}
            title={TAG_RULE}
            onChange={(e) => setText(e.target.value)}
          />
          <datalist id={listId}>
            {known.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </label>
        <button type="submit" disabled={invalid}>
          Filter
        </button>
        {tag && (
          <button type="button" className="ghost" onClick={() => onTag("")}>
            Show all tags
          </button>
        )}
        {invalid && <span className="error small">{TAG_RULE}</span>}
      </form>
      {tag && (
        <div className="row wrap tag-actions" role="group" aria-label={`Every task tagged ${tag}`}>
          <span>
            Tagged <strong className="tag-chip">{tag}</strong>
            {paused && <span className="muted"> · paused</span>}
          </span>
          <button type="button" disabled={busy} aria-pressed={paused} onClick={() => void togglePause()}>
            {paused ? "Resume tag" : "Pause tag"}
          </button>
          <button type="button" disabled={busy} onClick={() => void act("restart")}>
            Restart ended
          </button>
          <button type="button" disabled={busy} onClick={() => void act("restore")}>
            Restore held
          </button>
          <button type="button" className="danger apart" disabled={busy} onClick={() => void act("kill")}>
            Kill all
          </button>
          <button type="button" className="danger" disabled={busy} onClick={() => void act("delete")}>
            Delete all
          </button>
        </div>
      )}
      {dialog}
    </div>
  );
}
