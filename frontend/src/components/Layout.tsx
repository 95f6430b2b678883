// The frame of every page: the header with the page links and the notifications switch (the
// notifier runs here, for every page), the connection banner, the banner
// that says when the executor cannot start tasks (a cluster cut off), the page itself (the
// router's Outlet, in the `main` landmark under the page's name as its h1 and the window's title)
// and the recovery dialog.
import { useCallback, useEffect, useRef, useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { api } from "../api/client";
import type { RecoveryOut } from "../api/types";
import { legacyHashPath } from "../lib/legacy";
import { load, save } from "../lib/storage";
import { NAV } from "../lib/paths";
import { executorBanner } from "../lib/nodes";
import { useConnected, useEpoch, useHealth, useHeld, useServer, useTasks } from "../state/hooks";
import { useLive } from "../state/LiveProvider";
import { useEndNotifications } from "../state/notifications";
import { useNotify } from "../state/toasts";
import { NotifySwitch } from "./NotifySwitch";
import { PauseBanner } from "./PauseControl";
import { RecoveryDialog } from "./RecoveryDialog";
import { SignedIn } from "./Users";

export function Layout() {
  const connected = useConnected();
  const synced = useEpoch() > 0;
  const { running, queueLength } = useTasks();
  const held = useHeld().length;
  const cannotStart = executorBanner(useHealth());
  const version = useServer()?.version;
  const navigate = useNavigate();
  const { pathname } = useLocation();
  const title = pageTitle(pathname);
  const main = useRef<HTMLElement>(null);
  const shown = useRef(false);
  useEndNotifications();

  useEffect(() => {
    document.title = `${title} · ANT`;
  }, [title]);

  // On another page, the focus goes to its top (a screen reader reads the new page's name; Tab
  // goes on from there), unless the page put it somewhere itself. Not on the first load.
  useEffect(() => {
    if (!shown.current) {
      shown.current = true;
      return;
    }
    if (!main.current?.contains(document.activeElement)) main.current?.focus({ preventScroll: true });
  }, [pathname]);

  // An old `#/ongoing` link opened while the UI is already showing.
  useEffect(() => {
    const onHash = () => {
      const path = legacyHashPath(window.location.hash);
      if (path !== null) navigate(path, { replace: true });
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, [navigate]);

  return (
    <div className="app">
      <a
        className="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault(); // the focus moves; the address stays as it is
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header className="top">
        <span className="brand">ANT</span>
        <nav>
          {NAV.map(({ path, label }) => {
            if (path !== "/ongoing") {
              return (
                <NavLink key={path} to={path} end>
                  {label}
                </NavLink>
              );
            }
            const counts = ongoingCounts(running.length, queueLength, held);
            const spelled = `${label}: ${counts.join(", ")}`;
            return (
              <NavLink key={path} to={path} end title={spelled} aria-label={spelled}>
                Ongoing ({counts.join(" · ")})
              </NavLink>
            );
          })}
        </nav>
        <SignedIn />
        <NotifySwitch />
      </header>
      <main id="main" ref={main} tabIndex={-1} aria-labelledby="page-title">
        {/* Screen readers and the window's title name the page; the pages' own headings are h2. */}
        <h1 className="sr-only" id="page-title">
          {title}
        </h1>
        {!connected && (
          <div className="banner" role="alert">
            Lost the connection to the ANT server; reconnecting… (the lists will reload when it is back)
          </div>
        )}
        {connected && cannotStart && (
          <div className="banner" role="alert" data-testid="executor-banner">
            {cannotStart}
          </div>
        )}
        {connected && <PauseBanner />}
        {/* Pages show once the first full read is in (the stream's hello), as the lists are. */}
        {synced ? <Outlet /> : <div className="page muted">Loading…</div>}
      </main>
      {/* Which ANT this is (one version for the package, `ant --version` and the API). */}
      {version && (
        <footer className="foot muted small" data-testid="version">
          ANT {version}
        </footer>
      )}
      <Recovery />
    </div>
  );
}

// The page's name, from its URL (the names of the header's links).
function pageTitle(pathname: string): string {
  const page = NAV.find(({ path }) => path === pathname);
  if (page) return page.label;
  if (!pathname.startsWith("/tasks/")) return "No such page";
  const id = pathname.slice("/tasks/".length);
  try {
    return `Task ${decodeURIComponent(id)}`;
  } catch {
    return `Task ${id}`; // not valid percent-encoding: as it is
  }
}

// What the Ongoing link counts: "3 running", "2 queued", and "1 held" when any are.
function ongoingCounts(running: number, queued: number, held: number): string[] {
  const counts = [`${running} running`, `${queued} queued`];
  if (held > 0) counts.push(`${held} held`);
  return counts;
}

// Once per server start: the dialog opens on the first load after ANT (re)started, also when this
// page was already open and reconnected, and not again after it was closed.
function Recovery() {
  const server = useServer();
  const epoch = useEpoch();
  const { fail } = useLive();
  const notify = useNotify();
  const [recovery, setRecovery] = useState<RecoveryOut | null>(null);
  const sessionId = server?.session_id;

  useEffect(() => {
    if (sessionId === undefined || load("recoverySeen", 0) === sessionId) return;
    let live = true;
    api.recovery().then(
      (rec) => live && rec.last_session.length + rec.earlier_sessions.length > 0 && setRecovery(rec),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [sessionId, epoch]);

  const close = useCallback(() => {
    if (sessionId !== undefined) save("recoverySeen", sessionId);
    setRecovery(null);
  }, [sessionId]);

  if (!recovery) return null;
  return (
    <RecoveryDialog
      data={recovery}
      onClose={close}
      onRestore={async (ids) => {
        try {
          const r = await api.restore(ids);
          const restored = r.tasks.map((t) => t.task_id);
          notify("ok", `Restored ${restored.join(", ")}`, restored.slice(0, 100));
          setRecovery(await api.recovery());
        } catch (err) {
          fail(err);
        }
      }}
      onForget={async (id) => {
        try {
          await api.forget(id);
          notify("ok", `Deleted ${id} from recovery`);
          setRecovery(await api.recovery());
        } catch (err) {
          fail(err);
        }
      }}
    />
  );
}
