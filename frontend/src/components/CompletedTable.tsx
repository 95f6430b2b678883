// The Completed page's table: one dense row per ended task, sortable by its column headers, a row
// expanding into the task's details, actions and log preview. Rows are virtualised against the
// window's scroll (@tanstack/react-virtual), so a page of 1,000 tasks renders only what is on
// screen. At phone width the rows become cards (styles.css, "Completed").
import { useWindowVirtualizer } from "@tanstack/react-virtual";
import { useLayoutEffect, useRef, useState, type MouseEvent, type ReactNode } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import type { TaskOut } from "../api/types";
import { duration, shortWhen, when } from "../lib/format";
import type { Order, SortKey } from "../lib/completedView";
import { taskGpuLabels, taskShape } from "../lib/nodes";
import { taskPath } from "../lib/paths";
import { useGpus } from "../state/hooks";
import { LogTail } from "./LogView";
import { TagChips } from "./Tags";
import { Owner } from "./Users";

const ROW_PX = 37; // a collapsed row, before it is measured
const OPEN_PX = 420; // an expanded one

export interface RowActions {
  restart: (task: TaskOut) => void;
  remove: (task: TaskOut) => void;
  copy: (task: TaskOut) => void;
  viewLog: (task: TaskOut) => void;
}

export interface PreviewSettings {
  lines: number;
  minLines: number;
  maxLines: number;
}

const taskDuration = (t: TaskOut) => (t.started_at && t.finished_at ? t.finished_at - t.started_at : null);

// The columns: header text, the sort key it sorts by (none: not sortable), a class for widths.
const COLUMNS: { label: string; key?: SortKey; className: string }[] = [
  { label: "State", className: "col-state" },
  { label: "ID", key: "task_id", className: "col-id" },
  { label: "Command", className: "col-command" },
  { label: "GPUs", className: "col-gpus" },
  { label: "Started", key: "started_at", className: "col-started" },
  { label: "Duration", key: "duration", className: "col-duration" },
  { label: "Ended", key: "finished_at", className: "col-ended" },
  { label: "Exit", key: "exit_code", className: "col-exit" },
];
const SPAN = COLUMNS.length + 2; // + the select box and the expander

