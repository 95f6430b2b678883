import { Link } from "react-router";
import { useConfirm } from "../components/ConfirmDialog";
import { HeldTasks } from "../components/HeldTasks";
import { AfterLinks } from "../components/AfterLinks";
import { LineControl } from "../components/LineControl";
import { PauseButton } from "../components/PauseControl";
import { DragHandle, SortableQueue, SortableRow } from "../components/SortableQueue";
import { Progress } from "../components/Progress";
import { TagBar, TagChips, useTagParam } from "../components/Tags";
import { Terminal } from "../components/Terminal";
import { Owner, UserFilter, useUserParam } from "../components/Users";
import { bytes, duration, gpuMemOverText, timeoutText } from "../lib/format";
import { taskGpuLabels, taskShape } from "../lib/nodes";
import { taskPath } from "../lib/paths";
import { hasTag } from "../lib/tags";
import { ownedBy } from "../lib/users";
import { useGpus, useMoveTask, useServer, useTaskActions, useTasks, useTerminals } from "../state/hooks";
import { uiSettings, useLiveLines, useNow } from "../state/ui";

const MAX_QUEUE_ROWS = 1000;

export function OngoingPage() {
  const server = useServer();
  const settings = uiSettings(server);
  const all = useTasks();
  const [tag, setTag] = useTagParam();
  const [user, setUser] = useUserParam();
  const running = all.running.filter((t) => hasTag(t, tag) && ownedBy(t, user));
  const queued = all.queued.filter((t) => hasTag(t, tag) && ownedBy(t, user));
  const queueLength = tag || user ? queued.length : all.queueLength;
  // "tagged sweep of alice": what the lists are narrowed to, for their titles.
  const filters = [tag && `tagged ${tag}`, user && `of ${user}`].filter(Boolean).join(" ");
  const terminals = useTerminals();
  const gpus = useGpus();
  const { act, copy } = useTaskActions();
  const move = useMoveTask();
  const [lines, setLines] = useLiveLines(server);
  const now = useNow();
  const [confirm, dialog] = useConfirm();
  const kill = async (id: string) => {
    const ok = await confirm({
      title: `Kill task ${id}?`,
      body: "Its processes get SIGTERM, then SIGKILL after the grace. It ends as killed; Restart runs it again.",
      confirm: "Kill",
    });
    if (ok) await act("kill", id);
  };
  const remove = async (id: string) => {
    const ok = await confirm({
      title: `Delete queued task ${id}?`,
      body: "It leaves the queue and will not run. This cannot be undone.",
      confirm: "Delete",
    });
    if (ok) await act("remove", id);
  };
  return (
    <div className="page">
      <HeldTasks />
      <TagBar tag={tag} onTag={setTag} />
      <UserFilter user={user} onUser={setUser} tasks={[...all.running, ...all.queued]} />
      <div className="row spread wrap">
        <h2>Running ({running.length})</h2>
        {setLines && <LineControl label="Live lines" value={lines} max={settings.winHeight} onChange={setLines} />}
      </div>
      {running.length === 0 && <p className="muted">{filters ? `No running task ${filters}.` : "Nothing is running."}</p>}
      {running.map((task) => {
        const snap = terminals[task.task_id];
        const progress = snap?.progress ?? null;
        return (
          <div className="card task" key={task.task_id} data-testid={`running-${task.task_id}`}>
            <div className="row spread wrap">
              <span className="row wrap">
                <Link className="task-id" to={taskPath(task.task_id)}>
                  <strong>{task.task_id}</strong>
                </Link>
                <TagChips tags={task.tags} />
                <Owner task={task} />
              </span>
              <span className="muted">
                GPUs {task.gpu_ids.length ? taskGpuLabels(task, gpus) : "none"}
                {task.nodes.length > 0 && ` · ${task.nodes.length === 1 ? "node" : "nodes"} ${task.nodes.join(", ")}`} ·{" "}
                {duration(task.started_at ? now - task.started_at : null)}
                {task.gpu_mem !== null && ` · ${bytes(task.gpu_mem)} of the GPU`}
                {gpuMemOverText(task) && (
                  <>
                    {" "}
                    <span className="badge badge-over" data-testid={`gpu-mem-over-${task.task_id}`}>
                      {gpuMemOverText(task)}
                    </span>
                  </>
                )}
                {task.attempt > 1 && (
                  <span data-testid={`attempt-${task.task_id}`}>
                    {" "}· attempt {task.attempt} of {task.retries + 1}
                  </span>
                )}
                {task.timeout !== null && (
                  <span data-testid={`timeout-${task.task_id}`}>
                    {" "}· timeout {timeoutText(task.timeout, task.started_at, true, now)}
                  </span>
                )}
              </span>
              <span className="row">
                <button className="ghost" onClick={() => void copy(task)}>Copy command</button>
                <button className="danger apart" onClick={() => void kill(task.task_id)}>Kill</button>
              </span>
            </div>
            <code className="command">{task.command}</code>
            {progress !== null && <Progress taskId={task.task_id} value={progress} />}
            <Terminal
              lines={(snap?.lines ?? []).slice(-lines)}
              minLines={settings.minLines}
              maxLines={settings.maxLines}
              testId={`terminal-${task.task_id}`}
            />
          </div>
        );
      })}
      <div className="section-head">
        <h2>
          Queue ({queueLength}
          {filters && ` ${filters}`})
        </h2>
        <PauseButton />
      </div>
      {queued.length === 0 && <p className="muted">{filters ? `No queued task ${filters}.` : "The queue is empty."}</p>}
      {queued.length > 0 && (
        <div className="table-wrap">
          <table className="table cards">
            <thead>
              <tr>
                <th>
                  <span className="sr-only">Reorder</span>
                </th>
                <th>#</th>
                <th>Task</th>
                <th>GPUs</th>
                <th>Waiting because</th>
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <SortableQueue tasks={queued.slice(0, MAX_QUEUE_ROWS)} move={move}>
              {(rows) => (
                <tbody>
                  {rows.map((task) => (
                    <SortableRow key={task.task_id} id={task.task_id} testId={`queued-${task.task_id}`}>
                      <td className="handle">
                        <DragHandle id={task.task_id} />
                      </td>
                      <td data-label="Position">{task.queue_position ?? (task.after.length ? "waits" : "–")}</td>
                      <td>
                        <Link to={taskPath(task.task_id)}>
                          <strong>{task.task_id}</strong>
                        </Link>
                        <TagChips tags={task.tags} />
                        <Owner task={task} />
                        <div className="muted small">{task.command}</div>
                      </td>
                      <td
                        data-label="GPUs"
                        title={task.n_nodes > 1 ? `${task.n_nodes} nodes × ${task.n_gpus} GPUs each` : undefined}
                      >
                        {task.gpu_mem !== null ? `${bytes(task.gpu_mem)} of 1` : taskShape(task)}
                      </td>
                      <td className="reason" data-label="Waiting because">
                        {task.pending_reason ?? "starting…"}
                        {task.after.length > 0 && (
                          <div className="small" data-testid={`after-${task.task_id}`}>
                            after <AfterLinks after={task.after} />
                          </div>
                        )}
                      </td>
                      <td className="actions">
                        <button className="ghost" title="Move to top" onClick={() => void act("promote", task.task_id)}>
                          Move to top
                        </button>
                        <button className="danger apart" onClick={() => void remove(task.task_id)}>Delete</button>
                      </td>
                    </SortableRow>
                  ))}
                </tbody>
              )}
            </SortableQueue>
          </table>
          {queueLength > MAX_QUEUE_ROWS && (
            <p className="muted">… and {queueLength - MAX_QUEUE_ROWS} more (`ant ls` lists them all)</p>
          )}
        </div>
      )}
      {dialog}
    </div>
  );
}
