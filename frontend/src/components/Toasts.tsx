import type { MouseEvent } from "react";
import { linkIds } from "../lib/links";
import { taskPath } from "../lib/paths";
import { openInApp } from "../state/notifications";

export interface Toast {
  id: number;
  kind: "ok" | "error";
  message: string;
  taskIds?: string[]; // named in the message: links to their task pages
}

export function Toasts(props: { toasts: Toast[]; dismiss: (id: number) => void }) {
  return (
    <div className="toasts" role="status">
      {props.toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} onClick={() => props.dismiss(t.id)}>
          {linkIds(t.message, t.taskIds ?? []).map((part, i) =>
            part.id === undefined ? (
              part.text
            ) : (
              <a key={i} href={taskPath(part.id)} onClick={(e) => open(e, part.id ?? "")}>
                {part.text}
              </a>
            ),
          )}
        </div>
      ))}
    </div>
  );
}

// The toasts live outside the router: a click on an id goes through the app's navigation.
function open(e: MouseEvent, taskId: string) {
  if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return; // a new tab: the browser's
  e.preventDefault();
  openInApp(taskPath(taskId));
}
