/**
 * The model's data-movement and training ops (token concat / slicing, pooling, LayerScale, the
 * extra activations, the gated MLP unit, MAP cross-attention, cross entropy, AdamW, clipping,
 * EMA) on any pair of backends, with a guard region after every output buffer: an op that writes
 * past its declared dimensions changes the guard and fails the case. Awkward shapes: 197 tokens,
 * 3 heads, widths that are not multiples of 16, K and Nk above 197. Reports max-abs and
 * normalised error per output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { randn, maxAbsDiff, maxAbs } from '../helpers.js';

const GUARD = 37;
const SENTINEL = -12345.5;

/** an output buffer of n values (initialised from `init` when given) followed by a guard region */
function out(n: number, init?: Float32Array): Float32Array {
  const b = new Float32Array(n + GUARD).fill(SENTINEL);
  if (init) b.set(init.subarray(0, n));
  else b.fill(0, 0, n);
  return b;
}

interface Case {
  name: string;
  tol: number;
  /** runs the op(s) and returns the output buffers (each with its guard), plus [name, n] per output */
  run: (be: Backend) => { bufs: Float32Array[]; sizes: number[]; scalars?: number[] };
}

function copyRowsCase(B: number, N: number, NP: number, C: number): Case {
  const patches = randn(B * NP * C, 1), cls = randn(2 * C, 2), tok = randn(B * N * C, 3);
  return {
    name: `copyRows concat / slice / broadcast / batch-sum B=${B} N=${N} C=${C}`,
    tol: 1e-6,
    run: (be) => {
      const t = out(B * N * C);
      be.copyRows(t, patches, B, N, N - NP, NP, 0, NP, C, false);      // patches after the prefix
      be.copyRows(t, cls, B, N, 0, 0, 0, 2, C, false);                  // broadcast 2 prefix rows
      const s = out(B * C);
      be.copyRows(s, tok, B, 1, 0, N, 1, 1, C, false);                  // slice token 1
      const acc = out(2 * C, randn(2 * C, 4));
      be.copyRows(acc, tok, B, 0, 0, N, 0, 2, C, true);                 // sum over the batch
      const back = out(B * N * C, tok);
      be.copyRows(back, s, B, N, 1, 1, 0, 1, C, true);                  // accumulate a slice back
      return { bufs: [t, s, acc, back], sizes: [B * N * C, B * C, 2 * C, B * N * C] };
    },
  };
}

function meanCase(B: number, N: number, off: number, C: number): Case {
  const x = randn(B * N * C, 5), g = randn(B * C, 6);
  return {
    name: `meanRows + backward B=${B} N=${N} off=${off} C=${C}`,
    tol: 1e-6,
    run: (be) => {
      const m = out(B * C), d = out(B * N * C, randn(B * N * C, 7));
      be.meanRows(m, x, B, N, off, N - off, C);
      be.meanRowsBackward(d, g, B, N, off, N - off, C);
      return { bufs: [m, d], sizes: [B * C, B * N * C] };
    },
  };
}

function layerScaleCase(R: number, C: number): Case {
  const x = randn(R * C, 8), f = randn(R * C, 9), gamma = randn(C, 10), dy = randn(R * C, 11);
  return {
    name: `mulColumnsAdd + backward (LayerScale) ${R}x${C}`,
    tol: 1e-5,
    run: (be) => {
      const o = out(R * C, x), di = out(R * C), dg = out(C, randn(C, 12));
      be.mulColumnsAdd(o, f, gamma, R, C);
      be.mulColumnsBackward(di, dg, dy, f, gamma, R, C);
      return { bufs: [o, di, dg], sizes: [R * C, R * C, C] };
    },
  };
}

function actCase(n: number, kind: number): Case {
  const x = randn(n, 13, 6), g = randn(n, 14);
  return {
    name: `act kind ${kind} n=${n}`,
    tol: 2e-6,
    run: (be) => {
      const o = out(n), d = out(n);
      be.actForward(o, x, n, kind);
      be.actBackward(d, x, g, n, kind);
      return { bufs: [o, d], sizes: [n, n] };
    },
  };
}

function gluCase(R: number, Hh: number, kind: number): Case {
  const x = randn(R * 2 * Hh, 15, 4), g = randn(R * Hh, 16);
  return {
    name: `glu kind ${kind} ${R}x${Hh}`,
    tol: 2e-6,
    run: (be) => {
      const o = out(R * Hh), d = out(R * 2 * Hh);
      be.gluForward(o, x, R, Hh, kind);
      be.gluBackward(d, x, g, R, Hh, kind);
      return { bufs: [o, d], sizes: [R * Hh, R * 2 * Hh] };
    },
  };
}

function crossAttnCase(B: number, Nq: number, Nk: number, NH: number, HD: number): Case {
  const D = NH * HD;
  const q = randn(B * Nq * D, 17, 1.5), kv = randn(B * Nk * 2 * D, 18, 1.5), g = randn(B * Nq * D, 19);
  return {
    name: `crossAttention B=${B} Nq=${Nq} Nk=${Nk} NH=${NH} HD=${HD}`,
    tol: 2e-5,
    run: (be) => {
      const o = out(B * Nq * D), p = out(B * NH * Nq * Nk), dq = out(B * Nq * D), dkv = out(B * Nk * 2 * D);
      be.crossAttentionForward(o, p, q, kv, B, Nq, Nk, NH, HD, 1 / Math.sqrt(HD));
      be.crossAttentionBackward(dq, dkv, g, q, kv, p, B, Nq, Nk, NH, HD, 1 / Math.sqrt(HD));
      return { bufs: [o, p, dq, dkv], sizes: [B * Nq * D, B * NH * Nq * Nk, B * Nq * D, B * Nk * 2 * D] };
    },
  };
}

