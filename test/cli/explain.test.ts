/**
 * vitkit explain as a user meets it: PNGs of the input's size, JSON maps on the patch grid, the
 * no-class-token case, gradient-weighted rollout, and one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, REFS, vitkit, assertUserError, needRefs } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { initWeights, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-explain-'));
/** a 90x60 test picture: a gradient with a bright square */
const IMG = path.join(dir, 'pic.png');
const pixels = Buffer.alloc(90 * 60 * 3);
for (let y = 0; y < 60; y++) for (let x = 0; x < 90; x++) {
  const o = (y * 90 + x) * 3;
  const sq = x > 50 && x < 70 && y > 10 && y < 30;
  pixels[o] = sq ? 250 : x * 2; pixels[o + 1] = sq ? 240 : y * 3; pixels[o + 2] = 100;
}
await sharp(pixels, { raw: { width: 90, height: 60, channels: 3 } }).png().toFile(IMG);

async function size(file: string): Promise<[number, number]> {
  const m = await sharp(file).metadata();
  return [m.width!, m.height!];
}

test('explain writes rollout and per-head PNGs of the input image size and JSON maps on the patch grid', async () => {
  const out = path.join(dir, 'out1');
  const r = vitkit('explain', '-m', HF_DIR, IMG, '-o', out, '--json', '--head-fusion', 'max', '--discard-ratio', '0.5');
  assert.equal(r.code, 0, r.err);
  const [e] = JSON.parse(r.out) as { grid: number[]; token: string; rollout: number[][]; heads: number[][][]; files: Record<string, string>; head_fusion: string; discard_ratio: number }[];
  assert.deepEqual(e!.grid, [8, 8]);
  assert.equal(e!.token, 'cls');
  assert.equal(e!.head_fusion, 'max');
  assert.equal(e!.discard_ratio, 0.5);
  assert.equal(e!.rollout.length, 8);
  assert.ok(e!.rollout.every((row) => row.length === 8 && row.every((v) => v >= 0 && v <= 1)));
  assert.equal(e!.heads.length, 4);
  // each head's class-token row is a softmax row: its patch part sums to at most 1
  for (const h of e!.heads) {
    const s = h.flat().reduce((a, b) => a + b, 0);
    assert.ok(s > 0 && s <= 1 + 1e-6, `head map sum ${s}`);
  }
  assert.deepEqual(await size(path.join(out, 'pic.rollout.png')), [90, 60]);
  assert.deepEqual(await size(path.join(out, 'pic.heads.png')), [90, 60]);
  assert.equal(e!.files['rollout'], path.join(out, 'pic.rollout.png'));
  // text mode and the overwrite guard
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '-o', out), /Output .*pic\.rollout\.png already exists; pass --overwrite to replace it/);
  const t = vitkit('explain', '-m', HF_DIR, IMG, '-o', out, '--overwrite', '--colormap', 'inferno');
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /pic\.png: rollout \(mean over heads, discard 0\), hottest patch row \d+ col \d+ of 8x8/);
});

test('without a class token the map is the mean of the rollout rows over all tokens, and the output says so', () => {
  const ck = path.join(dir, 'gap');
  const config = resolveConfig({ img_size: 32, patch_size: 8, in_chans: 3, num_classes: 3, embed_dim: 16, depth: 2, num_heads: 2, class_token: false, global_pool: 'avg' });
  const m = new VisionTransformer(config);
  initWeights(m, 3);
  saveCheckpoint(ck, m, { name: 'vit_gap_test', pretrainedCfg: { input_size: [3, 32, 32], crop_pct: 1, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } });
  const r = vitkit('explain', '-m', ck, IMG, '--json');
  assert.equal(r.code, 0, r.err);
  const [e] = JSON.parse(r.out) as { token: string; note: string; rollout: number[][] }[];
  assert.equal(e!.token, 'mean');
  assert.match(e!.note, /no class token .* mean of the rows over all tokens/);
  // the rows of the rollout are distributions over the 16 patch tokens, so their mean sums to 1
  const s = e!.rollout.flat().reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(s - 1) < 1e-5, `map sum ${s}`);
  const t = vitkit('explain', '-m', ck, IMG, '-o', path.join(dir, 'gap-out'));
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /^note: the model has no class token \(global average pooling\)/);
});

test('grad-rollout explains a chosen class by index or label', () => {
  const r = vitkit('explain', '-m', HF_DIR, IMG, '--json', '--method', 'grad-rollout', '--class', 'cat');
  assert.equal(r.code, 0, r.err);
  const [e] = JSON.parse(r.out) as { method: string; target: { index: number; label: string }; rollout: number[][] }[];
  assert.equal(e!.method, 'grad-rollout');
  assert.deepEqual(e!.target, { index: 1, label: 'cat' });
  assert.ok(e!.rollout.flat().every((v) => v >= 0));
  const byIndex = JSON.parse(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--method', 'grad-rollout', '--class', '1').out);
  assert.deepEqual(byIndex[0].rollout, e!.rollout);
  const other = JSON.parse(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--method', 'grad-rollout', '--class', '3').out);
  assert.notDeepEqual(other[0].rollout, e!.rollout);
});

test('explain --json on the reference model finds the reference rollout\'s hottest patches', (t) => {
  if (!needRefs(t)) return;
  const ref = readSafetensors(path.join(REFS, 'timm_vit_tiny_ref.safetensors')).f32('rollout');
  const r = vitkit('explain', '-m', path.join(REFS, 'timm_vit_tiny'), path.join(REFS, 'images', 'astronaut.png'), path.join(REFS, 'images', 'chelsea.png'), '--json');
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { hottest: number[]; rollout: number[][] }[];
  const N = 197;
  res.forEach((e, b) => {
    const row = ref.data.subarray(b * N * N + 1, b * N * N + N);
    let want = 0;
    for (let j = 1; j < row.length; j++) if (row[j]! > row[want]!) want = j;
    assert.deepEqual(e.hottest, [Math.floor(want / 14), want % 14]);
    // the image pipeline matches timm's closely, so the maps agree closely too
    const flat = e.rollout.flat();
    let err = 0;
    for (let j = 0; j < flat.length; j++) err = Math.max(err, Math.abs(flat[j]! - row[j]!));
    assert.ok(err < 2e-3, `image ${b}: max |map - reference| ${err}`);
  });
});

test('explain errors are one line', () => {
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG), /Expected --out <dir> for the PNGs and\/or --json for the maps but received neither/);
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--discard-ratio', '1'), /Expected a number in \[0, 1\) for --discard-ratio but received "1"/);
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--head-fusion', 'median'), /Expected one of mean, max, min for --head-fusion but received "median"/);
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--class', 'cat'), /--class selects the class of gradient-weighted rollout; pass --method grad-rollout with it/);
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--method', 'grad-rollout', '--class', 'dog'), /Expected a class index in \[0, 4\] or one of the model's labels for --class but received "dog"/);
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '--json', '--method', 'grad-rollout', '--class', '7'), /Expected a class index in \[0, 4\] or a label for --class but received "7"/);
  assertUserError(vitkit('explain', '-m', HF_DIR, path.join(dir, 'missing.png'), '--json'), /Image file .*missing\.png does not exist/);
  const file = path.join(dir, 'afile');
  writeFileSync(file, 'x');
  assertUserError(vitkit('explain', '-m', HF_DIR, IMG, '-o', file), /Expected a folder for --out but .*afile is a file/);
  assert.ok(!existsSync(path.join(dir, 'missing.rollout.png')));
});
