// Builds the playground into ../router/playground/dist, which the router
// embeds (go:embed) and serves: index.html at / (and at /graphql for
// browsers), everything else under /playground/ with content-hashed names.
// Run through `make playground` (npm ci, then this script).
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'router', 'playground', 'dist');
const assets = join(dist, 'assets');

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  legalComments: 'none',
  target: ['es2022'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

// Monaco's workers: the generic editor worker and the two language
// services GraphiQL uses. Classic (IIFE) workers, same origin.
const workers = await esbuild.build({
  ...common,
  format: 'iife',
  entryPoints: {
    'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
    'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
    'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
  },
});
const workerFiles = {};
for (const [out, meta] of Object.entries(workers.metafile.outputs)) {
  if (meta.entryPoint) {
    const label = basename(out).replace(/\.worker-.*$/, '');
    workerFiles[label] = basename(out);
  }
}

const app = await esbuild.build({
  ...common,
  format: 'esm',
  entryPoints: { main: join(here, 'src', 'main.jsx') },
  jsx: 'automatic',
  loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.png': 'file' },
  define: { ...common.define, __MART_WORKERS__: JSON.stringify(workerFiles) },
});
let script, style;
for (const [out, meta] of Object.entries(app.metafile.outputs)) {
  if (meta.entryPoint && out.endsWith('.js')) script = basename(out);
  if (out.endsWith('.css')) style = basename(out);
}
if (!script || !style) throw new Error('build: main script or stylesheet missing');

// The page has no inline script or style, so the CSP needs no
// 'unsafe-inline' for scripts. Asset paths are relative: the page works at
// / and at /graphql, and behind a proxy prefix.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Online Mart · GraphQL playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="playground/${style}">
<script type="module" src="playground/${script}"></script>
</head>
<body>
<div id="graphiql"></div>
</body>
</html>
`;
writeFileSync(join(dist, 'index.html'), html);

// A manifest of what was built, for reviewers: file, size, sha256.
const files = [...Object.keys(workers.metafile.outputs), ...Object.keys(app.metafile.outputs)]
  .filter((f) => !f.endsWith('.map'))
  .map((f) => {
    const data = readFileSync(f);
    return { file: basename(f), bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  })
  .sort((a, b) => a.file.localeCompare(b.file));
let total = 0;
for (const f of files) {
  total += f.bytes;
  console.log(`${f.file.padEnd(40)} ${(f.bytes / 1024).toFixed(0).padStart(6)} KiB`);
}
console.log(`total ${(total / 1024 / 1024).toFixed(2)} MiB in ${dist}`);
