/**
 * Attention rollout: the reference tensor from PyTorch, and hand-computed cases for the
 * ordering of blocks, head fusion, discarding and the patch maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REFS, FIXTURES, maxAbsDiff, needRefs } from '../helpers.js';
import { Tensor } from '../../src/tensor.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { runModel } from '../../src/cli/run.js';
import { attentionRollout, gradientRollout, patchMap, headMaps } from '../../src/explain/rollout.js';
import { VitkitError } from '../../src/errors.js';

/** one image, one head per block: blocks of (N, N) given as nested rows */
function blocks(...mats: number[][][]): Tensor[] {
  return mats.map((m) => new Tensor([1, 1, m.length, m.length], Float32Array.from(m.flat())));
}

function assertClose(got: ArrayLike<number>, want: number[], tol = 1e-6, msg = '') {
  assert.equal(got.length, want.length, msg);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol, `${msg} [${i}]: got ${got[i]}, want ${want[i]}`);
}

test('run --outputs rollout matches timm_vit_tiny_ref rollout within 1e-5', async (t) => {
  if (!needRefs(t)) return;
  const res = await runModel(path.join(REFS, 'timm_vit_tiny'), path.join(REFS, 'timm_vit_tiny_ref.safetensors'), ['rollout']);
  const ref = readSafetensors(path.join(REFS, 'timm_vit_tiny_ref.safetensors')).f32('rollout');
  assert.deepEqual([...res['rollout']!.shape], ref.shape);
  const err = maxAbsDiff(res['rollout']!.data as Float32Array, ref.data);
  assert.ok(err <= 1e-5, `max |diff| ${err}`);
});

test('rollout of the fixture model matches a plain rollout of transformers\' attentions', async () => {
  // the expected value is computed here, in float64, from the attentions transformers produced
  const dir = path.join(FIXTURES, 'hf_vit_small');
  const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
  const atts = [0, 1, 2].map((i) => ref.f32(`attentions.${i}`));
  const [B, NH, N] = atts[0]!.shape as [number, number, number];
  const want = new Float64Array(B * N * N);
  for (let b = 0; b < B; b++) {
    let R: number[][] = Array.from({ length: N }, (_, i) => Array.from({ length: N }, (_, j) => (i === j ? 1 : 0)));
    for (const a of atts) {
      const A = Array.from({ length: N }, (_, i) => Array.from({ length: N }, (_, j) => {
        let s = 0;
        for (let h = 0; h < NH; h++) s += a.data[((b * NH + h) * N + i) * N + j]!;
        return (s / NH + (i === j ? 1 : 0)) / 2;
      }));
      for (const row of A) { const s = row.reduce((p, v) => p + v, 0); row.forEach((v, j) => (row[j] = v / s)); }
      R = A.map((row) => Array.from({ length: N }, (_, j) => row.reduce((p, v, k) => p + v * R[k]![j]!, 0)));
    }
    R.forEach((row, i) => row.forEach((v, j) => (want[(b * N + i) * N + j] = v)));
  }
  const input = path.join(dir, 'ref.safetensors');
  const got = (await runModel(dir, input, ['rollout']))['rollout']!;
  const err = maxAbsDiff(got.data as Float32Array, want);
  assert.ok(err <= 1e-5, `max |diff| ${err}`);
});

test('rollout multiplies later blocks on the left: R = A1 A0', () => {
  // A0 + I normalized = [[.5, .5], [0, 1]]; A1 + I normalized = [[1, 0], [.5, .5]]
  const R = attentionRollout(blocks([[0, 1], [0, 1]], [[1, 0], [1, 0]]), { numPrefix: 0 });
  assertClose(R.data, [0.5, 0.5, 0.25, 0.75]);
});

test('identity attention gives the identity; one block is (A + I) / 2', () => {
  const R = attentionRollout(blocks([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]));
  assertClose(R.data, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const one = attentionRollout(blocks([[0.2, 0.8], [0.6, 0.4]]));
  assertClose(one.data, [0.6, 0.4, 0.3, 0.7]);
});

test('head fusion mean / max / min', () => {
  // two heads: identity and swap
  const att = [new Tensor([1, 2, 2, 2], Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0]))];
  assertClose(attentionRollout(att, { headFusion: 'mean' }).data, [0.75, 0.25, 0.25, 0.75]);
  assertClose(attentionRollout(att, { headFusion: 'max' }).data, [2 / 3, 1 / 3, 1 / 3, 2 / 3]);
  assertClose(attentionRollout(att, { headFusion: 'min' }).data, [1, 0, 0, 1]);
});

test('discard ratio drops the lowest fused attentions but never the class token\'s own', () => {
  const A = [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.05, 0.15, 0.8]];
  // k = floor(9 * 0.34) = 3 lowest: 0.05 (2,0), 0.1 (0,0) kept as the class token's own, 0.15 (2,1)
  const R = attentionRollout(blocks(A), { discardRatio: 0.34 });
  assertClose(R.data, [0.55, 0.1, 0.35, 0.15, 0.65, 0.2, 0, 0, 1]);
  // without a class token (0,0) is dropped too
  const G = attentionRollout(blocks(A), { discardRatio: 0.34, numPrefix: 0 });
  assertClose(G.data, [1 / 1.9, 0.2 / 1.9, 0.7 / 1.9, 0.15, 0.65, 0.2, 0, 0, 1]);
  // a ratio too small to drop anything changes nothing
  assertClose(attentionRollout(blocks(A), { discardRatio: 0.1 }).data, attentionRollout(blocks(A)).data as unknown as number[]);
});

test('gradient-weighted rollout keeps the positive part of grad * attn, averaged over heads', () => {
  const att = [new Tensor([1, 2, 2, 2], Float32Array.from([0.5, 0.5, 0.5, 0.5, 0.2, 0.8, 1, 0]))];
  const grad = [new Tensor([1, 2, 2, 2], Float32Array.from([2, -1, 1, 1, 1, 1, -3, 5]))];
  // head 0: [1, 0 (neg), .5, .5]; head 1: [.2, .8, 0 (neg), 0]; mean: [.6, .4, .25, .25]
  // + I: [[1.6, .4], [.25, 1.25]] -> rows / 2, / 1.5
  assertClose(gradientRollout(att, grad).data, [0.8, 0.2, 0.25 / 1.5, 1.25 / 1.5]);
});

test('patch maps: class-token row without the prefix column, or the mean of all rows', () => {
  const m = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
  assertClose(patchMap(m, 0, 3, 1), [0.2, 0.3]);
  assertClose(patchMap(m, 0, 3, 0), [0.4, 0.5, 0.6]);
  const att = new Tensor([1, 2, 3, 3], Float32Array.from([...m, ...m.map((v) => v * 2)]));
  const hm = headMaps(att, 0, 1);
  assertClose(hm[0]!, [0.2, 0.3]);
  assertClose(hm[1]!, [0.4, 0.6]);
});

test('rollout rejects bad options and mismatched blocks with one-line errors', () => {
  const a = blocks([[1, 0], [0, 1]]);
  assert.throws(() => attentionRollout(a, { discardRatio: 1 }), (e: unknown) => e instanceof VitkitError && /discard ratio in \[0, 1\) but received 1/.test(e.message));
  assert.throws(() => attentionRollout(a, { headFusion: 'median' as never }), /head fusion mean, max or min but received "median"/);
  assert.throws(() => attentionRollout([...a, new Tensor([1, 1, 3, 3])]), /attentions\[1\] of shape \(1, 1, 2, 2\) like block 0 but received \(1, 1, 3, 3\)/);
  assert.throws(() => attentionRollout([]), /at least one block/);
});
