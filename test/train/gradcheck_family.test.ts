/**
 * Gradient check by finite differences of the family features' backward (LayerScale, registers,
 * no_embed_class, pre_norm, QuickGELU, SiLU, SwiGLUPacked, MAP pooling, DeiT's two heads and
 * hard distillation, global_pool '', non-square images), float32 on the reference backend,
 * with test/train/gradcheck.test.ts's criterion (Richardson-extrapolated central differences;
 * |analytic - numeric| <= rtol |numeric| + atol max|analytic|; 4 random elements per tensor plus
 * the largest).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng, randn } from '../helpers.js';
import { resolveConfig, imgHW, type ViTConfig } from '../../src/models/config.js';
import { VisionTransformer, emptyCache } from '../../src/models/vit.js';
import { getBackend } from '../../src/backend/index.js';
import { Tensor } from '../../src/tensor.js';
import { crossEntropy } from '../../src/train/loss.js';
import type { ParamTable } from '../../src/nn/params.js';
import { argmaxAbs, numeric, pick } from './fd.js';

const reference = getBackend('reference');
const TINY = { img_size: 8, patch_size: 4, in_chans: 3, num_classes: 5, embed_dim: 12, depth: 2, num_heads: 3, mlp_ratio: 2 };

interface GcCase {
  name: string;
  over: Partial<ViTConfig>;
  /** DeiT hard distillation: loss = (CE(cls head, y) + CE(dist head, y_teacher)) / 2 */
  hardDistill?: boolean;
  /** input size other than img_size (dynamic_img_size: pos_embed resampled, and its backward) */
  inputHW?: [number, number];
}

const CASES: GcCase[] = [
  { name: 'LayerScale + 2 registers + no_embed_class (DINOv2)', over: { init_values: 1e-5, reg_tokens: 2, no_embed_class: true } },
  { name: 'LayerScale + registers, pos_embed over the prefix tokens too', over: { init_values: 0.1, reg_tokens: 1 } },
  { name: 'distilled (DeiT), mean of both heads', over: { distilled: true } },
  { name: 'distilled (DeiT), hard distillation (two heads apart)', over: { distilled: true }, hardDistill: true },
  { name: 'pre_norm + QuickGELU + eps 1e-5 (CLIP)', over: { pre_norm: true, act: 'quick_gelu', layer_norm_eps: 1e-5 } },
  { name: 'MAP pooling, no class token, gelu_tanh (SigLIP)', over: { class_token: false, global_pool: 'map', act: 'gelu_tanh' } },
  { name: 'SwiGLUPacked + SiLU + LayerScale', over: { mlp_layer: 'swiglu_packed', act: 'silu', init_values: 0.2, mlp_ratio: 8 / 3 * 2 / 2 * 1.5 } },
  { name: "global_pool '' (every token through the head)", over: { global_pool: '', class_token: true } },
  { name: 'non-square 8x12 image, avg pool + fc_norm, registers', over: { img_size: [8, 12], global_pool: 'avg', reg_tokens: 2 } },
  { name: 'dynamic size 12x16 on an 8x8 model, no_embed_class + registers (resampled pos_embed backward)',
    over: { dynamic_img_size: true, no_embed_class: true, reg_tokens: 1, init_values: 0.3 }, inputHW: [12, 16] },
  { name: 'dynamic size 4x12 on an 8x8 model, pos_embed over the class token (prefix rows copied)',
    over: { dynamic_img_size: true }, inputHW: [4, 12] },
];

function randomModel(c: ViTConfig, seed: number): VisionTransformer {
  const m = new VisionTransformer(c, undefined, reference);
  let s = seed;
  for (const spec of m.params.specs) {
    const v = m.params.get(spec.name);
    const r = randn(v.length, s++, 1);
    const isNormW = /norm(\d|_pre)?\.weight$/.test(spec.name);
    const fanIn = spec.shape.length > 1 ? spec.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    for (let i = 0; i < v.length; i++) {
      if (isNormW) v[i] = 1 + 0.3 * r[i]!;
      else if (spec.name.endsWith('.gamma')) v[i] = 0.5 + 0.3 * r[i]!;
      else if (spec.name.endsWith('.bias')) v[i] = 0.2 * r[i]!;
      else if (spec.shape.length > 1 && !/pos_embed|_token|latent/.test(spec.name)) v[i] = r[i]! * 1.7 / Math.sqrt(fanIn);
      else v[i] = 0.5 * r[i]!;
    }
  }
  return m;
}

