/**
 * Attention rollout (Abnar & Zuidema 2020) and its gradient-weighted variant (Chefer et al. 2021).
 *
 * Per block l, the heads of the attention probabilities (B, NH, N, N) are fused into one (N, N)
 * matrix, optionally the lowest entries are discarded, the identity is added for the residual
 * path and the rows are renormalized; the blocks are multiplied through:
 *   A_l = rownorm((fuse(attn_l) + I) / 2),   R = A_{L-1} ... A_1 A_0
 * With head fusion 'mean' and no discarding this is exactly ../shared/refs' `rollout`.
 *
 * Head fusion: 'mean' | 'max' | 'min' over heads, element by element.
 * Discarding (as jacobgil/vit-explain does it): per image and block, the `discardRatio` fraction
 * of the N*N fused entries with the lowest values is set to zero before adding I, except the class
 * token's attention to itself (entry (0, 0)), which is never discarded. Ties are broken by the
 * lower flat index. Discarding happens before the identity is added, so every row keeps a positive
 * sum.
 * Gradient weighting (Chefer et al. 2021, "Generic Attention-model Explainability"): the fused
 * matrix of block l is mean_h(max(0, dL/dA_l ⊙ A_l)) for the chosen class's logit L.
 *
 * Everything is computed in float64 and returned as float32.
 */
import { Tensor } from '../tensor.js';
import { VitkitError, shapeStr } from '../errors.js';

export type HeadFusion = 'mean' | 'max' | 'min';
export const HEAD_FUSIONS: readonly HeadFusion[] = ['mean', 'max', 'min'];

export interface RolloutOptions {
  /** how the heads of one block are combined (default 'mean'); ignored by gradient-weighted rollout */
  headFusion?: HeadFusion;
  /** fraction in [0, 1) of the lowest fused attentions per block set to zero (default 0) */
  discardRatio?: number;
  /** prefix tokens before the patches (class, distillation, registers); default 1 */
  numPrefix?: number;
  /** the first token is a class token (default: numPrefix > 0); its attention to itself (0, 0) is never discarded */
  classToken?: boolean;
}

/** Shape (B, NH, N, N) shared by all blocks; throws a one-line error otherwise. */
function checkAttentions(attentions: readonly Tensor[], what = 'attentions'): [number, number, number] {
  if (!attentions || attentions.length === 0) throw new VitkitError(`Expected at least one block of ${what} (B, NH, N, N) but received none`);
  const s0 = attentions[0]!.shape;
  if (s0.length !== 4 || s0[2] !== s0[3]) throw new VitkitError(`Expected ${what}[0] of shape (B, NH, N, N) but received ${shapeStr(s0)}`);
  attentions.forEach((t, i) => {
    if (t.shape.length !== 4 || t.shape.some((d, k) => d !== s0[k])) {
      throw new VitkitError(`Expected ${what}[${i}] of shape ${shapeStr(s0)} like block 0 but received ${shapeStr(t.shape)}`);
    }
  });
  return [s0[0]!, s0[1]!, s0[2]!];
}

function checkOptions(opts: RolloutOptions): { mode: HeadFusion; discard: number; numPrefix: number; cls: boolean } {
  const mode = opts.headFusion ?? 'mean';
  if (!HEAD_FUSIONS.includes(mode)) throw new VitkitError(`Expected head fusion mean, max or min but received ${JSON.stringify(mode)}`);
  const discard = opts.discardRatio ?? 0;
  if (!(discard >= 0 && discard < 1)) throw new VitkitError(`Expected a discard ratio in [0, 1) but received ${discard}`);
  const numPrefix = opts.numPrefix ?? 1;
  if (!Number.isInteger(numPrefix) || numPrefix < 0) throw new VitkitError(`Expected a non-negative integer number of prefix tokens but received ${numPrefix}`);
  const cls = opts.classToken ?? numPrefix > 0;
  if (cls && numPrefix === 0) throw new VitkitError('Rollout option classToken needs numPrefix >= 1 (the class token is a prefix token)');
  return { mode, discard, numPrefix, cls };
}

/** Fuse the heads of one block's attention (NH, N, N), starting at `off`, into (N, N). */
export function fuseHeads(probs: Float32Array, off: number, NH: number, N: number, mode: HeadFusion): Float64Array {
  const NN = N * N;
  const out = new Float64Array(NN);
  if (mode === 'mean') {
    for (let h = 0; h < NH; h++) {
      const o = off + h * NN;
      for (let i = 0; i < NN; i++) out[i]! += probs[o + i]!;
    }
    for (let i = 0; i < NN; i++) out[i] = out[i]! / NH;
  } else {
    for (let i = 0; i < NN; i++) out[i] = probs[off + i]!;
    for (let h = 1; h < NH; h++) {
      const o = off + h * NN;
      if (mode === 'max') for (let i = 0; i < NN; i++) { const v = probs[o + i]!; if (v > out[i]!) out[i] = v; }
      else for (let i = 0; i < NN; i++) { const v = probs[o + i]!; if (v < out[i]!) out[i] = v; }
    }
  }
  return out;
}

/** Gradient-weighted fusion of one block: mean over heads of max(0, grad ⊙ attn). */
export function fuseHeadsWithGrad(probs: Float32Array, grads: Float32Array, off: number, NH: number, N: number): Float64Array {
  const NN = N * N;
  const out = new Float64Array(NN);
  for (let h = 0; h < NH; h++) {
    const o = off + h * NN;
    for (let i = 0; i < NN; i++) {
      const v = probs[o + i]! * grads[o + i]!;
      if (v > 0) out[i]! += v;
    }
  }
  for (let i = 0; i < NN; i++) out[i] = out[i]! / NH;
  return out;
}

