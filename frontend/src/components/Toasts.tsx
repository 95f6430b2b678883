export interface Toast {
  id: number;
  kind: "ok" | "error";
  message: string;
}

export function Toasts(props: { toasts: Toast[]; dismiss: (id: number) => void }) {
  return (
    <div className="toasts" role="status">
      {props.toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} onClick={() => props.dismiss(t.id)}>
          {t.message}
        </div>
      ))}
    </div>
  );
}
