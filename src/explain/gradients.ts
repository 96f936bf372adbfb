/**
 * dL/dA: the gradient of one class's logit with respect to every block's attention probabilities,
 * for gradient-weighted rollout.
 *
 * A training forward (model.forward(x, { cache })) keeps each block's activations. Going back
 * from dL/dlogits = one-hot(class), the model backward (src/train/backward.ts) reports at each
 * block dO, the gradient at the attention output (before proj); with V the values,
 *   out_h = A_h V_h   =>   dA_h = dO_h V_h^T   (per image and head, (N, HD) @ (HD, N)).
 * A is treated as a free variable here (the softmax is not differentiated through), which is what
 * Chefer et al.'s grad ⊙ attn weighting uses.
 */
import { Tensor } from '../tensor.js';
import { VitkitError } from '../errors.js';
import { dims } from '../models/config.js';
import { emptyCache, type ForwardCache } from '../models/vit.js';
import type { Model } from '../models/model.js';

export interface AttentionGradients {
  logits: Tensor;
  /** per block (B, NH, N, N) */
  attentions: Tensor[];
  /** per block dL/dA (B, NH, N, N), L = sum over the batch of logit `classIndex` */
  grads: Tensor[];
}


/**
 * The backward hook that turns each block's dO (B*N, D) into dL/dA (B, NH, N, N), and the tables
 * it fills: pass `hook` as BackwardOptions.onAttnOutputGrad of a backward on `cache`.
 */
export function attentionGradientHook(model: Pick<Model, 'config' | 'backend'>, cache: ForwardCache): {
  hook: (block: number, dattn: Float32Array) => void; attentions: Tensor[]; grads: Tensor[];
} {
  const c = model.config, d = dims(c), be = model.backend;
  const { D, NH, HD } = d;
  const B = cache.B, N = cache.layout.N;
  const grads: Tensor[] = new Array(c.depth);
  const attentions: Tensor[] = new Array(c.depth);
  const dOh = new Float32Array(N * HD), Vh = new Float32Array(N * HD); // (N, HD) per head
  const hook = (i: number, dattn: Float32Array) => {
    const bc = cache.blocks[i]!;
    const dA = new Float32Array(B * NH * N * N); // (B, NH, N, N)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        for (let t = 0; t < N; t++) {
          dOh.set(dattn.subarray((b * N + t) * D + h * HD, (b * N + t) * D + (h + 1) * HD), t * HD);
          const v = (b * N + t) * 3 * D + 2 * D + h * HD;
          Vh.set(bc.qkv.subarray(v, v + HD), t * HD);
        }
        be.gemm(false, true, N, N, HD, 1, dOh, HD, Vh, HD, 0, dA.subarray((b * NH + h) * N * N), N);
      }
    }
    grads[i] = new Tensor([B, NH, N, N], dA);
    attentions[i] = new Tensor([B, NH, N, N], bc.probs);
  };
  return { hook, attentions, grads };
}

/** Gradients of logit `classIndex` w.r.t. each block's attention probabilities, for x (B, C, H, W). */
export function attentionGradients(model: Model, x: Tensor, classIndex: number): AttentionGradients {
  const c = model.config;
  const K = c.num_classes;
  if (K === 0) throw new VitkitError('Gradient-weighted rollout needs a classifier head, but the model has num_classes 0');
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= K) throw new VitkitError(`Expected a class index in [0, ${K - 1}] but received ${classIndex}`);
  const cache = emptyCache();
  const logits = model.forward(x, { cache });
  const B = cache.B;
  // L = sum over the batch of logit `classIndex`: dL/dlogits is one-hot per image
  const dlogits = new Float32Array(B * K);
  for (let b = 0; b < B; b++) dlogits[b * K + classIndex] = 1;
  const { hook, attentions, grads } = attentionGradientHook(model, cache);
  // the parameter gradients land in a scratch table; only the attention hook's results are kept
  model.backward(cache, dlogits, model.params.like(), { onAttnOutputGrad: hook });
  return { logits, attentions, grads };
}
