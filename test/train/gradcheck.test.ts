/**
 * Gradient check of vitBackward by finite differences on a tiny ViT (img 8, patch 4, D 12,
 * depth 2, 3 heads, mlp_ratio 2), float32 throughout, on the reference backend.
 *
 * Numeric derivative: Richardson-extrapolated central differences,
 *   D(h) = (L(p + h) - L(p - h)) / (fl(p + h) - fl(p - h)),  g ~ (4 D(h/2) - D(h)) / 3,
 * truncation O(h^4); the float32 forward puts ~1e-7 of noise on L, i.e. ~1e-5 on D at h = 1e-2.
 * Per tensor: 4 random elements plus the largest analytic one. An element passes when
 *   |analytic - numeric| <= rtol * |numeric| + ATOL * max|analytic over the model|.
 * A negative control checks that the same criterion rejects a gradient that is off by 1%.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng, randn } from '../helpers.js';
import { resolveConfig, imgHW, type ViTConfig } from '../../src/models/config.js';
import { VisionTransformer, type ForwardCache } from '../../src/models/vit.js';
import { getBackend } from '../../src/backend/index.js';
import { Tensor } from '../../src/tensor.js';
import { crossEntropy } from '../../src/train/loss.js';
import { vitBackward } from '../../src/train/backward.js';
import type { ParamTable } from '../../src/nn/params.js';
import { argmaxAbs, numeric, pick } from './fd.js';

const reference = getBackend('reference');

const TINY = { img_size: 8, patch_size: 4, in_chans: 3, num_classes: 5, embed_dim: 12, depth: 2, num_heads: 3, mlp_ratio: 2 };

interface GcCase {
  name: string;
  over: Partial<ViTConfig>;
  /** relative tolerance on |numeric| */
  rtol: number;
  /** absolute floor, as a fraction of the largest analytic gradient of the model */
  atol: number;
}

const CASES: GcCase[] = [
  { name: 'token pool, qkv_bias, gelu', over: { global_pool: 'token', qkv_bias: true, act: 'gelu' }, rtol: 3e-3, atol: 5e-5 },
  { name: 'token pool, no qkv_bias, gelu_tanh', over: { global_pool: 'token', qkv_bias: false, act: 'gelu_tanh' }, rtol: 3e-3, atol: 5e-5 },
  { name: 'avg pool + fc_norm, qkv_bias, gelu_tanh', over: { global_pool: 'avg', qkv_bias: true, act: 'gelu_tanh' }, rtol: 3e-3, atol: 5e-5 },
  { name: 'avg pool + fc_norm, no qkv_bias, gelu', over: { global_pool: 'avg', qkv_bias: false, act: 'gelu' }, rtol: 3e-3, atol: 5e-5 },
  { name: 'avg pool, no class token, sincos pos_embed', over: { global_pool: 'avg', class_token: false, pos_embed: 'sincos', act: 'gelu' }, rtol: 3e-3, atol: 5e-5 },
];

/** random weights large enough that every path carries a visible gradient */
function randomModel(c: ViTConfig, seed: number): VisionTransformer {
  const m = new VisionTransformer(c, undefined, reference);
  let s = seed;
  for (const spec of m.params.specs) {
    const v = m.params.get(spec.name);
    const r = randn(v.length, s++, 1);
    const isNormW = /norm\d?\.weight$/.test(spec.name);
    const fanIn = spec.shape.length > 1 ? spec.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    for (let i = 0; i < v.length; i++) {
      if (isNormW) v[i] = 1 + 0.3 * r[i]!;
      else if (spec.name.endsWith('.bias')) v[i] = 0.2 * r[i]!;
      else if (spec.shape.length > 1 && !spec.name.startsWith('pos_embed') && spec.name !== 'cls_token') v[i] = r[i]! * 1.7 / Math.sqrt(fanIn);
      else v[i] = 0.5 * r[i]!;
    }
  }
  return m;
}

interface Problem {
  model: VisionTransformer;
  x: Tensor;
  y: Int32Array;
  loss: () => number;
}

