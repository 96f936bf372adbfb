/**
 * YOLOS (hustvl/YOLOS `models/backbone.py`, `models/detector.py`; transformers'
 * YolosForObjectDetection): a plain ViT with `det_token_num` learned detection tokens appended after
 * the patches ([cls, patches, det]), one learned position embedding over all of them (the grid part
 * resampled bicubic, align_corners False, no antialias, when the patch count differs from the
 * configured one: InterpolateInitPosEmbed), and after the final norm only the det tokens go to two
 * 3-layer MLPs with ReLU between: class logits (K + 1, the last "no object") and boxes
 * (sigmoid -> cx, cy, w, h in [0, 1]).
 *
 * The backbone is the engine's VisionTransformer (VitCore) with config.det_tokens, global_pool ''
 * and no head: its parameters are a view of the first part of this model's table, under
 * hustvl's names without the `backbone.` prefix. Inputs whose sides are not multiples of the patch
 * size are cropped bottom/right to the largest multiple, which is what the stride-P convolution does.
 * Mid position embeddings (YOLOS-S/B: hustvl `mid_pe_size`, HF `use_mid_position_embeddings`):
 * `backbone.mid_pos_embed` (depth - 1, 1, 1 + grid + det, D) added to the output of every block but
 * the last, resampled like the initial one (InterpolateMidPosEmbed) when the patch count differs
 * from its grid's.
 */
import { VitkitError, shapeStr } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/select.js';
import { ParamTable, type ParamSpec } from '../nn/params.js';
import { hostMem } from '../nn/mem.js';
import { resolveConfig, type ViTConfig } from '../models/config.js';
import { resampleAbsPosEmbed } from '../models/pos_embed.js';
import { VisionTransformer, emptyCache, vitParamSpecs, type ForwardCache } from '../models/vit.js';
import { linearInputGrad, linearParamGrads } from '../models/layers.js';
import { initWeights } from '../models/init.js';
import { mulberry32 } from '../data/rng.js';

export interface YolosConfig {
  /** the backbone: det_tokens > 0, num_classes 0, global_pool '', dynamic_img_size, img_size = the position embedding's grid x patch */
  vit: ViTConfig;
  /** K object classes (the class head has K + 1 outputs) */
  numClasses: number;
  /** class names by index (K), when the checkpoint has them */
  labels: string[] | null;
  /** the mid position embeddings' patch grid [h, w], or null without them */
  midPe?: [number, number] | null;
}

/** The backbone config of a YOLOS model from hustvl's arguments (finetune_det's grid, det tokens). */
export function yolosVitConfig(o: { patch_size: number; embed_dim: number; depth: number; num_heads: number; mlp_ratio?: number;
  mlp_hidden?: number | null; qkv_bias: boolean; pe_size: [number, number]; det_tokens: number; layer_norm_eps: number; in_chans?: number }, where: string): ViTConfig {
  const P = o.patch_size;
  if (!Number.isInteger(P) || P < 1) throw new VitkitError(`${where}: expected patch_size a positive integer but received ${o.patch_size}`);
  const [h, w] = o.pe_size;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h >= P && w >= P)) {
    throw new VitkitError(`${where}: expected the position-embedding image size [height, width] of integers >= patch_size ${P} but received ${JSON.stringify(o.pe_size)}`);
  }
  return resolveConfig({
    img_size: [Math.floor(h / P) * P, Math.floor(w / P) * P], patch_size: P, in_chans: o.in_chans ?? 3, num_classes: 0,
    embed_dim: o.embed_dim, depth: o.depth, num_heads: o.num_heads, mlp_ratio: o.mlp_ratio ?? 4, mlp_hidden: o.mlp_hidden ?? null,
    qkv_bias: o.qkv_bias, class_token: true, global_pool: '', pos_embed: 'learn', layer_norm_eps: o.layer_norm_eps, act: 'gelu',
    dynamic_img_size: true, pos_embed_antialias: false, det_tokens: o.det_tokens,
  }, where);
}

const MLPS = ['class_embed', 'bbox_embed'] as const;

/** hustvl/YOLOS parameter names and shapes: backbone.* (timm names), class_embed.layers.{0,1,2}, bbox_embed.layers.{0,1,2}. */
export function yolosParamSpecs(c: YolosConfig): ParamSpec[] {
  const D = c.vit.embed_dim;
  const specs = vitParamSpecs(c.vit).map((s) => ({ name: `backbone.${s.name}`, shape: s.shape }));
  if (c.midPe) specs.push({ name: 'backbone.mid_pos_embed', shape: [c.vit.depth - 1, 1, 1 + c.midPe[0] * c.midPe[1] + c.vit.det_tokens, D] });
  for (const m of MLPS) {
    const out = m === 'class_embed' ? c.numClasses + 1 : 4;
    [[D, D], [D, D], [out, D]].forEach(([o, i], l) => {
      specs.push({ name: `${m}.layers.${l}.weight`, shape: [o!, i!] }, { name: `${m}.layers.${l}.bias`, shape: [o!] });
    });
  }
  return specs;
}

