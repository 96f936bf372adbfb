/** What a training step holds in memory: the activations a forward keeps for backward, and the
 * parameter-sized buffers (weights, gradients, two AdamW moments). */
import type { ForwardCache } from '../models/vit.js';
import type { VisionTransformer } from '../models/vit.js';
import { Tensor } from '../tensor.js';
import { imgHW } from '../models/config.js';

/** Bytes of every Float32Array reachable from a forward cache (shared buffers counted once). */
export function cacheBytes(cache: ForwardCache): number {
  const seen = new Set<ArrayBufferLike>();
  let bytes = 0;
  const visit = (v: unknown) => {
    if (v instanceof Float32Array) {
      if (!seen.has(v.buffer)) {
        seen.add(v.buffer);
        bytes += v.buffer.byteLength;
      }
    } else if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (v && typeof v === 'object') {
      Object.values(v).forEach(visit);
    }
  };
  visit(cache);
  return bytes;
}

export interface StepMemory {
  /** activations kept by the forward for backward */
  activationBytes: number;
  /** weights + gradients + AdamW first and second moments */
  paramStateBytes: number;
}

/** Measure a training step's memory at batch size B by running one caching forward. */
export function trainStepMemory(model: VisionTransformer, B: number): StepMemory {
  const c = model.config;
  const x = new Tensor([B, c.in_chans, ...imgHW(c)]);
  const cache = {} as ForwardCache;
  model.forward(x, { cache });
  return { activationBytes: cacheBytes(cache), paramStateBytes: 4 * 4 * model.numParams };
}
