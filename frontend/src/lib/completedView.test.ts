import { describe, expect, it } from "vitest";
import { apiQuery, DEFAULT_VIEW, filtered, readView, writeView } from "./completedView";

const read = (query: string) => readView(new URLSearchParams(query));

describe("the Completed view in the URL", () => {
  it("the plain page has a plain URL and reads back as the default", () => {
    expect(writeView(DEFAULT_VIEW).toString()).toBe("");
    expect(read("")).toEqual(DEFAULT_VIEW);
  });

  it("round-trips every field", () => {
    const view = {
      states: ["failed" as const, "lost" as const],
      q: "resnet 50%",
      tag: "sweep-lr",
      user: "alice",
      from: "2026-11-01",
      to: "2026-11-25",
      sort: "duration" as const,
      order: "asc" as const,
      size: 500,
      page: 3,
    };
    const query = writeView(view).toString();
    expect(query).toBe("state=failed%2Clost&q=resnet+50%25&tag=sweep-lr&user=alice&from=2026-11-01&to=2026-11-25&sort=duration&order=asc&size=500&page=3");
    expect(read(query)).toEqual(view);
  });

  it("the order is written only when it is not the column's first one", () => {
    expect(writeView({ ...DEFAULT_VIEW, sort: "task_id", order: "asc" }).toString()).toBe("sort=task_id");
    expect(writeView({ ...DEFAULT_VIEW, sort: "task_id", order: "desc" }).toString()).toBe("sort=task_id&order=desc");
    expect(read("sort=task_id").order).toBe("asc");
    expect(read("sort=exit_code").order).toBe("desc");
  });

  it("a hand-edited link falls back to the defaults for what it gets wrong", () => {
    const view = read("state=failed,running,,bogus,succeeded&sort=command&order=up&size=7&page=-2&from=yesterday&to=2026-02-31x&tag=no%20way");
    expect(view).toEqual({ ...DEFAULT_VIEW, states: ["succeeded", "failed"] });
    expect(read("page=2.7&size=1000").page).toBe(2);
  });
});

describe("the API query of a view", () => {
  it("asks for every ended state by default, newest end first, a page of 50", () => {
    expect(apiQuery(DEFAULT_VIEW)).toEqual({
      state: "succeeded,failed,killed,lost,timed_out,dependency_failed",
      q: undefined,
      tag: undefined,
      sort: "finished_at",
      order: "desc",
      since: undefined,
      until: undefined,
      limit: 50,
      offset: 0,
    });
    expect(filtered(DEFAULT_VIEW)).toBe(false);
    expect(apiQuery({ ...DEFAULT_VIEW, tag: "sweep-lr" }).tag).toEqual(["sweep-lr"]);
    expect(filtered({ ...DEFAULT_VIEW, tag: "sweep-lr" })).toBe(true);
    expect(apiQuery({ ...DEFAULT_VIEW, user: "alice" }).owner).toBe("alice");
    expect(apiQuery(DEFAULT_VIEW).owner).toBeUndefined();
    expect(filtered({ ...DEFAULT_VIEW, user: "alice" })).toBe(true);
    expect(read("user=Not%20A%20Name").user).toBe(""); // not a user name: ignored
  });

  it("turns local days into an end-time range that covers the whole last day", () => {
    const view = { ...DEFAULT_VIEW, states: ["failed" as const], from: "2026-11-20", to: "2026-11-20", size: 100, page: 4 };
    const query = apiQuery(view);
    const start = new Date(2026, 10, 20).getTime() / 1000;
    expect(query.state).toBe("failed");
    expect(Number(query.since)).toBe(start);
    expect(Number(query.until)).toBe(new Date(2026, 10, 21).getTime() / 1000);
    expect(query.offset).toBe(300);
    expect(filtered(view)).toBe(true);
  });
});
