/** CLIP checkpoint loading and saving: bad inputs are one clear VitkitError naming the file / tensor / option; saving round-trips both layouts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { copyFileSync, readFileSync } from 'node:fs';
import { tmp, maxAbsDiff, FIXTURES } from '../helpers.js';
import { VitkitError } from '../../src/errors.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { loadClip, saveClip } from '../../src/clip/load.js';
import { configFromOpenClip, configFromHfClip } from '../../src/models/clip/config.js';
import { hfKeyMap, hfToOpenAi, openAiToHf } from '../../src/models/clip/names.js';
import { CLIP_DIR, skipClip } from './common.js';
import { writeHfCopy } from './hf_copy.js';

// a copy of ../shared/refs/openclip_clip/open_clip_config.json (574 bytes), so the config checks run in a plain clone
const MODEL_CFG = JSON.parse(readFileSync(path.join(FIXTURES, 'clip', 'open_clip_config.json'), 'utf8')).model_cfg as Record<string, unknown>;

test('config errors name the option', () => {
  const v = MODEL_CFG['vision_cfg'] as Record<string, unknown>;
  assert.throws(() => configFromOpenClip({ ...MODEL_CFG, vision_cfg: { ...v, timm_model_name: 'vit_base_patch16_224' } }), (e: Error) => e instanceof VitkitError && /vision_cfg\.timm_model_name/.test(e.message));
  assert.throws(() => configFromOpenClip({ ...MODEL_CFG, vision_cfg: { ...v, head_width: 40 } }), /width \(96\) must be a multiple of head_width \(40\)/);
  assert.throws(() => configFromOpenClip({ ...MODEL_CFG, embed_dim: 'x' }), /embed_dim/);
  assert.throws(() => configFromHfClip({ vision_config: { hidden_act: 'relu' } }), /hidden_act/);
  const c = configFromHfClip({ projection_dim: 8, text_config: { eos_token_id: 49407, hidden_size: 16, num_attention_heads: 2, intermediate_size: 64 }, vision_config: { hidden_size: 16, num_attention_heads: 2, intermediate_size: 64, image_size: 32, patch_size: 16 } });
  assert.deepEqual(c.text.pool, { kind: 'eos', id: 49407 });
  assert.equal(c.vision.mlp_ratio, 4);
});

test('a missing or mis-shaped tensor is named', { skip: skipClip }, () => {
  const dir = tmp();
  copyFileSync(path.join(CLIP_DIR, 'open_clip_config.json'), path.join(dir, 'open_clip_config.json'));
  const st = readSafetensors(path.join(CLIP_DIR, 'open_clip_model.safetensors'));
  const t: Record<string, StTensorIn> = {};
  for (const k of st.keys()) if (k !== 'ln_final.bias') t[k] = st.f32(k);
  writeSafetensors(path.join(dir, 'open_clip_model.safetensors'), t);
  assert.throws(() => loadClip(dir), /Missing tensor in .*open_clip_model\.safetensors: ln_final\.bias/);
  t['ln_final.bias'] = { shape: [65], data: new Float32Array(65) };
  writeSafetensors(path.join(dir, 'open_clip_model.safetensors'), t, undefined, { overwrite: true });
  assert.throws(() => loadClip(dir), /Wrong shape for tensor ln_final\.bias .*expected \(64\) but received \(65\)/);
  assert.throws(() => loadClip(tmp()), /not a CLIP checkpoint/);
});

test('saveClip round-trips both layouts and refuses to overwrite', { skip: skipClip }, () => {
  for (const src of [CLIP_DIR, writeHfCopy(2)]) {
    const a = loadClip(src);
    const out = tmp();
    saveClip(out, a);
    const b = loadClip(out);
    assert.equal(b.layout, a.layout);
    assert.equal(maxAbsDiff(a.model.params.buffer, b.model.params.buffer), 0);
    assert.throws(() => saveClip(out, a), /Refusing to overwrite/);
  }
});

test('the HF key map is a bijection: OpenAI -> HF -> OpenAI is the identity', { skip: skipClip }, () => {
  const st = readSafetensors(path.join(CLIP_DIR, 'open_clip_model.safetensors'));
  const oc = new Map(st.keys().map((k) => [k, st.f32(k)]));
  const map = hfKeyMap(3, 3);
  const back = hfToOpenAi(openAiToHf(oc, map), map);
  assert.deepEqual(back.missing, []);
  assert.equal(back.tensors.size, oc.size);
  for (const [k, t] of oc) assert.equal(maxAbsDiff(back.tensors.get(k)!.data, t.data), 0, k);
});