/** What backward needs from a training forward. */
export interface YolosCache {
  backbone: ForwardCache;
  B: number;
  /** tokens per image of this forward */
  N: number;
  /** det-token rows after the final norm (B*Q, D) */
  det: Float32Array;
  /** per MLP: the two hidden activations after ReLU (B*Q, D) each */
  hidden: Record<(typeof MLPS)[number], [Float32Array, Float32Array]>;
  /** boxes after the sigmoid (B*Q, 4) */
  boxes: Float32Array;
}

export interface YolosOutput {
  /** (B, Q, K + 1) */
  logits: Tensor;
  /** (B, Q, 4) cx cy w h in [0, 1] */
  boxes: Tensor;
  /** every block's attention probabilities (B, NH, N, N), on request */
  attentions?: Tensor[];
}

export class Yolos {
  readonly family = 'yolos';
  readonly config: YolosConfig;
  readonly params: ParamTable;
  /** the ViT backbone over a view of params (timm names) */
  readonly backbone: VisionTransformer;
  private readonly backboneCount: number;

  constructor(config: YolosConfig, params?: ParamTable, backend?: Backend) {
    if (config.vit.det_tokens < 1) throw new VitkitError(`A YOLOS model needs det_tokens >= 1 but the config has ${config.vit.det_tokens}`);
    if (!Number.isInteger(config.numClasses) || config.numClasses < 1) throw new VitkitError(`Expected numClasses a positive integer but received ${config.numClasses}`);
    if (config.midPe && !(config.vit.depth >= 2 && config.midPe.every((v) => Number.isInteger(v) && v >= 1))) {
      throw new VitkitError(`Mid position embeddings need depth >= 2 and a grid of positive integers but received depth ${config.vit.depth}, grid ${JSON.stringify(config.midPe)}`);
    }
    this.config = config;
    this.params = params ?? new ParamTable(yolosParamSpecs(config));
    const vitSpecs = vitParamSpecs(config.vit);
    this.backboneCount = vitSpecs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    this.backbone = new VisionTransformer(config.vit, new ParamTable(vitSpecs, this.params.buffer.subarray(0, this.backboneCount)), backend ?? getBackend());
  }

  get backend(): Backend {
    return this.backbone.backend;
  }

  set backend(b: Backend) {
    this.backbone.backend = b;
  }

  get numDetTokens(): number {
    return this.config.vit.det_tokens;
  }

  get numParams(): number {
    return this.params.count;
  }

  /** the backbone's part of a gradient table of this model's layout */
  backboneGrads(grads: ParamTable): ParamTable {
    return new ParamTable(this.backbone.params.specs, grads.buffer.subarray(0, this.backboneCount));
  }

  /** pixel_values (B, C, H, W) cropped to multiples of the patch size (the conv's floor) */
  private fit(x: Tensor): Tensor {
    const c = this.config.vit, P = c.patch_size;
    if (x.shape.length !== 4 || x.shape[1] !== c.in_chans || x.shape[0]! < 1) {
      throw new VitkitError(`Expected pixel_values of shape (B, ${c.in_chans}, H, W) but received ${shapeStr(x.shape)}`);
    }
    const [B, C, H, W] = x.shape as [number, number, number, number];
    if (H < P || W < P) throw new VitkitError(`Input size ${H}x${W} (pixel_values ${shapeStr(x.shape)}) is smaller than one ${P}x${P} patch`);
    const h = Math.floor(H / P) * P, w = Math.floor(W / P) * P;
    if (h === H && w === W) return x;
    const out = new Float32Array(B * C * h * w); // (B, C, h, w)
    for (let p = 0; p < B * C; p++) for (let y = 0; y < h; y++) out.set(x.data.subarray((p * H + y) * W, (p * H + y) * W + w), (p * h + y) * w);
    return new Tensor([B, C, h, w], out);
  }

  /**
   * The mid position embeddings for a gh x gw patch grid: per block but the last, (1 + gh*gw + Q, D);
   * resampled from the configured grid (bicubic, align_corners False, no antialias; class and det rows
   * copied) when the patch count differs, with the matrix M (m, n) that did it.
   */
  midPosTables(gh: number, gw: number): { tables: Float32Array[]; rows: number; M: Float32Array | null } | null {
    const mp = this.config.midPe;
    if (!mp) return null;
    const c = this.config.vit, D = c.embed_dim, Q = c.det_tokens, L = c.depth - 1;
    const n = mp[0] * mp[1], per = (1 + n + Q) * D, all = this.params.get('backbone.mid_pos_embed');
    const rows = 1 + gh * gw + Q;
    if (gh * gw === n) return { tables: Array.from({ length: L }, (_, i) => all.subarray(i * per, (i + 1) * per)), rows, M: null };
    const tables = Array.from({ length: L }, (_, i) => resampleAbsPosEmbed(all.subarray(i * per, (i + 1) * per), D, mp, [gh, gw], 1, false, Q));
    const eye = new Float32Array(n * n); // (n, n)
    for (let k = 0; k < n; k++) eye[k * n + k] = 1;
    return { tables, rows, M: resampleAbsPosEmbed(eye, n, mp, [gh, gw], 0, false) }; // M (m, n)
  }

