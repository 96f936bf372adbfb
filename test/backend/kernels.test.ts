/**
 * One table of op cases: every native kernel against the plain-TypeScript reference on awkward
 * shapes (197 tokens, 3 heads, sizes that are not multiples of 8 or 16), plus NaN / Inf inputs.
 * Each case states its tolerance (max abs error relative to the output's magnitude).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { randn, maxAbsDiff, maxAbs } from '../helpers.js';

const native = getBackend('native');

interface Case {
  name: string;
  tol: number;
  /** runs the op on a backend and returns the outputs to compare */
  run: (be: Backend) => Float32Array[];
}

function gemmCase(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha = 1, beta = 0): Case {
  const A = randn(M * K, 1), B = randn(K * N, 2), C0 = randn(M * N, 3);
  return {
    name: `gemm ta=${ta} tb=${tb} ${M}x${N}x${K} alpha=${alpha} beta=${beta}`,
    tol: 2e-6 * Math.sqrt(Math.max(K, 1)),
    run: (be) => {
      const C = C0.slice();
      be.gemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
      return [C];
    },
  };
}

function linearCase(M: number, N: number, K: number, accumulate: boolean, act: number, bias: boolean): Case {
  const x = randn(M * K, 31), w = randn(N * K, 32, 0.3), b = randn(N, 33), c0 = randn(M * N, 34);
  return {
    name: `linear ${M}x${N}x${K} accumulate=${accumulate} act=${act} bias=${bias}`,
    tol: 2e-6 * Math.sqrt(K),
    run: (be) => {
      const out = c0.slice();
      be.linearForward(out, x, w, bias ? b : null, M, N, K, accumulate, act);
      return [out];
    },
  };
}

function lnCase(R: number, C: number, eps: number): Case {
  const x = randn(R * C, 4, 3), w = randn(C, 5), b = randn(C, 6), g = randn(R * C, 7);
  return {
    name: `layernorm ${R}x${C} eps=${eps}`,
    tol: 1e-5,
    run: (be) => {
      const out = new Float32Array(R * C), mean = new Float32Array(R), rstd = new Float32Array(R);
      be.layernormForward(out, mean, rstd, x, w, b, R, C, eps);
      const dx = new Float32Array(R * C), dw = new Float32Array(C), db = new Float32Array(C);
      be.layernormBackward(dx, dw, db, g, x, w, mean, rstd, R, C);
      return [out, mean, rstd, dx, dw, db];
    },
  };
}

function geluCase(n: number, approx: number): Case {
  const x = randn(n, 8, 6), g = randn(n, 9);
  return {
    name: `gelu ${approx ? 'tanh' : 'erf'} n=${n}`,
    tol: 2e-6,
    run: (be) => {
      const out = new Float32Array(n), dx = new Float32Array(n);
      be.geluForward(out, x, n, approx);
      be.geluBackward(dx, x, g, n, approx);
      return [out, dx];
    },
  };
}

function softmaxCase(R: number, C: number, special = false): Case {
  const x = randn(R * C, 10, 8), g = randn(R * C, 35);
  if (special) { x[3] = NaN; x[C + 1] = -Infinity; x[2 * C + 2] = Infinity; }
  return {
    name: `softmax ${R}x${C}${special ? ' with NaN/Inf' : ''}`,
    tol: 1e-6,
    run: (be) => {
      const out = new Float32Array(R * C), dx = new Float32Array(R * C);
      be.softmaxForward(out, x, R, C);
      be.softmaxBackward(dx, out, g, R, C);
      return [out, dx];
    },
  };
}

function attnCase(B: number, N: number, NH: number, HD: number): Case {
  const D = NH * HD;
  const qkv = randn(B * N * 3 * D, 11, 1.5), g = randn(B * N * D, 12);
  return {
    name: `attention B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5,
    run: (be) => {
      const out = new Float32Array(B * N * D), probs = new Float32Array(B * NH * N * N);
      be.attentionForward(out, probs, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
      const dqkv = new Float32Array(B * N * 3 * D);
      be.attentionBackward(dqkv, g, qkv, probs, B, N, NH, HD, 1 / Math.sqrt(HD));
      return [out, probs, dqkv];
    },
  };
}

function patchCase(B: number, C: number, H: number, W: number, P: number): Case {
  const x = randn(B * C * H * W, 13);
  const KK = C * P * P, NP = (H / P) * (W / P);
  return {
    name: `patches B=${B} C=${C} ${H}x${W} P=${P}`,
    tol: 0,
    run: (be) => {
      const cols = new Float32Array(B * NP * KK);
      be.im2colPatches(cols, x, B, C, H, W, P);
      const back = new Float32Array(B * C * H * W);
      be.col2imPatches(back, cols, B, C, H, W, P);
      return [cols, back];
    },
  };
}

function elementwiseCase(R: number, C: number): Case {
  const a = randn(R * C, 14), b = randn(R * C, 15), bias = randn(C, 16);
  a[5] = NaN; b[7] = Infinity;
  return {
    name: `add / biasAdd / biasBackward ${R}x${C}`,
    tol: 1e-5,
    run: (be) => {
      const out = new Float32Array(R * C);
      be.add(out, a, b, R * C);
      const ob = a.slice();
      be.biasAdd(ob, bias, R, C);
      const db = new Float32Array(C);
      be.biasBackward(db, b.map((v) => (Number.isFinite(v) ? v : 0)), R, C);
      return [out, ob, db];
    },
  };
}

const cases: Case[] = [
  gemmCase(false, true, 197, 577, 192),
  gemmCase(false, false, 197, 64, 197),
  gemmCase(true, false, 61, 83, 197, 0.5, 1),
  gemmCase(true, true, 17, 29, 33, 2, 0.25),
  gemmCase(false, true, 1, 1000, 192),
  gemmCase(false, false, 5, 3, 0, 1, 0.5),
  gemmCase(false, true, 394, 768, 192),
  linearCase(197, 577, 192, false, -1, true),
  linearCase(394, 200, 64, false, 0, true),
  linearCase(61, 35, 37, false, 1, false),
  linearCase(197, 192, 768, true, -1, true),
  linearCase(3, 3000, 13, true, -1, false),
  lnCase(197, 192, 1e-6),
  lnCase(13, 37, 1e-12),
  geluCase(1001, 0),
  geluCase(1001, 1),
  softmaxCase(5, 197),
  softmaxCase(4, 13, true),
  attnCase(2, 197, 3, 64),
  attnCase(3, 17, 4, 16),
  attnCase(1, 5, 2, 3),
  patchCase(2, 3, 32, 48, 16),
  patchCase(1, 1, 28, 28, 7),
  elementwiseCase(37, 19),
];

for (const c of cases) {
  test(`native = reference: ${c.name}`, () => {
    const want = c.run(reference);
    const got = c.run(native);
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      const scale = Math.max(1, maxAbs(want[i]!.filter((v) => Number.isFinite(v))));
      const err = maxAbsDiff(got[i]!, want[i]!);
      assert.ok(err <= c.tol * scale, `output ${i}: max abs error ${err} > ${c.tol} x ${scale}`);
      // NaN and Inf land in the same places
      for (let j = 0; j < want[i]!.length; j++) {
        if (!Number.isFinite(want[i]![j]!) || !Number.isFinite(got[i]![j]!)) {
          assert.ok(Object.is(want[i]![j], got[i]![j]) || (Number.isNaN(want[i]![j]!) && Number.isNaN(got[i]![j]!)),
            `output ${i}[${j}]: native ${got[i]![j]} vs reference ${want[i]![j]}`);
        }
      }
    }
  });
}

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
