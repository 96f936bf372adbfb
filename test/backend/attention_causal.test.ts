/**
 * Causal attention (query i attends to keys j <= i, as PyTorch with an additive -inf mask above
 * the diagonal; CLIP's text tower): native against the reference, the reference against an
 * independent construction (row i = plain attention over the first i + 1 tokens), masked
 * probabilities exactly 0, and both backends' backward against finite differences, at awkward
 * shapes (N = 77 and 197, 3 heads, head dims that are not multiples of 16).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { randn, maxAbsDiff, maxAbs } from '../helpers.js';

const native = getBackend('native');

function forward(be: Backend, qkv: Float32Array, B: number, N: number, NH: number, HD: number, causal: boolean) {
  const out = new Float32Array(B * N * NH * HD), probs = new Float32Array(B * NH * N * N).fill(NaN); // (B, N, D), (B, NH, N, N)
  be.attentionForward(out, probs, qkv, B, N, NH, HD, 1 / Math.sqrt(HD), causal);
  return { out, probs };
}

const shapes: [number, number, number, number][] = [[2, 77, 3, 20], [1, 197, 3, 24], [3, 17, 3, 5], [1, 1, 2, 3]];

for (const [B, N, NH, HD] of shapes) {
  test(`causal attention native = reference B=${B} N=${N} NH=${NH} HD=${HD}, masked probabilities exactly 0`, () => {
    const D = NH * HD;
    const qkv = randn(B * N * 3 * D, 41, 1.5), g = randn(B * N * D, 42); // (B, N, 3D), (B, N, D)
    const want = forward(reference, qkv, B, N, NH, HD, true), got = forward(native, qkv, B, N, NH, HD, true);
    for (const [name, a, b] of [['out', got.out, want.out], ['probs', got.probs, want.probs]] as const) {
      const err = maxAbsDiff(a, b);
      assert.ok(err <= 2e-5 * Math.max(1, maxAbs(b)), `${name}: max abs error ${err}`);
    }
    for (const [name, p] of [['native', got.probs], ['reference', want.probs]] as const) {
      for (let bh = 0; bh < B * NH; bh++) {
        for (let i = 0; i < N; i++) {
          let s = 0;
          for (let j = 0; j < N; j++) {
            const v = p[(bh * N + i) * N + j]!;
            if (j > i) assert.ok(Object.is(v, 0), `${name} probs[${bh}, ${i}, ${j}] = ${v}, must be exactly 0`);
            else { assert.ok(v >= 0 && Number.isFinite(v)); s += v; }
          }
          assert.ok(Math.abs(s - 1) < 1e-5, `${name} row ${i} sums to ${s}`);
        }
      }
    }
    // backward on the causal probabilities
    const dn = new Float32Array(B * N * 3 * D), dr = new Float32Array(B * N * 3 * D); // (B, N, 3D)
    native.attentionBackward(dn, g, qkv, got.probs, B, N, NH, HD, 1 / Math.sqrt(HD), true);
    reference.attentionBackward(dr, g, qkv, want.probs, B, N, NH, HD, 1 / Math.sqrt(HD), true);
    const err = maxAbsDiff(dn, dr);
    assert.ok(err <= 2e-5 * Math.max(1, maxAbs(dr)), `dqkv: max abs error ${err}`);
    // causal differs from full attention (except for the last row), so the flag is not ignored
    if (N > 1) assert.ok(maxAbsDiff(forward(native, qkv, B, N, NH, HD, false).out, got.out) > 1e-3);
  });
}

test('causal reference = plain attention over each prefix (independent construction)', () => {
  const B = 2, N = 9, NH = 3, HD = 5, D = NH * HD;
  const qkv = randn(B * N * 3 * D, 43, 1.5); // (B, N, 3D)
  const causal = forward(reference, qkv, B, N, NH, HD, true).out; // (B, N, D)
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < N; i++) {
      // the first i + 1 tokens of batch b, non-causal: its last row is causal row i
      const pre = qkv.slice(b * N * 3 * D, (b * N + i + 1) * 3 * D); // (1, i + 1, 3D)
      const full = forward(reference, pre, 1, i + 1, NH, HD, false).out; // (1, i + 1, D)
      const row = full.slice(i * D, (i + 1) * D), got = causal.slice((b * N + i) * D, (b * N + i + 1) * D);
      assert.ok(maxAbsDiff(row, got) < 1e-6, `b=${b} row ${i}: ${maxAbsDiff(row, got)}`);
    }
  }
});

test('causal native: future keys and values do not change earlier rows, even when they are Inf/NaN', () => {
  const B = 1, N = 33, NH = 3, HD = 7, D = NH * HD;
  const qkv = randn(B * N * 3 * D, 44); // (B, N, 3D)
  const before = forward(native, qkv, B, N, NH, HD, true).out;
  const t = 20; // change key and value of token t
  for (let d = D; d < 3 * D; d++) qkv[t * 3 * D + d] = d % 2 ? NaN : Infinity;
  const after = forward(native, qkv, B, N, NH, HD, true).out;
  assert.equal(maxAbsDiff(after.slice(0, t * D), before.slice(0, t * D)), 0, 'rows before t unchanged');
});

// Backward against finite differences of L = sum(out * G), both backends
const dot = (a: Float32Array, b: Float32Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };

const gradShapes: [Backend, [number, number, number, number]][] = [
  [reference, [1, 13, 3, 5]], [native, [1, 13, 3, 5]], [reference, [1, 77, 3, 6]], [native, [2, 77, 3, 20]], [native, [1, 197, 3, 24]],
];
for (const [be, [B, N, NH, HD]] of gradShapes) {
  test(`${be.name} causal attentionBackward B=${B} N=${N} NH=${NH} HD=${HD} = finite differences`, () => {
    const D = NH * HD, scale = 1 / Math.sqrt(HD);
    const qkv = randn(B * N * 3 * D, 45, 1.2), G = randn(B * N * D, 46); // (B, N, 3D), (B, N, D)
    const loss = () => { const out = new Float32Array(B * N * D); be.attentionForward(out, null, qkv, B, N, NH, HD, scale, true); return dot(out, G); };
    const out = new Float32Array(B * N * D), probs = new Float32Array(B * NH * N * N);
    be.attentionForward(out, probs, qkv, B, N, NH, HD, scale, true);
    const grad = new Float32Array(B * N * 3 * D);
    be.attentionBackward(grad, G, qkv, probs, B, N, NH, HD, scale, true);
    const gmax = maxAbs(grad);
    // elements of q, k and v of the first, a middle and the last token, and random ones
    const r = randn(10, 47, 0.5);
    const idx = new Set([0, D, 2 * D, (N >> 1) * 3 * D + 1, (N >> 1) * 3 * D + D + 2, (N >> 1) * 3 * D + 2 * D + 3,
      (B * N - 1) * 3 * D, (B * N - 1) * 3 * D + D, qkv.length - 1, ...Array.from(r, (v) => Math.floor((v + 0.5) * qkv.length) % qkv.length)]);
    for (const i of idx) {
      const p0 = qkv[i]!;
      const central = (h: number) => {
        qkv[i] = p0 + h; const up = qkv[i]!; const lp = loss();
        qkv[i] = p0 - h; const dn = qkv[i]!; const lm = loss();
        qkv[i] = p0;
        return (lp - lm) / (up - dn);
      };
      const num = (4 * central(5e-3) - central(1e-2)) / 3;
      const err = Math.abs(grad[i]! - num);
      assert.ok(err <= 3e-3 * Math.abs(num) + 1e-4 * gmax, `qkv[${i}]: analytic ${grad[i]} vs numeric ${num} (err ${err})`);
    }
  });
}
