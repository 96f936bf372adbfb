/**
 * The one op case table, for any pair of backends: every op of `Backend` (backend.ts) on awkward
 * shapes (197 tokens, 3 heads, sizes that are not multiples of 8 or 16, K above 197), with NaN /
 * Inf inputs, and with the aliasing the model relies on (in-place scale / axpby / add, copyRows
 * between disjoint views of one allocation, several gradients as disjoint views of one buffer).
 *
 * A case runs ops through a `Backend`-shaped object and returns its outputs. Every output is made
 * with `out()`: a view of n values followed by a guard region filled with a sentinel, so an op that
 * writes past its declared dimensions is caught (`guardErrors`). test/backend/kernels.test.ts runs
 * the table native vs reference; test/webgpu/ops.test.ts runs it webgpu vs reference through
 * test/webgpu/mirror.ts (which maps each host allocation to one device allocation, guard included).
 * `compareOutputs` gives the max-abs and normalised error of each output for the diagnostics.
 */
import type { Backend } from '../../src/backend/backend.js';
import { reference } from '../../src/backend/reference.js';
import { randn, maxAbsDiff, maxAbs } from '../helpers.js';

export const GUARD = 37;
export const SENTINEL = -12345.5;

const guarded = new WeakSet<Float32Array>();

/** an output of n values (a copy of `init`, else zeros) followed by a guard region: a view of the first n */
export function out(n: number, init?: Float32Array): Float32Array {
  const buf = new Float32Array(n + GUARD).fill(SENTINEL);
  if (init) buf.set(init.subarray(0, n));
  else buf.fill(0, 0, n);
  const v = buf.subarray(0, n);
  guarded.add(v);
  return v;
}

/** the guard regions (after outputs made with `out`) that were written */
export function guardErrors(side: string, outs: readonly Float32Array[]): string[] {
  const bad: string[] = [];
  outs.forEach((o, i) => {
    if (!guarded.has(o)) return;
    const g = new Float32Array(o.buffer, o.byteOffset + o.length * 4, GUARD);
    const j = g.findIndex((v) => v !== SENTINEL);
    if (j >= 0) bad.push(`${side} output ${i}: written past its ${o.length} values at +${j} (${g[j]})`);
  });
  return bad;
}

/** the Backend ops (every function member but thread control) */
export type OpName = Exclude<{ [K in keyof Backend]-?: Backend[K] extends (...a: never[]) => unknown ? K : never }[keyof Backend], 'setThreads' | 'getThreads'>;

export interface Case {
  name: string;
  /** max abs error allowed, relative to max(1, max |reference output|) */
  tol: number;
  /** the ops it calls: a backend without one of them (with Backend semantics) does not run the case */
  ops: readonly OpName[];
  /** a shape too slow for the default WebGPU run on SwiftShader (runs with VITKIT_WEBGPU_FULL=1) */
  big?: boolean;
  /** runs the ops on `be` and returns the outputs (scalar results as 1-element arrays) */
  run: (be: Backend) => Float32Array[];
  /** the expected outputs where reference.ts has no direct equivalent */
  want?: () => Float32Array[];
}

/** compares outputs: throws on an error over tolerance or NaN/Inf in different places; returns the report line */
export function compareOutputs(c: Case, got: readonly Float32Array[], want: readonly Float32Array[], gotName: string): string {
  if (got.length !== want.length) throw new Error(`${got.length} outputs, expected ${want.length}`);
  const report: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!, g = got[i]!;
    const scale = Math.max(1, maxAbs(w.filter((v) => Number.isFinite(v))));
    const err = maxAbsDiff(g, w);
    report.push(`out${i} max-abs ${err.toExponential(2)} norm ${(err / scale).toExponential(2)}`);
    if (!(err <= c.tol * scale)) throw new Error(`output ${i}: max abs error ${err} > ${c.tol} x ${scale}`);
    for (let j = 0; j < w.length; j++) {
      if (!Number.isFinite(w[j]!) || !Number.isFinite(g[j]!)) {
        const same = Object.is(w[j], g[j]) || (Number.isNaN(w[j]!) && Number.isNaN(g[j]!));
        if (!same) throw new Error(`output ${i}[${j}]: ${gotName} ${g[j]} vs reference ${w[j]}`);
      }
    }
  }
  return report.join('; ');
}

