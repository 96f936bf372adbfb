/**
 * vitkit embed and vitkit fewshot end to end on the small fixture model, plus embeddings of the
 * reference model against timm's pre_logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, REFS, vitkit, assertUserError, needRefs, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { embedFiles } from '../../src/embed/embed.js';

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-embed-'));
/** support/<class>/<i>.png: class "red" reddish squares, class "blue" bluish, with noise; queries likewise */
async function picture(file: string, rgb: [number, number, number], seed: number) {
  const px = Buffer.alloc(40 * 40 * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = Math.max(0, Math.min(255, rgb[i % 3]! + ((s >>> 16) % 61) - 30));
  }
  await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(file);
}
const SUP = path.join(dir, 'support');
for (const [cls, rgb] of [['blue', [20, 40, 230]], ['red', [230, 30, 20]]] as const) {
  mkdirSync(path.join(SUP, cls), { recursive: true });
  for (let i = 0; i < 3; i++) await picture(path.join(SUP, cls, `${i}.png`), [...rgb], 10 * i + rgb[0]);
}
const Q = path.join(dir, 'queries');
mkdirSync(path.join(Q, 'sub'), { recursive: true });
await picture(path.join(Q, 'q-red.png'), [240, 40, 30], 777);
await picture(path.join(Q, 'sub', 'q-blue.png'), [30, 50, 240], 999);

test('embed writes safetensors with names in the metadata, and jsonl with a name per line', () => {
  const st = path.join(dir, 'e.safetensors');
  const r = vitkit('embed', '-m', HF_DIR, Q, path.join(SUP, 'red', '0.png'), '--out', st);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote 3 embeddings of 96 values to /);
  const f = readSafetensors(st);
  const e = f.f32('embeddings');
  assert.deepEqual(e.shape, [3, 96]);
  // folders are searched recursively, in sorted order, after which come the files as given
  assert.deepEqual(JSON.parse(f.metadata['names']!), [path.join(Q, 'q-red.png'), path.join(Q, 'sub', 'q-blue.png'), path.join(SUP, 'red', '0.png')]);
  assert.equal(f.metadata['normalized'], 'false');

  const jl = path.join(dir, 'e.jsonl');
  assert.equal(vitkit('embed', '-m', HF_DIR, Q, path.join(SUP, 'red', '0.png'), '--out', jl, '--normalize').code, 0);
  const lines = readFileSync(jl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; embedding: number[] });
  assert.equal(lines.length, 3);
  lines.forEach((l, i) => {
    assert.equal(l.name, JSON.parse(f.metadata['names']!)[i]);
    const raw = e.data.subarray(i * 96, (i + 1) * 96);
    const norm = Math.hypot(...raw);
    assert.ok(Math.abs(Math.hypot(...l.embedding) - 1) < 1e-6);
    l.embedding.forEach((v, j) => assert.ok(Math.abs(v - raw[j]! / norm) < 1e-6));
  });
});

test('embed refuses to overwrite --out without --overwrite and pins its errors', () => {
  const out = path.join(dir, 'exists.jsonl');
  writeFileSync(out, 'keep\n');
  assertUserError(vitkit('embed', '-m', HF_DIR, Q, '--out', out), /Output .*exists\.jsonl already exists; pass --overwrite to replace it/);
  assert.equal(readFileSync(out, 'utf8'), 'keep\n');
  assert.equal(vitkit('embed', '-m', HF_DIR, Q, '--out', out, '--overwrite').code, 0);
  assert.notEqual(readFileSync(out, 'utf8'), 'keep\n');
  assertUserError(vitkit('embed', '-m', HF_DIR, Q, '--out', path.join(dir, 'e.npy')), /Expected an --out file ending in \.safetensors or \.jsonl but received ".*e\.npy"/);
  assertUserError(vitkit('embed', '-m', HF_DIR, path.join(dir, 'nope'), '--out', path.join(dir, 'x.jsonl')), /Image file or folder .*nope does not exist/);
  const empty = path.join(dir, 'empty');
  mkdirSync(empty, { recursive: true });
  assertUserError(vitkit('embed', '-m', HF_DIR, empty, '--out', path.join(dir, 'x.jsonl')), /Expected image files .* in folder .*empty but received none/);
  assert.ok(!existsSync(path.join(dir, 'x.jsonl')));
});

test('fewshot picks the nearest class prototype and reports cosine scores', () => {
  const r = vitkit('fewshot', '-m', HF_DIR, '--support', SUP, path.join(Q, 'q-red.png'), path.join(Q, 'sub', 'q-blue.png'), '--json');
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { image: string; prediction: string; scores: { class: string; score: number }[] }[];
  assert.deepEqual(res.map((x) => x.prediction), ['red', 'blue']);
  for (const x of res) {
    assert.deepEqual(x.scores.map((s) => s.class).sort(), ['blue', 'red']);
    assert.ok(x.scores[0]!.score >= x.scores[1]!.score);
    assert.ok(x.scores.every((s) => s.score >= -1 && s.score <= 1));
  }
  const t = vitkit('fewshot', '-m', HF_DIR, '-s', SUP, path.join(Q, 'q-red.png'));
  assert.match(t.out, /^support: 2 classes \(blue 3, red 3\)\n.*q-red\.png: red\n/);
  assertUserError(vitkit('fewshot', '-m', HF_DIR, '-s', path.join(dir, 'nope'), path.join(Q, 'q-red.png')), /Expected an image folder for .*nope but received a path that does not exist/);
  mkdirSync(path.join(dir, 'sup2', 'a'), { recursive: true });
  mkdirSync(path.join(dir, 'sup2', 'b'), { recursive: true });
  writeFileSync(path.join(dir, 'sup2', 'a', 'notes.txt'), 'x');
  assertUserError(vitkit('fewshot', '-m', HF_DIR, '-s', path.join(dir, 'sup2'), path.join(Q, 'q-red.png')), /Class folder .*sup2.a has no images: expected files ending in \.jpg/);
  assertUserError(vitkit('fewshot', '-m', HF_DIR, '-s', Q, path.join(Q, 'q-red.png')), /Expected at least 2 class folders in the support set .*queries .* but received 1: sub/);
});

test('embeddings of the reference images agree with timm\'s pre_logits', async (t) => {
  if (!needRefs(t)) return;
  const ref = readSafetensors(path.join(REFS, 'timm_vit_tiny_ref.safetensors')).f32('pre_logits');
  const loaded = loadModel(path.join(REFS, 'timm_vit_tiny'));
  const { data, dim } = await embedFiles(loaded, ['astronaut.png', 'chelsea.png'].map((f) => path.join(REFS, 'images', f)));
  assert.equal(dim, 192);
  // the pixels are PIL-exact (test/io/preprocess.test.ts: max diff <= 1e-6), so the embedding is timm's
  // pre_logits within the reference tolerance for features (1e-4 absolute, shared/refs/README.md)
  assert.equal(data.length, ref.data.length);
  const err = maxAbsDiff(data, ref.data);
  t.diagnostic(`embed vs timm pre_logits: max abs diff ${err.toExponential(3)}`);
  assert.ok(err <= 1e-4, `embedding differs from timm's pre_logits by ${err}`);
});
