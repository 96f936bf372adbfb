/**
 * Backward pass of the Vision Transformer: given dL/dlogits and the activations a training
 * forward kept in a ForwardCache, accumulate dL/dparam for every parameter into a gradient table
 * with the model's layout (`model.params.like()`). Every op runs on the model's backend.
 *
 * The structure mirrors the forward in src/models/vit.ts, in reverse:
 *   head <- fc_norm <- pooling <- norm <- blocks (L-1 .. 0) <- pos_embed / cls_token <- patch_embed
 * and each block backward mirrors `VisionTransformer.block`:
 *   out = x2 + fc2(gelu(fc1(norm2(x2))));  x2 = x + proj(attn(qkv(norm1(x))))
 *
 * Gradients accumulate (+=): zero `grads` before each step (grads.buffer.fill(0)).
 */
import type { Backend } from '../backend/backend.js';
import { VitkitError } from '../errors.js';
import { dims } from '../models/config.js';
import type { VisionTransformer, ForwardCache, BlockCache } from '../models/vit.js';
import type { ParamTable } from '../nn/params.js';
import { type Arena, allocFrom } from '../nn/arena.js';

export interface BackwardOptions {
  /** if given, dL/d(pixel_values) (B, C, H, W) is accumulated into it (through col2im) */
  dinput?: Float32Array;
  /** called in each block's backward with dL/d(attention output before proj) (B*N, D), e.g. for gradient-weighted rollout */
  onAttnOutputGrad?: (block: number, dattn: Float32Array) => void;
  /** where the gradient buffers come from (vitBackward passes the forward cache's arena) */
  arena?: Arena;
}

/**
 * dW (N, K) += dout (M, N)^T @ inp (M, K); db (N) += column sums of dout; returns nothing.
 * The weight / bias gradients of nn.Linear out = inp @ W^T + b.
 */
function linearParamGrads(be: Backend, dW: Float32Array, db: Float32Array | null, dout: Float32Array, inp: Float32Array,
  M: number, N: number, K: number): void {
  be.gemm(true, false, N, K, M, 1, dout, N, inp, K, 1, dW, K);
  if (db) be.biasBackward(db, dout, M, N);
}

/** dinp (M, K) = dout (M, N) @ W (N, K): the input gradient of nn.Linear */
function linearInputGrad(be: Backend, dout: Float32Array, W: Float32Array, M: number, N: number, K: number, arena?: Arena): Float32Array {
  const dinp = allocFrom(arena, M * K, false); // (M, K), overwritten (beta 0)
  be.gemm(false, false, M, K, N, 1, dout, N, W, K, 0, dinp, K);
  return dinp;
}

/**
 * Backward of block i: dout (B*N, D) is dL/d(block output); returns dL/d(block input) (B*N, D).
 */
export function blockBackward(model: VisionTransformer, i: number, bc: BlockCache, dout: Float32Array, B: number, grads: ParamTable,
  opts: BackwardOptions = {}): Float32Array {
  const c = model.config, d = dims(c), be = model.backend;
  const { N, D, NH, HD, H } = d;
  const BN = B * N;
  const pre = `blocks.${i}.`;
  const P = (n: string) => model.params.get(pre + n);
  const G = (n: string) => grads.get(pre + n);

  // out = x2 + fc2(act): the residual passes dout to x2 unchanged
  // fc2: act (BN, H) -> (BN, D)
  linearParamGrads(be, G('mlp.fc2.weight'), G('mlp.fc2.bias'), dout, bc.act, BN, D, H);
  const dact = linearInputGrad(be, dout, P('mlp.fc2.weight'), BN, D, H, opts.arena); // (BN, H)
  // act = gelu(fc1)
  const dfc1 = allocFrom(opts.arena, BN * H, false); // (BN, H), overwritten
  be.geluBackward(dfc1, bc.fc1, dact, BN * H, c.act === 'gelu' ? 0 : 1);
  // fc1: ln2 (BN, D) -> (BN, H)
  linearParamGrads(be, G('mlp.fc1.weight'), G('mlp.fc1.bias'), dfc1, bc.ln2, BN, H, D);
  const dln2 = linearInputGrad(be, dfc1, P('mlp.fc1.weight'), BN, H, D, opts.arena); // (BN, D)
  // ln2 = norm2(x2); dx2 = dout (residual) + norm2 backward
  const dx2 = allocFrom(opts.arena, BN * D, false); // (BN, D)
  dx2.set(dout);
  be.layernormBackward(dx2, G('norm2.weight'), G('norm2.bias'), dln2, bc.x2, P('norm2.weight'), bc.ln2Mean, bc.ln2Rstd, BN, D);

  // x2 = x + proj(attn): the residual passes dx2 to x unchanged
  // proj: attn (BN, D) -> (BN, D)
  linearParamGrads(be, G('attn.proj.weight'), G('attn.proj.bias'), dx2, bc.attn, BN, D, D);
  const dattn = linearInputGrad(be, dx2, P('attn.proj.weight'), BN, D, D, opts.arena); // (BN, D)
  opts.onAttnOutputGrad?.(i, dattn);
  // attn = softmax(q k^T * scale) v on the fused qkv
  const dqkv = allocFrom(opts.arena, BN * 3 * D, false); // (BN, 3D), overwritten
  be.attentionBackward(dqkv, dattn, bc.qkv, bc.probs, B, N, NH, HD, 1 / Math.sqrt(HD));
  // qkv: ln1 (BN, D) -> (BN, 3D)
  linearParamGrads(be, G('attn.qkv.weight'), c.qkv_bias ? G('attn.qkv.bias') : null, dqkv, bc.ln1, BN, 3 * D, D);
  const dln1 = linearInputGrad(be, dqkv, P('attn.qkv.weight'), BN, 3 * D, D, opts.arena); // (BN, D)
  // ln1 = norm1(x); dx = dx2 (residual) + norm1 backward
  const dx = dx2; // (BN, D), accumulated in place: dx2 is not needed any more
  be.layernormBackward(dx, G('norm1.weight'), G('norm1.bias'), dln1, bc.x, P('norm1.weight'), bc.ln1Mean, bc.ln1Rstd, BN, D);
  return dx;
}

