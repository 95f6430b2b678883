// Users in the UI: who is signed in (the header), the user filter of the task lists (shown once
// the server has named users; kept in the URL as ?user=), and the owner on a task's row.
import { useSearchParams } from "react-router";
import type { TaskOut } from "../api/types";
import { USER_RE, userChoices } from "../lib/users";
import { useMe } from "../state/me";

// Shown once the server has named users (with the one token of today, it is always the admin).
export function SignedIn() {
  const me = useMe();
  if (!me?.several) return null;
  return (
    <span className="signed-in muted" data-testid="signed-in" title={me.admin ? "admin: may act on every task" : "may act on your own tasks"}>
      Signed in as <strong>{me.name}</strong>
      {me.admin ? " (admin)" : ""}
    </span>
  );
}

// The user filter of a page whose other query parameters stay as they are (Ongoing).
export function useUserParam(): [string, (user: string) => void] {
  const [params, setParams] = useSearchParams();
  const user = params.get("user") ?? "";
  const setUser = (next: string) => {
    const changed = new URLSearchParams(params);
    if (next) changed.set("user", next);
    else changed.delete("user");
    setParams(changed);
  };
  return [USER_RE.test(user) ? user : "", setUser];
}

// "All users", "Mine", then every user by name; nothing while ANT has no named users.
export function UserFilter(props: { user: string; onUser: (user: string) => void; tasks?: readonly TaskOut[] }) {
  const me = useMe();
  if (!me || (!me.several && !props.user)) return null;
  const names = userChoices(me.users, props.tasks ?? []);
  if (props.user && !names.includes(props.user)) names.push(props.user);
  return (
    <label className="row user-filter">
      <span className="muted">User</span>
      <select aria-label="Show the tasks of" value={props.user} onChange={(e) => props.onUser(e.target.value)} data-testid="user-filter">
        <option value="">All users</option>
        {names.map((name) => (
          <option key={name} value={name}>
            {name === me.name ? `${name} (me)` : name}
          </option>
        ))}
      </select>
    </label>
  );
}

// "alice" on a row, once there are several users.
export function Owner(props: { task: Pick<TaskOut, "owner"> }) {
  const me = useMe();
  if (!me?.several) return null;
  return (
    <span className="owner muted" title={`submitted by ${props.task.owner}`}>
      {props.task.owner}
    </span>
  );
}