  /** (B, C, H, W) -> class logits (B, Q, K + 1) and boxes (B, Q, 4); `cache` for backward */
  forward(x: Tensor, opts: { attentions?: boolean; cache?: YolosCache } = {}): YolosOutput {
    const xin = this.fit(x);
    const B = xin.shape[0]!, c = this.config.vit, D = c.embed_dim, Q = c.det_tokens, K1 = this.config.numClasses + 1;
    const bcache = opts.cache ? emptyCache() : undefined;
    const mid = this.midPosTables(xin.shape[2]! / c.patch_size, xin.shape[3]! / c.patch_size);
    const afterBlock = mid ? (i: number, h: Float32Array) => { if (i < c.depth - 1) this.backend.biasAdd(h, mid.tables[i]!, B, mid.rows * D); } : undefined;
    const f = this.backbone.forwardFeatures(xin, { attentions: opts.attentions ?? false, ...(bcache ? { cache: bcache } : {}), ...(afterBlock ? { afterBlock } : {}) });
    if (bcache) this.backbone.forwardHeads(f.features, { cache: bcache }); // the (identity) head: backward starts there
    const N = f.features.shape[1]!;
    const be = this.backend, R = B * Q;
    const det = new Float32Array(R * D); // (B*Q, D)
    be.copyRows(det, f.features.data, B, Q, 0, N, N - Q, Q, D, false);
    const P = (n: string) => this.params.get(n);
    const mlp = (m: (typeof MLPS)[number], out: number): { y: Float32Array; h: [Float32Array, Float32Array] } => {
      const h1 = new Float32Array(R * D), h2 = new Float32Array(R * D), y = new Float32Array(R * out); // (R, D), (R, D), (R, out)
      be.linearForward(h1, det, P(`${m}.layers.0.weight`), P(`${m}.layers.0.bias`), R, D, D, false, -1);
      relu(h1);
      be.linearForward(h2, h1, P(`${m}.layers.1.weight`), P(`${m}.layers.1.bias`), R, D, D, false, -1);
      relu(h2);
      be.linearForward(y, h2, P(`${m}.layers.2.weight`), P(`${m}.layers.2.bias`), R, out, D, false, -1);
      return { y, h: [h1, h2] };
    };
    const cls = mlp('class_embed', K1), box = mlp('bbox_embed', 4);
    const boxes = box.y; // (R, 4)
    for (let i = 0; i < boxes.length; i++) boxes[i] = 1 / (1 + Math.exp(-boxes[i]!));
    if (opts.cache && bcache) {
      Object.assign(opts.cache, { backbone: bcache, B, N, det, hidden: { class_embed: cls.h, bbox_embed: box.h }, boxes });
    }
    const out: YolosOutput = { logits: new Tensor([B, Q, K1], cls.y), boxes: new Tensor([B, Q, 4], boxes) };
    if (f.attentions) out.attentions = f.attentions;
    return out;
  }

