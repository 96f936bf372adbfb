/**
 * Attention rollout (Abnar & Zuidema 2020): per block, fuse heads (mean by default), add the
 * identity for the residual path, renormalize rows, and multiply through the blocks:
 *   A_l = rownorm((fuse(attn_l) + I) / 2),  R = A_{L-1} ... A_1 A_0
 * With head fusion 'mean' and no discarding this is exactly ../shared/refs' `rollout`.
 */
import { Tensor } from '../tensor.js';

export type HeadFusion = 'mean' | 'max' | 'min';

export interface RolloutOptions {
  headFusion?: HeadFusion;
  /** fraction of the lowest attentions per row set to zero before adding I (never the class token's own column) */
  discardRatio?: number;
  /** number of prefix tokens (class token) whose column is never discarded */
  numPrefix?: number;
}

/** Fuse the heads of one block's attention (NH, N, N) -> (N, N). */
export function fuseHeads(probs: Float32Array, off: number, NH: number, N: number, mode: HeadFusion): Float64Array {
  const out = new Float64Array(N * N);
  if (mode === 'mean') {
    for (let h = 0; h < NH; h++) for (let i = 0; i < N * N; i++) out[i]! += probs[off + h * N * N + i]!;
    for (let i = 0; i < N * N; i++) out[i] = out[i]! / NH;
  } else {
    const pick = mode === 'max' ? Math.max : Math.min;
    out.set(probs.subarray(off, off + N * N));
    for (let h = 1; h < NH; h++) for (let i = 0; i < N * N; i++) out[i] = pick(out[i]!, probs[off + h * N * N + i]!);
  }
  return out;
}

/** attentions: per block (B, NH, N, N) -> rollout (B, N, N) */
export function attentionRollout(attentions: Tensor[], opts: RolloutOptions = {}): Tensor {
  const [B, NH, N] = attentions[0]!.shape as [number, number, number, number];
  const mode = opts.headFusion ?? 'mean';
  const discard = opts.discardRatio ?? 0;
  const numPrefix = opts.numPrefix ?? 1;
  const out = new Float32Array(B * N * N);
  for (let b = 0; b < B; b++) {
    let R: Float64Array | null = null;
    for (const att of attentions) {
      const a = fuseHeads(att.data, b * NH * N * N, NH, N, mode);
      if (discard > 0) discardLowest(a, N, discard, numPrefix);
      for (let i = 0; i < N; i++) {
        a[i * N + i]! += 1;
        let s = 0;
        for (let j = 0; j < N; j++) s += a[i * N + j]!;
        for (let j = 0; j < N; j++) a[i * N + j] = a[i * N + j]! / s;
      }
      R = R ? matmul(a, R, N) : a;
    }
    for (let i = 0; i < N * N; i++) out[b * N * N + i] = R![i]!;
  }
  return new Tensor([B, N, N], out);
}

/** Zero the lowest `ratio` of each row's entries, keeping the prefix (class token) columns. */
function discardLowest(a: Float64Array, N: number, ratio: number, numPrefix: number): void {
  for (let i = 0; i < N; i++) {
    const cols: number[] = [];
    for (let j = numPrefix; j < N; j++) cols.push(j);
    cols.sort((x, y) => a[i * N + x]! - a[i * N + y]!);
    const k = Math.floor(cols.length * ratio);
    for (let t = 0; t < k; t++) a[i * N + cols[t]!] = 0;
  }
}

/** (N, N) @ (N, N) in float64 */
function matmul(a: Float64Array, b: Float64Array, N: number): Float64Array {
  const out = new Float64Array(N * N);
  for (let i = 0; i < N; i++)
    for (let k = 0; k < N; k++) {
      const v = a[i * N + k]!;
      if (v === 0) continue;
      for (let j = 0; j < N; j++) out[i * N + j]! += v * b[k * N + j]!;
    }
  return out;
}
