/**
 * The native kernels against the plain-TypeScript reference: the one op case table
 * (test/backend/cases.ts: every op of Backend on awkward shapes, NaN / Inf, aliasing, a guard
 * region after every output) run native vs reference, plus native-only checks (bounds, threads)
 * and every backward kernel against finite differences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { randn, maxAbsDiff, maxAbs } from '../helpers.js';
import { cases, compareOutputs, guardErrors, out, SENTINEL } from './cases.js';

const native = getBackend('native');

test('the case table has rows for every op of Backend', () => {
  const ops = Object.keys(reference).filter((k) => typeof (reference as unknown as Record<string, unknown>)[k] === 'function' && k !== 'setThreads' && k !== 'getThreads');
  const covered = new Set(cases.flatMap((c) => c.ops));
  assert.deepEqual(ops.filter((k) => !covered.has(k as never)), []);
  assert.ok(ops.length >= 32, `only ${ops.length} ops found`);
});

for (const c of cases) {
  test(`native = reference: ${c.name}`, (t) => {
    const want = c.want ? c.want() : c.run(reference);
    const got = c.run(native);
    assert.deepEqual([...guardErrors('reference', want), ...guardErrors('native', got)], []);
    t.diagnostic(compareOutputs(c, got, want, 'native'));
  });
}

test('the guard region catches a write past the end (negative control)', () => {
  const broken: Backend = {
    ...reference,
    copyRows(o, inp, B, outN, outOff, inN, inOff, count, C, acc) {
      reference.copyRows(new Float32Array(o.buffer, o.byteOffset), inp, B, outN, outOff, inN, inOff, count + 1, C, acc); // one row too many
    },
  };
  const c = cases.find((x) => x.name.startsWith('copyRows concat'))!;
  assert.ok(guardErrors('broken', c.run(broken)).length > 0, 'an out-of-bounds row went unnoticed');
  const o = out(4);
  assert.equal(new Float32Array(o.buffer)[4], SENTINEL);
});

test('gemm propagates NaN and Inf from A and B', () => {
  const M = 19, N = 23, K = 31;
  const A = randn(M * K, 1), B = randn(N * K, 2);
  A[3 * K + 4] = NaN;
  B[5 * K + 6] = Infinity;
  const C = new Float32Array(M * N).fill(NaN); // beta = 0 must not read C
  native.gemm(false, true, M, N, K, 1, A, K, B, K, 0, C, N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const v = C[i * N + j]!;
      if (i === 3) assert.ok(Number.isNaN(v), `row 3 must be NaN at ${j}`);
      else if (j === 5) assert.ok(!Number.isFinite(v), `column 5 must be infinite at row ${i}`);
      else assert.ok(Number.isFinite(v), `C[${i},${j}] must be finite`);
    }
  }
});

test('gelu matches closed-form values', () => {
  // exact GELU(1) = Phi(1) = 0.8413447460685429, GELU(-1) = -0.15865525393145707
  const out = new Float32Array(2);
  native.geluForward(out, new Float32Array([1, -1]), 2, 0);
  assert.ok(Math.abs(out[0]! - 0.8413447460685429) < 1e-6);
  assert.ok(Math.abs(out[1]! + 0.15865525393145707) < 1e-6);
});

test('native addon rejects buffers that are too small', () => {
  assert.throws(() => native.add(new Float32Array(3), new Float32Array(4), new Float32Array(4), 4), /argument 0 has 3 elements, expected at least 4/);
});

// ---------------------------------------------------------------------------------------------
// Backward kernels against finite differences (both backends). Each case is a scalar
// L = sum(forward(inputs) * G) for a fixed random G; the backward kernel's input gradient is
// compared with a Richardson-extrapolated central difference of L (float32 forward, double sum)
// on a random subset of elements: |analytic - numeric| <= rtol * |numeric| + atol * max|analytic|.

interface GradCase {
  name: string;
  rtol: number;
  atol: number;
  /** h for the central difference */
  h: number;
  /** the inputs (perturbed in place) */
  inputs: Float32Array[];
  loss: (be: Backend) => number;
  /** analytic dL/d(inputs[k]) for each input */
  grads: (be: Backend) => Float32Array[];
}

const dot = (a: Float32Array, b: Float32Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };

function lnGradCase(R: number, C: number, eps: number): GradCase {
  const x = randn(R * C, 21, 2), w = randn(C, 22), b = randn(C, 23), G = randn(R * C, 24);
  return {
    name: `layernormBackward ${R}x${C} eps=${eps}`, rtol: 3e-3, atol: 1e-4, h: 1e-2, inputs: [x, w, b],
    loss: (be) => { const out = new Float32Array(R * C); be.layernormForward(out, null, null, x, w, b, R, C, eps); return dot(out, G); },
    grads: (be) => {
      const out = new Float32Array(R * C), mean = new Float32Array(R), rstd = new Float32Array(R);
      be.layernormForward(out, mean, rstd, x, w, b, R, C, eps);
      const dx = new Float32Array(R * C), dw = new Float32Array(C), db = new Float32Array(C);
      be.layernormBackward(dx, dw, db, G, x, w, mean, rstd, R, C);
      return [dx, dw, db];
    },
  };
}

