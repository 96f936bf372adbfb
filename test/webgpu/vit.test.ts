/**
 * Parity on WebGPU with PyTorch: ViT forwards composed from the device ops (test/webgpu/vit.ts)
 * against ../shared/refs, with the refs' tolerances (tokens and logits 1e-4, attention
 * probabilities 1e-5). hf_vit_small runs always; timm_vit_tiny (2.5 GMAC, a minute or more on
 * SwiftShader) runs with VITKIT_WEBGPU_FULL=1.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { REFS, needRefs, refsSkip, maxAbsDiff } from '../helpers.js';
import { getTestDevice } from './setup.js';
import { hfWeights, timmWeights, vitForward } from './vit.js';

const { dev, reason } = await getTestDevice();
after(() => dev?.dispose());
const skip = !dev ? reason : refsSkip();

test('webgpu hf_vit_small: logits, every hidden state and every attention map = transformers', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const dir = path.join(REFS, 'hf_vit_small');
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
  const d = { C: 3, img: 64, P: 8, D: 96, NH: 4, depth: 3, hidden: 192, K: 5, eps: 1e-12 };
  const w = hfWeights(dev!, st, d.depth);
  const px = ref.f32('pixel_values').data;
  const pixels = dev!.alloc([2, 3, 64, 64]);
  dev!.write(pixels, px);
  await dev!.sync();
  const before = dev!.submissions;
  const out = vitForward(dev!, w, d, 2, pixels, { hidden: true, attnBlocks: [0, 1, 2] });
  assert.equal(dev!.submissions, before, 'the forward submits nothing by itself');
  const logits = await dev!.read(out.logits);
  assert.equal(dev!.submissions, before + 1, 'the whole forward is one submission');
  const e = maxAbsDiff(logits, ref.f32('logits').data);
  t.diagnostic(`hf_vit_small logits max abs error ${e.toExponential(2)}`);
  assert.ok(e <= 1e-4, `logits max abs error ${e}`);
  for (let i = 0; i <= d.depth; i++) {
    const eh = maxAbsDiff(await dev!.read(out.hidden[i]!), ref.f32(`hidden_states.${i}`).data);
    assert.ok(eh <= 1e-4, `hidden_states.${i} max abs error ${eh}`);
  }
  for (let i = 0; i < d.depth; i++) {
    const ea = maxAbsDiff(await dev!.read(out.attn.get(i)!), ref.f32(`attentions.${i}`).data);
    assert.ok(ea <= 1e-5, `attentions.${i} max abs error ${ea}`);
  }
});

const full = process.env['VITKIT_WEBGPU_FULL'] === '1';
test('webgpu timm_vit_tiny: logits, features and attention maps = timm', { skip: skip || (full ? false : 'set VITKIT_WEBGPU_FULL=1 (about 2.5 GMAC: a minute or more on SwiftShader)') }, async (t) => {
  if (!needRefs(t)) return;
  const st = readSafetensors(path.join(REFS, 'timm_vit_tiny', 'model.safetensors'));
  const ref = readSafetensors(path.join(REFS, 'timm_vit_tiny_ref.safetensors'));
  const d = { C: 3, img: 224, P: 16, D: 192, NH: 3, depth: 12, hidden: 768, K: 1000, eps: 1e-6 };
  const w = timmWeights(dev!, st, d.depth);
  const pixels = dev!.alloc([2, 3, 224, 224]);
  dev!.write(pixels, ref.f32('pixel_values').data);
  await dev!.sync();
  const t0 = performance.now();
  const out = vitForward(dev!, w, d, 2, pixels, { attnBlocks: [0, 11] });
  const logits = await dev!.read(out.logits);
  const ms = performance.now() - t0;
  t.diagnostic(`timm_vit_tiny forward, batch 2, on ${dev!.info.description}: ${ms.toFixed(0)} ms`);
  const e = maxAbsDiff(logits, ref.f32('logits').data);
  t.diagnostic(`timm_vit_tiny logits max abs error ${e.toExponential(2)}`);
  assert.ok(e <= 1e-4, `logits max abs error ${e}`);
  const ef = maxAbsDiff(await dev!.read(out.features), ref.f32('features').data);
  assert.ok(ef <= 1e-4, `features max abs error ${ef}`);
  for (const i of [0, 11]) {
    const ea = maxAbsDiff(await dev!.read(out.attn.get(i)!), ref.f32(`attn${i}`).data);
    assert.ok(ea <= 1e-5, `attn${i} max abs error ${ea}`);
  }
});
