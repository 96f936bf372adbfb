/**
 * The op list every backend implements: the same names and argument order as the native addon
 * (native/addon.cc) and its kernels (native/kernels/kernels.h). Buffers are row-major float32;
 * outputs first, then saved buffers, inputs, parameters, dimensions (llm.c order).
 */
export interface Backend {
  readonly name: 'native' | 'reference';
  /** C (M, N) = alpha * op(A) @ op(B) + beta * C; op(A) (M, K) is A^T when transA, op(B) (K, N) is B^T when transB */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void;
  /**
   * nn.Linear with a fused epilogue: out (M, N) = act(inp (M, K) @ weight (N, K)^T + bias (N));
   * with accumulate, out += inp @ weight^T + bias (a residual in place; act must be -1).
   * act: -1 none, 0 GELU erf, 1 GELU tanh. bias may be null.
   */
  linearForward(out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null,
    M: number, N: number, K: number, accumulate: boolean, act: number): void;
  /** out (R, C), mean (R) | null, rstd (R) | null, inp (R, C), weight (C), bias (C) */
  layernormForward(out: Float32Array, mean: Float32Array | null, rstd: Float32Array | null, inp: Float32Array,
    weight: Float32Array, bias: Float32Array, R: number, C: number, eps: number): void;
  /** dinp (R, C) +=, dweight (C) +=, dbias (C) +=; dout (R, C), inp (R, C), mean (R), rstd (R) */
  layernormBackward(dinp: Float32Array, dweight: Float32Array, dbias: Float32Array, dout: Float32Array,
    inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, R: number, C: number): void;
  /** out (n) = gelu(inp (n)); approx 0 = exact erf, 1 = tanh */
  geluForward(out: Float32Array, inp: Float32Array, n: number, approx: number): void;
  /** dinp (n) = dout * gelu'(inp) */
  geluBackward(dinp: Float32Array, inp: Float32Array, dout: Float32Array, n: number, approx: number): void;
  /** out (R, C) = softmax over the last dim of inp (R, C) */
  softmaxForward(out: Float32Array, inp: Float32Array, R: number, C: number): void;
  /** dinp (R, C) = out * (dout - rowsum(dout * out)); out (R, C) is the softmax output */
  softmaxBackward(dinp: Float32Array, out: Float32Array, dout: Float32Array, R: number, C: number): void;
  /** out (B, N, D), probs (B, NH, N, N) | null, qkv (B, N, 3D) in timm's fused layout; D = NH * HD */
  attentionForward(out: Float32Array, probs: Float32Array | null, qkv: Float32Array,
    B: number, N: number, NH: number, HD: number, scale: number): void;
  /** dqkv (B, N, 3D) overwritten; dout (B, N, D), qkv (B, N, 3D), probs (B, NH, N, N) */
  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array,
    B: number, N: number, NH: number, HD: number, scale: number): void;
  /** cols (B*GH*GW, C*P*P) from inp (B, C, H, W), column order (c, ky, kx) */
  im2colPatches(cols: Float32Array, inp: Float32Array, B: number, C: number, H: number, W: number, P: number): void;
  /** dinp (B, C, H, W) += col2im(dcols (B*GH*GW, C*P*P)) */
  col2imPatches(dinp: Float32Array, dcols: Float32Array, B: number, C: number, H: number, W: number, P: number): void;
  /** out (n) = a (n) + b (n) */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** out (R, C) += bias (C) */
  biasAdd(out: Float32Array, bias: Float32Array, R: number, C: number): void;
  /** dbias (C) += column sums of dout (R, C) */
  biasBackward(dbias: Float32Array, dout: Float32Array, R: number, C: number): void;
  /**
   * Row copy between token tensors: for b < B, t < count,
   *   out[b*outN + outOff + t] (= or +=) inp[b*inN + inOff + t]   (rows of C floats).
   * inN 0 broadcasts the same input rows to every image (class / register tokens); outN 0 with
   * accumulate sums every image into the same output rows (their gradient). Concatenation of
   * prefix tokens, slicing a token out, and the backward of both.
   */
  copyRows(out: Float32Array, inp: Float32Array, B: number, outN: number, outOff: number, inN: number, inOff: number,
    count: number, C: number, accumulate: boolean): void;
  /** out (B, C) = mean over t < count of inp (B, N, C) rows off + t (average pooling) */
  meanRows(out: Float32Array, inp: Float32Array, B: number, N: number, off: number, count: number, C: number): void;
  /** dinp (B, N, C) rows off..off+count-1 += dout (B, C) / count */
  meanRowsBackward(dinp: Float32Array, dout: Float32Array, B: number, N: number, off: number, count: number, C: number): void;
  /** out (R, C) += inp (R, C) * gamma (C): a LayerScale residual */
  mulColumnsAdd(out: Float32Array, inp: Float32Array, gamma: Float32Array, R: number, C: number): void;
  /** dinp (R, C) = dout * gamma (overwritten); dgamma (C) += column sums of dout * inp */
  mulColumnsBackward(dinp: Float32Array, dgamma: Float32Array, dout: Float32Array, inp: Float32Array, gamma: Float32Array,
    R: number, C: number): void;
  /** out (n) = act(inp (n)); kind 0 GELU erf, 1 GELU tanh, 2 QuickGELU x*sigmoid(1.702x), 3 SiLU x*sigmoid(x) */
  actForward(out: Float32Array, inp: Float32Array, n: number, kind: number): void;
  /** dinp (n) = dout * act'(inp) (overwritten) */
  actBackward(dinp: Float32Array, inp: Float32Array, dout: Float32Array, n: number, kind: number): void;
  /** gated unit (timm GluMlp, gate_last false): out (R, Hh) = act(inp[:, :Hh]) * inp[:, Hh:], inp (R, 2Hh) */
  gluForward(out: Float32Array, inp: Float32Array, R: number, Hh: number, kind: number): void;
  /** dinp (R, 2Hh) overwritten from dout (R, Hh) and inp (R, 2Hh) */
  gluBackward(dinp: Float32Array, inp: Float32Array, dout: Float32Array, R: number, Hh: number, kind: number): void;
  /** out (n) = alpha * a (n) + beta * b (n) */
  axpby(out: Float32Array, a: Float32Array, b: Float32Array, alpha: number, beta: number, n: number): void;
  /**
   * Attention of Nq queries over Nk keys (MAP pooling): q (B, Nq, D), kv (B, Nk, 2D) packed [k, v]
   * per row as timm's kv Linear; out (B, Nq, D), probs (B, NH, Nq, Nk) | null.
   */
  crossAttentionForward(out: Float32Array, probs: Float32Array | null, q: Float32Array, kv: Float32Array,
    B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void;
  /** dq (B, Nq, D), dkv (B, Nk, 2D) overwritten; dout (B, Nq, D), probs (B, NH, Nq, Nk) from the forward */
  crossAttentionBackward(dq: Float32Array, dkv: Float32Array, dout: Float32Array, q: Float32Array, kv: Float32Array,
    probs: Float32Array, B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void;
  /**
   * Cross entropy with label smoothing ε against hard labels (B) or soft targets (B, K) (exactly
   * one of them non-null); per row the target is q = (1-ε) onehot(y) + ε/K or (1-ε) t + ε/K (in double):
   * losses (B) = -sum_k q log_softmax(logits), dlogits (B, K) = (softmax * sum_k q - q) * gradScale.
   * Labels must be in [0, K). Returns the sum of the row losses, accumulated in double.
   */
  crossEntropyForward(losses: Float32Array, dlogits: Float32Array, logits: Float32Array, labels: Int32Array | null,
    soft: Float32Array | null, B: number, K: number, smoothing: number, gradScale: number): number;
  /**
   * One torch.optim.AdamW step (t = step, 1-based) on n elements: p (n), m (n), v (n) updated in
   * place from g (n): p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2;
   * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
   */
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  /** sum of x (n)^2, accumulated in double */
  sumSquares(x: Float32Array, n: number): number;
  /** out (n) = inp (n) * alpha */
  scale(out: Float32Array, inp: Float32Array, alpha: number, n: number): void;
  /** ema (n) = ema * decay + (1 - decay) * p (n) */
  emaUpdate(ema: Float32Array, p: Float32Array, decay: number, n: number): void;
  setThreads(n: number): void;
  getThreads(): number;
}
