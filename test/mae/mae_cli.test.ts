/**
 * `vitkit train --task mae` end to end against facebookresearch/mae's float64 training reference
 * (test/fixtures/mae/train_ref.safetensors): 3 AdamW steps on --data holding x and noise, the saved
 * MAE checkpoint under the refs README's after-3 rule; a run stopped after one step and resumed equals
 * the uninterrupted run bit for bit; bad input exits 1 or 2 with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, cliInProcess, tmp } from '../helpers.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadMae } from '../../src/mae/load.js';
import { checkAfter3Rule } from './checks.js';

const DIR = path.join(FIXTURES, 'mae');
const tr = readSafetensors(path.join(DIR, 'train_ref.safetensors'));

function dataFile(): string {
  const f = path.join(tmp(), 'mae_batch.safetensors');
  writeSafetensors(f, { x: tr.f32('x'), noise: tr.f32('noise') });
  return f;
}

const ARGS = ['--task', 'mae', '--model', DIR, '--batch-size', '2', '--lr', '1e-3', '--schedule', 'constant', '--warmup-epochs', '0', '--weight-decay', '0.05', '--no-shuffle', '--epochs', '3'];

test('vitkit train --task mae: 3 steps on x + noise = the float64 reference under the after-3 rule; curves.png and metrics written', async (t) => {
  const data = dataFile(), out = path.join(tmp(), 'run');
  const r = await cliInProcess(['train', ...ARGS, '--data', data, '--out', out]);
  assert.equal(r.code, 0, r.err);
  const model = loadMae(out);
  t.diagnostic(checkAfter3Rule(model.params.names(), (n) => model.params.get(n), tr, 1e-3, 1e-8));
  for (const f of ['curves.png', 'metrics.jsonl', 'mae_config.json', path.join('checkpoint', 'mae_train_state.safetensors')]) assert.ok(existsSync(path.join(out, f)), f);
  const losses = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { train_loss: number }).train_loss);
  const ref = tr.f32('losses').data;
  losses.forEach((l, i) => assert.ok(Math.abs(l - ref[i]!) <= 1e-5, `epoch ${i + 1} loss ${l} vs ${ref[i]}`));
});

test('a MAE run stopped after 1 step and resumed gives the uninterrupted run\'s weights exactly', async () => {
  const a = path.join(tmp(), 'a'), b = path.join(tmp(), 'b');
  const common = ['train', '--task', 'mae', '--model', 'mae_vit_tiny_patch4', '--img-size', '32', '--patch-size', '8', '--in-chans', '3', '--batch-size', '1', '--epochs', '2', '--seed', '3'];
  // without noise in the file: the masking comes from the seeded generator, and the data is shuffled
  const noNoise = path.join(tmp(), 'x.safetensors');
  writeSafetensors(noNoise, { x: tr.f32('x') });
  assert.equal((await cliInProcess([...common, '--data', noNoise, '--out', a])).code, 0);
  const r1 = await cliInProcess([...common, '--data', noNoise, '--out', b, '--stop-after-steps', '3']);
  assert.equal(r1.code, 0, r1.err);
  assert.match(r1.out, /Interrupted after 3 steps/);
  // the layout of a run folder from before checkpoint/: the state beside model.safetensors (still read; the next save moves it)
  renameSync(path.join(b, 'checkpoint', 'mae_train_state.safetensors'), path.join(b, 'mae_train_state.safetensors'));
  const r2 = await cliInProcess(['train', '--resume', b]);
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.out, /Resuming .* at epoch 2 of 2, step 2 of 2/);
  assert.ok(existsSync(path.join(b, 'checkpoint', 'mae_train_state.safetensors')) && !existsSync(path.join(b, 'mae_train_state.safetensors')), 'the state moved into checkpoint/');
  const ma = loadMae(a), mb = loadMae(b);
  assert.deepEqual(ma.params.buffer, mb.params.buffer);
});

test('train --task mae bad input: one line, exit 1 / 2', async () => {
  const data = dataFile();
  const r = await cliInProcess(['train', ...ARGS, '--data', data, '--out', path.join(tmp(), 'o'), '--mask-ratio', '1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--mask-ratio/);
  const bad = path.join(tmp(), 'bad.safetensors');
  writeSafetensors(bad, { x: tr.f32('x'), noise: { shape: [2, 15], data: new Float32Array(30) } });
  const r2 = await cliInProcess(['train', ...ARGS, '--data', bad, '--out', path.join(tmp(), 'o2')]);
  assert.equal(r2.code, 1);
  assert.match(r2.err, /Expected noise of shape \(2, 16\) in .*bad.safetensors .* but received \(2, 15\)/);
  const r3 = await cliInProcess(['train', '--task', 'mae', '--model', 'mae_vit_tiny_patch4', '--img-size', '30', '--patch-size', '8', '--data', data, '--out', path.join(tmp(), 'o3')]);
  assert.equal(r3.code, 1);
  assert.match(r3.err, /img_size 30 is not divisible by patch_size 8/);
});

test('train --task mae on an image folder (RandomResizedCrop 0.2-1 + flip, labels ignored) trains and reconstructs', async () => {
  const root = tmp();
  const { mkdirSync, copyFileSync } = await import('node:fs');
  mkdirSync(path.join(root, 'any'));
  for (const f of ['timm_astronaut.png', 'timm_chelsea.png', 'hf_astronaut.png', 'hf_chelsea.png']) copyFileSync(path.join(FIXTURES, 'preprocess', f), path.join(root, 'any', f));
  const out = path.join(tmp(), 'fold');
  const r = await cliInProcess(['train', '--task', 'mae', '--model', 'mae_vit_tiny_patch4', '--img-size', '32', '--patch-size', '8', '--in-chans', '3',
    '--data', root, '--batch-size', '2', '--epochs', '2', '--workers', '0', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /lr 1\.172e-6 \(base lr 0\.00015 x batch 2 \/ 256\)/);
  const m = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(m.length, 2);
  const rec = await cliInProcess(['reconstruct', '--model', out, '--out', path.join(tmp(), 'rec'), '--json', path.join(root, 'any', 'hf_chelsea.png')]);
  assert.equal(rec.code, 0, rec.err);
  assert.ok(Number.isFinite((JSON.parse(rec.out) as { loss: number }).loss));
});