const finite = (a: Float32Array) => a.map((v) => (Number.isFinite(v) ? v : 0));

// ---- the existing ops -------------------------------------------------------------------------

function gemmCase(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha = 1, beta = 0, big = false): Case {
  const A = randn(M * K, 1), B = randn(K * N, 2), C0 = randn(M * N, 3);
  return {
    name: `gemm ta=${ta} tb=${tb} ${M}x${N}x${K} alpha=${alpha} beta=${beta}`,
    tol: 2e-6 * Math.sqrt(Math.max(K, 1)), ops: ['gemm'], big,
    run: (be) => {
      const C = out(M * N, C0);
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
    tol: 2e-6 * Math.sqrt(K), ops: ['gemm'],
    run: (be) => {
      const C = out(M * ldc, C0);
      be.gemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, C, ldc);
      return [C];
    },
  };
}

/** NaN in a row of A and Inf in a column of op(B) reach exactly that row / column; beta 0 never reads C (NaN there) */
function gemmSpecialCase(M: number, N: number, K: number): Case {
  const A = randn(M * K, 1), B = randn(N * K, 2);
  A[3 * K + 4] = NaN;
  B[5 * K + 6] = Infinity;
  return {
    name: `gemm ${M}x${N}x${K} with NaN/Inf inputs, beta 0 over a NaN C`,
    tol: 2e-6 * Math.sqrt(K), ops: ['gemm'],
    run: (be) => {
      const C = out(M * N, new Float32Array(M * N).fill(NaN));
      be.gemm(false, true, M, N, K, 1, A, K, B, K, 0, C, N);
      return [C];
    },
  };
}

function linearCase(M: number, N: number, K: number, accumulate: boolean, act: number, bias: boolean, big = false): Case {
  const x = randn(M * K, 31), w = randn(N * K, 32, 0.3), b = randn(N, 33), c0 = randn(M * N, 34);
  return {
    name: `linear ${M}x${N}x${K} accumulate=${accumulate} act=${act} bias=${bias}`,
    tol: 2e-6 * Math.sqrt(K), ops: ['linearForward'], big,
    run: (be) => {
      const o = out(M * N, c0);
      be.linearForward(o, x, w, bias ? b : null, M, N, K, accumulate, act);
      return [o];
    },
  };
}

function lnCase(R: number, C: number, eps: number): Case {
  const x = randn(R * C, 4, 3), w = randn(C, 5), b = randn(C, 6), g = randn(R * C, 7);
  const dx0 = randn(R * C, 8), dw0 = randn(C, 9), db0 = randn(C, 10);
  return {
    name: `layernorm ${R}x${C} eps=${eps} (backward accumulates)`,
    tol: 1e-5, ops: ['layernormForward', 'layernormBackward'],
    run: (be) => {
      const o = out(R * C), mean = out(R), rstd = out(R);
      be.layernormForward(o, mean, rstd, x, w, b, R, C, eps);
      const dx = out(R * C, dx0), dw = out(C, dw0), db = out(C, db0);
      be.layernormBackward(dx, dw, db, g, x, w, mean, rstd, R, C);
      return [o, mean, rstd, dx, dw, db];
    },
  };
}

/**
 * the gradients of one block as disjoint views of one gradient allocation (as the trainer holds
 * them): layernormBackward's dweight / dbias and mulColumnsBackward's dgamma side by side
 */
