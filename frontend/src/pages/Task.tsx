// One task at /tasks/<id>: its fields, its live terminal while it runs, its log once it ended, and
// what can be done with it. The task comes from the task store (events keep it current); it is
// read when the page opens and after a full read.
import { useEffect, useState, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, ApiError } from "../api/client";
import type { Attempt, TaskOut } from "../api/types";
import { useConfirm } from "../components/ConfirmDialog";
import { AfterLinks } from "../components/AfterLinks";
import { LineControl } from "../components/LineControl";
import { RankTerminal } from "../components/LogView";
import { LogViewer } from "../components/LogViewer";
import { RenameDialog } from "../components/RenameDialog";
import { Progress } from "../components/Progress";
import { TagChips } from "../components/Tags";
import { Terminal } from "../components/Terminal";
import { bytes, duration, gpuMemOverText, gpuMemText, retriesText, timeoutText, when } from "../lib/format";
import { rankOptions, taskGpuLabels } from "../lib/nodes";
import { taskPath } from "../lib/paths";
import { useEpoch, useGpus, useLiveState, useServer, useTask, useTaskActions, useTerminals } from "../state/hooks";
import { useLive } from "../state/LiveProvider";
import { useWatched, useWatchWhileOpen, watch } from "../state/notifications";
import { isEnded } from "../state/tasks";
import { uiSettings, useLiveLines, useNow } from "../state/ui";

export function TaskPage() {
  const taskId = useParams().taskId ?? "";
  const task = useTask(taskId);
  const epoch = useEpoch();
  const { read, fail } = useLive();
  const [status, setStatus] = useState<"reading" | "read" | "missing">("reading");
  useWatchWhileOpen(taskId); // its end notifies while this page shows it (notifications on)
  // Renamed (here or elsewhere): the page follows it to its new id.
  const renamedTo = useLiveState((s) => s.tasks.renamed.get(taskId));
  const navigate = useNavigate();
  const here = task !== undefined;
  useEffect(() => {
    if (renamedTo && !here) navigate(taskPath(renamedTo), { replace: true });
  }, [renamedTo, here, navigate]);

  useEffect(() => {
    let live = true;
    read({ ids: [taskId] }, async () => {
      try {
        return { tasks: [await api.task(taskId)] };
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return { tasks: [] };
        throw err;
      }
    }).then(
      (answer) => live && setStatus(answer.tasks.length ? "read" : "missing"),
      (err) => live && fail(err),
    );
    return () => {
      live = false;
    };
  }, [taskId, epoch, read, fail]);

  if (!task) {
    return (
      <div className="page">
        <h2 className="task-id">{taskId}</h2>
        {status === "reading" ? (
          <p className="muted">loading…</p>
        ) : (
          <p data-testid="task-missing">
            There is no task {taskId} (any more). <Link to="/completed">Completed tasks</Link>
          </p>
        )}
      </div>
    );
  }
  return <TaskView task={task} />;
}

