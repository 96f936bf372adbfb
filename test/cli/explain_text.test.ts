/**
 * vitkit explain --text on a CLIP checkpoint: one map per image per prompt (JSON and PNGs),
 * file names per prompt, the overwrite rule, no temporary files left, and the one-line errors
 * (a non-CLIP model with --text, --text with --class, --template alone, a CLIP model without --text).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, REFS, vitkit, assertUserError, tmp } from '../helpers.js';
import { CLIP_DIR, skipClip } from '../clip/common.js';
import { writeHfCopy } from '../clip/hf_copy.js';
import { loadClip } from '../../src/clip/load.js';
import { encodeImage } from '../../src/clip/zeroshot.js';
import { normalizeRows } from '../../src/models/clip/model.js';
import { textTargets } from '../../src/explain/clip.js';
import { promptSlugs, textOutputNames } from '../../src/cli/explain.js';

const CAT = path.join(REFS, 'images', 'chelsea.png');
const COFFEE = path.join(REFS, 'images', 'coffee.png');

interface TextResult {
  image: string; text: string; prompts: string[]; method: string; target: string; grid: number[]; token: string;
  similarity: number; logit: number; hottest: number[]; rollout: number[][]; heads: number[][][]; files?: { rollout: string; heads: string };
}

test('prompt slugs: readable, distinct within a run', () => {
  assert.deepEqual(promptSlugs(['a cat', 'A cat!', 'a-cat-2', '日本', 'Café au lait']), ['a-cat', 'a-cat-3', 'a-cat-2', 'text', 'cafe-au-lait']);
  const n = textOutputNames(['d1/x.png', 'd2/x.jpg'], ['a dog', 'a cat'], 'out');
  assert.deepEqual(n, [
    { rollouts: [path.join('out', 'x.a-dog.rollout.png'), path.join('out', 'x.a-cat.rollout.png')], heads: path.join('out', 'x.heads.png') },
    { rollouts: [path.join('out', 'x-1.a-dog.rollout.png'), path.join('out', 'x-1.a-cat.rollout.png')], heads: path.join('out', 'x-1.heads.png') },
  ]);
});

test('explain --text: one map per image per prompt; the score is the model\'s similarity logit; PNGs per prompt, written atomically, never over a file without --overwrite', { skip: skipClip }, async () => {
  const dir = tmp(), out = path.join(dir, 'maps');
  const r = vitkit('explain', '-m', CLIP_DIR, '--text', 'cat', '--text', 'a cup of coffee', '--template', 'a photo of a {}', '--template', 'a picture of a {}',
    '-o', out, '--json', CAT, COFFEE);
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as TextResult[];
  assert.equal(res.length, 4);
  assert.deepEqual(res.map((e) => [path.basename(e.image), e.text]), [['chelsea.png', 'cat'], ['chelsea.png', 'a cup of coffee'], ['coffee.png', 'cat'], ['coffee.png', 'a cup of coffee']]);
  assert.deepEqual(res[0]!.prompts, ['a photo of a cat', 'a picture of a cat']);
  // the similarity is the one of the prompt ensemble with the image, as the API computes it
  const clip = loadClip(CLIP_DIR);
  const targets = textTargets(clip, ['cat', 'a cup of coffee'], ['a photo of a {}', 'a picture of a {}']);
  const img = normalizeRows(await encodeImage(clip, [CAT, COFFEE]));
  const E = clip.model.config.embed_dim;
  for (let i = 0; i < 4; i++) {
    const e = res[i]!, b = i >> 1, t = targets[i & 1]!.embedding;
    let cos = 0;
    for (let k = 0; k < E; k++) cos += img.data[b * E + k]! * t[k]!;
    assert.ok(Math.abs(e.similarity - cos) < 1e-5, `${e.image} / ${e.text}: ${e.similarity} vs ${cos}`);
    assert.ok(Math.abs(e.logit - Math.exp(clip.model.logitScale) * e.similarity) < 1e-4);
    assert.equal(e.method, 'grad-rollout');
    assert.equal(e.target, 'logit');
    assert.deepEqual(e.grid, [4, 4]);
    assert.ok(e.rollout.flat().every((v) => v >= 0 && v <= 1));
    assert.equal(e.heads.length, 3);
  }
  // another prompt, another map (same image, same attention: only the gradient differs)
  const diff = (a: number[][], b: number[][]) => a.flat().reduce((m, v, k) => Math.max(m, Math.abs(v - b.flat()[k]!)), 0);
  assert.ok(diff(res[0]!.rollout, res[1]!.rollout) > 1e-4, 'two prompts gave the same map');
  assert.equal(diff(res[0]!.heads[0]!, res[1]!.heads[0]!), 0, 'the attention itself does not depend on the prompt');
  // the files: one overlay per prompt, one heads grid per image, the input's size, no temporaries
  const want = ['chelsea.a-cup-of-coffee.rollout.png', 'chelsea.cat.rollout.png', 'chelsea.heads.png', 'coffee.a-cup-of-coffee.rollout.png', 'coffee.cat.rollout.png', 'coffee.heads.png'];
  assert.deepEqual(readdirSync(out).sort(), want);
  assert.equal(res[0]!.files!.rollout, path.join(out, 'chelsea.cat.rollout.png'));
  const m = await sharp(path.join(out, 'chelsea.cat.rollout.png')).metadata();
  const o = await sharp(CAT).metadata();
  assert.deepEqual([m.width, m.height], [o.width, o.height]);
  // again without --overwrite: refused before anything is written, files untouched
  const before = want.map((f) => readFileSync(path.join(out, f)));
  const mt = statSync(path.join(out, 'coffee.cat.rollout.png')).mtimeMs;
  const r2 = vitkit('explain', '-m', CLIP_DIR, '--text', 'cat', '-o', out, COFFEE, CAT);
  assertUserError(r2, /^error: Output .*coffee\.cat\.rollout\.png already exists; pass --overwrite to replace it$/m);
  assert.equal(r2.code, 1);
  assert.equal(statSync(path.join(out, 'coffee.cat.rollout.png')).mtimeMs, mt);
  want.forEach((f, k) => assert.ok(readFileSync(path.join(out, f)).equals(before[k]!), `${f} changed`));
  // with --overwrite: replaced (a different prompt set: plain "cat" without templates gives another map)
  const r3 = vitkit('explain', '-m', CLIP_DIR, '--text', 'cat', '-o', out, '--overwrite', CAT);
  assert.equal(r3.code, 0, r3.err);
  assert.match(r3.out, /chelsea\.png: "cat" similarity -?\d\.\d{4} \(logit -?\d+\.\d{3}\), hottest patch row \d col \d of 4x4/);
  assert.ok(!readFileSync(path.join(out, 'chelsea.cat.rollout.png')).equals(before[1]!), 'not replaced');
  assert.deepEqual(readdirSync(out).sort(), want, 'a temporary file was left behind');
});

test('explain --text errors: a non-CLIP model, --text with --class, --template alone, --method rollout; an open_clip checkpoint needs --text', { skip: skipClip }, () => {
  const hf = path.join(FIXTURES, 'hf_vit_small');
  const r1 = vitkit('explain', '-m', hf, '--text', 'a cat', '--json', CAT);
  assertUserError(r1, new RegExp(`^error: --text explains a CLIP checkpoint toward a prompt, but ${hf.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not one \\(expected open_clip_config.json`, 'm'));
  assert.equal(r1.code, 1);
  const r2 = vitkit('explain', '-m', CLIP_DIR, '--text', 'a cat', '--class', '3', '--method', 'grad-rollout', '--json', CAT);
  assertUserError(r2, /^error: --class explains a classifier's class and --text a CLIP model's prompt; pass one of them$/m);
  assert.equal(r2.code, 2);
  const r3 = vitkit('explain', '-m', CLIP_DIR, '--template', 'a photo of a {}', '--json', CAT);
  assertUserError(r3, /^error: --template fills in the prompts of --text; pass --text with it$/m);
  assert.equal(r3.code, 2);
  const r4 = vitkit('explain', '-m', CLIP_DIR, '--text', 'a cat', '--method', 'rollout', '--json', CAT);
  assertUserError(r4, /^error: --text explains with gradient-weighted rollout toward the prompt; --method rollout does not use it$/m);
  assert.equal(r4.code, 2);
  const r5 = vitkit('explain', '-m', CLIP_DIR, '--json', CAT);
  assertUserError(r5, /is a CLIP checkpoint: pass --text <prompt> to explain what in each image matches it$/m);
  assert.equal(r5.code, 1);
  const r6 = vitkit('explain', '-m', CLIP_DIR, '--text', 'cat', '--template', 'a photo', '--json', CAT);
  assertUserError(r6, /^error: Expected --template with \{\} where the text goes but received "a photo"$/m);
});

test('explain --text on a Hugging Face CLIPModel (converted from the open_clip reference) gives the open_clip layout\'s maps; without --text its image tower is explained as before', { skip: skipClip }, () => {
  const hf = writeHfCopy(49407);
  const a = vitkit('explain', '-m', CLIP_DIR, '--text', 'a photo of a cat', '--text', 'a diagram', '--json', CAT);
  const b = vitkit('explain', '-m', hf, '--text', 'a photo of a cat', '--text', 'a diagram', '--json', CAT);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const ra = JSON.parse(a.out) as TextResult[], rb = JSON.parse(b.out) as TextResult[];
  assert.equal(rb.length, 2);
  for (let k = 0; k < 2; k++) {
    assert.ok(Math.abs(ra[k]!.similarity - rb[k]!.similarity) < 1e-5);
    const d = ra[k]!.rollout.flat().reduce((m, v, j) => Math.max(m, Math.abs(v - rb[k]!.rollout.flat()[j]!)), 0);
    assert.ok(d < 1e-5, `${ra[k]!.text}: maps differ by ${d}`);
  }
  const c = vitkit('explain', '-m', hf, '--json', CAT);
  assert.equal(c.code, 0, c.err);
  assert.equal((JSON.parse(c.out) as { method: string }[])[0]!.method, 'rollout');
});
