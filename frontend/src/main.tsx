import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { legacyHashPath } from "./lib/legacy";
import { takeTokenFromUrl } from "./lib/urlToken";
import "./styles.css";

// `/?token=...`: out of the address bar before anything else reads the URL.
takeTokenFromUrl();

// Links from before pages had URLs (`/#/ongoing`) land on the page they meant.
const legacy = legacyHashPath(window.location.hash);
if (legacy !== null) window.history.replaceState(null, "", legacy);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
