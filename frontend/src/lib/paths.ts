// The UI's URLs (the route table is routes.tsx).
export const NAV = [
  { path: "/", label: "Dashboard" },
  { path: "/create", label: "Create New Task" },
  { path: "/ongoing", label: "Ongoing Tasks" },
  { path: "/completed", label: "Completed Tasks" },
  { path: "/usage", label: "Usage" },
] as const;

export const taskPath = (taskId: string) => `/tasks/${encodeURIComponent(taskId)}`;
