/**
 * `vitkit index` / `vitkit search` and the ClipIndex API: scores are cosine similarities of
 * open_clip's reference embeddings (ref.safetensors image_embeds / text_embeds); re-indexing
 * embeds only new or changed files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { copyFileSync, utimesSync, writeFileSync } from 'node:fs';
import { REFS, tmp, vitkit, assertUserError } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readClipIndex } from '../../src/clip/image_index.js';
import { CLIP_DIR, skipClip } from './common.js';

const NAMES = ['astronaut', 'chelsea', 'coffee'];

function unit(v: Float32Array): number[] {
  const n = Math.hypot(...v);
  return Array.from(v, (x) => x / n);
}

test('vitkit index + search: cosine scores of the reference embeddings, image query, incremental re-index', { skip: skipClip }, () => {
  const ref = readSafetensors(path.join(CLIP_DIR, 'ref.safetensors'));
  const img = ref.f32('image_embeds').data, txt = ref.f32('text_embeds').data;
  const dir = tmp();
  for (const n of NAMES) copyFileSync(path.join(REFS, 'images', `${n}.png`), path.join(dir, `${n}.png`));
  const out = path.join(tmp(), 'index.safetensors');
  const a = vitkit('index', '--model', CLIP_DIR, dir, '--out', out);
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /indexed 3 images .*\(3 embedded, 0 unchanged\)/);
  const s = vitkit('search', '--index', out, '--json', 'a photo of a cat');
  assert.equal(s.code, 0, s.err);
  const hits = JSON.parse(s.out) as { path: string; score: number }[];
  assert.equal(hits.length, 3);
  const t0 = unit(txt.subarray(0, 64));
  for (const h of hits) {
    const b = NAMES.indexOf(path.basename(h.path, '.png'));
    const want = unit(img.subarray(b * 64, (b + 1) * 64)).reduce((acc, v, e) => acc + v * t0[e]!, 0);
    assert.ok(Math.abs(h.score - want) < 1e-5, `${h.path}: ${h.score} vs ${want}`);
  }
  assert.ok(hits[0]!.score >= hits[1]!.score && hits[1]!.score >= hits[2]!.score);
  const q = vitkit('search', '--index', out, '--image', path.join(REFS, 'images', 'chelsea.png'), '--top-k', '1', '--json');
  assert.equal(q.code, 0, q.err);
  const top = JSON.parse(q.out) as { path: string; score: number }[];
  assert.equal(path.basename(top[0]!.path), 'chelsea.png');
  assert.ok(Math.abs(top[0]!.score - 1) < 1e-5);
  // incremental: nothing changed, then one file touched
  const b = vitkit('index', '--model', CLIP_DIR, dir, '--out', out);
  assert.match(b.out, /\(0 embedded, 3 unchanged\)/);
  utimesSync(path.join(dir, 'coffee.png'), new Date(), new Date(Date.now() + 5000));
  const c = vitkit('index', '--model', CLIP_DIR, dir, '--out', out);
  assert.match(c.out, /\(1 embedded, 2 unchanged\)/);
  assert.equal(readClipIndex(out).size, 3);
  const other = path.join(tmp(), 'notes.safetensors');
  writeFileSync(other, 'x');
  assertUserError(vitkit('index', '--model', CLIP_DIR, dir, '--out', other), /not a vitkit CLIP index/);
  assertUserError(vitkit('search', '--index', out), /a text query or --image/);
});
