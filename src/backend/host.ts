/**
 * The native backend's memory-bound ops that run in TypeScript over host memory (the native
 * buffers are host memory, so these are zero-copy): token concatenation and slicing, pooling,
 * LayerScale, the extra activations, the gated MLP unit, MAP cross-attention (one query row per
 * image), cross entropy and the optimizer updates. Each has the same contract as the plain
 * reference in reference.ts and a row in test/backend/cases.ts.
 */
import type { Backend } from './backend.js';
import { reference, actScalar, actGradScalar } from './reference.js';

type HostOps = Pick<Backend, 'copyRows' | 'meanRows' | 'meanRowsBackward' | 'mulColumnsAdd' | 'mulColumnsBackward' |
  'actForward' | 'actBackward' | 'gluForward' | 'gluBackward' | 'axpby' | 'crossAttentionForward' | 'crossAttentionBackward' |
  'crossEntropyForward' | 'adamwStep' | 'sumSquares' | 'scale' | 'emaUpdate'>;

/** host ops for a backend whose GELU kernels (kinds 0 and 1) are `gelu` */
export function hostOps(gelu: Pick<Backend, 'geluForward' | 'geluBackward'>): HostOps {
  return {
    copyRows(out, inp, B, outN, outOff, inN, inOff, count, C, accumulate) {
      const n = count * C;
      for (let b = 0; b < B; b++) {
        const o = (b * outN + outOff) * C, i = (b * inN + inOff) * C;
        if (!accumulate) out.set(inp.subarray(i, i + n), o);
        else for (let j = 0; j < n; j++) out[o + j] += inp[i + j]!;
      }
    },
    meanRows(out, inp, B, N, off, count, C) {
      const acc = new Float64Array(C); // (C)
      for (let b = 0; b < B; b++) {
        acc.fill(0);
        for (let t = 0; t < count; t++) {
          const r = (b * N + off + t) * C;
          for (let j = 0; j < C; j++) acc[j] += inp[r + j]!;
        }
        for (let j = 0; j < C; j++) out[b * C + j] = acc[j]! / count;
      }
    },
    meanRowsBackward(dinp, dout, B, N, off, count, C) {
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < count; t++) {
          const r = (b * N + off + t) * C;
          for (let j = 0; j < C; j++) dinp[r + j] += dout[b * C + j]! / count;
        }
      }
    },
    mulColumnsAdd(out, inp, gamma, R, C) {
      for (let r = 0; r < R; r++) {
        const o = r * C;
        for (let c = 0; c < C; c++) out[o + c] += inp[o + c]! * gamma[c]!;
      }
    },
    mulColumnsBackward(dinp, dgamma, dout, inp, gamma, R, C) {
      const acc = new Float64Array(C); // (C)
      for (let r = 0; r < R; r++) {
        const o = r * C;
        for (let c = 0; c < C; c++) {
          const d = dout[o + c]!;
          acc[c] += d * inp[o + c]!;
          dinp[o + c] = d * gamma[c]!;
        }
      }
      for (let c = 0; c < C; c++) dgamma[c] += acc[c]!;
    },
    actForward(out, inp, n, kind) {
      if (kind <= 1) { gelu.geluForward(out, inp, n, kind); return; }
      for (let i = 0; i < n; i++) out[i] = actScalar(inp[i]!, kind);
    },
    actBackward(dinp, inp, dout, n, kind) {
      if (kind <= 1) { gelu.geluBackward(dinp, inp, dout, n, kind); return; }
      for (let i = 0; i < n; i++) dinp[i] = dout[i]! * actGradScalar(inp[i]!, kind);
    },
    gluForward(out, inp, R, Hh, kind) {
      for (let r = 0; r < R; r++) {
        const i = r * 2 * Hh, o = r * Hh;
        for (let j = 0; j < Hh; j++) out[o + j] = actScalar(inp[i + j]!, kind) * inp[i + Hh + j]!;
      }
    },
    gluBackward(dinp, inp, dout, R, Hh, kind) {
      for (let r = 0; r < R; r++) {
        const i = r * 2 * Hh, o = r * Hh;
        for (let j = 0; j < Hh; j++) {
          const a = inp[i + j]!, d = dout[o + j]!;
          dinp[i + j] = d * inp[i + Hh + j]! * actGradScalar(a, kind);
          dinp[i + Hh + j] = d * actScalar(a, kind);
        }
      }
    },
    axpby(out, a, b, alpha, beta, n) {
      for (let i = 0; i < n; i++) out[i] = alpha * a[i]! + beta * b[i]!;
    },
    // one query row per image and head: memory-bound, the reference loops are the implementation
    crossAttentionForward: reference.crossAttentionForward,
    crossAttentionBackward: reference.crossAttentionBackward,
    crossEntropyForward: reference.crossEntropyForward,
    adamwStep: reference.adamwStep,
    sumSquares: reference.sumSquares,
    scale: reference.scale,
    emaUpdate: reference.emaUpdate,
  };
}
