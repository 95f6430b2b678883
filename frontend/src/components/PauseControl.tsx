// Pausing the queue (a drain: nothing new starts, running tasks go on) and the banner that says
// so on every page. The state comes from the server's health (its `health` event keeps it live),
// so every open page and `ant pause` / `ant resume` agree.
import { Link } from "react-router";
import { api } from "../api/client";
import type { HealthOut } from "../api/types";
import { useBusyAction, useHealth } from "../state/hooks";

// "since 14:05" today, "since Nov 24 14:05" on an earlier day.
export function pausedSince(health: HealthOut | null, now = new Date()): string | null {
  if (!health?.paused) return null;
  if (health.paused_at === null || health.paused_at === undefined) return "The queue is paused";
  return `The queue is paused ${since(health.paused_at, now)}`;
}

function since(seconds: number, now = new Date()): string {
  const at = new Date(seconds * 1000);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const sameDay = at.toDateString() === now.toDateString();
  const day = sameDay ? "" : `${at.toLocaleDateString([], { month: "short", day: "numeric" })} `;
  return `since ${day}${time}`;
}

// "Tag sweep-lr is paused since 14:05" for each paused tag.
export function tagsPausedSince(health: HealthOut | null, now = new Date()): { tag: string; said: string }[] {
  return (health?.paused_tags ?? []).map((p) => ({ tag: p.tag, said: `Tag ${p.tag} is paused ${since(p.paused_at, now)}` }));
}

function useToggle(): [boolean, (paused: boolean) => Promise<void>] {
  const [busy, run] = useBusyAction();
  const toggle = (paused: boolean) =>
    run(async () => {
      await (paused ? api.pauseQueue() : api.resumeQueue());
      return paused ? "Queue paused: running tasks go on, nothing new starts" : "Queue resumed";
    });
  return [busy, toggle];
}

// On every page while paused: what it means, and the way out (for the queue, and for each tag).
export function PauseBanner() {
  const health = useHealth();
  const said = pausedSince(health);
  const tags = tagsPausedSince(health);
  const [busy, toggle] = useToggle();
  const [, run] = useBusyAction();
  const resumeTag = (tag: string) =>
    run(async () => {
      await api.resumeTag(tag);
      return `Tag ${tag} resumed`;
    });
  return (
    <>
      {said !== null && (
        <div className="banner paused" role="status" data-testid="paused-banner">
          <span>{said}: running tasks go on, queued ones wait.</span>
          <button type="button" disabled={busy} onClick={() => toggle(false)}>
            Resume
          </button>
        </div>
      )}
      {tags.map(({ tag, said: text }) => (
        <div className="banner paused" role="status" key={tag} data-testid={`paused-tag-${tag}`}>
          <span>
            {text}: its queued tasks wait, running ones go on. <Link to={`/ongoing?tag=${encodeURIComponent(tag)}`}>Show them</Link>
          </span>
          <button type="button" onClick={() => void resumeTag(tag)}>
            Resume {tag}
          </button>
        </div>
      ))}
    </>
  );
}

// Next to the queue: Pause queue / Resume queue.
export function PauseButton() {
  const health = useHealth();
  const [busy, toggle] = useToggle();
  if (!health) return null;
  const paused = Boolean(health.paused);
  return (
    <button
      type="button"
      className="pause-queue"
      disabled={busy}
      aria-pressed={paused}
      title={paused ? "Start queued tasks again" : "Start no queued task; running tasks go on (a drain)"}
      onClick={() => toggle(!paused)}
    >
      {paused ? "Resume queue" : "Pause queue"}
    </button>
  );
}
