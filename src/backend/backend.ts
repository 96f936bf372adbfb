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
  /**
   * out (B, N, D), probs (B, NH, N, N) | null, qkv (B, N, 3D) in timm's fused layout; D = NH * HD.
   * causal (default false): query i attends to keys j <= i only, as PyTorch with an additive -inf
   * mask above the diagonal (CLIP's text tower); masked probabilities are exactly 0.
   */
  attentionForward(out: Float32Array, probs: Float32Array | null, qkv: Float32Array,
    B: number, N: number, NH: number, HD: number, scale: number, causal?: boolean): void;
  /** dqkv (B, N, 3D) overwritten; dout (B, N, D), qkv (B, N, 3D), probs (B, NH, N, N); causal as in forward */
  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, probs: Float32Array,
    B: number, N: number, NH: number, HD: number, scale: number, causal?: boolean): void;
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
  setThreads(n: number): void;
  getThreads(): number;
}
