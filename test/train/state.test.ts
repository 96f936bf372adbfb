/** A tampered train_state.safetensors is refused field by field, with the file and field named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { VitkitError } from '../../src/errors.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { validateRunState } from '../../src/train/state.js';
import { readRunState } from '../../src/train/loop.js';
import { tmp, vitkit, assertUserError } from '../helpers.js';

const dir = tmp();
const data = path.join(dir, 'xy.safetensors');
const n = 10;
writeSafetensors(data, {
  x: { shape: [n, 1, 8, 8], data: Float32Array.from({ length: n * 64 }, (_, i) => Math.cos(i)) },
  y: { shape: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 2)) },
});
const out = path.join(dir, 'run');
const made = vitkit('train', '--model', 'vit_tiny_patch16_224', '--patch-size', '4', '--embed-dim', '8', '--depth', '1', '--num-heads', '2',
  '--data', data, '--epochs', '3', '--batch-size', '4', '--out', out, '--stop-after-steps', '4');
assert.equal(made.code, 0, made.err);
const STATE = path.join(out, 'checkpoint', 'train_state.safetensors');
const good = readRunState(out).run;

function tampered(edit: (r: Record<string, unknown>) => void): Record<string, unknown> {
  const r = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
  edit(r);
  return r;
}

function refused(edit: (r: Record<string, unknown>) => void, ...patterns: RegExp[]): void {
  assert.throws(() => validateRunState(tampered(edit), 'state.safetensors'), (e: unknown) => {
    assert.ok(e instanceof VitkitError, `expected VitkitError, got ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, /state\.safetensors/);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('the state a run writes validates as it is', () => {
  assert.deepEqual(validateRunState(JSON.parse(JSON.stringify(good)), 'x'), good);
  assert.deepEqual([good.epoch, good.batch, good.stepsPerEpoch], [1, 1, 3]);
});

test('each field is checked: types, ranges and consistency', () => {
  refused((r) => { (r['settings'] as Record<string, unknown>)['batchSize'] = '64'; }, /Expected an integer >= 1 for settings\.batchSize .* but received the string "64"/);
  refused((r) => { r['history'] = {}; }, /Expected an array of per-epoch metrics for history .* but received the object \{\}/);
  refused((r) => { delete (r['model'] as Record<string, unknown>)['config']; }, /Expected an object for model\.config .* but received nothing \(the field is missing\)/);
  refused((r) => { delete r['model']; }, /for model in .* received nothing/);
  refused((r) => { r['batch'] = 19; }, /Expected the steps done of the epoch, 0 to 3 \(stepsPerEpoch 3\) for batch .* but received 19/);
  refused((r) => { r['epoch'] = 3; }, /Expected at most settings\.epochs|Expected 3 entries|Expected 0 once every epoch is done/);
  refused((r) => { r['epoch'] = 9; }, /Expected at most settings\.epochs \(3\) for epoch .* but received 9/);
  refused((r) => { r['stepsPerEpoch'] = 7; }, /Expected 3 \(ceil\(trainSamples 10 \/ settings\.batchSize 4\)\) for stepsPerEpoch/);
  refused((r) => { (r['settings'] as Record<string, unknown>)['lr'] = null; }, /settings\.lr .* received null/);
  refused((r) => { (r['settings'] as Record<string, unknown>)['schedule'] = 'warp'; }, /one of cosine, constant for settings\.schedule/);
  refused((r) => { (r['history'] as Record<string, unknown>[])[0]!['train_loss'] = 'NaN'; }, /history\[0\]\.train_loss/);
  refused((r) => { (r['partial'] as Record<string, unknown>)['images'] = -1; }, /partial\.images/);
  refused((r) => { r['format'] = 'other'; }, /"vitkit-train-state" for format/);
  refused((r) => { (r['model'] as Record<string, unknown>)['labels'] = 'ab'; }, /an array of strings for model\.labels .* received the string "ab"/);
  refused((r) => { (r['rng'] as Record<string, unknown>)['seed'] = 5; }, /settings\.seed \(0\) for rng\.seed/);
});

test('train --resume on a tampered state: one line naming the field, exit 1', () => {
  const st = readSafetensors(STATE);
  const tensors: Record<string, StTensorIn> = {};
  for (const k of st.keys()) tensors[k] = { shape: st.entry(k).shape, data: st.f32(k).data };
  const run = tampered((r) => { (r['settings'] as Record<string, unknown>)['batchSize'] = '64'; });
  writeSafetensors(STATE, tensors, { ...st.metadata, run: JSON.stringify(run) }, { overwrite: true });
  const r = vitkit('train', '--resume', out);
  assert.equal(r.code, 1);
  assertUserError(r, /Expected an integer >= 1 for settings\.batchSize in .*train_state\.safetensors but received the string "64"/);
  // NaN in the saved moments
  const bad = { ...tensors, 'optimizer.exp_avg': { shape: tensors['optimizer.exp_avg']!.shape, data: new Float32Array(tensors['optimizer.exp_avg']!.data.length).fill(NaN) } };
  writeSafetensors(STATE, bad, { ...st.metadata }, { overwrite: true });
  assertUserError(vitkit('train', '--resume', out), /finite values in tensor "optimizer\.exp_avg"/);
  // a config in the state that asks for far more than the saved weights hold: refused before allocating
  // (written as a state from before checksums, which carry none, so that these checks are reached)
  const noSum: Record<string, string> = { ...st.metadata };
  delete noSum['checksum'];
  const deep = tampered((r) => { ((r['model'] as Record<string, unknown>)['config'] as { model_args: Record<string, unknown> }).model_args['depth'] = 1e7; });
  writeSafetensors(STATE, tensors, { ...noSum, run: JSON.stringify(deep) }, { overwrite: true });
  assertUserError(vitkit('train', '--resume', out), /depth of at most 1000 for model\.config in .*train_state\.safetensors but received 10000000/);
  const deeper = tampered((r) => { ((r['model'] as Record<string, unknown>)['config'] as { model_args: Record<string, unknown> }).model_args['depth'] = 3; });
  writeSafetensors(STATE, tensors, { ...noSum, run: JSON.stringify(deeper) }, { overwrite: true });
  assertUserError(vitkit('train', '--resume', out), /saved "model" tensor to hold the weights of model\.config/);
  writeSafetensors(STATE, tensors, { ...st.metadata, optimizer_step: 'x' }, { overwrite: true });
  assertUserError(vitkit('train', '--resume', out), /optimizer_step/);
});