/**
 * Zero the `ratio` fraction (floor(N*N*ratio) entries) of the lowest values of a fused (N, N)
 * matrix in place; entry (0, 0) is kept when there is a class token (it still counts towards the
 * k lowest, as in vit-explain).
 */
export function discardLowest(a: Float64Array, N: number, ratio: number, numPrefix: number): void {
  const NN = N * N;
  const k = Math.floor(NN * ratio);
  if (k <= 0) return;
  const idx = new Uint32Array(NN);
  for (let i = 0; i < NN; i++) idx[i] = i;
  idx.sort((x, y) => a[x]! - a[y]! || x - y);
  for (let t = 0; t < k; t++) {
    const j = idx[t]!;
    if (numPrefix > 0 && j === 0) continue;
    a[j] = 0;
  }
}

/** a <- rownorm(a + I) in place (the /2 of (A + I) / 2 cancels in the normalization). */
function addIdentityRowNorm(a: Float64Array, N: number): void {
  for (let i = 0; i < N; i++) {
    a[i * N + i]! += 1;
    let s = 0;
    for (let j = 0; j < N; j++) s += a[i * N + j]!;
    for (let j = 0; j < N; j++) a[i * N + j] = a[i * N + j]! / s;
  }
}

/** (N, N) @ (N, N) in float64 */
function matmul(a: Float64Array, b: Float64Array, N: number): Float64Array {
  const out = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    const oi = i * N;
    for (let k = 0; k < N; k++) {
      const v = a[oi + k]!;
      if (v === 0) continue;
      const bk = k * N;
      for (let j = 0; j < N; j++) out[oi + j]! += v * b[bk + j]!;
    }
  }
  return out;
}

function rolloutWith(attentions: readonly Tensor[], opts: RolloutOptions, fuse: (block: number, off: number, NH: number, N: number) => Float64Array): Tensor {
  const [B, NH, N] = checkAttentions(attentions);
  const { discard, numPrefix, cls } = checkOptions(opts);
  if (numPrefix >= N) throw new VitkitError(`Expected fewer prefix tokens than the ${N} tokens of the attentions but received numPrefix ${numPrefix}`);
  const out = new Float32Array(B * N * N);
  for (let b = 0; b < B; b++) {
    let R: Float64Array | null = null;
    for (let l = 0; l < attentions.length; l++) {
      const a = fuse(l, b * NH * N * N, NH, N);
      if (discard > 0) discardLowest(a, N, discard, cls ? 1 : 0);
      addIdentityRowNorm(a, N);
      R = R ? matmul(a, R, N) : a;
    }
    for (let i = 0; i < N * N; i++) out[b * N * N + i] = R![i]!;
  }
  return new Tensor([B, N, N], out);
}

/** attentions: per block (B, NH, N, N) -> rollout (B, N, N); row i is how token i's output draws on the input tokens. */
export function attentionRollout(attentions: readonly Tensor[], opts: RolloutOptions = {}): Tensor {
  const { mode } = checkOptions(opts);
  return rolloutWith(attentions, opts, (l, off, NH, N) => fuseHeads(attentions[l]!.data, off, NH, N, mode));
}

/**
 * Gradient-weighted rollout: attentions and their gradients dL/dA per block, both (B, NH, N, N).
 * headFusion is not used (the fusion is the mean of the positive part of grad ⊙ attn).
 */
export function gradientRollout(attentions: readonly Tensor[], grads: readonly Tensor[], opts: RolloutOptions = {}): Tensor {
  const shape = checkAttentions(attentions);
  checkAttentions(grads, 'attention gradients');
  if (grads.length !== attentions.length || grads[0]!.shape.some((d, k) => d !== attentions[0]!.shape[k])) {
    throw new VitkitError(`Expected ${attentions.length} attention gradients of shape ${shapeStr(attentions[0]!.shape)} but received ${grads.length} of shape ${shapeStr(grads[0]!.shape)}`);
  }
  void shape;
  return rolloutWith(attentions, opts, (l, off, NH, N) => fuseHeadsWithGrad(attentions[l]!.data, grads[l]!.data, off, NH, N));
}

/**
 * The map on the patch tokens of image b from an (N, N) token-to-token matrix (rollout, or one
 * head's attention): with a class token, its row over the patch columns (every prefix column
 * left out: class, distillation, registers); without one (average or MAP pooling), the mean over
 * all rows. Returns numPatches values in patch (row-major grid) order.
 */
export function patchMap(m: Float32Array, b: number, N: number, numPrefix: number, classToken = numPrefix > 0): Float32Array {
  const NP = N - numPrefix;
  const out = new Float32Array(NP);
  const base = b * N * N;
  if (classToken) {
    for (let j = 0; j < NP; j++) out[j] = m[base + numPrefix + j]!;
    return out;
  }
  const acc = new Float64Array(NP);
  for (let i = 0; i < N; i++) for (let j = 0; j < NP; j++) acc[j]! += m[base + i * N + numPrefix + j]!;
  for (let j = 0; j < NP; j++) out[j] = acc[j]! / N;
  return out;
}

/** Per-head maps of one block's attention (B, NH, N, N) for image b: NH arrays of numPatches values. */
export function headMaps(attn: Tensor, b: number, numPrefix: number, classToken = numPrefix > 0): Float32Array[] {
  const [, NH, N] = attn.shape as [number, number, number, number];
  const out: Float32Array[] = [];
  for (let h = 0; h < NH; h++) {
    const view = attn.data.subarray((b * NH + h) * N * N, (b * NH + h + 1) * N * N);
    out.push(patchMap(view, 0, N, numPrefix, classToken));
  }
  return out;
}
