/**
 * Ctrl-C during `vitkit train --task mae` (a real SIGINT to a child process), and SIGTERM as docker
 * stop sends it: it stops within a step, writes the resumable state and exits 130 / 143 with one line
 * on stderr; a temporary file a killed run left in the run folder is removed; --resume continues from
 * the next step, bit for bit as a run that was not interrupted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { stopBySignal, tmp, vitkit, withoutDeviceLine } from '../helpers.js';
import { readMaeRunState } from '../../src/train/mae_run.js';

for (const [sig, exit] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} during MAE pre-training stops within a step, saves, exits ${exit}, and resumes at the next step as an uninterrupted run`, async () => {
    const dir = tmp(), file = path.join(dir, 'x.safetensors'), N = 3000;
    const x = new Float32Array(N * 3 * 16 * 16); // (N, C, H, W)
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.013);
    writeSafetensors(file, { x: { shape: [N, 3, 16, 16], data: x } });
    const args = ['train', '--task', 'mae', '--model', 'mae_vit_tiny_patch4', '--img-size', '16', '--patch-size', '4', '--in-chans', '3', '--data', file, '--epochs', '1', '--batch-size', '1'];
    const out = path.join(dir, 'run');
    mkdirSync(out);
    const stale = 'model.safetensors.tmp-2147483646-abcdefabcdef'; // a dead writer's: cleaned at the start
    writeFileSync(path.join(out, stale), 'left by a killed run');
    const r = await stopBySignal([...args, '--out', out], sig, 400);
    assert.equal(r.signal, null, `the process handled ${sig}`);
    assert.equal(r.code, exit, `exit ${r.code}\n${r.out}\n${r.err}`);
    assert.ok(r.ms < 5000, `stopped ${r.ms} ms after the signal`);
    assert.match(r.err, /^device: cpu \(/m);
    assert.equal(withoutDeviceLine(r.err), 'Interrupted: finishing the current step and writing a resumable checkpoint...\n');
    const m = /Interrupted after (\d+) steps\. A resumable checkpoint is in .*run\. Continue with: vitkit train --task mae --resume .*run/.exec(r.out);
    assert.ok(m, r.out);
    const step = Number(m[1]);
    assert.ok(step > 0 && step < N, `stopped at step ${step}`);
    assert.ok(!readdirSync(out).includes(stale), 'the stale temporary file was removed');
    assert.deepEqual([...readdirSync(out), ...readdirSync(path.join(out, 'checkpoint'))].filter((f) => f.includes('.tmp-')), []);
    const st = readMaeRunState(out)!;
    assert.deepEqual([st.run.epoch, st.run.batch], [0, step]);
    const res = vitkit('train', '--resume', out, '--stop-after-steps', '1');
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, new RegExp(`Resuming .*run at epoch 1 of 1, step ${step + 1} of ${N}`));
    assert.equal(readMaeRunState(out)!.run.batch, step + 1);
    // the same steps in one go: the same weights and AdamW moments
    const straight = path.join(dir, 'straight');
    const s = vitkit(...args, '--out', straight, '--stop-after-steps', String(step + 1));
    assert.equal(s.code, 0, s.err);
    assert.ok(readFileSync(path.join(out, 'model.safetensors')).equals(readFileSync(path.join(straight, 'model.safetensors'))), 'model.safetensors identical');
    const state = (d: string) => { const f = readSafetensors(path.join(d, 'checkpoint', 'mae_train_state.safetensors')); return ['model', 'optimizer.exp_avg', 'optimizer.exp_avg_sq'].map((k) => f.f32(k).data); };
    assert.deepEqual(state(out), state(straight));
  });
}
