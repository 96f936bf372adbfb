/**
 * dL/dA: the gradient of one class's logit with respect to every block's attention probabilities,
 * for gradient-weighted rollout.
 *
 * A training forward (model.forward(x, { cache })) keeps each block's activations. Going back
 * from dL/dlogits = one-hot(class), only input gradients are needed (no parameter gradients), so
 * this is a lean mirror of src/train/backward.ts's head / pooling / norm / block backward. At each
 * block, with dO the gradient at the attention output (before proj) and V the values,
 *   out_h = A_h V_h   =>   dA_h = dO_h V_h^T   (per image and head, (N, HD) @ (HD, N)).
 * A is treated as a free variable here (the softmax is not differentiated through), which is what
 * Chefer et al.'s grad ⊙ attn weighting uses.
 */
import { Tensor } from '../tensor.js';
import { VitkitError } from '../errors.js';
import { dims } from '../models/config.js';
import type { VisionTransformer, ForwardCache } from '../models/vit.js';

export interface AttentionGradients {
  logits: Tensor;
  /** per block (B, NH, N, N) */
  attentions: Tensor[];
  /** per block dL/dA (B, NH, N, N), L = sum over the batch of logit `classIndex` */
  grads: Tensor[];
}

function emptyCache(): ForwardCache {
  const z = new Float32Array(0);
  return { B: 0, cols: z, blocks: [], xL: z, normMean: z, normRstd: z, features: z, pooled: z, fcNormMean: z, fcNormRstd: z, preLogits: z };
}

/** Gradients of logit `classIndex` w.r.t. each block's attention probabilities, for x (B, C, H, W). */
export function attentionGradients(model: VisionTransformer, x: Tensor, classIndex: number): AttentionGradients {
  const c = model.config, d = dims(c), be = model.backend;
  const { N, D, NH, HD, H, numPrefix } = d;
  const K = c.num_classes;
  if (K === 0) throw new VitkitError('Gradient-weighted rollout needs a classifier head, but the model has num_classes 0');
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= K) throw new VitkitError(`Expected a class index in [0, ${K - 1}] but received ${classIndex}`);
  const cache = emptyCache();
  const logits = model.forward(x, { cache });
  const B = cache.B, BN = B * N;
  const P = (n: string) => model.params.get(n);
  const scratch = new Map<number, [Float32Array, Float32Array]>();
  /** LayerNorm input gradient (the parameter gradients go to scratch buffers) */
  const lnBack = (dinp: Float32Array, dout: Float32Array, inp: Float32Array, w: Float32Array, mean: Float32Array, rstd: Float32Array, R: number) => {
    let s = scratch.get(D);
    if (!s) { s = [new Float32Array(D), new Float32Array(D)]; scratch.set(D, s); }
    be.layernormBackward(dinp, s[0], s[1], dout, inp, w, mean, rstd, R, D);
  };
  /** dinp (M, Kd) = dout (M, Nd) @ W (Nd, Kd) */
  const linIn = (dout: Float32Array, W: Float32Array, M: number, Nd: number, Kd: number) => {
    const out = new Float32Array(M * Kd);
    be.gemm(false, false, M, Kd, Nd, 1, dout, Nd, W, Kd, 0, out, Kd);
    return out;
  };

  // head: dL/dpre = W_head[k, :]
  const dpre = new Float32Array(B * D);
  const wk = P('head.weight').subarray(classIndex * D, (classIndex + 1) * D);
  for (let b = 0; b < B; b++) dpre.set(wk, b * D);
  let dpooled = dpre;
  if (d.useFcNorm) {
    dpooled = new Float32Array(B * D);
    const s = [new Float32Array(D), new Float32Array(D)] as const;
    be.layernormBackward(dpooled, s[0], s[1], dpre, cache.pooled, P('fc_norm.weight'), cache.fcNormMean, cache.fcNormRstd, B, D);
  }
  const dfeat = new Float32Array(BN * D);
  for (let b = 0; b < B; b++) {
    const g = dpooled.subarray(b * D, (b + 1) * D);
    if (c.global_pool === 'token') dfeat.set(g, b * N * D);
    else {
      const inv = 1 / (N - numPrefix);
      for (let t = numPrefix; t < N; t++) for (let j = 0; j < D; j++) dfeat[(b * N + t) * D + j] = g[j]! * inv;
    }
  }
  let dx = dfeat;
  if (!d.useFcNorm) {
    dx = new Float32Array(BN * D);
    lnBack(dx, dfeat, cache.xL, P('norm.weight'), cache.normMean, cache.normRstd, BN);
  }

  const grads: Tensor[] = new Array(c.depth);
  const attentions: Tensor[] = new Array(c.depth);
  const dOh = new Float32Array(N * HD), Vh = new Float32Array(N * HD);
  for (let i = c.depth - 1; i >= 0; i--) {
    const bc = cache.blocks[i]!;
    const pre = `blocks.${i}.`;
    // MLP half: out = x2 + fc2(gelu(fc1(norm2(x2))))
    const dact = linIn(dx, P(pre + 'mlp.fc2.weight'), BN, D, H);
    const dfc1 = new Float32Array(BN * H);
    be.geluBackward(dfc1, bc.fc1, dact, BN * H, c.act === 'gelu' ? 0 : 1);
    const dln2 = linIn(dfc1, P(pre + 'mlp.fc1.weight'), BN, H, D);
    const dx2 = dx.slice();
    lnBack(dx2, dln2, bc.x2, P(pre + 'norm2.weight'), bc.ln2Mean, bc.ln2Rstd, BN);
    // attention output gradient dO (BN, D) and dA = dO V^T per image and head
    const dattn = linIn(dx2, P(pre + 'attn.proj.weight'), BN, D, D);
    const dA = new Float32Array(B * NH * N * N);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        for (let t = 0; t < N; t++) {
          dOh.set(dattn.subarray((b * N + t) * D + h * HD, (b * N + t) * D + (h + 1) * HD), t * HD);
          const v = (b * N + t) * 3 * D + 2 * D + h * HD;
          Vh.set(bc.qkv.subarray(v, v + HD), t * HD);
        }
        const out = new Float32Array(N * N);
        be.gemm(false, true, N, N, HD, 1, dOh, HD, Vh, HD, 0, out, N);
        dA.set(out, (b * NH + h) * N * N);
      }
    }
    grads[i] = new Tensor([B, NH, N, N], dA);
    attentions[i] = new Tensor([B, NH, N, N], bc.probs);
    if (i === 0) break;
    // attention half: x2 = x + proj(attn(qkv(norm1(x))))
    const dqkv = new Float32Array(BN * 3 * D);
    be.attentionBackward(dqkv, dattn, bc.qkv, bc.probs, B, N, NH, HD, 1 / Math.sqrt(HD));
    const dln1 = linIn(dqkv, P(pre + 'attn.qkv.weight'), BN, 3 * D, D);
    lnBack(dx2, dln1, bc.x, P(pre + 'norm1.weight'), bc.ln1Mean, bc.ln1Rstd, BN);
    dx = dx2;
  }
  return { logits, attentions, grads };
}
