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
 * The ops are `Ops<DeviceTensor>` (ops.ts): the op list of every backend — the same names,
 * argument order (outputs, saved buffers, inputs, parameters, dimensions) and shape comments —
 * over `DeviceTensor` in place of `Float32Array`; a `DeviceTensor` argument must hold at least the elements its shape
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

import type { Ops, ThreadControl } from './ops.js';

export type { ThreadControl } from './ops.js';

/** What a backend can do beyond the required op list. */
export interface DeviceCapabilities {
  /** f16 tensors can be allocated (WebGPU: the adapter has `shader-f16`) */
  readonly f16: boolean;
  /** largest allocation in elements of 4 bytes */
  readonly maxElements: number;
}

/** The op list of ops.ts over DeviceTensor, plus memory and the device forms of the training ops. */
export interface DeviceBackend extends Ops<DeviceTensor> {
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
  /**
   * only on a backend whose memory is host memory (the cpu device): a tensor over `data` itself,
   * without a copy (ops on it change `data`). A model's weights are shared with its host model this way.
   */
  adopt?(data: Float32Array, shape: readonly number[]): DeviceTensor;
  /** gives an allocation back to the backend; views of it become invalid. Views themselves need no release. */
  release(t: DeviceTensor): void;
  /** submits the enqueued work now (reads and writes do this themselves) */
  flush(): void;
  /** resolves when every op enqueued so far has finished (and reports device errors) */
  sync(): Promise<void>;
  /** releases everything; the backend is unusable afterwards, and a process holding none exits by itself */
  dispose(): void;

  // ---- layout and training ops beyond Ops<T> (on the host in a host Backend) ----------------
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
   * loss (1) = mean over b of -sum_k q_bk log_softmax(logits (B, K))_bk against soft targets (B, K)
   * f32 (mixup / cutmix), q = (1 - labelSmoothing) t + labelSmoothing / K (torch's probability-target
   * smoothing; timm's mixup folds its smoothing into t, so it passes 0: SoftTargetCrossEntropy).
   */
  softCrossEntropyForward(loss: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void;
  /** dlogits (B, K) = (softmax(logits) * sum_k q_bk - q) / B, q the smoothed soft targets (B, K) as in the forward */
  softCrossEntropyBackward(dlogits: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void;
  /** out (R) i32 = argmax over the last dim of inp (R, C), the first maximum winning (torch.argmax on finite rows; a NaN never wins, as nn/functional argmaxRows) */
  argmaxRows(out: DeviceTensor, inp: DeviceTensor, R: number, C: number): void;
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
