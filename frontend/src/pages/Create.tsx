import { Fragment, useEffect, useState } from "react";
import { Link } from "react-router";
import { api, ApiError } from "../api/client";
import { submitRequestModeValues, type PreviewOut, type SubmitRequest } from "../api/types";
import { conditionText, parseAfter } from "../lib/dependencies";
import { bytes, formatDuration, isSize, parseDuration } from "../lib/format";
import { parseTags } from "../lib/tags";
import { taskPath } from "../lib/paths";
import { load, save } from "../lib/storage";
import { submitted } from "../state/notifications";
import { useNotify } from "../state/toasts";

const SPECIAL_VARS: [string, string][] = [
  ["ant_task_id", "task id or template; overrides the Task ID field"],
  ["ant_n_gpus", "number of GPUs (on each node); overrides the GPUs field"],
  ["ant_n_nodes", "number of nodes, all at once (a gang); overrides the Nodes field"],
  ["ant_gpu_mem", "GPU memory of one shared GPU (20G, 512M) instead of whole GPUs; overrides the GPU memory field"],
  ["ant_timeout", "kill it after it has run this long (90s, 15m, 2h, 1h30m); overrides the Timeout field"],
  ["ant_notify", "webhook URL POSTed to when it ends; overrides the Webhook field"],
  ["ant_retries", "run it again up to N times when an attempt fails (or as ant_retry_on says); overrides the Retries field"],
  ["ant_retry_on", "which ends are retried: failure, lost, timeout (comma-separated) or all; default failure"],
  ["ant_retry_backoff", "wait before the first retry (30s, 2m; 0: none), doubling each retry up to 1h; default 30s"],
  ["ant_after", "start only once these tasks ended: id, id:any, id:fail, [prev] (the line before); overrides the After field"],
  ["ant_tags", "tags, comma-separated (sweep-lr,seed-1); added to the Tags field's"],
  ["ant_wd", "working directory: runs cd <dir> && … first"],
  ["ant_conda_env", "conda env by name: conda run --live-stream -n <env> …"],
  ["ant_conda_env_path", "conda env by path: conda run --live-stream -p <path> …"],
  ["ant_conda_path", "conda executable to use (default: conda)"],
];

interface EnvRow {
  key: string;
  value: string;
}

type Mode = NonNullable<SubmitRequest["mode"]>;
const MAX_NODES = 64;
const MAX_RETRIES = 100;
const RETRY_CONDITIONS = ["failure", "lost", "timeout"] as const;
type RetryCondition = (typeof RETRY_CONDITIONS)[number];

