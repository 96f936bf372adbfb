/**
 * The op case table on WebGPU: every op, forward and backward, against the plain-TypeScript
 * reference (src/backend/reference.ts) on the awkward shapes and with the tolerances of the CPU
 * table (test/backend/kernels.test.ts), plus the ops that exist only on devices (flash
 * attention, causal attention, cross-entropy, AdamW, gradient-norm clipping) against the CPU
 * training code. Every device tensor has a guard region after it that no op may write.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { randn, maxAbsDiff, maxAbs } from '../helpers.js';
import { getTestDevice } from './setup.js';
import { mirror } from './mirror.js';

const { dev, reason } = await getTestDevice();
const skip = dev ? false : reason;
after(() => dev?.dispose());

interface Case {
  name: string;
  tol: number;
  /** runs the op on a backend and returns the outputs to compare */
  run: (be: Backend) => Float32Array[];
  /** a reference other than reference.ts (host code for ops it does not have) */
  want?: () => Float32Array[];
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

/** gemm on sub-matrices: leading dimensions wider than the operands, C a block of a larger matrix */
function stridedGemmCase(ta: boolean, tb: boolean, M: number, N: number, K: number): Case {
  const lda = (ta ? M : K) + 5, ldb = (tb ? K : N) + 3, ldc = N + 7;
  const A = randn((ta ? K : M) * lda, 41), B = randn((tb ? N : K) * ldb, 42), C0 = randn(M * ldc, 43);
  return {
    name: `gemm strided ta=${ta} tb=${tb} ${M}x${N}x${K} lda=${lda} ldb=${ldb} ldc=${ldc}`,
    tol: 2e-6 * Math.sqrt(K),
    run: (be) => {
      const C = C0.slice();
      be.gemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, C, ldc);
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
  const dx0 = randn(R * C, 8), dw0 = randn(C, 9), db0 = randn(C, 10);
  return {
    name: `layernorm ${R}x${C} eps=${eps} (backward accumulates)`,
    tol: 1e-5,
    run: (be) => {
      const out = new Float32Array(R * C), mean = new Float32Array(R), rstd = new Float32Array(R);
      be.layernormForward(out, mean, rstd, x, w, b, R, C, eps);
      const dx = dx0.slice(), dw = dw0.slice(), db = db0.slice();
      be.layernormBackward(dx, dw, db, g, x, w, mean, rstd, R, C);
      return [out, mean, rstd, dx, dw, db];
    },
  };
}

function geluCase(n: number, approx: number): Case {
  const x = randn(n, 8, 6), g = randn(n, 9);
  x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; x[3] = 40; x[4] = -40;
  return {
    name: `gelu ${approx ? 'tanh' : 'erf'} n=${n} with NaN/Inf`,
    tol: 2e-6,
    run: (be) => {
      const out = new Float32Array(n), dx = new Float32Array(n);
      be.geluForward(out, x, n, approx);
      be.geluBackward(dx, x.map((v) => (Number.isFinite(v) ? v : 0)), g, n, approx);
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

/** probabilities not asked for: the online-softmax kernel, against the reference's output */
function flashCase(B: number, N: number, NH: number, HD: number): Case {
  const D = NH * HD;
  const qkv = randn(B * N * 3 * D, 44, 1.5);
  return {
    name: `attention without probs (online softmax) B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5,
    run: (be) => {
      const out = new Float32Array(B * N * D);
      be.attentionForward(out, null, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
      return [out];
    },
  };
}

/** causal attention: reference by masking scores to -Infinity past the diagonal */
function causalRef(qkv: Float32Array, B: number, N: number, NH: number, HD: number, scale: number): { out: Float32Array; probs: Float32Array } {
  const D = NH * HD, D3 = 3 * D;
  const out = new Float32Array(B * N * D), probs = new Float32Array(B * NH * N * N);
  const s = new Float32Array(N);
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let dot = 0;
      for (let d = 0; d < HD; d++) dot += qkv[(b * N + i) * D3 + h * HD + d]! * qkv[(b * N + j) * D3 + D + h * HD + d]!;
      s[j] = j <= i ? dot * scale : -Infinity;
    }
    const p = probs.subarray(((b * NH + h) * N + i) * N, ((b * NH + h) * N + i + 1) * N);
    reference.softmaxForward(p, s, 1, N);
    for (let d = 0; d < HD; d++) {
      let acc = 0;
      for (let j = 0; j < N; j++) acc += p[j]! * qkv[(b * N + j) * D3 + 2 * D + h * HD + d]!;
      out[(b * N + i) * D + h * HD + d] = acc;
    }
  }
  return { out, probs };
}

function causalCase(B: number, N: number, NH: number, HD: number, withProbs: boolean): Case {
  const D = NH * HD, scale = 1 / Math.sqrt(HD);
  const qkv = randn(B * N * 3 * D, 45, 1.5);
  return {
    name: `causal attention ${withProbs ? 'with' : 'without'} probs B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5,
    want: () => { const r = causalRef(qkv, B, N, NH, HD, scale); return withProbs ? [r.out, r.probs] : [r.out]; },
    run: (be) => {
      const out = new Float32Array(B * N * D), probs = new Float32Array(B * NH * N * N);
      (be.attentionForward as (...a: unknown[]) => void)(out, withProbs ? probs : null, qkv, B, N, NH, HD, scale, true);
      return withProbs ? [out, probs] : [out];
    },
  };
}

function patchCase(B: number, C: number, H: number, W: number, P: number): Case {
  const x = randn(B * C * H * W, 13);
  const KK = C * P * P, NP = (H / P) * (W / P);
  const back0 = randn(B * C * H * W, 46);
  return {
    name: `patches B=${B} C=${C} ${H}x${W} P=${P}`,
    tol: 0,
    run: (be) => {
      const cols = new Float32Array(B * NP * KK);
      be.im2colPatches(cols, x, B, C, H, W, P);
      const back = back0.slice();
      be.col2imPatches(back, cols, B, C, H, W, P);
      return [cols, back];
    },
  };
}

function elementwiseCase(R: number, C: number): Case {
  const a = randn(R * C, 14), b = randn(R * C, 15), bias = randn(C, 16);
  a[5] = NaN; b[7] = Infinity;
  const db0 = randn(C, 17);
  return {
    name: `add / biasAdd / biasBackward ${R}x${C}`,
    tol: 1e-5,
    run: (be) => {
      const out = new Float32Array(R * C);
      be.add(out, a, b, R * C);
      const ob = a.slice();
      be.biasAdd(ob, bias, R, C);
      const db = db0.slice();
      be.biasBackward(db, b.map((v) => (Number.isFinite(v) ? v : 0)), R, C);
      return [out, ob, db];
    },
  };
}

const cases: Case[] = [
  gemmCase(false, true, 197, 131, 192),
  gemmCase(false, false, 197, 64, 197),
  gemmCase(true, false, 61, 83, 197, 0.5, 1),
  gemmCase(true, true, 17, 29, 33, 2, 0.25),
  gemmCase(false, true, 1, 1000, 192),
  gemmCase(false, false, 5, 3, 0, 1, 0.5),
  gemmCase(true, false, 64, 70, 300),
  stridedGemmCase(false, false, 37, 41, 29),
  stridedGemmCase(true, true, 23, 67, 211),
  linearCase(197, 577, 192, false, -1, true),
  linearCase(394, 200, 64, false, 0, true),
  linearCase(61, 35, 37, false, 1, false),
  linearCase(197, 192, 768, true, -1, true),
  linearCase(3, 3000, 13, true, -1, false),
  lnCase(197, 192, 1e-6),
  lnCase(13, 37, 1e-12),
  lnCase(2, 300, 1e-5),
  geluCase(1001, 0),
  geluCase(1001, 1),
  softmaxCase(5, 197),
  softmaxCase(4, 13, true),
  softmaxCase(3, 1000),
  attnCase(1, 197, 3, 64),
  attnCase(3, 17, 4, 16),
  attnCase(1, 5, 2, 3),
  flashCase(1, 197, 3, 64),
  flashCase(1, 300, 2, 40),
  flashCase(1, 5, 2, 3),
  causalCase(1, 70, 2, 16, true),
  causalCase(2, 77, 3, 24, false),
  patchCase(2, 3, 32, 48, 16),
  patchCase(1, 1, 28, 28, 7),
  elementwiseCase(37, 19),
];

async function compare(c: Case): Promise<void> {
  const want = c.want ? c.want() : c.run(reference);
  const m = mirror(dev!);
  const got = c.run(m.be);
  const guards = await m.finish();
  assert.deepEqual(guards, [], 'an op wrote past the end of its output');
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const scale = Math.max(1, maxAbs(want[i]!.filter((v) => Number.isFinite(v))));
    const err = maxAbsDiff(got[i]!, want[i]!);
    assert.ok(err <= c.tol * scale, `output ${i}: max abs error ${err} > ${c.tol} x ${scale}`);
    for (let j = 0; j < want[i]!.length; j++) {
      if (!Number.isFinite(want[i]![j]!) || !Number.isFinite(got[i]![j]!)) {
        assert.ok(Object.is(want[i]![j], got[i]![j]) || (Number.isNaN(want[i]![j]!) && Number.isNaN(got[i]![j]!)),
          `output ${i}[${j}]: webgpu ${got[i]![j]} vs reference ${want[i]![j]}`);
      }
    }
  }
}

for (const c of cases) test(`webgpu = reference: ${c.name}`, { skip }, () => compare(c));
