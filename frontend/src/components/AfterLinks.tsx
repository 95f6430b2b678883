import { Fragment } from "react";
import { Link } from "react-router";
import type { Dependency } from "../api/types";
import { conditionText } from "../lib/dependencies";
import { taskPath } from "../lib/paths";

// The tasks a task waits (or waited) for, each a link to its page: `prep, eval-1 (any)`.
export function AfterLinks({ after }: { after: Dependency[] }) {
  return (
    <span className="after-links">
      {after.map((dep, i) => (
        <Fragment key={dep.task_id}>
          {i > 0 && ", "}
          <Link to={taskPath(dep.task_id)}>{dep.task_id}</Link>
          {conditionText(dep)}
        </Fragment>
      ))}
    </span>
  );
}
