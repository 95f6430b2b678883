// Held tasks on the Ongoing page: tasks that were queued when ANT stopped wait here (not in the
// queue) until they are restored (queued again, same id and command) or deleted (their logs stay).
// The recovery dialog offers the same once per server start; this stays while any are held.
import { Link } from "react-router";
import { api } from "../api/client";
import { useConfirm } from "./ConfirmDialog";
import { when } from "../lib/format";
import { taskShape } from "../lib/nodes";
import { taskPath } from "../lib/paths";
import { useBusyAction, useHeld } from "../state/hooks";

export function HeldTasks() {
  const held = useHeld();
  const [busy, run] = useBusyAction();
  const [confirm, dialog] = useConfirm();
  if (held.length === 0) return null;

  // The server's events then move the tasks out of this list (restored: into the queue).
  const restore = (ids: string[]) =>
    run(async () => {
      const r = await api.restore(ids);
      return `Restored ${r.tasks.map((t) => t.task_id).join(", ")} (queued again)`;
    });
  const forget = async (ids: string[]) => {
    const what = ids.length === 1 ? `held task ${ids[0]}` : `${ids.length} held tasks`;
    const ok = await confirm({
      title: `Delete ${what}?`,
      body: "They will not run; their logs stay. This cannot be undone.",
      confirm: "Delete",
    });
    if (!ok) return;
    await run(async () => {
      for (const id of ids) await api.forget(id);
      return `Deleted ${ids.join(", ")}`;
    });
  };
  const all = held.map((t) => t.task_id);

  return (
    <section className="held" aria-label="Held tasks" data-testid="held-tasks">
      {dialog}
      <div className="row spread wrap">
        <h2>Held ({held.length})</h2>
        <span className="row">
          <button disabled={busy} onClick={() => void restore(all)}>Restore all</button>
          <button className="danger apart" disabled={busy} onClick={() => void forget(all)}>
            Delete all
          </button>
        </span>
      </div>
      <p className="muted small">
        Queued when ANT last stopped; they do not run until restored. Restore queues a task again with the same id
        and command; Delete forgets it (its log stays).
      </p>
      <div className="table-wrap">
        <table className="table cards">
          <thead>
            <tr>
              <th>Task</th>
              <th>Why held</th>
              <th>GPUs</th>
              <th>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {held.map((task) => (
              <tr key={task.task_id} data-testid={`held-${task.task_id}`}>
                <td>
                  <Link to={taskPath(task.task_id)}>
                    <strong>{task.task_id}</strong>
                  </Link>
                  <span className="muted small"> · submitted {when(task.created_at)}</span>
                  <div className="muted small">{task.command}</div>
                </td>
                <td className="reason" data-label="Why held">{task.reason ?? "held"}</td>
                <td data-label="GPUs">{taskShape(task)}</td>
                <td className="actions">
                  <button disabled={busy} aria-label={`Restore ${task.task_id}`} onClick={() => void restore([task.task_id])}>
                    Restore
                  </button>
                  <button
                    className="danger"
                    disabled={busy}
                    aria-label={`Delete ${task.task_id}`}
                    onClick={() => void forget([task.task_id])}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
