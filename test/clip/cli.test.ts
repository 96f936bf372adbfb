/**
 * The CLIP command lines: `vitkit run` on a CLIP checkpoint (outputs vs open_clip's reference) and
 * `vitkit train --task clip` on image–caption pairs (tsv and captions.jsonl folder), saved in the
 * layout it was loaded from, resumed exactly after a stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { REFS, maxAbsDiff, tmp, vitkit, assertUserError } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadClip } from '../../src/clip/load.js';
import { CLIP_DIR, skipClip } from './common.js';
import { writeHfCopy } from './hf_copy.js';

test('vitkit run --outputs image_embeds,text_embeds,logits_per_image on a CLIP checkpoint matches open_clip', { skip: skipClip }, () => {
  const out = path.join(tmp(), 'out.safetensors');
  const ref = path.join(CLIP_DIR, 'ref.safetensors');
  const r = vitkit('run', '--model', CLIP_DIR, '--input', ref, '--outputs', 'image_embeds,text_embeds,logits_per_image', '-o', out);
  assert.equal(r.code, 0, r.err);
  const got = readSafetensors(out), want = readSafetensors(ref);
  for (const k of ['image_embeds', 'text_embeds', 'logits_per_image']) {
    assert.deepEqual(got.entry(k).shape, want.entry(k).shape);
    assert.ok(maxAbsDiff(got.f32(k).data, want.f32(k).data) < 1e-4, k);
  }
  assertUserError(vitkit('run', '--model', CLIP_DIR, '--input', ref, '--outputs', 'logits', '-o', path.join(tmp(), 'x.safetensors')), /not available for the CLIP model/);
});

function tsvData(): string {
  const dir = tmp();
  const lines = [['astronaut', 'a photo of an astronaut'], ['chelsea', 'a photo of a cat'], ['coffee', 'a cup of coffee'], ['astronaut', 'an astronaut in a suit']]
    .map(([f, c]) => `${path.join(REFS, 'images', `${f}.png`)}\t${c}`);
  const file = path.join(dir, 'pairs.tsv');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

test('vitkit train --task clip: trains, saves the open_clip layout, resumes exactly after --stop-after-steps', { skip: skipClip }, () => {
  const data = tsvData();
  const full = path.join(tmp(), 'full'), part = path.join(tmp(), 'part');
  const args = ['train', '--task', 'clip', '--model', CLIP_DIR, '--data', data, '--epochs', '2', '--batch-size', '2', '--lr', '1e-4', '--seed', '3'];
  const a = vitkit(...args, '--out', full);
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /epoch 2\/2: loss/);
  assert.ok(existsSync(path.join(full, 'open_clip_model.safetensors')) && existsSync(path.join(full, 'open_clip_config.json')));
  const b = vitkit(...args, '--out', part, '--stop-after-steps', '3');
  assert.equal(b.code, 0, b.err);
  const c = vitkit('train', '--resume', part);
  assert.equal(c.code, 0, c.err);
  const wf = readFileSync(path.join(full, 'open_clip_model.safetensors')), wp = readFileSync(path.join(part, 'open_clip_model.safetensors'));
  assert.ok(wf.equals(wp), 'resumed run differs from the uninterrupted one');
  // it trained: weights moved, and the result loads as a CLIP checkpoint
  const before = loadClip(CLIP_DIR).model, after = loadClip(full).model;
  assert.ok(maxAbsDiff(before.params.get('text_projection'), after.params.get('text_projection')) > 1e-5);
  assertUserError(vitkit(...args, '--out', full), /already holds a checkpoint/);
});

test('vitkit train --task clip on a Hugging Face CLIPModel with a captions.jsonl folder and a locked image tower: saved as HF, image tower unchanged', { skip: skipClip }, () => {
  const hf = writeHfCopy(2);
  const dir = tmp();
  writeFileSync(path.join(dir, 'captions.jsonl'), [['astronaut', 'an astronaut'], ['chelsea', 'a cat'], ['coffee', 'coffee']]
    .map(([f, c]) => JSON.stringify({ image: path.join(REFS, 'images', `${f}.png`), caption: c })).join('\n'));
  const out = path.join(tmp(), 'hfout');
  const r = vitkit('train', '--task', 'clip', '--model', hf, '--data', dir, '--epochs', '1', '--batch-size', '3', '--lock-image', '--out', out);
  assert.equal(r.code, 0, r.err);
  const st = readSafetensors(path.join(out, 'model.safetensors'));
  assert.ok(st.has('vision_model.encoder.layers.0.self_attn.q_proj.weight'));
  const a = loadClip(hf).model, b = loadClip(out).model;
  assert.equal(maxAbsDiff(a.params.get('visual.conv1.weight'), b.params.get('visual.conv1.weight')), 0);
  assert.ok(maxAbsDiff(a.params.get('text_projection'), b.params.get('text_projection')) > 0);
  assertUserError(vitkit('train', '--task', 'clip', '--model', hf, '--data', path.join(dir, 'nope.tsv'), '--out', path.join(tmp(), 'o')), /does not exist/);
  assertUserError(vitkit('train', '--task', 'nope', '--model', hf), /--task classification, clip, detect or mae/);
});

test('vitkit train --task clip on train_ref.safetensors (x + input_ids) reproduces open_clip after 3 AdamW steps', { skip: skipClip }, () => {
  const out = path.join(tmp(), 'ref3');
  const r = vitkit('train', '--task', 'clip', '--model', CLIP_DIR, '--data', path.join(CLIP_DIR, 'train_ref.safetensors'), '--epochs', '3', '--batch-size', '4',
    '--lr', '1e-3', '--weight-decay', '0.2', '--schedule', 'constant', '--no-shuffle', '--out', out);
  assert.equal(r.code, 0, r.err);
  const ref = readSafetensors(path.join(CLIP_DIR, 'train_ref.safetensors'));
  const got = readSafetensors(path.join(out, 'open_clip_model.safetensors'));
  for (const k of ['text_projection', 'visual.proj', 'ln_final.weight', 'logit_scale', 'visual.ln_post.bias', 'transformer.resblocks.2.mlp.c_fc.weight']) {
    const d = maxAbsDiff(got.f32(k).data, ref.f32(`after3.${k}`).data);
    assert.ok(d < 1e-5, `${k}: ${d}`);
  }
});
