import { useEffect, useState } from "react";
import { api, ApiError } from "../api/client";
import { urlToken, urlTokenTried } from "../lib/urlToken";

// What a refused login says: a wrong token plainly, anything else (ANT unreachable) as it is.
function loginError(err: unknown): string {
  if (err instanceof ApiError && err.status === 401) return "Invalid token";
  return err instanceof ApiError ? err.message : String(err);
}

export function Login(props: { onLogin: () => void; reason?: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(props.reason ?? "");
  const { onLogin } = props;

  // A token from the login URL (already out of the address bar): tried once.
  useEffect(() => {
    const fromUrl = urlToken();
    if (fromUrl === null) return;
    let live = true;
    api.login(fromUrl).then(
      () => {
        urlTokenTried();
        onLogin();
      },
      (err) => {
        urlTokenTried();
        if (live) setError(loginError(err));
      },
    );
    return () => {
      live = false;
    };
  }, [onLogin]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      await api.login(token.trim());
      onLogin();
    } catch (err) {
      setError(loginError(err));
    }
  };
  return (
    <main className="login">
      <form onSubmit={submit} className="card">
        <h1>ANT Scheduler</h1>
        <p>
          Paste the token that <code>ant serve</code> printed (or open its login URL), or your own from{" "}
          <code>ant users add</code>.
        </p>
        <input
          aria-label="Token"
          type="password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="token"
          autoFocus
        />
        <button type="submit">Log in</button>
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
