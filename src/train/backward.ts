/**
 * Backward pass of the Vision Transformer family: given dL/dlogits and the activations a training
 * forward kept in a ForwardCache, accumulate dL/dparam for every parameter into a gradient table
 * with the model's layout (`model.params.like()`). The work is the model's: each layer's backward
 * sits beside its forward in src/models/layers.ts; this module keeps the functional entry point.
 *
 * Gradients accumulate (+=): zero `grads` before each step (grads.buffer.fill(0)).
 */
import type { VisionTransformer, ForwardCache, BackwardOptions } from '../models/vit.js';
import type { ParamTable } from '../nn/params.js';

export type { BackwardOptions } from '../models/vit.js';

/**
 * Accumulate the gradient of every parameter into `grads`, given dlogits (B, K) = dL/dlogits and
 * the cache of the forward that produced the logits (model.forward(x, { cache })).
 * For a model without a head (num_classes 0), `dlogits` is dL/d(pre-logits) (B, D).
 */
export function vitBackward(model: VisionTransformer, cache: ForwardCache, dlogits: Float32Array, grads: ParamTable, options: BackwardOptions = {}): void {
  model.backward(cache, dlogits, grads, options);
}