function sharedGradCase(R: number, C: number): Case {
  const x = randn(R * C, 51, 2), w = randn(C, 52), b = randn(C, 53), g = randn(R * C, 54), f = randn(R * C, 55), gamma = randn(C, 56);
  return {
    name: `layernormBackward + mulColumnsBackward into views of one gradient buffer ${R}x${C}`,
    tol: 1e-5, ops: ['layernormForward', 'layernormBackward', 'mulColumnsBackward'],
    run: (be) => {
      const o = out(R * C), mean = out(R), rstd = out(R);
      be.layernormForward(o, mean, rstd, x, w, b, R, C, 1e-6);
      const grads = out(3 * C + 5, randn(3 * C + 5, 57)); // (5 + 3C): [other, dweight, dbias, dgamma]
      const dw = grads.subarray(5, 5 + C), db = grads.subarray(5 + C, 5 + 2 * C), dgam = grads.subarray(5 + 2 * C, 5 + 3 * C);
      const dx = out(R * C);
      be.layernormBackward(dx, dw, db, g, x, w, mean, rstd, R, C);
      const di = out(R * C);
      be.mulColumnsBackward(di, dgam, g, f, gamma, R, C);
      return [dx, grads, di];
    },
  };
}

function geluCase(n: number, approx: number): Case {
  const x = randn(n, 8, 6), g = randn(n, 9);
  x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; x[3] = 40; x[4] = -40;
  return {
    name: `gelu ${approx ? 'tanh' : 'erf'} n=${n} with NaN/Inf`,
    tol: 2e-6, ops: ['geluForward', 'geluBackward'],
    run: (be) => {
      const o = out(n), dx = out(n);
      be.geluForward(o, x, n, approx);
      be.geluBackward(dx, finite(x), g, n, approx);
      return [o, dx];
    },
  };
}

function softmaxCase(R: number, C: number, special = false): Case {
  const x = randn(R * C, 10, 8), g = randn(R * C, 35);
  if (special) { x[3] = NaN; x[C + 1] = -Infinity; x[2 * C + 2] = Infinity; }
  return {
    name: `softmax ${R}x${C}${special ? ' with NaN/Inf' : ''}`,
    tol: 1e-6, ops: ['softmaxForward', 'softmaxBackward'],
    run: (be) => {
      const o = out(R * C), dx = out(R * C);
      be.softmaxForward(o, x, R, C);
      be.softmaxBackward(dx, o, g, R, C);
      return [o, dx];
    },
  };
}

function attnCase(B: number, N: number, NH: number, HD: number, big = false): Case {
  const D = NH * HD;
  const qkv = randn(B * N * 3 * D, 11, 1.5), g = randn(B * N * D, 12);
  return {
    name: `attention B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5, ops: ['attentionForward', 'attentionBackward'], big,
    run: (be) => {
      const o = out(B * N * D), probs = out(B * NH * N * N);
      be.attentionForward(o, probs, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
      const dqkv = out(B * N * 3 * D, randn(B * N * 3 * D, 13)); // overwritten
      be.attentionBackward(dqkv, g, qkv, probs, B, N, NH, HD, 1 / Math.sqrt(HD));
      return [o, probs, dqkv];
    },
  };
}

/** probabilities not asked for (WebGPU: the online-softmax kernel) */
function flashCase(B: number, N: number, NH: number, HD: number): Case {
  const D = NH * HD;
  const qkv = randn(B * N * 3 * D, 44, 1.5);
  return {
    name: `attention without probs B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5, ops: ['attentionForward'],
    run: (be) => {
      const o = out(B * N * D);
      be.attentionForward(o, null, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
      return [o];
    },
  };
}

/** causal attention: reference by masking scores to -Infinity past the diagonal (independent of reference.ts's causal path) */
function causalRef(qkv: Float32Array, B: number, N: number, NH: number, HD: number, scale: number): { o: Float32Array; probs: Float32Array } {
  const D = NH * HD, D3 = 3 * D;
  const o = new Float32Array(B * N * D), probs = new Float32Array(B * NH * N * N);
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
      o[(b * N + i) * D + h * HD + d] = acc;
    }
  }
  return { o, probs };
}

