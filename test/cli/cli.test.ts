/**
 * The command line as a user meets it: real processes, exit codes, one-line errors without stack
 * traces, and the outputs of predict / run / info checked against the references.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, copyFileSync, readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, REFS, maxAbsDiff, vitkit, assertUserError, tmp, needRefs } from '../helpers.js';
import { readSafetensors, writeSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');
const IMAGES = path.join(REFS, 'images');

test('info prints timm parameter counts and GMACs', () => {
  const tiny = JSON.parse(vitkit('info', '--json', 'vit_tiny_patch16_224').out);
  assert.equal((tiny.params / 1e6).toFixed(2), '5.72');
  assert.equal(tiny.gmacs.toFixed(2), '1.26');
  const base = JSON.parse(vitkit('info', '--json', 'vit_base_patch16_224').out);
  assert.equal((base.params / 1e6).toFixed(2), '86.57');
  assert.equal(base.gmacs.toFixed(2), '17.58');
  const text = vitkit('info', 'deit_small_patch16_224').out;
  assert.match(text, /params: 22\.05M/);
  assert.match(text, /384 px\s+577 tokens/);
});

test('run writes logits, hidden states and attentions that match transformers', () => {
  const dir = tmp();
  const ref = readSafetensors(path.join(HF_DIR, 'ref.safetensors'));
  const pv = ref.f32('pixel_values');
  const input = path.join(dir, 'in.safetensors');
  writeSafetensors(input, { pixel_values: { shape: pv.shape, data: pv.data } });
  const output = path.join(dir, 'out.safetensors');
  const r = vitkit('run', '--model', HF_DIR, '--input', input, '--output', output, '--outputs', 'logits,pre_logits,features,hidden_states,attentions');
  assert.equal(r.code, 0, r.err);
  const out = readSafetensors(output);
  assert.deepEqual(out.entry('pre_logits').shape, [2, 96]);
  assert.deepEqual(out.entry('features').shape, [2, 65, 96]);
  assert.ok(maxAbsDiff(out.f32('logits').data, ref.f32('logits').data) < 1e-4);
  for (let i = 0; i <= 3; i++) assert.ok(maxAbsDiff(out.f32(`hidden_states.${i}`).data, ref.f32(`hidden_states.${i}`).data) < 1e-4);
  for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(out.f32(`attentions.${i}`).data, ref.f32(`attentions.${i}`).data) < 1e-5);
  // never overwrite a user's file unless asked
  assertUserError(vitkit('run', '--model', HF_DIR, '--input', input, '--output', output), /already exists; pass --overwrite/);
  assert.equal(vitkit('run', '--model', HF_DIR, '--input', input, '--output', output, '--overwrite').code, 0);
});

test('predict --json gives top-k with labels and probabilities', (t) => {
  if (!needRefs(t, IMAGES)) return;
  const r = vitkit('predict', '--model', HF_DIR, '--top-k', '3', '--json', path.join(IMAGES, 'astronaut.png'), path.join(IMAGES, 'chelsea.png'));
  assert.equal(r.code, 0, r.err);
  const preds = JSON.parse(r.out) as { image: string; top: { index: number; label: string; score: number }[] }[];
  assert.equal(preds.length, 2);
  const ref = readSafetensors(path.join(HF_DIR, 'ref.safetensors')).f32('logits').data;
  for (let b = 0; b < 2; b++) {
    const row = Array.from(ref.subarray(b * 5, b * 5 + 5));
    const m = Math.max(...row), z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    const probs = row.map((v) => Math.exp(v - m) / z);
    const order = probs.map((p, i) => [p, i] as const).sort((a, c) => c[0] - a[0]).slice(0, 3);
    assert.deepEqual(preds[b]!.top.map((x) => x.index), order.map((o) => o[1]));
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(preds[b]!.top[k]!.score - order[k]![0]) < 1e-4);
    assert.equal(preds[b]!.top[0]!.label, ['astronaut', 'cat', 'coffee', 'rocket', 'camera'][order[0]![1]]);
  }
});

test('bad input: one-line errors and a non-zero exit', () => {
  const dir = tmp();
  assertUserError(vitkit('predict', '--model', HF_DIR, path.join(dir, 'missing.png')), /missing\.png/);
  const notImage = path.join(dir, 'notes.png');
  writeFileSync(notImage, 'this is not an image');
  assertUserError(vitkit('predict', '--model', HF_DIR, notImage), /notes\.png/);
  assertUserError(vitkit('predict', '--model', 'vit_gigantic_patch3_999', notImage), /Unknown preset "vit_gigantic_patch3_999"/);
  assertUserError(vitkit('info', 'no/such/dir'), /not found/);

  // a checkpoint dir with a truncated safetensors file
  const trunc = path.join(dir, 'trunc');
  mkdirSync(trunc);
  copyFileSync(path.join(HF_DIR, 'config.json'), path.join(trunc, 'config.json'));
  const bytes = readFileSync(path.join(HF_DIR, 'model.safetensors'));
  writeFileSync(path.join(trunc, 'model.safetensors'), bytes.subarray(0, bytes.length - 1000));
  assertUserError(vitkit('info', trunc), /truncated/);

  // missing, extra and wrongly-shaped tensors are named
  const ref = readSafetensors(path.join(HF_DIR, 'model.safetensors'));
  const write = (name: string, edit: (t: Record<string, { shape: number[]; data: Float32Array }>) => void) => {
    const d = path.join(dir, name);
    mkdirSync(d);
    copyFileSync(path.join(HF_DIR, 'config.json'), path.join(d, 'config.json'));
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const k of ref.keys()) tensors[k] = ref.f32(k);
    edit(tensors);
    writeFileSync(path.join(d, 'model.safetensors'), serializeSafetensors(tensors));
    return d;
  };
  const missing = write('missing', (t) => { delete t['vit.layernorm.weight']; });
  assertUserError(vitkit('info', missing), /Missing tensor in .*model\.safetensors: norm\.weight/);
  const extra = write('extra', (t) => { t['vit.extra.weight'] = { shape: [2], data: new Float32Array(2) }; });
  assertUserError(vitkit('info', extra), /Unexpected tensor in .*: vit\.extra\.weight/);
  const shape = write('shape', (t) => { t['classifier.weight'] = { shape: [5, 95], data: new Float32Array(5 * 95) }; });
  assertUserError(vitkit('info', shape), /Wrong shape for tensor head\.weight .*expected \(5, 96\) but received \(5, 95\)/);

  // channel-count mismatch in pixel_values
  const input = path.join(dir, 'gray.safetensors');
  writeSafetensors(input, { pixel_values: { shape: [1, 1, 64, 64], data: new Float32Array(64 * 64) } });
  assertUserError(vitkit('run', '--model', HF_DIR, '--input', input, '--output', path.join(dir, 'o.safetensors')),
    /Input has 1 channels but the model expects in_chans 3/);
  assertUserError(vitkit('run', '--model', HF_DIR, '--input', input, '--output', path.join(dir, 'o.safetensors'), '--outputs', 'logits,nope'),
    /Unknown output "nope"/);
  assertUserError(vitkit('predict', '--model', HF_DIR, '--top-k', '0', notImage), /Expected an integer >= 1 for --top-k but received "0"/);
});

test('--help works on every command', () => {
  for (const cmd of ['predict', 'run', 'info']) {
    const r = vitkit(cmd, '--help');
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`Usage: vitkit ${cmd}`));
  }
});
