// Asks before something that cannot be taken back (kill, delete, a bulk action). Cancel has the
// focus when it opens, so Enter or Escape right away change nothing; Confirm is the one to reach.
import { useCallback, useId, useRef, useState, type ReactNode } from "react";
import { useModal } from "./useModal";

export type ConfirmRequest = {
  title: string; // the question: "Kill task train-3?"
  body: ReactNode; // what will happen
  confirm: string; // the confirm button's text: "Kill"
  danger?: boolean; // styled as destructive (default true)
};

export function ConfirmDialog(props: ConfirmRequest & { onConfirm: () => void; onCancel: () => void }) {
  const cancel = useRef<HTMLButtonElement>(null);
  const box = useModal<HTMLDivElement>(props.onCancel, cancel);
  const titleId = useId();
  const bodyId = useId();
  return (
    <div className="overlay" onClick={props.onCancel}>
      <div
        ref={box}
        className="dialog card confirm"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-describedby={bodyId}
        tabIndex={-1}
        data-testid="confirm-dialog"
        onClick={(e) => e.stopPropagation()}
      >
        <h2 id={titleId}>{props.title}</h2>
        <p id={bodyId}>{props.body}</p>
        <div className="row confirm-actions">
          <button ref={cancel} className="ghost" onClick={props.onCancel}>Cancel</button>
          <button className={props.danger === false ? "apart" : "danger apart"} onClick={props.onConfirm}>
            {props.confirm}
          </button>
        </div>
      </div>
    </div>
  );
}

// `const [confirm, dialog] = useConfirm()`: render `dialog`, and `if (await confirm({...}))` before
// acting. The answer is false when the dialog is cancelled (Cancel, Escape, a click beside it).
export function useConfirm(): [(request: ConfirmRequest) => Promise<boolean>, ReactNode] {
  const [request, setRequest] = useState<ConfirmRequest | null>(null);
  const answer = useRef<(ok: boolean) => void>(() => undefined);
  const confirm = useCallback((next: ConfirmRequest) => {
    answer.current(false); // one question at a time: an earlier one left open is a no
    setRequest(next);
    return new Promise<boolean>((resolve) => {
      answer.current = resolve;
    });
  }, []);
  const reply = (ok: boolean) => {
    setRequest(null);
    answer.current(ok);
    answer.current = () => undefined;
  };
  const dialog = request && <ConfirmDialog {...request} onConfirm={() => reply(true)} onCancel={() => reply(false)} />;
  return [confirm, dialog];
}