export function CompletedTable(props: {
  tasks: TaskOut[];
  sort: SortKey;
  order: Order;
  onSort: (key: SortKey) => void;
  selected: Set<string>;
  onSelect: (taskId: string) => void;
  actions: RowActions;
  preview: PreviewSettings;
}) {
  const { tasks } = props;
  const [open, setOpen] = useState<Set<string>>(new Set());
  const first = useRef<HTMLTableSectionElement>(null);
  const [top, setTop] = useState(0);
  const toggle = (id: string) =>
    setOpen((was) => {
      const next = new Set(was);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const virtualizer = useWindowVirtualizer({
    count: tasks.length,
    estimateSize: (i) => (open.has(tasks[i].task_id) ? OPEN_PX : ROW_PX),
    getItemKey: (i) => tasks[i].task_id,
    overscan: 10,
    scrollMargin: top,
  });
  // Where the rows begin on the page (the bars above may wrap): the window's scroll is measured
  // from there.
  useLayoutEffect(() => {
    const el = first.current;
    if (!el) return;
    const at = Math.round(el.getBoundingClientRect().top + window.scrollY);
    if (at !== top) setTop(at);
  });

  const items = virtualizer.getVirtualItems();
  const margin = virtualizer.options.scrollMargin;
  const before = items.length ? items[0].start - margin : 0;
  const after = items.length ? virtualizer.getTotalSize() - (items[items.length - 1].end - margin) : 0;

  return (
    <div className="table-wrap completed-wrap">
      <table className="table cards completed-table">
        <thead>
          <tr>
            <th className="col-select">
              <span className="visually-hidden">Select</span>
            </th>
            <th className="col-expand">
              <span className="visually-hidden">Details</span>
            </th>
            {COLUMNS.map((c) => (
              <SortHeader key={c.label} column={c} sort={props.sort} order={props.order} onSort={props.onSort} />
            ))}
          </tr>
        </thead>
        <tbody ref={first} className="spacer" aria-hidden="true">
          <tr style={{ height: before }} />
        </tbody>
        {items.map((item) => {
          const task = tasks[item.index];
          return (
            <TaskRows
              key={item.key}
              index={item.index}
              measure={virtualizer.measureElement}
              task={task}
              open={open.has(task.task_id)}
              onToggle={() => toggle(task.task_id)}
              selected={props.selected.has(task.task_id)}
              onSelect={() => props.onSelect(task.task_id)}
              actions={props.actions}
              preview={props.preview}
            />
          );
        })}
        <tbody className="spacer" aria-hidden="true">
          <tr style={{ height: after }} />
        </tbody>
      </table>
    </div>
  );
}

function SortHeader(props: {
  column: (typeof COLUMNS)[number];
  sort: SortKey;
  order: Order;
  onSort: (key: SortKey) => void;
}) {
  const { column } = props;
  if (!column.key) return <th className={column.className}>{column.label}</th>;
  const active = props.sort === column.key;
  const key = column.key;
  return (
    <th className={column.className} aria-sort={active ? (props.order === "asc" ? "ascending" : "descending") : "none"}>
      <button className="sort" onClick={() => props.onSort(key)}>
        {column.label}
        <span aria-hidden="true" className="sort-mark">
          {active ? (props.order === "asc" ? " ▲" : " ▼") : ""}
        </span>
      </button>
    </th>
  );
}

// A click anywhere on a row opens or closes it, except on what is clickable in it already.
const onControl = (e: MouseEvent) => (e.target as HTMLElement).closest("a, button, input, label") !== null;

function TaskRows(props: {
  index: number;
  measure: (el: Element | null) => void;
  task: TaskOut;
  open: boolean;
  onToggle: () => void;
  selected: boolean;
  onSelect: () => void;
  actions: RowActions;
  preview: PreviewSettings;
}) {
  const { task } = props;
  const gpus = useGpus();
  const id = task.task_id;
  const detailsId = `details-${id}`;
  return (
    <tbody
      ref={props.measure}
      data-index={props.index}
      className={props.open ? "task-rows open" : "task-rows"}
      data-testid={`completed-${id}`}
    >
      <tr className="summary" onClick={(e) => onControl(e) || props.onToggle()}>
        <td className="col-select">
          <input type="checkbox" aria-label={`Select ${id}`} checked={props.selected} onChange={props.onSelect} />
        </td>
        <td className="col-expand">
          <button
            className="ghost expander"
            aria-expanded={props.open}
            aria-controls={props.open ? detailsId : undefined}
            aria-label={`Details of ${id}`}
            title={props.open ? "Hide details" : "Details, actions and output"}
            onClick={props.onToggle}
          >
            {props.open ? "▾" : "▸"}
          </button>
        </td>
        <td className="col-state">
          <span className={`badge badge-${task.state}`}>{task.state}</span>
        </td>
        <td className="col-id" title={id}>
          <Link className="task-id" to={taskPath(id)}>
            {id}
          </Link>
        </td>
        <td className="col-command" title={task.command}>
          <TagChips tags={task.tags} />
          <Owner task={task} />
          <code>{task.command}</code>
        </td>
        <td className="col-gpus" data-label="GPUs" title={task.gpu_ids.length ? `GPUs ${taskGpuLabels(task, gpus)}` : undefined}>
          {task.gpu_ids.length ? taskGpuLabels(task, gpus) : taskShape(task)}
        </td>
        <td className="col-started" data-label="Started" title={when(task.started_at)}>
          {shortWhen(task.started_at)}
        </td>
        <td className="col-duration" data-label="Duration">
          {duration(taskDuration(task))}
        </td>
        <td className="col-ended" data-label="Ended" title={when(task.finished_at)}>
          {shortWhen(task.finished_at)}
        </td>
        <td className="col-exit" data-label="Exit">
          {task.exit_code ?? "-"}
        </td>
      </tr>
      {props.open && (
        <tr className="details" id={detailsId}>
          <td colSpan={SPAN}>
            <TaskDetails task={task} gpuLabels={taskGpuLabels(task, gpus)} actions={props.actions} preview={props.preview} />
          </td>
        </tr>
      )}
    </tbody>
  );
}

function TaskDetails(props: { task: TaskOut; gpuLabels: string; actions: RowActions; preview: PreviewSettings }) {
  const { task, actions, preview } = props;
  const env = Object.entries(task.env);
  const fields: [string, ReactNode][] = [
    ["Command", <code className="command">{task.command}</code>],
    [
      "Environment",
      env.length ? (
        <ul className="env-list">
          {env.map(([k, v]) => (
            <li key={k}>
              <code>
                {k}={v}
              </code>
            </li>
          ))}
        </ul>
      ) : (
        <span className="muted">none set</span>
      ),
    ],
    [
      "GPUs",
      task.gpu_ids.length
        ? `${props.gpuLabels}${task.n_nodes > 1 ? ` (${task.n_nodes} nodes × ${task.n_gpus})` : ""}`
        : task.n_gpus
          ? `${taskShape(task)} asked, none held`
          : "none (CPU only)",
    ],
    ["Nodes", task.nodes.length ? task.nodes.join(", ") : null],
    ["Submitted", when(task.created_at)],
    ["Started", when(task.started_at)],
    ["Ended", when(task.finished_at)],
    ["Duration", duration(taskDuration(task))],
    ["Exit code", task.exit_code ?? "-"],
    ["Reason", task.reason],
    ["Directory", task.workdir],
    ["Restarted as", task.restarted_as ? <Link to={taskPath(task.restarted_as)}>{task.restarted_as}</Link> : null],
  ];
  return (
    <div className="task-details">
      <div className="row wrap actions">
        <button onClick={() => actions.restart(task)}>Restart</button>
        <button className="ghost" onClick={() => actions.viewLog(task)}>View full log</button>
        <a className="button ghost" href={api.downloadUrl(task.task_id)} download={`${task.task_id}.log`}>
          Download
        </a>
        <button className="ghost" onClick={() => actions.copy(task)}>Copy command</button>
        <button className="danger apart" onClick={() => actions.remove(task)}>Delete</button>
      </div>
      <dl className="fields">
        {fields
          .filter(([, value]) => value !== null && value !== undefined && value !== "")
          .map(([name, value]) => (
            <div className="field-row" key={name}>
              <dt className="muted">{name}</dt>
              <dd>{value}</dd>
            </div>
          ))}
      </dl>
      <LogTail
        taskId={task.task_id}
        lines={preview.lines}
        minLines={preview.minLines}
        maxLines={preview.maxLines}
        version={`${task.state}:${task.finished_at}`}
      />
    </div>
  );
}
