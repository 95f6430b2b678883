// The login URL that `ant serve` prints (`/?token=...`). The token is read once at start-up and
// taken out of the address bar at once, whether it works or not, so it stays neither in the
// history nor in a copied link. A right one has normally been turned into the session cookie by
// the server already (it answers with a redirect to `/`); the login form tries any other.
let pending: string | null = null;

// Called once, before the router reads the URL.
export function takeTokenFromUrl(): void {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  url.searchParams.delete("token");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  pending = token;
}

// The token from the URL not tried yet, if any.
export function urlToken(): string | null {
  return pending;
}

export function urlTokenTried(): void {
  pending = null;
}
