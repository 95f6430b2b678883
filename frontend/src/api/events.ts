// The server's live event stream (GET /api/v1/events), typed by the schema's EventPayloads: the
// handlers object must handle every event type the server declares (a new one is a compile error
// here until the UI handles it), and each handler receives that type's payload.
import type { EventPayloads } from "./types";

export type EventType = keyof EventPayloads;
export type EventHandlers = { [K in EventType]: (data: EventPayloads[K]) => void };

export interface StreamStatus {
  onOpen: () => void;
  onError: () => void;
  // The browser gave up on the stream (an HTTP error such as 401, not a dropped connection,
  // which it retries by itself); it is opened again a few seconds later.
  onClosed: () => void;
}

export const EVENTS_URL = "/api/v1/events";
const REOPEN_MS = 3000;

export function connectEvents(handlers: EventHandlers, status: StreamStatus, url = EVENTS_URL): () => void {
  let source: EventSource | null = null;
  let timer: number | undefined;
  let stopped = false;

  const listen = <K extends EventType>(es: EventSource, type: K) => {
    es.addEventListener(type, (e) => handlers[type](JSON.parse((e as MessageEvent<string>).data) as EventPayloads[K]));
  };

  const open = () => {
    const es = new EventSource(url);
    source = es;
    for (const type of Object.keys(handlers) as EventType[]) listen(es, type);
    es.onopen = status.onOpen;
    es.onerror = () => {
      status.onError();
      if (es.readyState !== EventSource.CLOSED || stopped) return;
      status.onClosed();
      timer = window.setTimeout(() => stopped || open(), REOPEN_MS);
    };
  };

  open();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    source?.close();
  };
}
