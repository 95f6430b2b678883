// Toasts: short messages in a corner, for every page. notify() from anywhere below ToastProvider.
import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from "react";
import { Toasts, type Toast } from "../components/Toasts";

// taskIds: ids named in the message, shown as links to their task pages.
type Notify = (kind: "ok" | "error", message: string, taskIds?: string[]) => void;

const ToastContext = createContext<Notify | null>(null);

export function ToastProvider(props: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(0);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const notify = useCallback<Notify>(
    (kind, message, taskIds) => {
      const id = ++next.current;
      setToasts((t) => [...t, { id, kind, message, taskIds }]);
      window.setTimeout(() => dismiss(id), kind === "error" ? 8000 : 4000);
    },
    [dismiss],
  );
  return (
    <ToastContext.Provider value={notify}>
      {props.children}
      <Toasts toasts={toasts} dismiss={dismiss} />
    </ToastContext.Provider>
  );
}

export function useNotify(): Notify {
  const notify = useContext(ToastContext);
  if (!notify) throw new Error("useNotify outside ToastProvider");
  return notify;
}
