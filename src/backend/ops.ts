/**
 * The op list every backend implements, generic over its buffer type T: Float32Array for the host
 * backends (the native addon, the plain-TypeScript reference: backend.ts), DeviceTensor for the
 * backends that own their memory (WebGPU: device.ts). The model code (src/models/layers.ts, vit.ts)
 * is written once against Ops<T>, so it runs unchanged on every backend.
 *
 * Same names and argument order as the native addon (native/addon.cc) and its kernels
 * (native/kernels/kernels.h). Buffers are row-major float32; outputs first, then saved buffers,
 * inputs, parameters, dimensions (llm.c order). An output may alias an input only where the op says
 * so (`+=`, "in place", or out = a / inp as the model uses: scale, axpby, add).
 */
export interface Ops<T> {
  /** C (M, N) = alpha * op(A) @ op(B) + beta * C; op(A) (M, K) is A^T when transA, op(B) (K, N) is B^T when transB */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: T, lda: number, B: T, ldb: number, beta: number, C: T, ldc: number): void;
  /**
   * nn.Linear with a fused epilogue: out (M, N) = act(inp (M, K) @ weight (N, K)^T + bias (N));
   * with accumulate, out += inp @ weight^T + bias (a residual in place; act must be -1).
   * act: -1 none, 0 GELU erf, 1 GELU tanh. bias may be null.
   */
  linearForward(out: T, inp: T, weight: T, bias: T | null,
    M: number, N: number, K: number, accumulate: boolean, act: number): void;
  /** out (R, C), mean (R) | null, rstd (R) | null, inp (R, C), weight (C), bias (C) */
  layernormForward(out: T, mean: T | null, rstd: T | null, inp: T,
    weight: T, bias: T, R: number, C: number, eps: number): void;
  /** dinp (R, C) +=, dweight (C) +=, dbias (C) +=; dout (R, C), inp (R, C), mean (R), rstd (R) */
  layernormBackward(dinp: T, dweight: T, dbias: T, dout: T,
    inp: T, weight: T, mean: T, rstd: T, R: number, C: number): void;
  /** out (n) = gelu(inp (n)); approx 0 = exact erf, 1 = tanh */
  geluForward(out: T, inp: T, n: number, approx: number): void;
  /** dinp (n) = dout * gelu'(inp) */
  geluBackward(dinp: T, inp: T, dout: T, n: number, approx: number): void;
  /** out (R, C) = softmax over the last dim of inp (R, C) */
  softmaxForward(out: T, inp: T, R: number, C: number): void;
  /** dinp (R, C) = out * (dout - rowsum(dout * out)); out (R, C) is the softmax output */
  softmaxBackward(dinp: T, out: T, dout: T, R: number, C: number): void;
  /**
   * out (B, N, D), probs (B, NH, N, N) | null, qkv (B, N, 3D) in timm's fused layout; D = NH * HD.
   * causal (default false): query i attends to keys j <= i only, as PyTorch with an additive -inf
   * mask above the diagonal (CLIP's text tower); masked probabilities are exactly 0.
   */
  attentionForward(out: T, probs: T | null, qkv: T,
    B: number, N: number, NH: number, HD: number, scale: number, causal?: boolean): void;
  /** dqkv (B, N, 3D) overwritten; dout (B, N, D), qkv (B, N, 3D), probs (B, NH, N, N); causal as in forward */
  attentionBackward(dqkv: T, dout: T, qkv: T, probs: T,
    B: number, N: number, NH: number, HD: number, scale: number, causal?: boolean): void;
  /** cols (B*GH*GW, C*P*P) from inp (B, C, H, W), column order (c, ky, kx) */
  im2colPatches(cols: T, inp: T, B: number, C: number, H: number, W: number, P: number): void;
  /** dinp (B, C, H, W) += col2im(dcols (B*GH*GW, C*P*P)) */
  col2imPatches(dinp: T, dcols: T, B: number, C: number, H: number, W: number, P: number): void;
  /** out (n) = a (n) + b (n) */
  add(out: T, a: T, b: T, n: number): void;
  /** out (R, C) += bias (C) */
  biasAdd(out: T, bias: T, R: number, C: number): void;
  /** dbias (C) += column sums of dout (R, C) */
  biasBackward(dbias: T, dout: T, R: number, C: number): void;
  /**
   * Row copy between token tensors: for b < B, t < count,
   *   out[b*outN + outOff + t] (= or +=) inp[b*inN + inOff + t]   (rows of C floats).
   * inN 0 broadcasts the same input rows to every image (class / register tokens); outN 0 with
   * accumulate sums every image into the same output rows (their gradient). Concatenation of
   * prefix tokens, slicing a token out, and the backward of both.
   */
  copyRows(out: T, inp: T, B: number, outN: number, outOff: number, inN: number, inOff: number,
    count: number, C: number, accumulate: boolean): void;
  /** out (B, C) = mean over t < count of inp (B, N, C) rows off + t (average pooling) */
  meanRows(out: T, inp: T, B: number, N: number, off: number, count: number, C: number): void;
  /** dinp (B, N, C) rows off..off+count-1 += dout (B, C) / count */
  meanRowsBackward(dinp: T, dout: T, B: number, N: number, off: number, count: number, C: number): void;
  /** out (R, C) += inp (R, C) * gamma (C): a LayerScale residual */
  mulColumnsAdd(out: T, inp: T, gamma: T, R: number, C: number): void;
  /** dinp (R, C) = dout * gamma (overwritten); dgamma (C) += column sums of dout * inp */
  mulColumnsBackward(dinp: T, dgamma: T, dout: T, inp: T, gamma: T,
    R: number, C: number): void;
  /** out (n) = act(inp (n)); kind 0 GELU erf, 1 GELU tanh, 2 QuickGELU x*sigmoid(1.702x), 3 SiLU x*sigmoid(x) */
  actForward(out: T, inp: T, n: number, kind: number): void;
  /** dinp (n) = dout * act'(inp) (overwritten) */
  actBackward(dinp: T, inp: T, dout: T, n: number, kind: number): void;
  /** gated unit (timm GluMlp, gate_last false): out (R, Hh) = act(inp[:, :Hh]) * inp[:, Hh:], inp (R, 2Hh) */
  gluForward(out: T, inp: T, R: number, Hh: number, kind: number): void;
  /** dinp (R, 2Hh) overwritten from dout (R, Hh) and inp (R, 2Hh) */
  gluBackward(dinp: T, inp: T, dout: T, R: number, Hh: number, kind: number): void;
  /** out (n) = alpha * a (n) + beta * b (n) */
  axpby(out: T, a: T, b: T, alpha: number, beta: number, n: number): void;
  /**
   * Attention of Nq queries over Nk keys (MAP pooling): q (B, Nq, D), kv (B, Nk, 2D) packed [k, v]
   * per row as timm's kv Linear; out (B, Nq, D), probs (B, NH, Nq, Nk) | null.
   */
  crossAttentionForward(out: T, probs: T | null, q: T, kv: T,
    B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void;
  /** dq (B, Nq, D), dkv (B, Nk, 2D) overwritten; dout (B, Nq, D), probs (B, NH, Nq, Nk) from the forward */
  crossAttentionBackward(dq: T, dkv: T, dout: T, q: T, kv: T,
    probs: T, B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void;
  /** out (n) = inp (n) * alpha */
  scale(out: T, inp: T, alpha: number, n: number): void;
  /** ema (n) = ema * decay + (1 - decay) * p (n) */
  emaUpdate(ema: T, p: T, decay: number, n: number): void;
}

/** Thread control, where a backend has host threads to control (the native CPU backend). */
export interface ThreadControl {
  setThreads(n: number): void;
  getThreads(): number;
}

/** Every op of Ops<T>, by name (a backend must implement each: test/backend checks it). */
export const OP_NAMES = [
  'gemm', 'linearForward', 'layernormForward', 'layernormBackward', 'geluForward', 'geluBackward', 'softmaxForward', 'softmaxBackward', 'attentionForward', 'attentionBackward', 'im2colPatches', 'col2imPatches', 'add', 'biasAdd', 'biasBackward', 'copyRows', 'meanRows', 'meanRowsBackward', 'mulColumnsAdd', 'mulColumnsBackward', 'actForward', 'actBackward', 'gluForward', 'gluBackward', 'axpby', 'crossAttentionForward', 'crossAttentionBackward', 'scale', 'emaUpdate',
] as const satisfies readonly (keyof Ops<unknown>)[];

/** compile-time check that OP_NAMES lists every op */
type Missing = Exclude<keyof Ops<unknown>, (typeof OP_NAMES)[number]>;
export const OP_NAMES_COMPLETE: Missing extends never ? true : Missing = true;