/**
 * Accumulate the gradient of every parameter into `grads`, given dlogits (B, K) = dL/dlogits and
 * the cache of the forward that produced the logits (model.forward(x, { cache })).
 * For a model without a head (num_classes 0), `dlogits` is dL/d(pre-logits) (B, D).
 */
export function vitBackward(model: VisionTransformer, cache: ForwardCache, dlogits: Float32Array, grads: ParamTable, options: BackwardOptions = {}): void {
  const opts: BackwardOptions = cache.arena ? { ...options, arena: cache.arena } : options;
  const c = model.config, d = dims(c), be = model.backend;
  const { N, D, numPatches: NP, numPrefix, KP } = d;
  const B = cache.B;
  const BN = B * N;
  if (!cache.blocks || cache.blocks.length !== c.depth || !cache.preLogits) {
    throw new VitkitError('vitBackward needs the cache of a full training forward: model.forward(x, { cache })');
  }
  if (grads.count !== model.params.count) {
    throw new VitkitError(`Gradient table has ${grads.count} values but the model has ${model.params.count} parameters; use model.params.like()`);
  }
  const K = c.num_classes;
  const wantLen = B * (K > 0 ? K : D);
  if (dlogits.length !== wantLen) {
    throw new VitkitError(`Expected dlogits of ${K > 0 ? `(${B}, ${K})` : `(${B}, ${D})`} (${wantLen} values) but received ${dlogits.length} values`);
  }
  const P = (n: string) => model.params.get(n);
  const G = (n: string) => grads.get(n);

  // head: preLogits (B, D) -> logits (B, K)
  let dpre: Float32Array; // (B, D)
  if (K > 0) {
    linearParamGrads(be, G('head.weight'), G('head.bias'), dlogits, cache.preLogits, B, K, D);
    dpre = linearInputGrad(be, dlogits, P('head.weight'), B, K, D, opts.arena);
  } else {
    dpre = dlogits;
  }

  // fc_norm: pooled (B, D) -> preLogits
  let dpooled = dpre; // (B, D)
  if (d.useFcNorm) {
    dpooled = allocFrom(opts.arena, B * D); // zeroed: layernormBackward accumulates
    be.layernormBackward(dpooled, G('fc_norm.weight'), G('fc_norm.bias'), dpre, cache.pooled, P('fc_norm.weight'),
      cache.fcNormMean, cache.fcNormRstd, B, D);
  }

  // pooling: features (B*N, D) -> pooled (B, D)
  const dfeat = allocFrom(opts.arena, BN * D); // (BN, D), zeroed: token pooling writes row 0 only
  for (let b = 0; b < B; b++) {
    const g = dpooled.subarray(b * D, (b + 1) * D);
    if (c.global_pool === 'token') {
      dfeat.set(g, b * N * D);
    } else {
      const inv = 1 / (N - numPrefix);
      for (let t = numPrefix; t < N; t++) {
        const row = (b * N + t) * D;
        for (let j = 0; j < D; j++) dfeat[row + j] = g[j]! * inv;
      }
    }
  }

  // final norm: xL -> features (absent with fc_norm)
  let dx: Float32Array = dfeat; // (BN, D)
  if (!d.useFcNorm) {
    dx = allocFrom(opts.arena, BN * D); // zeroed: layernormBackward accumulates
    be.layernormBackward(dx, G('norm.weight'), G('norm.bias'), dfeat, cache.xL, P('norm.weight'), cache.normMean, cache.normRstd, BN, D);
  }

  // blocks, last to first
  for (let i = c.depth - 1; i >= 0; i--) dx = blockBackward(model, i, cache.blocks[i]!, dx, B, grads, opts);

  // embeddings: x = [cls_token; patches] + pos_embed
  if (c.pos_embed === 'learn') be.biasBackward(G('pos_embed'), dx, B, N * D); // sum over the batch
  if (c.class_token) {
    const gc = G('cls_token');
    for (let b = 0; b < B; b++) {
      const row = b * N * D;
      for (let j = 0; j < D; j++) gc[j] = gc[j]! + dx[row + j]!;
    }
  }
  // patch tokens (B*NP, D)
  let dpatches: Float32Array;
  if (numPrefix === 0) {
    dpatches = dx;
  } else {
    dpatches = allocFrom(opts.arena, B * NP * D, false); // every patch row copied below
    for (let b = 0; b < B; b++) dpatches.set(dx.subarray((b * N + numPrefix) * D, (b + 1) * N * D), b * NP * D);
  }
  // patch_embed: cols (B*NP, KP) -> patches (B*NP, D); weight (D, C, P, P) read as (D, KP)
  linearParamGrads(be, G('patch_embed.proj.weight'), G('patch_embed.proj.bias'), dpatches, cache.cols, B * NP, D, KP);
  if (opts.dinput) {
    const want = B * c.in_chans * c.img_size * c.img_size;
    if (opts.dinput.length !== want) throw new VitkitError(`dinput has ${opts.dinput.length} values, expected ${want} (B, C, H, W)`);
    const dcols = linearInputGrad(be, dpatches, P('patch_embed.proj.weight'), B * NP, D, KP, opts.arena); // (B*NP, KP)
    be.col2imPatches(opts.dinput, dcols, B, c.in_chans, c.img_size, c.img_size, c.patch_size);
  }
}
