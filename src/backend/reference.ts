/**
 * The plain-TypeScript reference for every op: straightforward loops with double accumulation,
 * written for clarity, used by the tests to check the native kernels.
 */
import type { Backend } from './backend.js';

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TANH_C = 0.044715;

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit), enough for float32 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export function geluScalar(x: number, approx: number): number {
  if (approx === 0) return 0.5 * x * (1 + erf(x * SQRT1_2));
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + TANH_C * x * x * x)));
}

export function geluGradScalar(x: number, approx: number): number {
  if (approx === 0) return 0.5 * (1 + erf(x * SQRT1_2)) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
  const t = Math.tanh(SQRT_2_OVER_PI * (x + TANH_C * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * TANH_C * x * x);
}

function softmaxRow(out: Float32Array, o: number, inp: Float32Array, i: number, C: number): void {
  let m = -Infinity;
  for (let c = 0; c < C; c++) {
    const v = inp[i + c]!;
    if (v > m || Number.isNaN(v)) m = v;
  }
  let s = 0;
  for (let c = 0; c < C; c++) {
    const e = Math.exp(inp[i + c]! - m);
    out[o + c] = e;
    s += e;
  }
  for (let c = 0; c < C; c++) out[o + c] = out[o + c]! / s;
}

/** activation of kind 0 GELU erf, 1 GELU tanh, 2 QuickGELU, 3 SiLU */
export function actScalar(x: number, kind: number): number {
  if (kind <= 1) return geluScalar(x, kind);
  const a = kind === 2 ? 1.702 : 1;
  return x / (1 + Math.exp(-a * x));
}

export function actGradScalar(x: number, kind: number): number {
  if (kind <= 1) return geluGradScalar(x, kind);
  const a = kind === 2 ? 1.702 : 1;
  const s = 1 / (1 + Math.exp(-a * x));
  return s + a * x * s * (1 - s);
}

export const reference: Backend = {
  name: 'reference',

  gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const a = transA ? A[k * lda + i]! : A[i * lda + k]!;
          const b = transB ? B[j * ldb + k]! : B[k * ldb + j]!;
          s += a * b;
        }
        const c = i * ldc + j;
        C[c] = beta === 0 ? alpha * s : alpha * s + beta * C[c]!;
      }
    }
  },

  linearForward(out, inp, weight, bias, M, N, K, accumulate, act) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += inp[i * K + k]! * weight[j * K + k]!;
        const o = i * N + j;
        let v = accumulate ? out[o]! + s : s;
        if (bias) v += bias[j]!;
        out[o] = act >= 0 ? geluScalar(v, act) : v;
      }
    }
  },

  layernormForward(out, mean, rstd, inp, weight, bias, R, C, eps) {
    for (let r = 0; r < R; r++) {
      const o = r * C;
      let s = 0;
      for (let c = 0; c < C; c++) s += inp[o + c]!;
      const m = s / C;
      let v = 0;
      for (let c = 0; c < C; c++) v += (inp[o + c]! - m) ** 2;
      const rs = 1 / Math.sqrt(v / C + eps);
      for (let c = 0; c < C; c++) out[o + c] = (inp[o + c]! - m) * rs * weight[c]! + bias[c]!;
      if (mean) mean[r] = m;
      if (rstd) rstd[r] = rs;
    }
  },

  layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, R, C) {
    for (let r = 0; r < R; r++) {
      const o = r * C;
      const m = mean[r]!, rs = rstd[r]!;
      let sg = 0, sgx = 0;
      for (let c = 0; c < C; c++) {
        const xh = (inp[o + c]! - m) * rs;
        const gw = dout[o + c]! * weight[c]!;
        sg += gw;
        sgx += gw * xh;
        dweight[c] = dweight[c]! + dout[o + c]! * xh;
        dbias[c] = dbias[c]! + dout[o + c]!;
      }
      for (let c = 0; c < C; c++) {
        const xh = (inp[o + c]! - m) * rs;
        dinp[o + c] = dinp[o + c]! + (dout[o + c]! * weight[c]! - sg / C - xh * (sgx / C)) * rs;
      }
    }
  },

  geluForward(out, inp, n, approx) {
    for (let i = 0; i < n; i++) out[i] = geluScalar(inp[i]!, approx);
  },

  geluBackward(dinp, inp, dout, n, approx) {
    for (let i = 0; i < n; i++) dinp[i] = dout[i]! * geluGradScalar(inp[i]!, approx);
  },

  softmaxForward(out, inp, R, C) {
    for (let r = 0; r < R; r++) softmaxRow(out, r * C, inp, r * C, C);
  },

  softmaxBackward(dinp, out, dout, R, C) {
    for (let r = 0; r < R; r++) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += dout[r * C + c]! * out[r * C + c]!;
      for (let c = 0; c < C; c++) dinp[r * C + c] = out[r * C + c]! * (dout[r * C + c]! - dot);
    }
  },

  attentionForward(out, probs, qkv, B, N, NH, HD, scale, causal = false) {
    const D = NH * HD, D3 = 3 * D;
    const s = new Float32Array(N * N); // (N, N)
    const p = new Float32Array(N * N); // (N, N)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        const base = b * N * D3;
        for (let i = 0; i < N; i++) {
          for (let j = 0; j < N; j++) {
            let dot = 0;
            for (let d = 0; d < HD; d++) dot += qkv[base + i * D3 + h * HD + d]! * qkv[base + j * D3 + D + h * HD + d]!;
            // causal: PyTorch's additive mask, -inf above the diagonal (exp gives exactly 0)
            s[i * N + j] = causal && j > i ? -Infinity : dot * scale;
          }
        }
        for (let i = 0; i < N; i++) softmaxRow(p, i * N, s, i * N, N);
        if (probs) probs.set(p, (b * NH + h) * N * N);
        for (let i = 0; i < N; i++) {
          for (let d = 0; d < HD; d++) {
            let acc = 0;
            for (let j = 0; j < N; j++) acc += p[i * N + j]! * qkv[base + j * D3 + 2 * D + h * HD + d]!;
            out[(b * N + i) * D + h * HD + d] = acc;
          }
        }
      }
    }
  },

  // causal needs nothing here: the masked probabilities are 0, so are their score gradients
  attentionBackward(dqkv, dout, qkv, probs, B, N, NH, HD, scale, _causal = false) {
    const D = NH * HD, D3 = 3 * D;
    const dp = new Float64Array(N * N); // (N, N)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        const base = b * N * D3, pb = (b * NH + h) * N * N;
        const q = (n: number, d: number) => qkv[base + n * D3 + h * HD + d]!;
        const k = (n: number, d: number) => qkv[base + n * D3 + D + h * HD + d]!;
        const v = (n: number, d: number) => qkv[base + n * D3 + 2 * D + h * HD + d]!;
        const go = (n: number, d: number) => dout[(b * N + n) * D + h * HD + d]!;
        // dv = p^T dO
        for (let j = 0; j < N; j++) {
          for (let d = 0; d < HD; d++) {
            let acc = 0;
            for (let i = 0; i < N; i++) acc += probs[pb + i * N + j]! * go(i, d);
            dqkv[base + j * D3 + 2 * D + h * HD + d] = acc;
          }
        }
        // ds = p * (dO v^T - rowsum(p * dO v^T))
        for (let i = 0; i < N; i++) {
          let dot = 0;
          for (let j = 0; j < N; j++) {
            let acc = 0;
            for (let d = 0; d < HD; d++) acc += go(i, d) * v(j, d);
            dp[i * N + j] = acc;
            dot += acc * probs[pb + i * N + j]!;
          }
          for (let j = 0; j < N; j++) dp[i * N + j] = probs[pb + i * N + j]! * (dp[i * N + j]! - dot);
        }
        for (let i = 0; i < N; i++) {
          for (let d = 0; d < HD; d++) {
            let dq = 0, dk = 0;
            for (let j = 0; j < N; j++) {
              dq += dp[i * N + j]! * k(j, d);
              dk += dp[j * N + i]! * q(j, d);
            }
            dqkv[base + i * D3 + h * HD + d] = dq * scale;
            dqkv[base + i * D3 + D + h * HD + d] = dk * scale;
          }
        }
      }
    }
  },

  im2colPatches(cols, inp, B, C, H, W, P) {
    const GH = H / P, GW = W / P, KK = C * P * P;
    for (let b = 0; b < B; b++)
      for (let gy = 0; gy < GH; gy++)
        for (let gx = 0; gx < GW; gx++)
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < P; ky++)
              for (let kx = 0; kx < P; kx++)
                cols[((b * GH + gy) * GW + gx) * KK + (c * P + ky) * P + kx] =
                  inp[((b * C + c) * H + gy * P + ky) * W + gx * P + kx]!;
  },

  col2imPatches(dinp, dcols, B, C, H, W, P) {
    const GH = H / P, GW = W / P, KK = C * P * P;
    for (let b = 0; b < B; b++)
      for (let gy = 0; gy < GH; gy++)
        for (let gx = 0; gx < GW; gx++)
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < P; ky++)
              for (let kx = 0; kx < P; kx++) {
                const i = ((b * C + c) * H + gy * P + ky) * W + gx * P + kx;
                dinp[i] = dinp[i]! + dcols[((b * GH + gy) * GW + gx) * KK + (c * P + ky) * P + kx]!;
              }
  },

  add(out, a, b, n) {
    for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
  },

  biasAdd(out, bias, R, C) {
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[r * C + c] = out[r * C + c]! + bias[c]!;
  },

  biasBackward(dbias, dout, R, C) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = 0; r < R; r++) s += dout[r * C + c]!;
      dbias[c] = dbias[c]! + s;
    }
  },

  copyRows(out, inp, B, outN, outOff, inN, inOff, count, C, accumulate) {
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < count; t++) {
        const o = (b * outN + outOff + t) * C, i = (b * inN + inOff + t) * C;
        for (let j = 0; j < C; j++) out[o + j] = accumulate ? out[o + j]! + inp[i + j]! : inp[i + j]!;
      }
    }
  },

  meanRows(out, inp, B, N, off, count, C) {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < C; j++) {
        let s = 0;
        for (let t = 0; t < count; t++) s += inp[(b * N + off + t) * C + j]!;
        out[b * C + j] = s / count;
      }
    }
  },

  meanRowsBackward(dinp, dout, B, N, off, count, C) {
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < count; t++) {
        const o = (b * N + off + t) * C;
        for (let j = 0; j < C; j++) dinp[o + j] = dinp[o + j]! + dout[b * C + j]! / count;
      }
    }
  },

  mulColumnsAdd(out, inp, gamma, R, C) {
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[r * C + c] = out[r * C + c]! + inp[r * C + c]! * gamma[c]!;
  },

  mulColumnsBackward(dinp, dgamma, dout, inp, gamma, R, C) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = 0; r < R; r++) {
        s += dout[r * C + c]! * inp[r * C + c]!;
        dinp[r * C + c] = dout[r * C + c]! * gamma[c]!;
      }
      dgamma[c] = dgamma[c]! + s;
    }
  },

  actForward(out, inp, n, kind) {
    for (let i = 0; i < n; i++) out[i] = actScalar(inp[i]!, kind);
  },

  actBackward(dinp, inp, dout, n, kind) {
    for (let i = 0; i < n; i++) dinp[i] = dout[i]! * actGradScalar(inp[i]!, kind);
  },

  gluForward(out, inp, R, Hh, kind) {
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < Hh; j++) out[r * Hh + j] = actScalar(inp[r * 2 * Hh + j]!, kind) * inp[r * 2 * Hh + Hh + j]!;
    }
  },

  gluBackward(dinp, inp, dout, R, Hh, kind) {
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < Hh; j++) {
        const a = inp[r * 2 * Hh + j]!, g = inp[r * 2 * Hh + Hh + j]!, d = dout[r * Hh + j]!;
        dinp[r * 2 * Hh + j] = d * g * actGradScalar(a, kind);
        dinp[r * 2 * Hh + Hh + j] = d * actScalar(a, kind);
      }
    }
  },

  axpby(out, a, b, alpha, beta, n) {
    for (let i = 0; i < n; i++) out[i] = alpha * a[i]! + beta * b[i]!;
  },

  crossAttentionForward(out, probs, q, kv, B, Nq, Nk, NH, HD, scale) {
    const D = NH * HD;
    const s = new Float32Array(Nk); // (Nk) scores of one query
    const p = new Float32Array(Nk); // (Nk)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        for (let i = 0; i < Nq; i++) {
          for (let j = 0; j < Nk; j++) {
            let dot = 0;
            for (let d = 0; d < HD; d++) dot += q[(b * Nq + i) * D + h * HD + d]! * kv[(b * Nk + j) * 2 * D + h * HD + d]!;
            s[j] = dot * scale;
          }
          softmaxRow(p, 0, s, 0, Nk);
          if (probs) probs.set(p, ((b * NH + h) * Nq + i) * Nk);
          for (let d = 0; d < HD; d++) {
            let acc = 0;
            for (let j = 0; j < Nk; j++) acc += p[j]! * kv[(b * Nk + j) * 2 * D + D + h * HD + d]!;
            out[(b * Nq + i) * D + h * HD + d] = acc;
          }
        }
      }
    }
  },

  crossAttentionBackward(dq, dkv, dout, q, kv, probs, B, Nq, Nk, NH, HD, scale) {
    const D = NH * HD;
    dq.fill(0, 0, B * Nq * D);
    dkv.fill(0, 0, B * Nk * 2 * D);
    const ds = new Float64Array(Nk); // (Nk)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        for (let i = 0; i < Nq; i++) {
          const pb = ((b * NH + h) * Nq + i) * Nk, qo = (b * Nq + i) * D + h * HD;
          let dot = 0;
          for (let j = 0; j < Nk; j++) {
            let acc = 0;
            for (let d = 0; d < HD; d++) acc += dout[qo + d]! * kv[(b * Nk + j) * 2 * D + D + h * HD + d]!;
            ds[j] = acc;
            dot += acc * probs[pb + j]!;
          }
          for (let j = 0; j < Nk; j++) {
            const pj = probs[pb + j]!;
            const g = pj * (ds[j]! - dot) * scale;
            const ko = (b * Nk + j) * 2 * D + h * HD;
            for (let d = 0; d < HD; d++) {
              dq[qo + d] = dq[qo + d]! + g * kv[ko + d]!;
              dkv[ko + d] = dkv[ko + d]! + g * q[qo + d]!;
              dkv[ko + D + d] = dkv[ko + D + d]! + pj * dout[qo + d]!;
            }
          }
        }
      }
    }
  },

  crossEntropyForward(losses, dlogits, logits, labels, soft, B, K, smoothing, gradScale) {
    return crossEntropyRows(losses, dlogits, logits, labels, soft, B, K, smoothing, gradScale);
  },

  adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step) {
    adamwLoop(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step);
  },

  sumSquares(x, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
    return s;
  },

  scale(out, inp, alpha, n) {
    for (let i = 0; i < n; i++) out[i] = inp[i]! * alpha;
  },

  emaUpdate(ema, p, decay, n) {
    for (let i = 0; i < n; i++) ema[i] = ema[i]! * decay + (1 - decay) * p[i]!;
  },

};