function ceCase(B: number, K: number, soft: boolean): Case {
  const logits = randn(B * K, 20, 5);
  const labels = Int32Array.from({ length: B }, (_, b) => (b * 7) % K);
  const t = randn(B * K, 21).map((v) => Math.abs(v));
  return {
    name: `crossEntropy B=${B} K=${K} ${soft ? 'soft' : 'hard'} targets, smoothing 0.1`,
    tol: 1e-6,
    run: (be) => {
      const l = out(B), d = out(B * K);
      const total = be.crossEntropyForward(l, d, logits, soft ? null : labels, soft ? t : null, B, K, 0.1, 1 / B);
      return { bufs: [l, d], sizes: [B, B * K], scalars: [total] };
    },
  };
}

function optimCase(n: number): Case {
  const p0 = randn(n, 22), g = randn(n, 23, 0.1), m0 = randn(n, 24, 0.01), v0 = randn(n, 25, 0.01).map((x) => x * x);
  return {
    name: `adamwStep / sumSquares / scale / emaUpdate n=${n}`,
    tol: 1e-6,
    run: (be) => {
      const p = out(n, p0), m = out(n, m0), v = out(n, v0);
      be.adamwStep(p, g, m, v, n, 1e-3, 0.9, 0.999, 1e-8, 0.05, 3);
      const s = be.sumSquares(g, n);
      const sc = out(n);
      be.scale(sc, g, 0.37, n);
      const e = out(n, p0);
      be.emaUpdate(e, p, 0.99, n);
      return { bufs: [p, m, v, sc, e], sizes: [n, n, n, n, n], scalars: [s] };
    },
  };
}

function axpbyCase(n: number): Case {
  const a = randn(n, 26), b = randn(n, 27);
  return {
    name: `axpby / biasAdd (pos embed) n=${n}`,
    tol: 1e-6,
    run: (be) => {
      const o = out(n);
      be.axpby(o, a, b, 0.5, 0.5, n);
      const t = out(3 * n, randn(3 * n, 28));
      be.biasAdd(t, a, 3, n);
      return { bufs: [o, t], sizes: [n, 3 * n] };
    },
  };
}

const cases: Case[] = [
  copyRowsCase(2, 197, 196, 192), copyRowsCase(3, 21, 16, 37),
  meanCase(2, 197, 1, 192), meanCase(3, 35, 5, 37),
  layerScaleCase(394, 192), layerScaleCase(21, 37),
  actCase(1001, 0), actCase(1001, 1), actCase(1001, 2), actCase(1001, 3),
  gluCase(197, 37, 3), gluCase(5, 64, 2), gluCase(7, 13, 0),
  crossAttnCase(2, 1, 197, 3, 64), crossAttnCase(3, 1, 257, 4, 13), crossAttnCase(1, 3, 17, 2, 5),
  ceCase(5, 1000, false), ceCase(8, 10, true), ceCase(3, 257, false),
  optimCase(1003), axpbyCase(197 * 3),
];

/** compare two backends on every case (max-abs and normalised error), checking guards on both */
export function compareBackends(a: Backend, b: Backend): void {
  for (const c of cases) {
    test(`${b.name} = ${a.name}: ${c.name}`, (t) => {
      const want = c.run(a), got = c.run(b);
      const report: string[] = [];
      for (const [side, r] of [[a.name, want], [b.name, got]] as const) {
        r.bufs.forEach((buf, i) => {
          const n = r.sizes[i]!;
          for (let j = n; j < buf.length; j++) assert.equal(buf[j], SENTINEL, `${side} output ${i}: write past its ${n} values at +${j - n}`);
        });
      }
      want.bufs.forEach((w, i) => {
        const n = want.sizes[i]!;
        const wv = w.subarray(0, n), gv = got.bufs[i]!.subarray(0, n);
        const scale = Math.max(1, maxAbs(wv));
        const err = maxAbsDiff(gv, wv);
        report.push(`out${i} max-abs ${err.toExponential(2)} norm ${(err / scale).toExponential(2)}`);
        assert.ok(err <= c.tol * scale, `output ${i}: max abs error ${err} > ${c.tol} x ${scale}`);
      });
      (want.scalars ?? []).forEach((s, i) => {
        const g = got.scalars![i]!;
        assert.ok(Math.abs(g - s) <= c.tol * Math.max(1, Math.abs(s)), `scalar ${i}: ${g} vs ${s}`);
      });
      t.diagnostic(report.join('; '));
    });
  }
}

compareBackends(reference, getBackend('native'));

test('the guard region catches a write past the end (negative control)', () => {
  const broken: Backend = {
    ...reference,
    copyRows(o, inp, B, outN, outOff, inN, inOff, count, C, acc) {
      reference.copyRows(o, inp, B, outN, outOff, inN, inOff, count + 1, C, acc); // one row too many
    },
  };
  const r = copyRowsCase(2, 21, 16, 37).run(broken);
  const touched = r.bufs.some((buf, i) => buf.subarray(r.sizes[i]!).some((v) => v !== SENTINEL));
  assert.ok(touched, 'an out-of-bounds row went unnoticed');
});
