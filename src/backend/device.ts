/**
 * The backend that owns memory: the op list of backend.ts over opaque device tensors.
 *
 * A `DeviceBackend` allocates every tensor it computes on (`alloc`), and the host moves data
 * only through `write` (host → device, explicit) and `read` (device → host, async). Ops do not
 * run when called: they enqueue work, and the backend submits it in as few submissions as it can
 * (WebGPU: every op between two host transfers goes into one command encoder, so a whole
 * forward or training step is one submission; the native CPU backend may run ops at once). No op
 * returns data to the host, so nothing inside a forward or a step waits on the device.
 *
 * The ops mirror `Backend` in backend.ts op for op — the same names, argument order (outputs,
 * saved buffers, inputs, parameters, dimensions) and shape comments — with `DeviceTensor` in
 * place of `Float32Array`; a `DeviceTensor` argument must hold at least the elements its shape
 * comment asks for (a backend throws a VitkitError naming the op and argument otherwise). Beyond
 * backend.ts there are the training ops that today run on the host (cross-entropy, AdamW,
 * gradient-norm clipping), `copy`/`fill` for layout work, and a `causal` flag on attention.
 *
 * Aliasing: an output may be the same tensor as an input only where the op says "in place" or
 * the shape comment has `+=`; two views of one allocation that do not overlap may be passed
 * anywhere (e.g. every parameter's gradient as a view of one gradient buffer).
 */

/** Element type of a device tensor: f32 everywhere; i32 for class labels; f16 only where a backend reports it. */
export type DeviceDType = 'f32' | 'f16' | 'i32';

/**
 * An opaque handle to memory owned by one backend: an allocation (or a view into one) with a
 * shape, a dtype and an element offset into the allocation. Create with `alloc` or `view`; the
 * data lives on the device and is reached only through the backend.
 */
export interface DeviceTensor {
  /** name of the backend that owns it (a tensor is only valid on that backend instance) */
  readonly backend: string;
  readonly shape: readonly number[];
  readonly dtype: DeviceDType;
  /** offset of element 0, in elements, into the underlying allocation */
  readonly offset: number;
  /** number of elements: the product of `shape` */
  readonly size: number;
}

/** Thread control, where a backend has host threads to control (the native CPU backend). */
export interface ThreadControl {
  setThreads(n: number): void;
  getThreads(): number;
}

/** What a backend can do beyond the required op list. */
export interface DeviceCapabilities {
  /** f16 tensors can be allocated (WebGPU: the adapter has `shader-f16`) */
  readonly f16: boolean;
  /** largest allocation in elements of 4 bytes */
  readonly maxElements: number;
}

export interface DeviceBackend {
  /** an open string: 'webgpu', 'native', 'reference', or any later backend */
  readonly name: string;
  readonly capabilities: DeviceCapabilities;
  /** present only on backends with host threads */
  readonly threads?: ThreadControl;

  // ---- memory -------------------------------------------------------------------------------
  /** a new tensor of `shape` (contents unspecified until written or computed) */
  alloc(shape: readonly number[], dtype?: DeviceDType): DeviceTensor;
  /** a view of `size(shape)` elements of `t` starting `offset` elements into it (no copy) */
  view(t: DeviceTensor, offset: number, shape: readonly number[]): DeviceTensor;
  /** copies host data into `t` (length must equal t.size), ordered after every op enqueued before it */
  write(t: DeviceTensor, data: Float32Array | Int32Array): void;
  /**
   * resolves to the data of `t` once every op enqueued before the call has run: a copy on WebGPU;
   * a backend whose memory is host memory (the native CPU backend) may resolve to a view of it,
   * without copying, valid until the next op that writes `t`
   */
  read(t: DeviceTensor): Promise<Float32Array>;
  /** reads an i32 tensor */
  readInt(t: DeviceTensor): Promise<Int32Array>;
  /** gives an allocation back to the backend; views of it become invalid. Views themselves need no release. */
  release(t: DeviceTensor): void;
  /** submits the enqueued work now (reads and writes do this themselves) */
  flush(): void;
  /** resolves when every op enqueued so far has finished (and reports device errors) */
  sync(): Promise<void>;
  /** releases everything; the backend is unusable afterwards, and a process holding none exits by itself */
  dispose(): void;