/** Cross entropy rows in double (shared by the reference and the native backend's host ops). */
export function crossEntropyRows(losses: Float32Array, dlogits: Float32Array, logits: Float32Array, labels: Int32Array | null,
  soft: Float32Array | null, B: number, K: number, eps: number, gradScale: number): number {
  let total = 0;
  const logp = new Float64Array(K), p = new Float64Array(K), q = new Float64Array(K); // (K)
  for (let b = 0; b < B; b++) {
    const off = b * K;
    if (labels) {
      q.fill(eps / K);
      q[labels[b]!] = q[labels[b]!]! + (1 - eps);
    } else {
      for (let k = 0; k < K; k++) q[k] = (1 - eps) * soft![off + k]! + eps / K;
    }
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, logits[off + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(logits[off + k]! - m);
    const lse = m + Math.log(s);
    for (let k = 0; k < K; k++) {
      logp[k] = logits[off + k]! - lse;
      p[k] = Math.exp(logp[k]!);
    }
    let row = 0, qs = 0;
    for (let k = 0; k < K; k++) {
      if (q[k] !== 0) row -= q[k]! * logp[k]!;
      qs += q[k]!;
    }
    losses[b] = row;
    total += row;
    for (let k = 0; k < K; k++) dlogits[off + k] = (p[k]! * qs - q[k]!) * gradScale;
  }
  return total;
}

/** torch.optim.AdamW's single-tensor step on n elements (float32 state, as torch keeps it). */
export function adamwLoop(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number,
  lr: number, b1: number, b2: number, eps: number, weightDecay: number, t: number): void {
  const decay = 1 - lr * weightDecay;
  const bc1 = 1 - b1 ** t;
  const bc2sqrt = Math.sqrt(1 - b2 ** t);
  const stepSize = lr / bc1;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    let pi = p[i]!;
    if (weightDecay !== 0) pi = Math.fround(pi * decay);
    const mi = Math.fround(m[i]! + (1 - b1) * (gi - m[i]!));
    const vi = Math.fround(b2 * v[i]! + (1 - b2) * gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - stepSize * mi / (Math.sqrt(vi) / bc2sqrt + eps);
  }
}