function problem(c: ViTConfig, seed: number): Problem {
  const model = randomModel(c, seed);
  const B = 2;
  const x = new Tensor([B, c.in_chans, ...imgHW(c)], randn(B * c.in_chans * imgHW(c)[0] * imgHW(c)[1], seed + 100, 1.5));
  const y = Int32Array.from({ length: B }, (_, b) => (b * 3 + seed) % c.num_classes);
  const loss = () => crossEntropy(model.forward(x), y, 0.1).loss;
  return { model, x, y, loss };
}

function analytic(p: Problem, dinput?: Float32Array): ParamTable {
  const cache = {} as ForwardCache;
  const logits = p.model.forward(p.x, { cache });
  const { dlogits } = crossEntropy(logits, p.y, 0.1);
  const grads = p.model.params.like();
  vitBackward(p.model, cache, dlogits, grads, dinput ? { dinput } : {});
  return grads;
}


const H = 1e-2;

for (const [ci, gc] of CASES.entries()) {
  test(`gradcheck (finite differences): ${gc.name}`, () => {
    const c = resolveConfig({ ...TINY, ...gc.over });
    const p = problem(c, 10 + ci * 7);
    const grads = analytic(p);
    let gmax = 0;
    for (const v of grads.buffer) gmax = Math.max(gmax, Math.abs(v));
    assert.ok(gmax > 1e-3, `largest gradient ${gmax} is too small for a meaningful check`);
    const r = rng(1000 + ci);
    let worst = 0, checked = 0;
    for (const name of p.model.params.names()) {
      const v = p.model.params.get(name), g = grads.get(name);
      assert.ok(g.some((e) => e !== 0), `${name}: gradient is all zero`);
      for (const i of pick(v.length, 4, r, argmaxAbs(g))) {
        const num = numeric(v, i, p.loss, H);
        const err = Math.abs(g[i]! - num);
        const tol = gc.rtol * Math.abs(num) + gc.atol * gmax;
        worst = Math.max(worst, err / tol);
        checked++;
        assert.ok(err <= tol, `${name}[${i}]: analytic ${g[i]} vs numeric ${num} (err ${err.toExponential(2)} > tol ${tol.toExponential(2)})`);
      }
    }
    console.log(`gradcheck ${gc.name}: ${checked} elements, worst err/tol ${worst.toFixed(3)}, max|grad| ${gmax.toExponential(2)}`);
  });
}

test('gradcheck: input gradient through col2im (dinput) by finite differences', () => {
  const c = resolveConfig({ ...TINY, global_pool: 'token', qkv_bias: true, act: 'gelu' });
  const p = problem(c, 77);
  const dinput = new Float32Array(p.x.size);
  analytic(p, dinput);
  const gmax = dinput.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(gmax > 1e-3);
  const r = rng(5);
  for (const i of pick(p.x.size, 12, r, argmaxAbs(dinput))) {
    const num = numeric(p.x.data, i, p.loss, H);
    const err = Math.abs(dinput[i]! - num);
    const tol = 3e-3 * Math.abs(num) + 5e-5 * gmax;
    assert.ok(err <= tol, `dinput[${i}]: analytic ${dinput[i]} vs numeric ${num}`);
  }
});

test('gradcheck criterion rejects a gradient that is 1% off (negative control)', () => {
  const c = resolveConfig({ ...TINY, global_pool: 'token', qkv_bias: true, act: 'gelu' });
  const p = problem(c, 10);
  const grads = analytic(p);
  let gmax = 0;
  for (const v of grads.buffer) gmax = Math.max(gmax, Math.abs(v));
  // the largest element of each of a few tensors, scaled by 1.01, must fail the criterion
  for (const name of ['blocks.0.attn.qkv.weight', 'blocks.1.norm1.weight', 'patch_embed.proj.weight', 'pos_embed']) {
    const g = grads.get(name), i = argmaxAbs(g);
    const num = numeric(p.model.params.get(name), i, p.loss, H);
    const wrong = g[i]! * 1.01;
    assert.ok(Math.abs(wrong - num) > 3e-3 * Math.abs(num) + 5e-5 * gmax, `${name}: a 1% error went unnoticed`);
  }
});
