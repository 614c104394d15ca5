// Monaco runs its language services in web workers. GraphiQL's own
// setup-workers modules target Vite, webpack or a CDN (esm.sh); here each
// worker is a separate esbuild entry point (see build.mjs) served by the
// router next to this bundle, so the playground needs no network beyond
// its own origin and the Content-Security-Policy can stay at worker-src
// 'self' (no blob: workers). build.mjs replaces __MART_WORKERS__ with the
// hashed file names.
const files = __MART_WORKERS__;

globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    const file = files[label] ?? files.editor;
    return new Worker(new URL(file, import.meta.url), { name: label });
  },
};
