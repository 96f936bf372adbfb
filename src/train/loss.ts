/**
 * Classification losses with their gradients, as PyTorch / timm define them.
 *
 * Hard labels (Int32Array (B)): torch.nn.functional.cross_entropy(logits, y, label_smoothing=ε)
 *   loss_b = (1 - ε) * (-log p_b[y_b]) + ε * mean_k(-log p_b[k]),  loss = mean_b loss_b
 * which is the cross entropy against q = (1 - ε) * onehot(y) + ε / K.
 * Soft targets (Float32Array (B*K), e.g. from mixup / cutmix): timm's SoftTargetCrossEntropy
 *   loss = mean_b sum_k -t_b[k] * log p_b[k]
 * (with ε > 0 the targets are first smoothed as torch does for probability targets:
 *  t' = (1 - ε) t + ε / K; timm's mixup already smooths, so pass 0 there).
 * dlogits = (p * sum_k t[k] - t) / B. Computed in double, returned as float32.
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { Backend } from '../backend/backend.js';
import { reference } from '../backend/reference.js';
import { argmax } from '../nn/functional.js';

export interface LossResult {
  /** mean over the batch */
  loss: number;
  /** dL/dlogits (B, K) */
  dlogits: Float32Array;
}

/**
 * Cross entropy of logits (B, K) against hard labels (Int32Array (B)) or soft targets
 * (Float32Array (B*K)), mean over the batch, with optional label smoothing.
 * K comes from a Tensor's shape, from `K`, or (hard labels only) from logits.length / B.
 * The rows are the backend's `crossEntropyForward` op (default: the reference backend, double).
 */
export function crossEntropy(logitsIn: Float32Array | Tensor, target: Int32Array | Float32Array, labelSmoothing = 0, K?: number,
  backend: Backend = reference): LossResult {
  let logits: Float32Array;
  if (logitsIn instanceof Tensor) {
    if (logitsIn.shape.length !== 2) throw new VitkitError(`Expected logits of shape (B, K) but received (${logitsIn.shape.join(', ')})`);
    logits = logitsIn.data;
    K ??= logitsIn.shape[1]!;
  } else {
    logits = logitsIn;
  }
  const eps = labelSmoothing;
  if (!(eps >= 0 && eps <= 1)) throw new VitkitError(`Expected labelSmoothing in [0, 1] but received ${eps}`);
  let B: number;
  if (target instanceof Int32Array) {
    B = target.length;
    if (B === 0) throw new VitkitError('crossEntropy needs a non-empty batch (0 labels)');
    K ??= logits.length / B;
  } else {
    if (K === undefined) throw new VitkitError('crossEntropy with soft targets needs the class count K');
    B = target.length / K;
    if (target.length === 0 || !Number.isInteger(B) || target.length !== B * K) {
      throw new VitkitError(`Soft targets have ${target.length} values, not a multiple of K = ${K}`);
    }
  }
  if (!Number.isInteger(K) || K < 1 || logits.length !== B * K) {
    throw new VitkitError(`Expected logits of (${B}, ${K}) for ${B} targets but received ${logits.length} values`);
  }
  if (target instanceof Int32Array) checkLabels(target, K);
  const dlogits = new Float32Array(B * K); // (B, K)
  const losses = new Float32Array(B); // (B)
  const total = backend.crossEntropyForward(losses, dlogits, logits, target instanceof Int32Array ? target : null,
    target instanceof Int32Array ? null : target, B, K, eps, 1 / B);
  return { loss: total / B, dlogits };
}

/** Every hard label in [0, K), else a VitkitError naming the first one that is not. */
export function checkLabels(y: Int32Array, K: number): void {
  for (let b = 0; b < y.length; b++) {
    if (!(y[b]! >= 0 && y[b]! < K)) {
      throw new VitkitError(`Target ${y[b]} at index ${b} is out of bounds: labels must be in [0, ${K - 1}] for K = ${K} classes`);
    }
  }
}

/** Number of rows whose argmax equals the label (first maximum wins, as torch.argmax). */
export function countCorrect(logits: Float32Array, labels: Int32Array, K: number): number {
  let correct = 0;
  for (let b = 0; b < labels.length; b++) {
    if (argmax(logits, b * K, K) === labels[b]) correct++;
  }
  return correct;
}
