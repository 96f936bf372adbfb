/**
 * vitBackward on the native backend against the reference backend (same weights, same batch,
 * shapes that are not multiples of 8 / 16, several threads), gradient accumulation, and errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, maxAbs, maxAbsDiff } from '../helpers.js';
import { resolveConfig, imgHW, type ViTConfig } from '../../src/models/config.js';
import { VisionTransformer, type ForwardCache } from '../../src/models/vit.js';
import { getBackend } from '../../src/backend/index.js';
import { initWeights } from '../../src/checkpoint/checkpoint.js';
import { Tensor } from '../../src/tensor.js';
import { crossEntropy } from '../../src/train/loss.js';
import { vitBackward } from '../../src/train/backward.js';
import { VitkitError } from '../../src/errors.js';

const native = getBackend('native');
const reference = getBackend('reference');

function run(c: ViTConfig, backendName: 'native' | 'reference', seed: number, B: number) {
  const model = new VisionTransformer(c, undefined, backendName === 'native' ? native : reference);
  initWeights(model, seed);
  // perturb norms and biases away from their (1, 0) init so every path is exercised
  for (const spec of model.params.specs) {
    if (/norm|bias/.test(spec.name)) {
      const v = model.params.get(spec.name), r = randn(v.length, seed + v.length, 0.2);
      for (let i = 0; i < v.length; i++) v[i] = v[i]! + r[i]!;
    }
  }
  const x = new Tensor([B, c.in_chans, ...imgHW(c)], randn(B * c.in_chans * imgHW(c)[0] * imgHW(c)[1], seed + 1));
  const y = Int32Array.from({ length: B }, (_, b) => (b * 7) % c.num_classes);
  const cache = {} as ForwardCache;
  const logits = model.forward(x, { cache });
  const { dlogits } = crossEntropy(logits, y, 0.1);
  const grads = model.params.like();
  const dinput = new Float32Array(x.size);
  vitBackward(model, cache, dlogits, grads, { dinput });
  return { model, grads, logits, dinput };
}

const CASES: { name: string; over: Partial<ViTConfig>; B: number }[] = [
  { name: 'token, qkv_bias, gelu, N=50, D=48, 3 heads', over: { img_size: 28, patch_size: 4, in_chans: 1, embed_dim: 48, num_heads: 3, depth: 2, mlp_ratio: 2, num_classes: 10 }, B: 3 },
  { name: 'avg + fc_norm, no qkv_bias, gelu_tanh, N=36, D=40, 5 heads', over: { img_size: 24, patch_size: 4, in_chans: 3, embed_dim: 40, num_heads: 5, depth: 2, mlp_ratio: 3, num_classes: 7, global_pool: 'avg', qkv_bias: false, act: 'gelu_tanh' }, B: 2 },
];

for (const cs of CASES) {
  test(`backward native = reference: ${cs.name}`, () => {
    const c = resolveConfig(cs.over);
    const n = run(c, 'native', 3, cs.B), r = run(c, 'reference', 3, cs.B);
    assert.ok(maxAbsDiff(n.logits.data, r.logits.data) <= 1e-5 * Math.max(1, maxAbs(r.logits.data)));
    for (const name of n.model.params.names()) {
      const gn = n.grads.get(name), gr = r.grads.get(name);
      const scale = maxAbs(gr);
      assert.ok(scale > 0 || name.endsWith('qkv.bias'), `${name}: reference gradient is all zero`);
      const err = maxAbsDiff(gn, gr);
      assert.ok(err <= 1e-4 * scale + 1e-9, `${name}: max abs error ${err} > 1e-4 x ${scale}`);
    }
    const err = maxAbsDiff(n.dinput, r.dinput);
    assert.ok(err <= 1e-4 * maxAbs(r.dinput), `dinput: max abs error ${err}`);
  });
}

test('backward accumulates into grads (two calls = twice one call)', () => {
  const c = resolveConfig({ img_size: 8, patch_size: 4, in_chans: 3, embed_dim: 12, num_heads: 3, depth: 1, mlp_ratio: 2, num_classes: 4 });
  const model = new VisionTransformer(c, undefined, native);
  initWeights(model, 1);
  const x = new Tensor([2, 3, 8, 8], randn(2 * 3 * 64, 2));
  const cache = {} as ForwardCache;
  const logits = model.forward(x, { cache });
  const { dlogits } = crossEntropy(logits, new Int32Array([1, 3]), 0);
  const once = model.params.like(), twice = model.params.like();
  vitBackward(model, cache, dlogits, once);
  vitBackward(model, cache, dlogits, twice);
  vitBackward(model, cache, dlogits, twice);
  for (let i = 0; i < once.count; i++) {
    assert.ok(Math.abs(twice.buffer[i]! - 2 * once.buffer[i]!) <= 1e-6 * (1 + Math.abs(once.buffer[i]!)), `element ${i}`);
  }
});

test('backward rejects a missing cache, a wrong dlogits size and a foreign gradient table', () => {
  const c = resolveConfig({ img_size: 8, patch_size: 4, in_chans: 3, embed_dim: 12, num_heads: 3, depth: 1, mlp_ratio: 2, num_classes: 4 });
  const model = new VisionTransformer(c, undefined, native);
  const x = new Tensor([2, 3, 8, 8], randn(2 * 3 * 64, 2));
  const grads = model.params.like();
  assert.throws(() => vitBackward(model, {} as ForwardCache, new Float32Array(8), grads), VitkitError);
  const cache = {} as ForwardCache;
  model.forward(x, { cache });
  assert.throws(() => vitBackward(model, cache, new Float32Array(7), grads), /Expected dlogits of \(2, 4\)/);
  const other = new VisionTransformer(resolveConfig({ ...c, depth: 2 }), undefined, native);
  assert.throws(() => vitBackward(model, cache, new Float32Array(8), other.params.like()), /Gradient table/);
});
