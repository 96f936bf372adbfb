/**
 * A host backend: the op list of ops.ts over Float32Array buffers (the native addon and the
 * plain-TypeScript reference), plus the host-side training ops that return numbers to the caller.
 */
import type { Ops, ThreadControl } from './ops.js';

export type { Ops, ThreadControl } from './ops.js';

export interface Backend extends Ops<Float32Array> {
  /** an open name: 'native', 'reference', or any backend registered later */
  readonly name: string;
  /** present only on backends with host threads (native) */
  readonly threads?: ThreadControl;
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
}
