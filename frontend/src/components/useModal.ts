// What every dialog does: Escape closes it (only the topmost one when dialogs are stacked), Tab
// stays inside it, focus moves into it when it opens (to `initial`, or the dialog itself) and goes
// back to what had it (the button that opened it) when it closes.
import { useEffect, useRef, type RefObject } from "react";

const open: object[] = []; // the dialogs showing, the topmost last

const FOCUSABLE = "button:not(:disabled), [href], input:not(:disabled), select:not(:disabled), textarea, [tabindex]:not([tabindex='-1'])";

export function useModal<T extends HTMLElement>(onClose: () => void, initial?: RefObject<HTMLElement | null>): RefObject<T | null> {
  const box = useRef<T | null>(null);
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });

  useEffect(() => {
    const me = {};
    open.push(me);
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    (initial?.current ?? box.current)?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (open[open.length - 1] !== me || !box.current) return;
      if (e.key === "Escape") {
        e.preventDefault();
        close.current();
      } else if (e.key === "Tab") {
        const items = [...box.current.querySelectorAll<HTMLElement>(FOCUSABLE)];
        if (!items.length) return;
        const first = items[0];
        const last = items[items.length - 1];
        const inside = box.current.contains(document.activeElement);
        if (e.shiftKey && (document.activeElement === first || !inside)) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
          e.preventDefault();
          first.focus();
        }
      }
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      open.splice(open.indexOf(me), 1);
      if (opener?.isConnected) opener.focus();
    };
    // Once, when the dialog opens: `initial` is read then.
  }, []);
  return box;
}
