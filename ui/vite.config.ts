import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// `npm run dev` serves the UI with hot reload and sends API calls to an agent
// (HANGAR_URL, default the usual local one).
const agent = process.env.HANGAR_URL ?? 'http://127.0.0.1:7070';

export default defineConfig({
  plugins: [svelte()],
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
  server: { proxy: { '/api': { target: agent, changeOrigin: false } } },
  test: { include: ['src/**/*.test.ts'], environment: 'node' },
});
