/**
 * Ctrl-C as a user sends it: a real SIGINT to a `vitkit train` child process on in-memory data
 * (an x/y tensor file) during its only, and so last, epoch. It must stop within a step, write a
 * resumable checkpoint, exit 130 (SIGTERM, as docker stop sends it: the same, exit 143) and say how to resume; the resume continues from that step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { BIN, tmp, vitkit } from '../helpers.js';

const ARCH = ['--model', 'vit_tiny_patch16_224', '--img-size', '16', '--patch-size', '8', '--embed-dim', '64', '--depth', '2', '--num-heads', '2'];

function data(file: string, n: number): void {
  const x = new Float32Array(n * 3 * 16 * 16);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.013);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) y[i] = BigInt(i % 3);
  writeSafetensors(file, { x: { shape: [n, 3, 16, 16], data: x }, y: { shape: [n], data: y } });
}

for (const [sig, workers, exit] of [['SIGINT', '0', 130], ['SIGINT', '1', 130], ['SIGTERM', '0', 143]] as const) test(`${sig} during the last epoch on in-memory data (--workers ${workers}) stops within a step, saves, and says how to resume`, async () => {
  const dir = tmp();
  const file = path.join(dir, 'xy.safetensors');
  const N = 4000;
  data(file, N);
  const out = path.join(dir, 'run');
  const child = spawn(process.execPath, [BIN, 'train', ...ARCH, '--data', file, '--epochs', '1', '--batch-size', '1', '--warmup-epochs', '0', '--workers', workers, '--out', out],
    { env: { ...process.env, VITKIT_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // wait until training has started, then a moment more
  const t0 = Date.now();
  while (!/^Data /m.test(stdout) && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 20));
  assert.match(stdout, /^Data /m, `training did not start: ${stderr}`);
  await new Promise((r) => setTimeout(r, 400));
  const sent = Date.now();
  child.kill(sig);
  const { code } = await exited;
  const took = Date.now() - sent;
  assert.equal(code, exit, `exit ${code}\n${stdout}\n${stderr}`);
  assert.ok(took < 5000, `stopped ${took} ms after the signal`);
  assert.match(stderr, /Interrupted: finishing the current step and writing a resumable checkpoint/);
  const m = /Interrupted at epoch 1, step (\d+) of (\d+)\. A resumable checkpoint is in .*run\.\nContinue with: vitkit train --resume .*run/.exec(stdout);
  assert.ok(m, stdout);
  const step = Number(m[1]);
  assert.equal(Number(m[2]), N);
  assert.ok(step > 0 && step < N, `stopped at step ${step} of ${N}`);
  const state = JSON.parse(readFileSync(path.join(out, 'checkpoint', 'train_state.json'), 'utf8')) as { epoch: number; batch: number; complete: boolean };
  assert.deepEqual([state.epoch, state.batch, state.complete], [0, step, false]);
  assert.ok(existsSync(path.join(out, 'model.safetensors')));
  // the resume picks up at the next step
  const r = vitkit('train', '--resume', out, '--stop-after-steps', '1');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`Resuming .*run at epoch 1 of 1, step ${step + 1} of ${N}`));
  assert.match(r.out, new RegExp(`Interrupted at epoch 1, step ${step + 1} of ${N}`));
});

test('--stop-after-steps at the last step of an epoch: the state resumes (it was refused by our own validator) and ends as an uninterrupted run, bit for bit', () => {
  const dir = tmp();
  const file = path.join(dir, 'xy.safetensors');
  data(file, 8);
  // 8 samples, batch 4: 2 steps an epoch
  const common = ['train', ...ARCH, '--data', file, '--epochs', '2', '--batch-size', '4', '--warmup-epochs', '0', '--val-split', '0.25'];
  const a = path.join(dir, 'a'), b = path.join(dir, 'b');
  const straight = vitkit(...common, '--out', a);
  assert.equal(straight.code, 0, straight.err);
  const stopped = vitkit(...common, '--out', b, '--stop-after-steps', '2');
  assert.equal(stopped.code, 0, stopped.err);
  const state = JSON.parse(readFileSync(path.join(b, 'checkpoint', 'train_state.json'), 'utf8')) as { epoch: number; batch: number; stepsPerEpoch: number; history: unknown[] };
  assert.deepEqual([state.epoch, state.batch, state.stepsPerEpoch, state.history.length], [0, 2, 2, 0]);
  const resumed = vitkit('train', '--resume', b);
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(resumed.out, /Resuming .*b at epoch 1 of 2, after its last step \(its validation comes first\)/);
  assert.ok(readFileSync(path.join(a, 'model.safetensors')).equals(readFileSync(path.join(b, 'model.safetensors'))), 'model.safetensors identical');
  // the moments too (the state file itself differs: it records wall-clock seconds)
  const moments = (d: string) => { const st = readSafetensors(path.join(d, 'checkpoint', 'train_state.safetensors')); return [st.f32('optimizer.exp_avg').data, st.f32('optimizer.exp_avg_sq').data]; };
  assert.deepEqual(moments(b), moments(a));
  const strip = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => { const { seconds: _s, img_s: _i, ...m } = JSON.parse(l) as Record<string, unknown>; return m; });
  assert.deepEqual(strip(path.join(b, 'metrics.jsonl')), strip(path.join(a, 'metrics.jsonl')));
});