function TaskView({ task }: { task: TaskOut }) {
  const server = useServer();
  const settings = uiSettings(server);
  const terminals = useTerminals();
  const { act, copy } = useTaskActions();
  const navigate = useNavigate();
  const [lines, setLines] = useLiveLines(server);
  const [rank, setRank] = useState(0);
  // The attempt whose log is shown (null: the current one; a task waiting for a retry shows its
  // last attempt's).
  const [attemptShown, setAttemptShown] = useState<number | null>(null);
  const gpus = useGpus();
  const now = useNow();
  const id = task.task_id;
  const snap = task.state === "running" ? terminals[id] : undefined;
  const ranks = rankOptions(task);
  const rankShown = Math.min(rank, ranks.length - 1);
  const gang = task.n_nodes > 1;
  const ended = isEnded(task);
  const started = task.started_at;
  const ran = started ? (task.finished_at ?? now) - started : null;
  const watched = useWatched(id);
  const lastEnded = task.attempts.length ? task.attempts[task.attempts.length - 1].attempt : null;
  const logAttempt =
    attemptShown !== null && attemptShown !== task.attempt ? attemptShown : task.state === "queued" ? lastEnded : null;

  const restart = async (withDependents = false) => {
    const done = await act(withDependents ? "restartWithDependents" : "restart", id);
    if (done.task) navigate(taskPath(done.task.task_id));
  };
  const [renaming, setRenaming] = useState(false);
  const [confirm, dialog] = useConfirm();
  const kill = async () => {
    const ok = await confirm({
      title: `Kill task ${id}?`,
      body: "Its processes get SIGTERM, then SIGKILL after the grace. It ends as killed; Restart runs it again.",
      confirm: "Kill",
    });
    if (ok) await act("kill", id);
  };
  const remove = async () => {
    const ok = await confirm({
      title: `Delete task ${id}?`,
      body: task.state === "queued" ? "It leaves the queue and will not run. This cannot be undone." : "It goes for good. This cannot be undone.",
      confirm: "Delete",
    });
    if (ok && (await act("remove", id)).ok) navigate(ended ? "/completed" : "/ongoing");
  };

  const fields: [string, ReactNode][] = [
    ["Command", <code className="command">{task.command}</code>],
    ["Submitted as", task.submitted !== task.command ? <code className="command">{task.submitted}</code> : null],
    [
      "GPUs",
      `${task.n_gpus} requested${gang ? " on each node" : ""}` +
        (task.gpu_ids.length ? ` · on GPU ${taskGpuLabels(task, gpus)}` : ""),
    ],
    [
      "Nodes",
      gang || task.nodes.length
        ? `${task.n_nodes} requested${task.nodes.length ? ` · on ${task.nodes.join(", ")}` : ""}`
        : null,
    ],
    ["Queue position", task.queue_position],
    ["Waiting because", task.pending_reason],
    ["After", task.after.length ? <AfterLinks after={task.after} /> : null],
    ["Priority", task.priority !== 0 ? task.priority : null],
    ["User", task.owner],
    // A tag filters the list where the task is now: the queue and running ones, or the ended.
    ["Tags", task.tags.length ? <TagChips tags={task.tags} base={isEnded(task) ? "/completed" : "/ongoing"} /> : null],
    ["Created", when(task.created_at)],
    ["Started", started ? when(started) : null],
    ["Finished", task.finished_at ? when(task.finished_at) : null],
    ["Ran for", ran !== null ? duration(ran) : null],
    ["Timeout", timeoutText(task.timeout, started ?? null, task.state === "running", now)],
    ["Webhook", task.notify],
    ["Retries", retriesText(task)],
    ["Exit code", task.exit_code],
    ["Why", task.reason],
    ["Restarted from", task.restarted_from ? <Link to={taskPath(task.restarted_from)}>{task.restarted_from}</Link> : null],
    ["Restarted as", task.restarted_as ? <Link to={taskPath(task.restarted_as)}>{task.restarted_as}</Link> : null],
    ["Lineage", task.restarted_from ? <Lineage task={task} /> : null],
    ["GPU memory", task.gpu_mem !== null ? <GpuMem task={task} /> : task.gpu_mem_used !== null ? bytes(task.gpu_mem_used) : null],
    ["Placement", task.placement],
    ["Left running", task.lingering_processes ? `${task.lingering_processes} process(es) (they keep its GPUs)` : null],
    ["Working directory", task.workdir],
    ["Environment", Object.keys(task.env).length ? <code>{Object.entries(task.env).map(([k, v]) => `${k}=${v}`).join(" ")}</code> : null],
    ["Process", task.pid !== null ? `pid ${task.pid}` : null],
    ["Log file", task.log_path],
  ];

  return (
    <div className="page">
      <div className="card task" data-testid={`task-${id}`}>
        <div className="row spread wrap">
          <h2 className="task-id">{id}</h2>
          <div className="row">
            {!ended && (
              <label className="switch" title="Notify when it ends, also after this page is closed (when notifications are on)">
                <input type="checkbox" checked={watched} onChange={(e) => watch([id], e.target.checked)} aria-label="Watch" />
                Watch
              </label>
            )}
            <span className={`badge badge-${task.state}`} data-testid="task-state">
              {task.state}
            </span>
          </div>
        </div>
        <dl className="fields">
          {fields
            .filter(([, value]) => value !== null && value !== undefined && value !== "")
            .map(([name, value]) => (
              <div key={name} className="field-row">
                <dt className="muted">{name}</dt>
                <dd>{value}</dd>
              </div>
            ))}
        </dl>
        <div className="row wrap actions">
          {ended && <button onClick={() => void restart()}>Restart</button>}
          {ended && (
            <button
              className="ghost"
              title="Restart it and the tasks that wait for it (After): waiting ones wait for the copy, ended ones run again"
              onClick={() => void restart(true)}
            >
              Rerun with dependents
            </button>
          )}
          {(task.state === "lost" || task.state === "held") && (
            <button onClick={() => void act("restore", id)}>Restore</button>
          )}
          {task.state === "queued" && (
            <button className="ghost" onClick={() => void act("promote", id)}>Move to top</button>
          )}
          <button className="ghost" onClick={() => void copy(task)}>Copy command</button>
          {task.state !== "running" && (
            <button className="ghost" onClick={() => setRenaming(true)}>Rename</button>
          )}
          {task.state !== "queued" && (
            <>
              <a
                className="button ghost"
                href={api.downloadUrl(id, rankShown, logAttempt)}
                download={`${id}${rankShown ? `.rank${rankShown}` : ""}${logAttempt && logAttempt > 1 ? `.attempt${logAttempt}` : ""}.log`}
              >
                Download
              </a>
              {gang && (
                <label className="row">
                  Output of
                  <select aria-label="Rank" value={rankShown} onChange={(e) => setRank(Number(e.target.value))}>
                    {ranks.map((r) => (
                      <option key={r.rank} value={r.rank}>
                        {r.label}
                      </option>
                    ))}
                  </select>
                </label>
              )}
            </>
          )}
          {task.state === "running" ? (
            <button className="danger apart" onClick={() => void kill()}>Kill</button>
          ) : (
            <button className="danger apart" onClick={() => void remove()}>Delete</button>
          )}
        </div>
      </div>
      {task.state === "running" && (
        <div className="card">
          <div className="row spread wrap">
            <h3>Terminal{gang ? ` · ${ranks[rankShown].label}` : ""}</h3>
            {setLines && <LineControl label="Live lines" value={lines} max={settings.winHeight} onChange={setLines} />}
          </div>
          {rankShown === 0 && snap?.progress !== null && snap?.progress !== undefined && (
            <Progress taskId={id} value={snap.progress} />
          )}
          {rankShown === 0 ? (
            <Terminal
              lines={(snap?.lines ?? []).slice(-lines)}
              minLines={settings.minLines}
              maxLines={settings.maxLines}
              testId={`terminal-${id}`}
            />
          ) : (
            <RankTerminal
              taskId={id}
              rank={rankShown}
              lines={lines}
              minLines={settings.minLines}
              maxLines={settings.maxLines}
              intervalMs={Number(server?.ui.step_interval_ms ?? 1000)}
            />
          )}
        </div>
      )}
      {(task.retries > 0 || task.attempts.length > 1) && (
        <Attempts task={task} shown={logAttempt} onShow={setAttemptShown} now={now} />
      )}
      {(task.state !== "queued" || logAttempt !== null) && (
        <div className="card">
          <h3>
            Log{gang ? ` · ${ranks[rankShown].label}` : ""}
            {logAttempt !== null && logAttempt !== task.attempt ? ` · attempt ${logAttempt}` : ""}
          </h3>
          <LogViewer
            key={`${id}:${rankShown}:${logAttempt}:${task.started_at}`}
            taskId={id}
            rank={rankShown}
            attempt={logAttempt}
            live={task.state === "running" && logAttempt === null}
            testId={`output-${id}`}
          />
        </div>
      )}
      {dialog}
      {renaming && (
        <RenameDialog
          taskId={id}
          onCancel={() => setRenaming(false)}
          onDone={(renamed) => {
            setRenaming(false);
            navigate(taskPath(renamed.task_id), { replace: true });
          }}
        />
      )}
    </div>
  );
}

