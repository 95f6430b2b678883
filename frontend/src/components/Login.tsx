import { useState } from "react";
import { api, ApiError } from "../api/client";

export function Login(props: { onLogin: () => void; reason?: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(props.reason ?? "");
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      await api.login(token.trim());
      props.onLogin();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <div className="login">
      <form onSubmit={submit} className="card">
        <h1>ANT Scheduler</h1>
        <p>Paste the token that <code>ant serve</code> printed (or open its login URL).</p>
        <input
          aria-label="Token"
          type="password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="token"
          autoFocus
        />
        <button type="submit">Log in</button>
        {error && <p className="field-error">{error}</p>}
      </form>
    </div>
  );
}
