/**
 * Zero-shot classification (API and `vitkit zeroshot`) against open_clip's reference: with the
 * template "{}" and the four reference prompts as labels, the probabilities of the three sample
 * images are open_clip's `probs` (our preprocessing reproduces its pixel_values exactly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { REFS, maxAbsDiff, tmp, vitkit, assertUserError } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadClip } from '../../src/clip/load.js';
import { zeroShotClassifier, encodeText, encodeImage } from '../../src/clip/zeroshot.js';
import { normalizeRows } from '../../src/models/clip/model.js';
import { CLIP_DIR, skipClip } from './common.js';

const PROMPTS = ['a photo of a cat', 'a photo of an astronaut', 'a cup of coffee', 'a diagram'];
const IMAGES = ['astronaut', 'chelsea', 'coffee'].map((n) => path.join(REFS, 'images', `${n}.png`));

test('zeroShotClassifier probabilities equal open_clip probs; encodeImage/encodeText equal the reference embeddings', { skip: skipClip }, async () => {
  const ref = readSafetensors(path.join(CLIP_DIR, 'ref.safetensors'));
  const clip = loadClip(CLIP_DIR);
  const zs = zeroShotClassifier(clip, PROMPTS, ['{}']);
  const p = zs.probabilities(await encodeImage(clip, IMAGES));
  assert.ok(maxAbsDiff(p.data, ref.f32('probs').data) < 1e-5, `probs ${maxAbsDiff(p.data, ref.f32('probs').data)}`);
  assert.ok(maxAbsDiff(encodeText(clip, PROMPTS).data, ref.f32('text_embeds').data) < 1e-4);
  const top = await zs.classify(IMAGES, 2);
  assert.equal(top.length, 3);
  assert.equal(top[0]!.length, 2);
  assert.ok(top[0]![0]!.score >= top[0]![1]!.score);
});

test('prompt ensemble: templates averaged after normalisation, then renormalised', { skip: skipClip }, () => {
  const clip = loadClip(CLIP_DIR);
  const one = zeroShotClassifier(clip, ['cat', 'dog'], ['a photo of a {}.']);
  const twice = zeroShotClassifier(clip, ['cat', 'dog'], ['a photo of a {}.', 'a photo of a {}.']);
  assert.ok(maxAbsDiff(one.weights.data, twice.weights.data) < 1e-6);
  const ens = zeroShotClassifier(clip, ['cat'], ['a photo of a {}.', 'a {} in the wild']);
  const e = normalizeRows(encodeText(clip, ['a photo of a cat.', 'a cat in the wild']));
  const E = e.shape[1]!;
  const mean = Array.from({ length: E }, (_, i) => (e.data[i]! + e.data[E + i]!) / 2);
  const n = Math.hypot(...mean);
  assert.ok(maxAbsDiff(ens.weights.data, mean.map((v) => v / n)) < 1e-6);
  assert.throws(() => zeroShotClassifier(clip, ['cat'], ['no placeholder']), /has no \{\}/);
});

test('vitkit zeroshot --json with a labels file matches open_clip probs; bad input is a one-line error', { skip: skipClip }, () => {
  const ref = readSafetensors(path.join(CLIP_DIR, 'ref.safetensors')).f32('probs').data;
  const f = path.join(tmp(), 'labels.txt');
  writeFileSync(f, '# the reference prompts\n' + PROMPTS.join('\n') + '\n');
  const r = vitkit('zeroshot', '--model', CLIP_DIR, '--labels-file', f, '--template', '{}', '--top-k', '4', '--json', ...IMAGES);
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { image: string; top: { index: number; score: number }[] }[];
  res.forEach((row, b) => { for (const t of row.top) assert.ok(Math.abs(t.score - ref[b * 4 + t.index]!) < 1e-5); });
  const txt = vitkit('zeroshot', '--model', CLIP_DIR, '--labels', 'cat,dog', IMAGES[1]!);
  assert.equal(txt.code, 0, txt.err);
  assert.match(txt.out, /%\s+(cat|dog)/);
  assertUserError(vitkit('zeroshot', '--model', CLIP_DIR, IMAGES[1]!), /exactly one of --labels/);
  assertUserError(vitkit('zeroshot', '--model', path.join(REFS, 'timm_vit_tiny'), '--labels', 'a,b', IMAGES[1]!), /not a CLIP checkpoint/);
});

test('the package index exposes the CLIP API', async () => {
  const vk = await import('../../src/index.js') as Record<string, unknown>;
  for (const name of ['ClipModel', 'loadClip', 'saveClip', 'encodeImage', 'encodeText', 'zeroShotClassifier', 'ClipTrainer', 'clipLoss', 'hfKeyMap']) {
    assert.equal(typeof vk[name], 'function', name);
  }
});
