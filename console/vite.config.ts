import { defineConfig } from 'vite';

// The console is served by the `console` function under /console/ (functions/console/main.py):
// index.html at /console/, hashed assets at /console/assets/<name>. Everything is bundled; the
// page loads nothing from anywhere but its own origin (the function's Content-Security-Policy
// allows only 'self').
export default defineConfig({
  base: '/console/',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // No data: URLs or inline assets: every file is a hashed asset the function serves.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` against `make dev`'s gateway, for working on the console itself.
    proxy: { '/api': 'http://127.0.0.1:8080', '/v1': 'http://127.0.0.1:8080' },
  },
});
