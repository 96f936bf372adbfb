/**
 * What a YOLOS detector looked at for box k: attention rollout (explain/rollout.ts, over every
 * block) read at det token k's row, over the patch grid, and the last block's per-head attention of
 * that row — the det-token counterpart of `explain`'s class-token maps.
 */
import { VitkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { attentionRollout, type HeadFusion } from '../explain/rollout.js';
import type { Yolos } from './yolos.js';

export interface DetTokenMaps {
  /** patch grid [gh, gw] */
  grid: [number, number];
  /** per image, per det token: rollout over the patches (gh*gw, row-major) */
  rollout: Float32Array[][];
  /** per image, per det token: the last block's attention of that token, one map per head */
  heads: Float32Array[][][];
}

/** Maps for every det token of every image of x (B, 3, H, W). */
export function detTokenMaps(model: Yolos, x: Tensor, opts: { headFusion?: HeadFusion; discardRatio?: number } = {}): DetTokenMaps {
  const out = model.forward(x, { attentions: true });
  const attn = out.attentions!;
  const [B, NH, N] = attn[0]!.shape as [number, number, number, number];
  const Q = model.numDetTokens, P = model.config.vit.patch_size;
  const gh = Math.floor(x.shape[2]! / P), gw = Math.floor(x.shape[3]! / P), NP = gh * gw;
  if (N !== 1 + NP + Q) throw new VitkitError(`Expected ${1 + NP + Q} tokens for a ${gh}x${gw} grid with ${Q} det tokens but the attentions have ${N}`);
  const R = attentionRollout(attn, { ...opts, numPrefix: 1 }).data; // (B, N, N)
  const last = attn[attn.length - 1]!.data; // (B, NH, N, N)
  const rollout: Float32Array[][] = [], heads: Float32Array[][][] = [];
  for (let b = 0; b < B; b++) {
    const rb: Float32Array[] = [], hb: Float32Array[][] = [];
    for (let k = 0; k < Q; k++) {
      const row = 1 + NP + k;
      rb.push(R.slice((b * N + row) * N + 1, (b * N + row) * N + 1 + NP));
      hb.push(Array.from({ length: NH }, (_, h) => last.slice(((b * NH + h) * N + row) * N + 1, ((b * NH + h) * N + row) * N + 1 + NP)));
    }
    rollout.push(rb); heads.push(hb);
  }
  return { grid: [gh, gw], rollout, heads };
}
