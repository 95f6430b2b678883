/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands inside the Python package, which `ant serve` serves at /.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/ant_scheduler/web",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: { "/api": { target: "https://127.0.0.1:6060", secure: false } },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
