/**
 * What a YOLOS detector looked at for box k: attention rollout (explain/rollout.ts, over every
 * block) read at det token k's row, over the patch grid, and the last block's per-head attention of
 * that row — the det-token counterpart of `explain`'s class-token maps. `explainDetToken` is
 * `vitkit explain --det-token k` on one image file: the last block's attention of det token k over
 * the patches (the YOLOS paper's [DET]-token figure), per head and fused, with the box that token
 * predicts.
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { loadImage, type RawImage } from '../io/image.js';
import { attentionRollout, type HeadFusion } from '../explain/rollout.js';
import type { Box } from '../explain/overlay.js';
import { postProcess } from './criterion.js';
import { detPreprocessImage, type Detection } from './detect.js';
import type { LoadedYolos } from './load.js';
import type { Yolos, YolosOutput } from './yolos.js';

export interface DetTokenMaps {
  /** patch grid [gh, gw] */
  grid: [number, number];
  /** per image, per det token: rollout over the patches (gh*gw, row-major) */
  rollout: Float32Array[][];
  /** per image, per det token: the last block's attention of that token, one map per head */
  heads: Float32Array[][][];
}

/** Maps for every det token of every image of x (B, 3, H, W); `output`: the model's forward of x with attentions, when already run. */
export function detTokenMaps(model: Yolos, x: Tensor, opts: { headFusion?: HeadFusion; discardRatio?: number; output?: YolosOutput } = {}): DetTokenMaps {
  const { output, ...ro } = opts;
  const out = output ?? model.forward(x, { attentions: true });
  if (!out.attentions) throw new VitkitError('detTokenMaps needs a forward with { attentions: true }');
  const attn = out.attentions;
  const [B, NH, N] = attn[0]!.shape as [number, number, number, number];
  const Q = model.numDetTokens, P = model.config.vit.patch_size;
  const gh = Math.floor(x.shape[2]! / P), gw = Math.floor(x.shape[3]! / P), NP = gh * gw;
  if (N !== 1 + NP + Q) throw new VitkitError(`Expected ${1 + NP + Q} tokens for a ${gh}x${gw} grid with ${Q} det tokens but the attentions have ${N}`);
  const R = attentionRollout(attn, { ...ro, numPrefix: 1 }).data; // (B, N, N)
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

export interface DetTokenExplanation {
  image: string;
  /** the image as the user gave it (RGB) */
  original: RawImage;
  /** the part of the original image the patch grid covers (the resized image's last partial patch row / column dropped) */
  box: Box;
  grid: [number, number];
  detToken: number;
  /** the last block's attention of det token k over the patches, heads fused (GH*GW, row-major) */
  attention: Float32Array;
  /** the same row per head (NH maps of GH*GW) */
  heads: Float32Array[];
  /** attention rollout over every block, at det token k's row (GH*GW) */
  rollout: Float32Array;
  /** what det token k predicts (YOLOS PostProcess, the file's pixels; any score) */
  detection: Detection;
}

export interface DetTokenExplainOptions {
  shortestEdge?: number;
  longestEdge?: number;
  /** how `attention` fuses the heads (default mean); rollout always averages them */
  headFusion?: HeadFusion;
  discardRatio?: number;
}

/** Fuse NH maps element-wise: mean, max or min over the heads. */
export function fuseHeadMaps(heads: readonly Float32Array[], mode: HeadFusion): Float32Array {
  const n = heads[0]!.length, out = new Float32Array(n); // (GH*GW)
  for (let i = 0; i < n; i++) {
    let v = mode === 'mean' ? 0 : heads[0]![i]!;
    for (const h of heads) v = mode === 'mean' ? v + h[i]! : mode === 'max' ? Math.max(v, h[i]!) : Math.min(v, h[i]!);
    out[i] = mode === 'mean' ? v / heads.length : v;
  }
  return out;
}

/** `vitkit explain --det-token k` on one image: the YOLOS eval transform, one forward with attentions, det token k's maps and box. */
export async function explainDetToken(loaded: LoadedYolos, file: string, k: number, opts: DetTokenExplainOptions = {}): Promise<DetTokenExplanation> {
  const model = loaded.model, Q = model.numDetTokens, K1 = model.config.numClasses + 1, P = model.config.vit.patch_size;
  if (!(Number.isInteger(k) && k >= 0 && k < Q)) throw new VitkitError(`Expected --det-token an integer in 0..${Q - 1} (the model has ${Q} det tokens) but received ${k}`);
  const S = opts.shortestEdge ?? loaded.preprocess.shortestEdge, M = opts.longestEdge ?? loaded.preprocess.longestEdge;
  const original = await loadImage(file, 3);
  const it = detPreprocessImage(original, S, M, loaded.preprocess);
  const gh = Math.floor(it.h / P), gw = Math.floor(it.w / P);
  if (gh < 1 || gw < 1) throw new VitkitError(`${file} resizes to ${it.w}x${it.h} at shortest edge ${S}: smaller than one ${P}x${P} patch`);
  const x = new Tensor([1, 3, it.h, it.w], it.pixels);
  const out = model.forward(x, { attentions: true });
  const maps = detTokenMaps(model, x, { output: out, ...(opts.discardRatio !== undefined ? { discardRatio: opts.discardRatio } : {}) });
  const heads = maps.heads[0]![k]!;
  const post = postProcess(out.logits.data, out.boxes.data, 1, Q, K1, [[original.height, original.width]])[0]!;
  const id = post.labels[k]!;
  const detection: Detection = {
    label: model.config.labels?.[id] ?? `class_${id}`, label_id: id, score: post.scores[k]!,
    box: [post.boxes[4 * k]!, post.boxes[4 * k + 1]!, post.boxes[4 * k + 2]!, post.boxes[4 * k + 3]!],
  };
  const box: Box = { x0: 0, y0: 0, x1: (gw * P * original.width) / it.w, y1: (gh * P * original.height) / it.h };
  return {
    image: file, original, box, grid: maps.grid, detToken: k, attention: fuseHeadMaps(heads, opts.headFusion ?? 'mean'), heads,
    rollout: maps.rollout[0]![k]!, detection,
  };
}
