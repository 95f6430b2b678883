// Who is signed in (GET /api/v1/me): read once per connection (again after a reconnect: a new
// token may sign in as someone else). Shared by the header, the user filters and the Usage page.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { MeOut } from "../api/types";
import { useEpoch } from "./hooks";

let last: MeOut | null = null;

export function useMe(): MeOut | null {
  const epoch = useEpoch();
  const [me, setMe] = useState<MeOut | null>(last);
  useEffect(() => {
    let live = true;
    api.me().then(
      (answer) => {
        last = answer;
        if (live) setMe(answer);
      },
      () => undefined, // the header just shows no name
    );
    return () => {
      live = false;
    };
  }, [epoch]);
  return me;
}
