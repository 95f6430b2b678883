// The dashboard's summary strip: tasks running, queued and held now, failed in the last 24 hours,
// GPUs busy now, and the host's CPU, RAM and load — one line to read before anything else.
import { Link } from "react-router";
import type { HostOut, SummaryOut } from "../api/types";
import { bytes } from "../lib/format";

function Count(props: { id: string; label: string; value: number | string; to?: string; alarm?: boolean }) {
  const body = (
    <>
      <span className="strip-value">{props.value}</span>
      <span className="strip-label">{props.label}</span>
    </>
  );
  const className = `strip-item${props.alarm ? " strip-alarm" : ""}`;
  return props.to ? (
    <Link to={props.to} className={className} data-testid={`summary-${props.id}`}>
      {body}
    </Link>
  ) : (
    <div className={className} data-testid={`summary-${props.id}`}>
      {body}
    </div>
  );
}

export function SummaryStrip({ summary, host }: { summary: SummaryOut | null; host: HostOut | null | undefined }) {
  const n = (v: number | undefined) => (v === undefined ? "…" : v);
  return (
    <section className="card strip" aria-label="Summary" data-testid="summary">
      <Count id="running" label="running" value={n(summary?.running)} to="/ongoing" />
      <Count id="queued" label="queued" value={n(summary?.queued)} to="/ongoing" />
      <Count id="held" label="held" value={n(summary?.held)} to="/ongoing" alarm={!!summary?.held} />
      <Count id="failed" label="failed in 24 h" value={n(summary?.failed_24h)} to="/completed" alarm={!!summary?.failed_24h} />
      {!!summary?.lost && <Count id="lost" label="lost" value={summary.lost} to="/ongoing" alarm />}
      <Count
        id="gpus"
        label="GPUs busy"
        value={summary ? `${summary.gpus_busy} / ${summary.gpus_total}` : "…"}
      />
      <div className="strip-item strip-host" data-testid="host">
        {host ? (
          <>
            <span className="strip-value">{host.cpu_percent.toFixed(0)} % CPU</span>
            <span className="strip-label">
              RAM {bytes(host.mem_used)} / {bytes(host.mem_total)} · load {host.load_avg.map((l) => l.toFixed(2)).join(" ")} ·{" "}
              {host.per_core.length} cores
            </span>
          </>
        ) : (
          <span className="strip-label">host: waiting for the first sample…</span>
        )}
      </div>
    </section>
  );
}
