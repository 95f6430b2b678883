// What the Completed table shows (filters, sort, page), kept in the URL's query string so a view
// can be linked and reloaded, and the API query it makes. Pure: no React, no fetch.
import { endedStateValues, type EndedState, type operations } from "../api/types";
import { TAG_RE } from "./tags";
import { USER_RE } from "./users";

type ListQuery = NonNullable<operations["list_tasks_api_v1_tasks_get"]["parameters"]["query"]>;
export type SortKey = NonNullable<ListQuery["sort"]>;
export type Order = "asc" | "desc";

export const PAGE_SIZES = [25, 50, 100, 500, 1000] as const;
export const DEFAULT_SIZE = 50;
export const DEFAULT_SORT: SortKey = "finished_at";
const SORT_KEYS: readonly SortKey[] = ["finished_at", "started_at", "task_id", "duration", "exit_code"];
// A first click on a column sorts the way people usually look at it: names A-Z, the rest largest
// (newest, longest) first.
export const firstOrder = (key: SortKey): Order => (key === "task_id" ? "asc" : "desc");

export interface CompletedView {
  states: EndedState[]; // none: every ended state
  q: string;
  tag: string; // carrying this tag ("" = any)
  user: string; // this user's tasks ("" = everyone's)
  from: string; // YYYY-MM-DD, a local day: ended on it or later ("" = no bound)
  to: string; // YYYY-MM-DD, a local day: ended on it or earlier
  sort: SortKey;
  order: Order;
  size: number;
  page: number; // 1-based
}

export const DEFAULT_VIEW: CompletedView = {
  states: [],
  q: "",
  tag: "",
  user: "",
  from: "",
  to: "",
  sort: DEFAULT_SORT,
  order: firstOrder(DEFAULT_SORT),
  size: DEFAULT_SIZE,
  page: 1,
};

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const isDay = (text: string) => DAY.test(text) && !Number.isNaN(new Date(`${text}T00:00:00`).getTime());

// Anything not understood in the URL (a hand-edited link) falls back to the default.
export function readView(params: URLSearchParams): CompletedView {
  const states = (params.get("state") ?? "")
    .split(",")
    .filter((s): s is EndedState => (endedStateValues as readonly string[]).includes(s));
  const sort = params.get("sort") as SortKey | null;
  const validSort = sort !== null && SORT_KEYS.includes(sort) ? sort : DEFAULT_SORT;
  const order = params.get("order");
  const size = Number(params.get("size"));
  const page = Math.floor(Number(params.get("page")));
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const tag = params.get("tag") ?? "";
  const user = params.get("user") ?? "";
  return {
    states: endedStateValues.filter((s) => states.includes(s)),
    q: params.get("q") ?? "",
    tag: TAG_RE.test(tag) ? tag : "",
    user: USER_RE.test(user) ? user : "",
    from: isDay(from) ? from : "",
    to: isDay(to) ? to : "",
    sort: validSort,
    order: order === "asc" || order === "desc" ? order : firstOrder(validSort),
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : DEFAULT_SIZE,
    page: Number.isFinite(page) && page > 1 ? page : 1,
  };
}

// The query string of a view: defaults left out, so the plain page has a plain URL.
export function writeView(view: CompletedView): URLSearchParams {
  const params = new URLSearchParams();
  if (view.states.length) params.set("state", view.states.join(","));
  if (view.q) params.set("q", view.q);
  if (view.tag) params.set("tag", view.tag);
  if (view.user) params.set("user", view.user);
  if (view.from) params.set("from", view.from);
  if (view.to) params.set("to", view.to);
  if (view.sort !== DEFAULT_SORT) params.set("sort", view.sort);
  if (view.order !== firstOrder(view.sort)) params.set("order", view.order);
  if (view.size !== DEFAULT_SIZE) params.set("size", String(view.size));
  if (view.page > 1) params.set("page", String(view.page));
  return params;
}

// Local midnight of a YYYY-MM-DD day, in POSIX seconds; `days` later when asked.
function midnight(day: string, days = 0): number {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + days);
  return d.getTime() / 1000;
}

// The GET /api/v1/tasks query of a view: the range ends at the end of the `to` day (until is
// exclusive on the server).
export function apiQuery(view: CompletedView): ListQuery {
  return {
    state: (view.states.length ? view.states : endedStateValues).join(","),
    q: view.q || undefined,
    tag: view.tag ? [view.tag] : undefined,
    owner: view.user || undefined,
    sort: view.sort,
    order: view.order,
    since: view.from ? String(midnight(view.from)) : undefined,
    until: view.to ? String(midnight(view.to, 1)) : undefined,
    limit: view.size,
    offset: (view.page - 1) * view.size,
  };
}

export const filtered = (view: CompletedView) =>
  view.states.length > 0 || view.q !== "" || view.tag !== "" || view.user !== "" || view.from !== "" || view.to !== "";
