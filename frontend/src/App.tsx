// The UI: providers (toasts, the live store, the router), then the login form or the pages of the
// route table (routes.tsx).
import { BrowserRouter, useRoutes } from "react-router";
import { Login } from "./components/Login";
import { urlTokenTried } from "./lib/urlToken";
import { ROUTES } from "./routes";
import { useAuth } from "./state/hooks";
import { LiveProvider } from "./state/LiveProvider";
import { ToastProvider } from "./state/toasts";

export function App() {
  return (
    <ToastProvider>
      <LiveProvider>
        <BrowserRouter>
          <Gate />
        </BrowserRouter>
      </LiveProvider>
    </ToastProvider>
  );
}

function Gate() {
  const auth = useAuth();
  if (auth === "checking") return <div className="page muted">Connecting to ANT…</div>;
  if (auth === "out") return <Login onLogin={() => window.location.reload()} />;
  urlTokenTried(); // in by the session cookie: a token from the URL is not wanted later
  return <Pages />;
}

function Pages() {
  return useRoutes(ROUTES);
}
