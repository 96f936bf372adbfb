#!/usr/bin/env node
/**
 * Installs the benchmark's own dependency (bench/package.json: onnxruntime-node, 290 MB) when it is
 * missing, so that the package itself and `npm install` in the repository do not carry it.
 * ONNXRUNTIME_NODE_INSTALL=skip stops onnxruntime-node's postinstall from downloading the CUDA
 * execution provider (the benchmark runs on the CPU).
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bench');
if (!existsSync(path.join(BENCH, 'node_modules', 'onnxruntime-node', 'package.json'))) {
  console.error('installing the benchmark dependency (bench/package.json: onnxruntime-node) ...');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], {
    cwd: BENCH, stdio: 'inherit', shell: process.platform === 'win32', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
  if (r.status !== 0) {
    console.error(`error: npm ci in ${BENCH} failed (exit ${r.status ?? r.signal}); the benchmark runs without onnxruntime`);
  }
}
