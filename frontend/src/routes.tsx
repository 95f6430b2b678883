// The UI's pages and their URLs (links: lib/paths.ts). The server answers each of these paths with
// index.html, so a page or a task can be linked, bookmarked and reloaded.
import type { RouteObject } from "react-router";
import { Link } from "react-router";
import { Layout } from "./components/Layout";
import { CompletedPage } from "./pages/Completed";
import { CreatePage } from "./pages/Create";
import { DashboardPage } from "./pages/Dashboard";
import { OngoingPage } from "./pages/Ongoing";
import { TaskPage } from "./pages/Task";
import { UsagePage } from "./pages/Usage";

export const ROUTES: RouteObject[] = [
  {
    element: <Layout />,
    children: [
      { index: true, element: <DashboardPage /> },
      { path: "create", element: <CreatePage /> },
      { path: "ongoing", element: <OngoingPage /> },
      { path: "completed", element: <CompletedPage /> },
      { path: "usage", element: <UsagePage /> },
      { path: "tasks/:taskId", element: <TaskPage /> },
      { path: "*", element: <NotFound /> },
    ],
  },
];

function NotFound() {
  return (
    <div className="page">
      <h2>No such page</h2>
      <p>
        <Link to="/">Back to the dashboard</Link>
      </p>
    </div>
  );
}
