import { useState } from "react";
import type { RecoveryOut, TaskOut } from "../api/types";
import { when } from "../lib/format";
import { recoveryGroups } from "../lib/recovery";
import { useConfirm } from "./ConfirmDialog";
import { useModal } from "./useModal";

type Tab = "last_session" | "earlier_sessions";

const GROUPS: { title: string; key: "interrupted" | "queued"; testId: string }[] = [
  { title: "Interrupted Ongoing Tasks", key: "interrupted", testId: "group-lost" },
  { title: "Queued Tasks", key: "queued", testId: "group-held" },
];

export function RecoveryDialog(props: {
  data: RecoveryOut;
  onRestore: (ids: string[]) => Promise<void>;
  onForget: (id: string) => Promise<void>;
  onClose: () => void;
}) {
  const [tab, setTab] = useState<Tab>(props.data.last_session.length ? "last_session" : "earlier_sessions");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const box = useModal<HTMLDivElement>(props.onClose);
  const [confirm, dialog] = useConfirm();
  const forget = async (id: string) => {
    const ok = await confirm({
      title: `Delete ${id} from recovery?`,
      body: "It will not be restored and is forgotten (its log stays). This cannot be undone.",
      confirm: "Delete",
    });
    if (ok) await props.onForget(id);
  };
  const tasks: TaskOut[] = props.data[tab];
  const groups = recoveryGroups(tasks);
  const setGroup = (group: TaskOut[], on: boolean) => {
    const next = new Set(selected);
    for (const t of group) {
      if (on) next.add(t.task_id);
      else next.delete(t.task_id);
    }
    setSelected(next);
  };
  // The tags of this tab's tasks: a click selects every task of the tab carrying it.
  const tabTags = [...new Set(tasks.flatMap((t) => t.tags))].sort();
  const selectTag = (tag: string) => setGroup(tasks.filter((t) => t.tags.includes(tag)), true);
  return (
    <div className="overlay">
      <div ref={box} className="dialog card" role="dialog" aria-modal="true" aria-label="Recover tasks" tabIndex={-1}>
        <div className="row spread">
          <h2>Recover tasks from an earlier run</h2>
          <button className="ghost" aria-label="Close" onClick={props.onClose}>✕</button>
        </div>
        <p className="muted">
          Tasks that were queued or running when ANT last stopped. Restore puts them back in the queue with
          the same id and command; delete forgets them (their logs stay). Finished tasks are kept in
          Completed automatically.
        </p>
        <div className="tabs">
          {(["last_session", "earlier_sessions"] as Tab[]).map((t) => (
            <button key={t} className={tab === t ? "tab active" : "tab"} aria-pressed={tab === t} onClick={() => setTab(t)}>
              {t === "last_session" ? "Last Session" : "Earlier Sessions"} ({props.data[t].length})
            </button>
          ))}
        </div>
        {tabTags.length > 0 && (
          <div className="row wrap" role="group" aria-label="Select by tag">
            <span className="muted">Select by tag</span>
            {tabTags.map((tag) => (
              <button key={tag} type="button" className="ghost tag-chip" onClick={() => selectTag(tag)} data-testid={`select-tag-${tag}`}>
                {tag}
              </button>
            ))}
          </div>
        )}
        {GROUPS.map((group) => {
          const items = groups[group.key];
          return (
            <section key={group.title} className="group" data-testid={group.testId}>
              <div className="row spread wrap">
                <h3>
                  {group.title} ({items.length})
                </h3>
                <span className="row">
                  <button className="ghost" disabled={!items.length} onClick={() => setGroup(items, true)}>Select all</button>
                  <button className="ghost" disabled={!items.length} onClick={() => setGroup(items, false)}>Unselect all</button>
                </span>
              </div>
              {items.length === 0 && <p className="muted small">none</p>}
              {items.map((t) => (
                <div key={t.task_id} className="row spread recovery-item" data-testid={`recover-${t.task_id}`}>
                  <label className="row">
                    <input
                      type="checkbox"
                      aria-label={`Select ${t.task_id}`}
                      checked={selected.has(t.task_id)}
                      onChange={() => {
                        const next = new Set(selected);
                        if (next.has(t.task_id)) next.delete(t.task_id);
                        else next.add(t.task_id);
                        setSelected(next);
                      }}
                    />
                    <span>
                      <strong>{t.task_id}</strong>
                      {t.tags.length > 0 && <span className="muted small"> · {t.tags.join(", ")}</span>}
                      <span className="muted small"> · {t.n_gpus} GPU · {when(t.created_at)}</span>
                      <div className="muted small">{t.command}</div>
                    </span>
                  </label>
                  <button className="danger" aria-label={`Delete ${t.task_id}`} onClick={() => void forget(t.task_id)}>
                    Delete
                  </button>
                </div>
              ))}
            </section>
          );
        })}
        <div className="row spread">
          <button className="ghost" onClick={props.onClose}>Close</button>
          <button
            disabled={selected.size === 0}
            onClick={async () => {
              await props.onRestore([...selected]);
              setSelected(new Set());
            }}
          >
            Restore selected ({selected.size})
          </button>
        </div>
      </div>
      {dialog}
    </div>
  );
}