function geluGradCase(approx: number): GradCase {
  const x = new Float32Array([-6, -3.1, -1, -0.3, 0, 0.2, 0.7, 1.5, 2.9, 5.5, ...randn(30, 25, 4)]);
  const G = randn(x.length, 26);
  return {
    name: `geluBackward ${approx ? 'tanh' : 'erf'}`, rtol: 1e-3, atol: 1e-4, h: 1e-2, inputs: [x],
    loss: (be) => { const out = new Float32Array(x.length); be.geluForward(out, x, x.length, approx); return dot(out, G); },
    grads: (be) => { const dx = new Float32Array(x.length); be.geluBackward(dx, x, G, x.length, approx); return [dx]; },
  };
}

function attnGradCase(B: number, N: number, NH: number, HD: number): GradCase {
  const D = NH * HD, scale = 1 / Math.sqrt(HD);
  const qkv = randn(B * N * 3 * D, 27, 1.2), G = randn(B * N * D, 28);
  return {
    name: `attentionBackward B=${B} N=${N} NH=${NH} HD=${HD}`, rtol: 3e-3, atol: 1e-4, h: 1e-2, inputs: [qkv],
    loss: (be) => { const out = new Float32Array(B * N * D); be.attentionForward(out, null, qkv, B, N, NH, HD, scale); return dot(out, G); },
    grads: (be) => {
      const out = new Float32Array(B * N * D), probs = new Float32Array(B * NH * N * N);
      be.attentionForward(out, probs, qkv, B, N, NH, HD, scale);
      const dqkv = new Float32Array(B * N * 3 * D);
      be.attentionBackward(dqkv, G, qkv, probs, B, N, NH, HD, scale);
      return [dqkv];
    },
  };
}

function col2imGradCase(B: number, C: number, H: number, W: number, P: number): GradCase {
  const x = randn(B * C * H * W, 29), KK = C * P * P, NP = (H / P) * (W / P);
  const G = randn(B * NP * KK, 30);
  return {
    name: `col2imPatches (adjoint of im2col) B=${B} C=${C} ${H}x${W} P=${P}`, rtol: 1e-3, atol: 1e-5, h: 0.25, inputs: [x],
    loss: (be) => { const cols = new Float32Array(B * NP * KK); be.im2colPatches(cols, x, B, C, H, W, P); return dot(cols, G); },
    grads: (be) => { const dx = new Float32Array(x.length).fill(0); be.col2imPatches(dx, G, B, C, H, W, P); return [dx]; },
  };
}

function softmaxGradCase(R: number, C: number): GradCase {
  const x = randn(R * C, 36, 3), G = randn(R * C, 37);
  return {
    name: `softmaxBackward ${R}x${C}`, rtol: 3e-3, atol: 1e-4, h: 1e-2, inputs: [x],
    loss: (be) => { const out = new Float32Array(R * C); be.softmaxForward(out, x, R, C); return dot(out, G); },
    grads: (be) => {
      const out = new Float32Array(R * C), dx = new Float32Array(R * C);
      be.softmaxForward(out, x, R, C);
      be.softmaxBackward(dx, out, G, R, C);
      return [dx];
    },
  };
}

const gradCases: GradCase[] = [
  softmaxGradCase(4, 197),
  softmaxGradCase(3, 13),
  lnGradCase(5, 37, 1e-6),
  lnGradCase(3, 8, 1e-5),
  geluGradCase(0),
  geluGradCase(1),
  attnGradCase(2, 7, 3, 4),
  attnGradCase(1, 13, 2, 5),
  col2imGradCase(2, 3, 8, 12, 4),
];

for (const gc of gradCases) {
  for (const be of [reference, native]) {
    test(`${be.name} ${gc.name} = finite differences`, () => {
      const grads = gc.grads(be);
      const gmax = Math.max(...grads.map((g) => maxAbs(g)));
      let seed = 31;
      for (const [k, inp] of gc.inputs.entries()) {
        const g = grads[k]!;
        const r = randn(12, seed++, 0.5);
        const idx = new Set([0, inp.length - 1, ...Array.from(r, (v) => Math.floor((v + 0.5) * inp.length) % inp.length)]);
        for (const i of idx) {
          const p0 = inp[i]!;
          const central = (h: number) => {
            inp[i] = p0 + h; const up = inp[i]!; const lp = gc.loss(be);
            inp[i] = p0 - h; const dn = inp[i]!; const lm = gc.loss(be);
            inp[i] = p0;
            return (lp - lm) / (up - dn);
          };
          const num = (4 * central(gc.h / 2) - central(gc.h)) / 3;
          const err = Math.abs(g[i]! - num);
          assert.ok(err <= gc.rtol * Math.abs(num) + gc.atol * gmax,
            `input ${k}[${i}]: analytic ${g[i]} vs numeric ${num} (err ${err})`);
        }
      }
    });
  }
}

test('thread pool survives shrinking and growing between calls', () => {
  const n = 1 << 16;
  const a = randn(n, 21), b = randn(n, 22), want = new Float32Array(n), out = new Float32Array(n);
  reference.add(want, a, b, n);
  const before = native.threads!.getThreads();
  try {
    for (const t of [2, 1, 2, 3, 1, 2]) {
      native.threads!.setThreads(t);
      out.fill(0);
      native.add(out, a, b, n);
      assert.equal(maxAbsDiff(out, want), 0, `threads ${t}`);
    }
  } finally {
    native.threads!.setThreads(before);
  }
});