function setup(gc: GcCase, seed: number) {
  const c = resolveConfig({ ...TINY, ...gc.over });
  const model = randomModel(c, seed);
  const B = 2, [H, W] = gc.inputHW ?? imgHW(c);
  const x = new Tensor([B, c.in_chans, H, W], randn(B * c.in_chans * H * W, seed + 100, 1.5));
  const rows = c.global_pool === '' ? B * model.layout(H, W).N : B;
  const y = Int32Array.from({ length: rows }, (_, b) => (b * 3 + seed) % c.num_classes);
  const yt = Int32Array.from({ length: B }, (_, b) => (b * 2 + 1 + seed) % c.num_classes);
  const K = c.num_classes;
  const loss = (): number => {
    const f = model.forwardFeatures(x);
    const h = model.forwardHeads(f.features);
    if (gc.hardDistill) return (crossEntropy(h.clsLogits!, y, 0.1).loss + crossEntropy(h.distLogits!, yt, 0.1).loss) / 2;
    return crossEntropy(h.logits!.data, y, 0.1, K).loss;
  };
  const analytic = (dinput?: Float32Array): ParamTable => {
    const cache = emptyCache();
    const f = model.forwardFeatures(x, { cache });
    const h = model.forwardHeads(f.features, { cache });
    const grads = model.params.like();
    if (gc.hardDistill) {
      const a = crossEntropy(h.clsLogits!, y, 0.1), b = crossEntropy(h.distLogits!, yt, 0.1);
      const da = a.dlogits.map((v) => v / 2), db = b.dlogits.map((v) => v / 2);
      model.backward(cache, da, grads, { dDistLogits: db, ...(dinput ? { dinput } : {}) });
    } else {
      model.backward(cache, crossEntropy(h.logits!.data, y, 0.1, K).dlogits, grads, dinput ? { dinput } : {});
    }
    return grads;
  };
  return { model, x, loss, analytic };
}


const H = 1e-2, RTOL = 3e-3, ATOL = 5e-5;

for (const [ci, gc] of CASES.entries()) {
  test(`gradcheck (finite differences): ${gc.name}`, (t) => {
    const p = setup(gc, 20 + ci * 7);
    const grads = p.analytic();
    let gmax = 0;
    for (const v of grads.buffer) gmax = Math.max(gmax, Math.abs(v));
    assert.ok(gmax > 1e-3, `largest gradient ${gmax} is too small for a meaningful check`);
    const r = rng(2000 + ci);
    let worst = 0, checked = 0;
    for (const name of p.model.params.names()) {
      const v = p.model.params.get(name), g = grads.get(name);
      assert.ok(g.some((e) => e !== 0), `${name}: gradient is all zero`);
      for (const i of pick(v.length, 4, r, argmaxAbs(g))) {
        const num = numeric(v, i, p.loss, H);
        const err = Math.abs(g[i]! - num);
        const tol = RTOL * Math.abs(num) + ATOL * gmax;
        worst = Math.max(worst, err / tol);
        checked++;
        assert.ok(err <= tol, `${name}[${i}]: analytic ${g[i]} vs numeric ${num} (err ${err.toExponential(2)} > tol ${tol.toExponential(2)})`);
      }
    }
    t.diagnostic(`${checked} elements, worst err/tol ${worst.toFixed(3)}, max|grad| ${gmax.toExponential(2)}`);
  });
}

test('gradcheck: input gradient of a non-square image with registers', () => {
  const p = setup({ name: 'dinput', over: { img_size: [12, 8], reg_tokens: 1, no_embed_class: true } }, 77);
  const dinput = new Float32Array(p.x.size);
  p.analytic(dinput);
  const gmax = dinput.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(gmax > 1e-3);
  const r = rng(6);
  for (const i of pick(p.x.size, 12, r, argmaxAbs(dinput))) {
    const num = numeric(p.x.data, i, p.loss, H);
    const err = Math.abs(dinput[i]! - num);
    assert.ok(err <= RTOL * Math.abs(num) + ATOL * gmax, `dinput[${i}]: analytic ${dinput[i]} vs numeric ${num}`);
  }
});

test('backward refuses mismatched distillation gradients', () => {
  const c = resolveConfig({ ...TINY, dynamic_img_size: true });
  const m = randomModel(c, 3);
  const cache = emptyCache();
  const logits = m.forward(new Tensor([1, 3, 12, 8]), { cache });
  const d = randomModel(resolveConfig({ ...TINY, distilled: true }), 4);
  const dc = emptyCache();
  d.forward(new Tensor([2, 3, 8, 8]), { cache: dc });
  assert.throws(() => d.backward(dc, new Float32Array(10), d.params.like(), { dDistLogits: new Float32Array(3) }), /Expected dDistLogits of \(2, 5\)/);
  assert.throws(() => m.backward(cache, new Float32Array(logits.size), m.params.like(), { dDistLogits: new Float32Array(5) }), /needs a distilled model/);
});
