/**
 * Ctrl-C during `vitkit train --task mae` (a real SIGINT to a child process): it stops within a
 * step, writes the resumable state and exits 130; --resume continues from the next step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { BIN, tmp, vitkit } from '../helpers.js';
import { readMaeRunState } from '../../src/train/mae_run.js';

test('SIGINT during MAE pre-training stops within a step, saves, exits 130, and resumes at the next step', async () => {
  const dir = tmp(), file = path.join(dir, 'x.safetensors'), N = 3000;
  const x = new Float32Array(N * 3 * 16 * 16);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.013);
  writeSafetensors(file, { x: { shape: [N, 3, 16, 16], data: x } });
  const out = path.join(dir, 'run');
  const child = spawn(process.execPath, [BIN, 'train', '--task', 'mae', '--model', 'mae_vit_tiny_patch4', '--img-size', '16', '--patch-size', '4', '--in-chans', '3',
    '--data', file, '--epochs', '1', '--batch-size', '1', '--out', out], { env: { ...process.env, VITKIT_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const t0 = Date.now();
  while (!/^MAE pre-training/m.test(stdout) && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 20));
  assert.match(stdout, /^MAE pre-training/m, `training did not start: ${stderr}`);
  await new Promise((r) => setTimeout(r, 400));
  const sent = Date.now();
  child.kill('SIGINT');
  const code = await exited;
  assert.equal(code, 130, `exit ${code}\n${stdout}\n${stderr}`);
  assert.ok(Date.now() - sent < 5000);
  const m = /Interrupted after (\d+) steps\. A resumable checkpoint is in .*run\. Continue with: vitkit train --task mae --resume .*run/.exec(stdout);
  assert.ok(m, stdout);
  const step = Number(m[1]);
  assert.ok(step > 0 && step < N, `stopped at step ${step}`);
  const st = readMaeRunState(out)!;
  assert.deepEqual([st.run.epoch, st.run.batch], [0, step]);
  const r = vitkit('train', '--resume', out, '--stop-after-steps', '1');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`Resuming .*run at epoch 1 of 1, step ${step + 1} of ${N}`));
  assert.equal(readMaeRunState(out)!.run.batch, step + 1);
});