function causalCase(B: number, N: number, NH: number, HD: number, withProbs: boolean): Case {
  const D = NH * HD, scale = 1 / Math.sqrt(HD);
  const qkv = randn(B * N * 3 * D, 45, 1.5);
  return {
    name: `causal attention ${withProbs ? 'with' : 'without'} probs B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5, ops: ['attentionForward'],
    want: () => { const r = causalRef(qkv, B, N, NH, HD, scale); return withProbs ? [r.o, r.probs] : [r.o]; },
    run: (be) => {
      const o = out(B * N * D), probs = out(B * NH * N * N);
      be.attentionForward(o, withProbs ? probs : null, qkv, B, N, NH, HD, scale, true);
      return withProbs ? [o, probs] : [o];
    },
  };
}

/** backward from causal forward probabilities, with causal true and false: the same gradients either way */
function causalBackwardCase(B: number, N: number, NH: number, HD: number): Case {
  const D = NH * HD, scale = 1 / Math.sqrt(HD);
  const qkv = randn(B * N * 3 * D, 46, 1.5), g = randn(B * N * D, 47);
  return {
    name: `causal attention backward (causal flag true and false) B=${B} N=${N} NH=${NH} HD=${HD}`,
    tol: 2e-5, ops: ['attentionForward', 'attentionBackward'],
    run: (be) => {
      const o = out(B * N * D), probs = out(B * NH * N * N);
      be.attentionForward(o, probs, qkv, B, N, NH, HD, scale, true);
      const d1 = out(B * N * 3 * D), d2 = out(B * N * 3 * D, randn(B * N * 3 * D, 48));
      be.attentionBackward(d1, g, qkv, probs, B, N, NH, HD, scale, true);
      be.attentionBackward(d2, g, qkv, probs, B, N, NH, HD, scale, false);
      return [o, probs, d1, d2];
    },
  };
}

function patchCase(B: number, C: number, H: number, W: number, P: number): Case {
  const x = randn(B * C * H * W, 13);
  const KK = C * P * P, NP = (H / P) * (W / P);
  const back0 = randn(B * C * H * W, 46);
  return {
    name: `patches B=${B} C=${C} ${H}x${W} P=${P}`,
    tol: 0, ops: ['im2colPatches', 'col2imPatches'],
    run: (be) => {
      const cols = out(B * NP * KK);
      be.im2colPatches(cols, x, B, C, H, W, P);
      const back = out(B * C * H * W, back0); // +=
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
    name: `add / biasAdd / biasBackward ${R}x${C} with NaN/Inf, add in place`,
    tol: 1e-5, ops: ['add', 'biasAdd', 'biasBackward'],
    run: (be) => {
      const o = out(R * C);
      be.add(o, a, b, R * C);
      const ob = out(R * C, a);
      be.biasAdd(ob, bias, R, C);
      const db = out(C, db0);
      be.biasBackward(db, finite(b), R, C);
      const inPlace = out(R * C, b);
      be.add(inPlace, inPlace, a, R * C); // out = a (the model's dpos += ...)
      return [o, ob, db, inPlace];
    },
  };
}

// ---- the model's layout, pooling, LayerScale, activation, MAP and training ops -----------------

function copyRowsCase(B: number, N: number, NP: number, C: number): Case {
  const patches = randn(B * NP * C, 1), cls = randn(2 * C, 2), tok = randn(B * N * C, 3);
  return {
    name: `copyRows concat / slice / broadcast / batch-sum / plain copy B=${B} N=${N} C=${C}`,
    tol: 1e-6, ops: ['copyRows'],
    run: (be) => {
      const t = out(B * N * C);
      be.copyRows(t, patches, B, N, N - NP, NP, 0, NP, C, false); // patches after the prefix
      be.copyRows(t, cls, B, N, 0, 0, 0, 2, C, false); // broadcast 2 prefix rows (inN 0)
      const s = out(B * C);
      be.copyRows(s, tok, B, 1, 0, N, 1, 1, C, false); // slice token 1
      const acc = out(2 * C, randn(2 * C, 4));
      be.copyRows(acc, tok, B, 0, 0, N, 0, 2, C, true); // sum over the batch (outN 0)
      const back = out(B * N * C, tok);
      be.copyRows(back, s, B, N, 1, 1, 0, 1, C, true); // accumulate a slice back
      const last = out(C, randn(C, 5));
      be.copyRows(last, tok, B, 0, 0, N, 3, 1, C, false); // outN 0 without accumulate: the last image's row
      const flat = out(B * N * C);
      be.copyRows(flat, tok, 1, 0, 0, 0, 0, 1, B * N * C, false); // a plain copy (one row of all the floats)
      return [t, s, acc, back, last, flat];
    },
  };
}

/** copyRows between disjoint views of one allocation (the model's arena), both ways */
function copyRowsAliasCase(B: number, N: number, C: number): Case {
  const init = randn(2 * B * N * C + 3, 6);
  return {
    name: `copyRows between disjoint views of one allocation B=${B} N=${N} C=${C}`,
    tol: 1e-6, ops: ['copyRows'],
    run: (be) => {
      const arena = out(2 * B * N * C + 3, init); // [x (B, N, C), 3 floats, y (B, N, C)]
      const x = arena.subarray(0, B * N * C), y = arena.subarray(B * N * C + 3);
      be.copyRows(y, x, B, N, 1, N, 0, N - 1, C, false); // shift tokens by one row
      be.copyRows(x, y, B, N, 0, N, N - 1, 1, C, true); // x's first row += y's last
      be.copyRows(x.subarray(C), y, B, 0, 0, N, 0, 1, C, true); // batch-sum into x's second row
      return [arena];
    },
  };
}

function meanCase(B: number, N: number, off: number, C: number): Case {
  const x = randn(B * N * C, 5), g = randn(B * C, 6);
  return {
    name: `meanRows + backward B=${B} N=${N} off=${off} C=${C}`,
    tol: 1e-6, ops: ['meanRows', 'meanRowsBackward'],
    run: (be) => {
      const m = out(B * C), d = out(B * N * C, randn(B * N * C, 7));
      be.meanRows(m, x, B, N, off, N - off, C);
      be.meanRowsBackward(d, g, B, N, off, N - off, C);
      return [m, d];
    },
  };
}

function layerScaleCase(R: number, C: number, big = false): Case {
  const x = randn(R * C, 8), f = randn(R * C, 9), gamma = randn(C, 10), dy = randn(R * C, 11);
  return {
    name: `mulColumnsAdd + backward (LayerScale) ${R}x${C}`,
    tol: 1e-5, ops: ['mulColumnsAdd', 'mulColumnsBackward'], big,
    run: (be) => {
      const o = out(R * C, x), di = out(R * C, randn(R * C, 13)), dg = out(C, randn(C, 12));
      be.mulColumnsAdd(o, f, gamma, R, C);
      be.mulColumnsBackward(di, dg, dy, f, gamma, R, C);
      return [o, di, dg];
    },
  };
}

function actCase(n: number, kind: number): Case {
  const x = randn(n, 13, 6), g = randn(n, 14);
  x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; x[3] = 95; x[4] = -95;
  return {
    name: `act kind ${kind} n=${n} with NaN/Inf`,
    tol: 2e-6, ops: ['actForward', 'actBackward'],
    run: (be) => {
      const o = out(n), d = out(n);
      be.actForward(o, x, n, kind);
      be.actBackward(d, finite(x), g, n, kind);
      return [o, d];
    },
  };
}

function gluCase(R: number, Hh: number, kind: number): Case {
  const x = randn(R * 2 * Hh, 15, 4), g = randn(R * Hh, 16);
  x[1] = NaN; x[Hh + 2] = Infinity;
  return {
    name: `glu kind ${kind} ${R}x${Hh} with NaN/Inf`,
    tol: 2e-6, ops: ['gluForward', 'gluBackward'],
    run: (be) => {
      const o = out(R * Hh), d = out(R * 2 * Hh, randn(R * 2 * Hh, 17));
      be.gluForward(o, x, R, Hh, kind);
      be.gluBackward(d, finite(x), g, R, Hh, kind);
      return [o, d];
    },
  };
}

function crossAttnCase(B: number, Nq: number, Nk: number, NH: number, HD: number, big = false): Case {
  const D = NH * HD;
  const q = randn(B * Nq * D, 17, 1.5), kv = randn(B * Nk * 2 * D, 18, 1.5), g = randn(B * Nq * D, 19);
  return {
    name: `crossAttention B=${B} Nq=${Nq} Nk=${Nk} NH=${NH} HD=${HD} (dq, dkv views of one buffer)`,
    tol: 2e-5, ops: ['crossAttentionForward', 'crossAttentionBackward'], big,
    run: (be) => {
      const o = out(B * Nq * D), p = out(B * NH * Nq * Nk), o2 = out(B * Nq * D);
      be.crossAttentionForward(o, p, q, kv, B, Nq, Nk, NH, HD, 1 / Math.sqrt(HD));
      be.crossAttentionForward(o2, null, q, kv, B, Nq, Nk, NH, HD, 1 / Math.sqrt(HD));
      const grads = out(B * Nq * D + B * Nk * 2 * D, randn(B * Nq * D + B * Nk * 2 * D, 20)); // overwritten
      const dq = grads.subarray(0, B * Nq * D), dkv = grads.subarray(B * Nq * D);
      be.crossAttentionBackward(dq, dkv, g, q, kv, p, B, Nq, Nk, NH, HD, 1 / Math.sqrt(HD));
      return [o, p, o2, grads];
    },
  };
}

function ceCase(B: number, K: number, soft: boolean): Case {
  const logits = randn(B * K, 20, 5);
  const labels = Int32Array.from({ length: B }, (_, b) => (b * 7) % K);
  const t = randn(B * K, 21).map((v) => Math.abs(v));
  return {
    name: `crossEntropy B=${B} K=${K} ${soft ? 'soft' : 'hard'} targets, smoothing 0.1`,
    tol: 1e-6, ops: ['crossEntropyForward'],
    run: (be) => {
      const l = out(B), d = out(B * K);
      const total = be.crossEntropyForward(l, d, logits, soft ? null : labels, soft ? t : null, B, K, 0.1, 1 / B);
      return [l, d, Float32Array.of(total)];
    },
  };
}

function optimCase(n: number): Case {
  const p0 = randn(n, 22), g = randn(n, 23, 0.1), m0 = randn(n, 24, 0.01), v0 = randn(n, 25, 0.01).map((x) => x * x);
  return {
    name: `adamwStep / sumSquares n=${n}`,
    tol: 1e-6, ops: ['adamwStep', 'sumSquares'],
    run: (be) => {
      const p = out(n, p0), m = out(n, m0), v = out(n, v0);
      be.adamwStep(p, g, m, v, n, 1e-3, 0.9, 0.999, 1e-8, 0.05, 3);
      const s = be.sumSquares(g, n);
      return [p, m, v, Float32Array.of(s)];
    },
  };
}

function scaleEmaCase(n: number): Case {
  const p0 = randn(n, 22), g = randn(n, 23, 0.1);
  g[3] = NaN; g[4] = -Infinity;
  return {
    name: `scale (also in place) / emaUpdate n=${n} with NaN/Inf`,
    tol: 1e-6, ops: ['scale', 'emaUpdate'],
    run: (be) => {
      const sc = out(n);
      be.scale(sc, g, 0.37, n);
      const inPlace = out(n, g);
      be.scale(inPlace, inPlace, Math.fround(0.61), n); // clipping's g *= coef
      const e = out(n, p0);
      be.emaUpdate(e, g, 0.99, n);
      return [sc, inPlace, e];
    },
  };
}

function axpbyCase(n: number): Case {
  const a = randn(n, 26), b = randn(n, 27);
  b[2] = NaN;
  return {
    name: `axpby (also out = a) / biasAdd (pos embed) n=${n}`,
    tol: 1e-6, ops: ['axpby', 'biasAdd'],
    run: (be) => {
      const o = out(n);
      be.axpby(o, a, b, 0.5, 0.5, n);
      const inPlace = out(n, a);
      be.axpby(inPlace, inPlace, b, 0.25, -1.5, n);
      const t = out(3 * n, randn(3 * n, 28));
      be.biasAdd(t, a, 3, n);
      return [o, inPlace, t];
    },
  };
}

export const cases: readonly Case[] = [
  gemmCase(false, true, 197, 131, 192),
  gemmCase(false, true, 197, 577, 192, 1, 0, true),
  gemmCase(false, false, 197, 64, 197),
  gemmCase(true, false, 61, 83, 197, 0.5, 1),
  gemmCase(true, true, 17, 29, 33, 2, 0.25),
  gemmCase(false, true, 1, 1000, 192),
  gemmCase(false, false, 5, 3, 0, 1, 0.5),
  gemmCase(true, false, 64, 70, 300),
  gemmCase(false, true, 394, 768, 192, 1, 0, true),
  stridedGemmCase(false, false, 37, 41, 29),
  stridedGemmCase(true, true, 23, 67, 211),
  gemmSpecialCase(19, 23, 31),
  linearCase(197, 577, 192, false, -1, true),
  linearCase(394, 200, 64, false, 0, true),
  linearCase(61, 35, 37, false, 1, false),
  linearCase(197, 192, 768, true, -1, true),
  linearCase(3, 3000, 13, true, -1, false),
  lnCase(197, 192, 1e-6),
  lnCase(13, 37, 1e-12),
  lnCase(2, 300, 1e-5),
  sharedGradCase(21, 37),
  geluCase(1001, 0),
  geluCase(1001, 1),
  softmaxCase(5, 197),
  softmaxCase(4, 13, true),
  softmaxCase(3, 1000),
  attnCase(1, 197, 3, 64),
  attnCase(2, 197, 3, 64, true),
  attnCase(3, 17, 4, 16),
  attnCase(1, 5, 2, 3),
  flashCase(1, 197, 3, 64),
  flashCase(1, 300, 2, 40),
  flashCase(1, 5, 2, 3),
  causalCase(1, 70, 2, 16, true),
  causalCase(2, 77, 3, 24, false),
  causalBackwardCase(2, 37, 3, 8),
  patchCase(2, 3, 32, 48, 16),
  patchCase(1, 1, 28, 28, 7),
  elementwiseCase(37, 19),
  copyRowsCase(2, 197, 196, 192),
  copyRowsCase(3, 21, 16, 37),
  copyRowsAliasCase(2, 13, 19),
  meanCase(2, 197, 1, 192),
  meanCase(3, 35, 5, 37),
  layerScaleCase(394, 192, true),
  layerScaleCase(197, 37),
  actCase(1001, 0), actCase(1001, 1), actCase(1001, 2), actCase(1001, 3),
  gluCase(197, 37, 3), gluCase(5, 64, 2), gluCase(7, 13, 0), gluCase(3, 29, 1),
  crossAttnCase(2, 1, 197, 3, 64),
  crossAttnCase(3, 1, 257, 4, 13),
  crossAttnCase(1, 3, 17, 2, 5),
  crossAttnCase(2, 5, 300, 3, 40, true),
  ceCase(5, 1000, false), ceCase(8, 10, true), ceCase(3, 257, false), ceCase(3, 1000, true), ceCase(3, 10, true),
  optimCase(1003),
  scaleEmaCase(1003),
  axpbyCase(197 * 3),
];