  /** Accumulates dL/dparams into `grads` (this model's layout) from dL/dlogits (B, Q, K + 1) and dL/dboxes (B, Q, 4, after the sigmoid). */
  backward(cache: YolosCache, dlogits: Float32Array, dboxes: Float32Array, grads: ParamTable): void {
    if (!cache || !cache.backbone || !cache.det) throw new VitkitError('backward needs the cache of a training forward: model.forward(x, { cache: {} as YolosCache })');
    if (grads.count !== this.params.count) throw new VitkitError(`Gradient table has ${grads.count} values but the model has ${this.params.count} parameters; use model.params.like()`);
    const c = this.config.vit, D = c.embed_dim, Q = c.det_tokens, K1 = this.config.numClasses + 1, B = cache.B, N = cache.N, R = B * Q;
    if (dlogits.length !== R * K1) throw new VitkitError(`Expected dlogits of (${B}, ${Q}, ${K1}) but received ${dlogits.length} values`);
    if (dboxes.length !== R * 4) throw new VitkitError(`Expected dboxes of (${B}, ${Q}, 4) but received ${dboxes.length} values`);
    const be = this.backend, mem = hostMem();
    const P = (n: string) => this.params.get(n), G = (n: string) => grads.get(n);
    const ddet = new Float32Array(R * D); // (R, D), accumulated from both MLPs
    const mlpBack = (m: (typeof MLPS)[number], dy: Float32Array, out: number) => {
      const [h1, h2] = cache.hidden[m];
      linearParamGrads(be, G(`${m}.layers.2.weight`), G(`${m}.layers.2.bias`), dy, h2, R, out, D);
      const dh2 = linearInputGrad(be, dy, P(`${m}.layers.2.weight`), R, out, D, mem); // (R, D)
      reluBackward(dh2, h2);
      linearParamGrads(be, G(`${m}.layers.1.weight`), G(`${m}.layers.1.bias`), dh2, h1, R, D, D);
      const dh1 = linearInputGrad(be, dh2, P(`${m}.layers.1.weight`), R, D, D, mem); // (R, D)
      reluBackward(dh1, h1);
      linearParamGrads(be, G(`${m}.layers.0.weight`), G(`${m}.layers.0.bias`), dh1, cache.det, R, D, D);
      linearInputGrad(be, dh1, P(`${m}.layers.0.weight`), R, D, D, mem, ddet);
    };
    mlpBack('class_embed', dlogits, K1);
    const dpre = new Float32Array(R * 4); // (R, 4): through the sigmoid
    for (let i = 0; i < dpre.length; i++) { const s = cache.boxes[i]!; dpre[i] = dboxes[i]! * s * (1 - s); }
    mlpBack('bbox_embed', dpre, 4);
    const dfeat = new Float32Array(B * N * D); // (B, N, D): only the det rows reach the heads
    be.copyRows(dfeat, ddet, B, N, N - Q, Q, 0, Q, D, false);
    const mp = this.config.midPe;
    let onBlockOutputGrad: ((i: number, dout: Float32Array) => void) | undefined;
    if (mp) {
      const t = cache.backbone.layout, n = mp[0] * mp[1], m = t.numPatches, L = c.depth - 1, per = (1 + n + Q) * D;
      const dall = grads.get('backbone.mid_pos_embed');
      const mid = this.midPosTables(t.gridH, t.gridW)!;
      onBlockOutputGrad = (i, dout) => {
        if (i >= L) return;
        const dmid = dall.subarray(i * per, (i + 1) * per);
        if (!mid.M) { be.biasBackward(dmid, dout, B, N * D); return; }
        const dused = new Float32Array(N * D); // (1 + m + Q, D): the gradient of the resampled table
        be.biasBackward(dused, dout, B, N * D);
        be.add(dmid.subarray(0, D), dmid.subarray(0, D), dused.subarray(0, D), D);
        be.add(dmid.subarray((1 + n) * D), dmid.subarray((1 + n) * D), dused.subarray((1 + m) * D), Q * D);
        // the grid rows: resampling is linear, dgrid (n, D) += M^T (n, m) @ dgrid' (m, D)
        be.gemm(true, false, n, D, m, 1, mid.M, n, dused.subarray(D, (1 + m) * D), D, 1, dmid.subarray(D, (1 + n) * D), D);
      };
    }
    this.backbone.backward(cache.backbone, dfeat, this.backboneGrads(grads), onBlockOutputGrad ? { onBlockOutputGrad } : {});
  }
}

function relu(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) if (x[i]! < 0) x[i] = 0; // NaN passes, as torch.relu
}

/** dx *= (y > 0), y the ReLU output (torch's threshold_backward) */
function reluBackward(dx: Float32Array, y: Float32Array): void {
  for (let i = 0; i < dx.length; i++) if (!(y[i]! > 0)) dx[i] = 0;
}

/** A new cache for Yolos.forward(x, { cache }). */
export function emptyYolosCache(): YolosCache {
  return {} as YolosCache;
}

/** torch nn.Linear's default init of an (out, in) layer: weight and bias U(-1/sqrt(in), 1/sqrt(in)) */
export function initLinear(w: Float32Array, b: Float32Array, fanIn: number, rand: () => number): void {
  const bound = 1 / Math.sqrt(fanIn);
  for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * bound;
  for (let i = 0; i < b.length; i++) b[i] = (rand() * 2 - 1) * bound;
}

/**
 * A fresh YOLOS for training from scratch: the backbone as timm initialises a ViT (det tokens and
 * every position trunc_normal(0.02), as finetune_det), the heads as torch's nn.Linear default.
 */
export function initYolos(model: Yolos, seed = 0): void {
  initWeights(model.backbone, seed);
  const rand = mulberry32(seed + 1);
  const D = model.config.vit.embed_dim;
  for (const m of MLPS) for (let l = 0; l < 3; l++) initLinear(model.params.get(`${m}.layers.${l}.weight`), model.params.get(`${m}.layers.${l}.bias`), D, rand);
}
