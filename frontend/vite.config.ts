/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands inside the Python package, which `ant serve` serves at / (index.html) and at
// /api/docs (docs.html: Swagger UI from swagger-ui-dist, served by ANT itself).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/ant_scheduler/web",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    license: true, // .vite/license.md: the licenses of everything bundled (swagger-ui: Apache-2.0)
    rolldownOptions: {
      input: { index: "index.html", docs: "docs.html" },
    },
  },
  server: {
    proxy: { "/api": { target: "https://127.0.0.1:6060", secure: false } },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
