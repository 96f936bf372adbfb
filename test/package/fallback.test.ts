/**
 * A platform without a prebuild (or with an addon that does not load): the default backend falls back
 * to the reference (TypeScript) one with one line of notice instead of failing at first use. The
 * package is copied without build/ and prebuilds/, so no addon can be found.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES, ROOT } from '../helpers.js';

test('no native addon: predict runs on the reference backend after one line of notice, with the native results', () => {
  const pkg = mkdtempSync(path.join(tmpdir(), 'vitkit-noaddon-'));
  for (const d of ['bin', 'dist', 'data', 'package.json']) cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
  const img = path.join(FIXTURES, 'preprocess');
  const args = ['predict', '-m', path.join(FIXTURES, 'hf_vit_small'), '--json', '-k', '3'];
  const pick = spawnSync('sh', ['-c', `ls ${img}/*.png ${img}/*.jpg 2>/dev/null | head -1`], { encoding: 'utf8' }).stdout.trim();
  assert.ok(pick, 'a fixture image');
  const without = spawnSync(process.execPath, [path.join(pkg, 'bin', 'vitkit.js'), ...args, pick], { encoding: 'utf8' });
  assert.equal(without.status, 0, without.stderr);
  const lines = without.stderr.trim().split('\n');
  assert.equal(lines.length, 2, without.stderr);
  assert.match(lines[0]!, /^vitkit: No native addon for this machine in .* Using the reference \(TypeScript\) backend instead/);
  assert.equal(lines[1], 'device: cpu (plain-TypeScript reference kernels)', 'the device line names the backend that ran');
  const withAddon = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitkit.js'), ...args, pick], { encoding: 'utf8' });
  assert.equal(withAddon.status, 0, withAddon.stderr);
  assert.match(withAddon.stderr, /^device: cpu \(native \S+ kernels/);
  const [a, b] = [JSON.parse(without.stdout), JSON.parse(withAddon.stdout)] as { top: { index: number; score: number }[] }[][];
  assert.deepEqual(a![0]!.top.map((t) => t.index), b![0]!.top.map((t) => t.index));
  assert.ok(Math.abs(a![0]!.top[0]!.score - b![0]!.top[0]!.score) < 1e-5);
});