// Every attempt of a retried task: how each ended, its exit code and how long it ran, and a button
// that shows its own log below. The current attempt is last while it runs or waits.
function Attempts(props: { task: TaskOut; shown: number | null; onShow: (attempt: number | null) => void; now: number }) {
  const { task, shown, onShow, now } = props;
  const current = task.attempts.some((a) => a.attempt === task.attempt) ? null : task.attempt;
  const row = (a: Attempt) => (
    <tr key={a.attempt} data-testid={`attempt-${a.attempt}`} className={shown === a.attempt ? "selected" : undefined}>
      <td data-label="Attempt">{a.attempt}</td>
      <td data-label="State">
        <span className={`badge badge-${a.state}`}>{a.state}</span>
      </td>
      <td data-label="Exit code">{a.exit_code ?? "–"}</td>
      <td data-label="Started">{a.started_at ? when(a.started_at) : "–"}</td>
      <td data-label="Ran for">{a.started_at && a.finished_at ? duration(a.finished_at - a.started_at) : "–"}</td>
      <td>
        <button className="ghost" aria-label={`Log of attempt ${a.attempt}`} onClick={() => onShow(a.attempt)}>
          Log
        </button>
      </td>
    </tr>
  );
  return (
    <div className="card" data-testid="attempts">
      <h3>Attempts</h3>
      <table className="table cards attempts">
        <thead>
          <tr>
            <th>Attempt</th>
            <th>State</th>
            <th>Exit code</th>
            <th>Started</th>
            <th>Ran for</th>
            <th>Log</th>
          </tr>
        </thead>
        <tbody>
          {task.attempts.map(row)}
          {current !== null && (
            <tr data-testid={`attempt-${current}`} className={shown === null && task.state === "running" ? "selected" : undefined}>
              <td data-label="Attempt">{current}</td>
              <td data-label="State">
                <span className={`badge badge-${task.state}`}>{task.state === "queued" ? "waiting" : task.state}</span>
              </td>
              <td data-label="Exit code">–</td>
              <td data-label="Started">{task.started_at ? when(task.started_at) : "–"}</td>
              <td data-label="Ran for">{task.started_at ? duration(now - task.started_at) : "–"}</td>
              <td>
                {task.state === "running" && (
                  <button className="ghost" aria-label={`Log of attempt ${current}`} onClick={() => onShow(null)}>
                    Log
                  </button>
                )}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

// Where this task comes from: the chain of restarts back to the first run (read from the server,
// at most LINEAGE_MAX back), then this task and the copy it was restarted as.
const LINEAGE_MAX = 20;

function Lineage({ task }: { task: TaskOut }) {
  const [before, setBefore] = useState<string[] | null>(null);
  const from = task.restarted_from;
  useEffect(() => {
    let live = true;
    (async () => {
      const chain: string[] = [];
      let next = from;
      while (next && chain.length < LINEAGE_MAX) {
        chain.unshift(next);
        try {
          next = (await api.task(next)).restarted_from;
        } catch {
          break; // deleted: the chain stops there
        }
      }
      if (live) setBefore(chain);
    })();
    return () => {
      live = false;
    };
  }, [from]);
  if (!before) return <span className="muted">…</span>;
  const ids = [...before, task.task_id, ...(task.restarted_as ? [task.restarted_as] : [])];
  return (
    <span data-testid="lineage">
      {ids.map((tid, i) => (
        <span key={tid}>
          {i > 0 && " → "}
          {tid === task.task_id ? <strong>{tid}</strong> : <Link to={taskPath(tid)}>{tid}</Link>}
        </span>
      ))}
    </span>
  );
}

/** A memory task's declared and used GPU memory, and the over-use flag once it used more. */
function GpuMem({ task }: { task: TaskOut }) {
  const over = gpuMemOverText(task);
  return (
    <span>
      {gpuMemText(task)}
      {over && (
        <>
          {" "}
          <span className="badge badge-over" data-testid="gpu-mem-over">
            {over}
          </span>
        </>
      )}
    </span>
  );
}