export function CreatePage() {
  const notify = useNotify();
  const [mode, setMode] = useState<Mode>("single");
  const [taskId, setTaskId] = useState("");
  const [nGpus, setNGpus] = useState("");
  const [nNodes, setNNodes] = useState("");
  const [timeout, setTimeoutText] = useState("");
  const [gpuMem, setGpuMem] = useState("");
  const [webhook, setWebhook] = useState("");
  const [retries, setRetries] = useState("");
  const [retryOn, setRetryOn] = useState<RetryCondition[]>(["failure"]);
  const [backoff, setBackoff] = useState("");
  const [after, setAfter] = useState("");
  const [tagText, setTagText] = useState("");
  const [command, setCommand] = useState("");
  const [env, setEnv] = useState<EnvRow[]>(() => load<EnvRow[]>("env", []));
  const [error, setError] = useState("");
  const [created, setCreated] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<PreviewOut | null>(null);
  const [previewError, setPreviewError] = useState("");

  // A preview shows the form as it was: any change makes it stale, so it goes.
  useEffect(() => {
    setPreview(null);
    setPreviewError("");
  }, [mode, taskId, nGpus, nNodes, gpuMem, timeout, webhook, retries, retryOn, backoff, after, tagText, command, env]);

  const updateEnv = (rows: EnvRow[]) => {
    setEnv(rows);
    save("env", rows);
  };
  const remembered = env.filter((row) => row.key.trim());

  /** The request the form describes, or what is wrong with it. */
  const requestBody = (): SubmitRequest | string => {
    const envObject: Record<string, string> = {};
    for (const row of env) if (row.key.trim()) envObject[row.key.trim()] = row.value;
    const n = nGpus.trim() === "" ? undefined : Number(nGpus);
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      return "Number of GPUs must be a whole number, 0 or more";
    }
    const nodes = nNodes.trim() === "" ? undefined : Number(nNodes);
    if (nodes !== undefined && (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)) {
      return `Number of nodes must be a whole number from 1 to ${MAX_NODES}`;
    }
    if (gpuMem.trim() !== "" && !isSize(gpuMem)) {
      return "GPU memory must be a size such as 20G or 512M";
    }
    const limit = timeout.trim() === "" ? undefined : parseDuration(timeout);
    if (limit === null || (limit !== undefined && limit <= 0)) {
      return "Timeout must be a duration such as 90s, 15m, 2h or 1h30m";
    }
    const retryCount = retries.trim() === "" ? undefined : Number(retries);
    if (retryCount !== undefined && (!Number.isInteger(retryCount) || retryCount < 0 || retryCount > MAX_RETRIES)) {
      return `Retries must be a whole number from 0 to ${MAX_RETRIES}`;
    }
    const wait = backoff.trim() === "" ? undefined : ["0", "0s"].includes(backoff.trim()) ? 0 : parseDuration(backoff);
    if (wait === null || (wait !== undefined && (wait < 0 || wait > 86400))) {
      return "Backoff must be a duration such as 30s, 2m or 0, at most 1 day";
    }
    if (retryCount && retryOn.length === 0) return "Retry on: choose failure, lost or timeout";
    const retrying = retryCount ? { retries: retryCount, retry_on: retryOn, retry_backoff: wait } : {};
    const deps = parseAfter(after);
    if (typeof deps === "string") return deps;
    const tags = parseTags(tagText);
    if (tags.error !== null) return `Tags: ${tags.error}`;
    return {
      command,
      mode,
      n_gpus: n,
      n_nodes: nodes,
      gpu_mem: gpuMem.trim() || undefined,
      timeout: limit,
      notify: webhook.trim() || undefined, // checked by the server (http/https URL)
      ...retrying,
      after: deps.length ? deps : undefined,
      tags: tags.tags,
      task_id: taskId.trim() || undefined,
      env: envObject,
    };
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (busy || !command.trim()) return; // Ctrl+Enter reaches here even while Submit is disabled
    setError("");
    setCreated([]);
    const body = requestBody();
    if (typeof body === "string") {
      setError(body);
      return;
    }
    setBusy(true);
    try {
      const result = await api.submit(body);
      const ids = result.tasks.map((t) => t.task_id);
      submitted(ids); // watched: notified when they end (if notifications are on)
      setCreated(ids);
      setCommand(""); // submitted: the same text again would be a second task (or a duplicate id)
      setTaskId("");
      notify("ok", `Queued ${ids.length} task(s): ${ids.join(", ")}`, ids.slice(0, 100));
    } catch (err) {
      const message = err instanceof ApiError ? err.message : String(err);
      setError(message);
      notify("error", message);
    } finally {
      setBusy(false);
    }
  };

  const showPreview = async () => {
    setPreview(null);
    setPreviewError("");
    const body = requestBody();
    if (typeof body === "string") {
      setPreviewError(body);
      return;
    }
    try {
      setPreview(await api.preview(body));
    } catch (err) {
      setPreviewError(err instanceof ApiError ? err.message : String(err));
    }
  };

  const submitOnCtrlEnter = (e: React.KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    }
  };

  return (
    <div className="page">
      <form className="card create" onSubmit={submit}>
        <div className="row">
          <span>Queue mode:</span>
          {submitRequestModeValues.map((m) => (
            <label key={m} className="radio">
              <input type="radio" name="mode" checked={mode === m} onChange={() => setMode(m)} />
              {m === "single" ? "Single" : "Multi"}
            </label>
          ))}
        </div>
        <div className="row wrap">
          <label className="field">
            Task ID
            <input
              aria-label="Task ID"
              value={taskId}
              onChange={(e) => setTaskId(e.target.value)}
              placeholder="[uuid]  e.g. experiment-[random_phrase]-[uuid8]"
            />
            <small className="muted">
              Templates: [uuid] [uuid8] [date] [time] [datetime] [phrase] [randint:1000:9999]
              {mode === "multi" ? " — expanded once per command" : ""}
            </small>
          </label>
          <label className="field narrow">
            GPUs
            <input aria-label="Number of GPUs" inputMode="numeric" value={nGpus} onChange={(e) => setNGpus(e.target.value)} placeholder="default" />
          </label>
          <label className="field narrow" title="Nodes, all at once, with that many GPUs on each (a gang); 1: one node">
            Nodes
            <input aria-label="Number of nodes" inputMode="numeric" value={nNodes} onChange={(e) => setNNodes(e.target.value)} placeholder="1" />
          </label>
          <label className="field narrow" title="GPU memory it needs (20G, 512M): it shares one GPU with other such tasks instead of taking whole GPUs">
            GPU memory
            <input aria-label="GPU memory" value={gpuMem} onChange={(e) => setGpuMem(e.target.value)} placeholder="whole GPUs" />
          </label>
          <label className="field narrow" title="Kill it after it has run this long; it ends timed_out (90s, 15m, 2h, 1h30m)">
            Timeout
            <input aria-label="Timeout" value={timeout} onChange={(e) => setTimeoutText(e.target.value)} placeholder="none" />
          </label>
          <label className="field narrow" title="Run it again up to this many times when an attempt ends as Retry on says; each attempt keeps its own log">
            Retries
            <input aria-label="Retries" inputMode="numeric" value={retries} onChange={(e) => setRetries(e.target.value)} placeholder="0" />
          </label>
          {Number(retries) > 0 && (
            <>
              <fieldset className="field narrow retry-on">
                <legend>Retry on</legend>
                {RETRY_CONDITIONS.map((c) => (
                  <label key={c} className="row">
                    <input
                      type="checkbox"
                      aria-label={`Retry on ${c}`}
                      checked={retryOn.includes(c)}
                      onChange={(e) => setRetryOn(e.target.checked ? RETRY_CONDITIONS.filter((x) => x === c || retryOn.includes(x)) : retryOn.filter((x) => x !== c))}
                    />
                    {c}
                  </label>
                ))}
              </fieldset>
              <label className="field narrow" title="Wait before the first retry, doubling each retry up to 1h (30s, 2m; 0: none)">
                Backoff
                <input aria-label="Retry backoff" value={backoff} onChange={(e) => setBackoff(e.target.value)} placeholder="30s" />
              </label>
            </>
          )}
          <label
            className="field"
            title="Start only once these tasks ended: id (if it succeeded), id:any (however it ended), id:fail (if it did not succeed); [prev] is the line before in multi mode"
          >
            After
            <input aria-label="After" value={after} onChange={(e) => setAfter(e.target.value)} placeholder="none (e.g. prep, train-3:any)" />
          </label>
          <label className="field" title="Labels to filter, act on and pause the tasks by: comma-separated, e.g. sweep-lr, seed-1">
            Tags
            <input aria-label="Tags" value={tagText} onChange={(e) => setTagText(e.target.value)} placeholder="e.g. sweep-lr" />
          </label>
        </div>
        <label className="field" title="ANT POSTs the task's end (state, exit code, last lines) to this URL, besides the server's NOTIFY_webhook_url">
          Webhook
          <input
            aria-label="Webhook URL"
            inputMode="url"
            autoComplete="off"
            spellCheck={false}
            value={webhook}
            onChange={(e) => setWebhook(e.target.value)}
            placeholder="none  e.g. https://hooks.slack.com/services/…  (told when it ends)"
          />
        </label>
        <label className="field">
          {mode === "single" ? "Command" : "Commands (one per line; \\ continues a line; # comments)"}
          <textarea
            aria-label="Command"
            rows={mode === "single" ? 4 : 10}
            value={command}
            onChange={(e) => setCommand(e.target.value)}
            onKeyDown={submitOnCtrlEnter}
            placeholder={
              mode === "single"
                ? 'python train.py --port {rand int 4000 5000}'
                : 'ant_n_gpus=4 ant_task_id="first_task" python first.py \\\n  --batch_size 4\nant_n_gpus=2 python second.py'
            }
          />
        </label>
        {error && (
          <p className="field-error" data-testid="submit-error">
            {error}
          </p>
        )}
        <fieldset className="env">
          <legend>Environment variables (remembered in this browser)</legend>
          {env.map((row, i) => (
            <div className="row" key={i}>
              <input
                aria-label={`Variable ${i + 1} name`}
                value={row.key}
                placeholder="NAME"
                onChange={(e) => updateEnv(env.map((r, j) => (j === i ? { ...r, key: e.target.value } : r)))}
              />
              <input
                className="env-value"
                aria-label={`Variable ${i + 1} value`}
                value={row.value}
                placeholder="value"
                onChange={(e) => updateEnv(env.map((r, j) => (j === i ? { ...r, value: e.target.value } : r)))}
              />
              <button type="button" className="ghost" onClick={() => updateEnv(env.filter((_, j) => j !== i))}>
                ✕
              </button>
            </div>
          ))}
          <button type="button" className="ghost" onClick={() => updateEnv([...env, { key: "", value: "" }])}>
            + Add variable
          </button>
          <details>
            <summary>Special variables</summary>
            <ul className="muted">
              {SPECIAL_VARS.map(([name, text]) => (
                <li key={name}>
                  <code>{name}</code>: {text}
                </li>
              ))}
              <li>
                <code>{"{rand int A B}"}</code> / <code>{"{rand float A B}"}</code> in a command become a random number.
              </li>
            </ul>
          </details>
        </fieldset>
        {remembered.length > 0 && (
          <div className="row wrap chips" data-testid="env-chips">
            <span className="muted small">Environment:</span>
            {remembered.map((row, i) => (
              <span className="chip" key={i} title={`${row.key}=${row.value}`}>
                <code>
                  {row.key}={row.value}
                </code>
                <button
                  type="button"
                  className="ghost"
                  aria-label={`Clear ${row.key}`}
                  onClick={() => updateEnv(env.filter((r) => r !== row))}
                >
                  ✕
                </button>
              </span>
            ))}
            <button type="button" className="ghost" onClick={() => updateEnv([])}>
              Clear all
            </button>
          </div>
        )}
        <div className="row">
          <button type="submit" disabled={busy || !command.trim()} title="Ctrl+Enter in the command box">
            Submit
          </button>
          <button type="button" className="ghost" disabled={!command.trim()} onClick={showPreview}>
            Preview
          </button>
          <small className="muted">Ctrl+Enter submits</small>
        </div>
        {previewError && (
          <p className="field-error" data-testid="preview-error">
            {previewError}
          </p>
        )}
        {preview && <PreviewTable preview={preview} />}
        {created.length > 0 && (
          <p className="created" data-testid="created-ids">
            Created:{" "}
            {created.map((id, i) => (
              <Fragment key={id}>
                {i > 0 && ", "}
                <Link to={taskPath(id)}>{id}</Link>
              </Fragment>
            ))}
          </p>
        )}
      </form>
    </div>
  );
}

