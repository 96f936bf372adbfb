#!/usr/bin/env node
// The vitkit command: runs the compiled CLI (dist/), built by `npm install` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('error: vitkit is not built (dist/ is missing). Run `npm install` or `npm run build` in the vitkit folder.');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv);
