// Renaming a task (the task page): a new id, checked by the server as at submit (letters, digits,
// '.', '_', '-'; free). A refusal is shown in the dialog, which stays open to try another id.
import { useId, useRef, useState, type FormEvent } from "react";
import { api } from "../api/client";
import type { TaskOut } from "../api/types";
import { errorText } from "../state/hooks";
import { useModal } from "./useModal";

export function RenameDialog({
  taskId,
  onDone,
  onCancel,
}: {
  taskId: string;
  onDone: (task: TaskOut) => void;
  onCancel: () => void;
}) {
  const input = useRef<HTMLInputElement>(null);
  const box = useModal<HTMLDivElement>(onCancel, input);
  const titleId = useId();
  const errorId = useId();
  const [value, setValue] = useState(taskId);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      onDone(await api.rename(taskId, value.trim()));
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <div className="overlay" onClick={onCancel}>
      <div
        ref={box}
        className="dialog card confirm"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        tabIndex={-1}
        data-testid="rename-dialog"
        onClick={(e) => e.stopPropagation()}
      >
        <h2 id={titleId}>Rename task {taskId}</h2>
        <form onSubmit={(e) => void submit(e)}>
          <label className="field">
            New id
            <input
              ref={input}
              value={value}
              onChange={(e) => {
                setValue(e.target.value);
                setError(null);
              }}
              aria-invalid={error !== null}
              aria-describedby={error ? errorId : undefined}
              autoComplete="off"
              spellCheck={false}
            />
          </label>
          {error && (
            <p id={errorId} className="field-error" role="alert">
              {error}
            </p>
          )}
          <p className="muted small">Its log file takes the new name. A running task cannot be renamed.</p>
          <div className="row confirm-actions">
            <button type="button" className="ghost" onClick={onCancel}>Cancel</button>
            <button type="submit" className="apart" disabled={busy || !value.trim() || value.trim() === taskId}>
              Rename
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