function PreviewTable({ preview }: { preview: PreviewOut }) {
  const { tasks, total } = preview;
  return (
    <section className="preview" data-testid="preview" aria-label="Preview">
      <p>
        Would queue {total} task(s){tasks.length < total ? `, the first ${tasks.length} shown` : ""}.{" "}
        <span className="muted small">Nothing is queued yet; ids from templates are drawn again at submit.</span>
      </p>
      <div className="table-wrap">
        <table className="table cards">
          <thead>
            <tr>
              <th>Task ID</th>
              <th>GPUs</th>
              <th>Nodes</th>
              <th>GPU memory</th>
              <th>Timeout</th>
              <th>Retries</th>
              <th>After</th>
              <th>Tags</th>
              <th>Command</th>
              <th>Environment</th>
            </tr>
          </thead>
          <tbody>
            {tasks.map((t, i) => (
              <tr key={i} data-testid={`preview-${i}`}>
                <td>
                  <strong>{t.task_id}</strong>
                </td>
                <td data-label="GPUs">{t.n_gpus}</td>
                <td data-label="Nodes">{t.n_nodes}</td>
                <td data-label="GPU memory">{t.gpu_mem === null ? "whole GPUs" : bytes(t.gpu_mem)}</td>
                <td data-label="Timeout">{t.timeout === null ? "none" : formatDuration(t.timeout)}</td>
                <td data-label="Retries">{t.retries ? `${t.retries} on ${t.retry_on.join(", ")}` : "none"}</td>
                <td data-label="After">{t.after.length ? t.after.map((d) => d.task_id + conditionText(d)).join(", ") : "none"}</td>
                <td data-label="Tags">{t.tags.join(", ") || "none"}</td>
                <td data-label="Command">
                  <code className="preview-command">{t.command}</code>
                </td>
                <td className="small" data-label={Object.keys(t.env).length ? "Environment" : undefined}>
                  {Object.entries(t.env).map(([k, v]) => (
                    <div key={k}>
                      <code>
                        {k}={v}
                      </code>
                    </div>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