  // ---- the op list of backend.ts ------------------------------------------------------------
  /** C (M, N) = alpha * op(A) @ op(B) + beta * C; op(A) (M, K) is A^T when transA, op(B) (K, N) is B^T when transB; beta = 0 never reads C */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: DeviceTensor, lda: number, B: DeviceTensor, ldb: number, beta: number, C: DeviceTensor, ldc: number): void;
  /**
   * nn.Linear with a fused epilogue: out (M, N) = act(inp (M, K) @ weight (N, K)^T + bias (N));
   * with accumulate, out += inp @ weight^T + bias (a residual in place; act must be -1).
   * act: -1 none, 0 GELU erf, 1 GELU tanh. bias may be null.
   */
  linearForward(out: DeviceTensor, inp: DeviceTensor, weight: DeviceTensor, bias: DeviceTensor | null,
    M: number, N: number, K: number, accumulate: boolean, act: number): void;
  /** out (R, C), mean (R) | null, rstd (R) | null, inp (R, C), weight (C), bias (C) */
  layernormForward(out: DeviceTensor, mean: DeviceTensor | null, rstd: DeviceTensor | null, inp: DeviceTensor,
    weight: DeviceTensor, bias: DeviceTensor, R: number, C: number, eps: number): void;
  /** dinp (R, C) +=, dweight (C) +=, dbias (C) +=; dout (R, C), inp (R, C), mean (R), rstd (R) */
  layernormBackward(dinp: DeviceTensor, dweight: DeviceTensor, dbias: DeviceTensor, dout: DeviceTensor,
    inp: DeviceTensor, weight: DeviceTensor, mean: DeviceTensor, rstd: DeviceTensor, R: number, C: number): void;
  /** out (n) = gelu(inp (n)); approx 0 = exact erf, 1 = tanh */
  geluForward(out: DeviceTensor, inp: DeviceTensor, n: number, approx: number): void;
  /** dinp (n) = dout * gelu'(inp) */
  geluBackward(dinp: DeviceTensor, inp: DeviceTensor, dout: DeviceTensor, n: number, approx: number): void;
  /** out (R, C) = softmax over the last dim of inp (R, C) */
  softmaxForward(out: DeviceTensor, inp: DeviceTensor, R: number, C: number): void;
  /** dinp (R, C) = out * (dout - rowsum(dout * out)); out (R, C) is the softmax output */
  softmaxBackward(dinp: DeviceTensor, out: DeviceTensor, dout: DeviceTensor, R: number, C: number): void;
  /**
   * out (B, N, D), probs (B, NH, N, N) | null, qkv (B, N, 3D) in timm's fused layout; D = NH * HD.
   * probs null: the probabilities are never materialized (online softmax over key tiles).
   * causal: query i attends to keys 0..i only (masked probabilities are 0).
   */
  attentionForward(out: DeviceTensor, probs: DeviceTensor | null, qkv: DeviceTensor,
    B: number, N: number, NH: number, HD: number, scale: number, causal?: boolean): void;
  /**
   * dqkv (B, N, 3D) overwritten; dout (B, N, D), qkv (B, N, 3D), probs (B, NH, N, N); causal as in
   * forward (the masked probabilities are 0, so the result is the same either way; causal skips them)
   */
  attentionBackward(dqkv: DeviceTensor, dout: DeviceTensor, qkv: DeviceTensor, probs: DeviceTensor,
    B: number, N: number, NH: number, HD: number, scale: number, causal?: boolean): void;
  /** cols (B*GH*GW, C*P*P) from inp (B, C, H, W), column order (c, ky, kx) */
  im2colPatches(cols: DeviceTensor, inp: DeviceTensor, B: number, C: number, H: number, W: number, P: number): void;
  /** dinp (B, C, H, W) += col2im(dcols (B*GH*GW, C*P*P)) */
  col2imPatches(dinp: DeviceTensor, dcols: DeviceTensor, B: number, C: number, H: number, W: number, P: number): void;
  /** out (n) = a (n) + b (n); out may be a or b (in place) */
  add(out: DeviceTensor, a: DeviceTensor, b: DeviceTensor, n: number): void;
  /** out (R, C) += bias (C) */
  biasAdd(out: DeviceTensor, bias: DeviceTensor, R: number, C: number): void;
  /** dbias (C) += column sums of dout (R, C) */
  biasBackward(dbias: DeviceTensor, dout: DeviceTensor, R: number, C: number): void;
  /**
   * Row copy between token tensors: for b < B, t < count,
   *   out[b*outN + outOff + t] (= or +=) inp[b*inN + inOff + t]   (rows of C floats).
   * inN 0 broadcasts the same input rows to every image; outN 0 with accumulate sums every image
   * into the same output rows (without accumulate the last image's rows land there). out and inp
   * may be views of one allocation that do not overlap.
   */
  copyRows(out: DeviceTensor, inp: DeviceTensor, B: number, outN: number, outOff: number, inN: number, inOff: number,
    count: number, C: number, accumulate: boolean): void;
  /** out (B, C) = mean over t < count of inp (B, N, C) rows off + t (average pooling) */
  meanRows(out: DeviceTensor, inp: DeviceTensor, B: number, N: number, off: number, count: number, C: number): void;
  /** dinp (B, N, C) rows off..off+count-1 += dout (B, C) / count */
  meanRowsBackward(dinp: DeviceTensor, dout: DeviceTensor, B: number, N: number, off: number, count: number, C: number): void;
  /** out (R, C) += inp (R, C) * gamma (C): a LayerScale residual */
  mulColumnsAdd(out: DeviceTensor, inp: DeviceTensor, gamma: DeviceTensor, R: number, C: number): void;
  /** dinp (R, C) = dout * gamma (overwritten; may be dout itself); dgamma (C) += column sums of dout * inp */
  mulColumnsBackward(dinp: DeviceTensor, dgamma: DeviceTensor, dout: DeviceTensor, inp: DeviceTensor, gamma: DeviceTensor,
    R: number, C: number): void;
  /** out (n) = act(inp (n)); kind 0 GELU erf, 1 GELU tanh, 2 QuickGELU x*sigmoid(1.702x), 3 SiLU x*sigmoid(x) */
  actForward(out: DeviceTensor, inp: DeviceTensor, n: number, kind: number): void;
  /** dinp (n) = dout * act'(inp) (overwritten) */
  actBackward(dinp: DeviceTensor, inp: DeviceTensor, dout: DeviceTensor, n: number, kind: number): void;
  /** gated unit (timm GluMlp, gate_last false): out (R, Hh) = act(inp[:, :Hh]) * inp[:, Hh:], inp (R, 2Hh) */
  gluForward(out: DeviceTensor, inp: DeviceTensor, R: number, Hh: number, kind: number): void;
  /** dinp (R, 2Hh) overwritten from dout (R, Hh) and inp (R, 2Hh) */
  gluBackward(dinp: DeviceTensor, inp: DeviceTensor, dout: DeviceTensor, R: number, Hh: number, kind: number): void;
  /** out (n) = alpha * a (n) + beta * b (n); out may be a or b (in place) */
  axpby(out: DeviceTensor, a: DeviceTensor, b: DeviceTensor, alpha: number, beta: number, n: number): void;
  /**
   * Attention of Nq queries over Nk keys (MAP pooling): q (B, Nq, D), kv (B, Nk, 2D) packed [k, v]
   * per row as timm's kv Linear; out (B, Nq, D), probs (B, NH, Nq, Nk) | null.
   */
  crossAttentionForward(out: DeviceTensor, probs: DeviceTensor | null, q: DeviceTensor, kv: DeviceTensor,
    B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void;
  /** dq (B, Nq, D), dkv (B, Nk, 2D) overwritten; dout (B, Nq, D), probs (B, NH, Nq, Nk) from the forward */
  crossAttentionBackward(dq: DeviceTensor, dkv: DeviceTensor, dout: DeviceTensor, q: DeviceTensor, kv: DeviceTensor,
    probs: DeviceTensor, B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void;
  /** out (n) = inp (n) * alpha; out may be inp (in place) */
  scale(out: DeviceTensor, inp: DeviceTensor, alpha: number, n: number): void;
  /** ema (n) = ema * decay + (1 - decay) * p (n) */
  emaUpdate(ema: DeviceTensor, p: DeviceTensor, decay: number, n: number): void;

  // ---- layout and training ops (on the host today) ------------------------------------------
  /** dst (n) = src (n) (views of one allocation must not overlap) */
  copy(dst: DeviceTensor, src: DeviceTensor, n: number): void;
  /** t (all of it) = value */
  fill(t: DeviceTensor, value: number): void;
  /**
   * loss (1) = mean over b of cross_entropy(logits (B, K) row b, targets (B) i32, label_smoothing),
   * torch.nn.functional.cross_entropy semantics; a target outside [0, K) makes the loss NaN.
   */
  crossEntropyForward(loss: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void;
  /** dlogits (B, K) = (softmax(logits) - q) / B, q the smoothed one-hot targets (B) i32 */
  crossEntropyBackward(dlogits: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void;
  /**
   * One torch.optim.AdamW step (decoupled weight decay, bias correction) of params (n) from grads (n)
   * with moments expAvg (n), expAvgSq (n) updated in place; `step` is the 1-based step number;
   * gradScale (1) | null multiplies the gradient first (a clipping coefficient left on the device).
   */
  adamw(params: DeviceTensor, grads: DeviceTensor, expAvg: DeviceTensor, expAvgSq: DeviceTensor, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale?: DeviceTensor | null): void;
  /** norm (1) = L2 norm of grads (n) */
  gradNorm(norm: DeviceTensor, grads: DeviceTensor, n: number): void;
  /**
   * torch.nn.utils.clip_grad_norm_: norm (1) = L2 norm of grads (n); grads *= maxNorm / (norm + 1e-6)
   * where that is below 1 (NaN propagates). The norm stays on the device until read.
   */
  clipGradNorm(grads: DeviceTensor, norm: DeviceTensor, n: number, maxNorm: number): void;
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
