/**
 * CLIP (OpenAI / open_clip): an image tower and a text tower projected into one embedding space.
 *   image_embeds = ln_post(ViT_pre_norm(pixels))[:, 0] @ visual.proj        (B, E)
 *   text_embeds  = ln_final(causal_transformer(ids))[b, eos_b] @ text_projection (T, E)
 *   logits_per_image = exp(logit_scale) * normalize(image) @ normalize(text)^T  (B, T)
 *
 * One parameter table with OpenAI's names (what open_clip saves, what the optimizer walks). The
 * towers see their part of the same buffer under engine names: the image tower is the engine's
 * VisionTransformer over `[0, nVision)`, the text tower's table follows `visual.proj`. Gradients
 * use the same split of a `params.like()` table.
 */
import type { Backend } from '../../backend/backend.js';
import { getBackend } from '../../backend/index.js';
import { Tensor, numel } from '../../tensor.js';
import { VitkitError, shapeStr } from '../../errors.js';
import { ParamTable, type ParamSpec } from '../../nn/params.js';
import { VisionTransformer, vitParamSpecs, emptyCache, type ForwardCache } from '../vit.js';
import { type ClipConfig, visionViTConfig, textBlockConfig } from './config.js';
import { TextTower, textParamSpecs, idsToInt32, type TextCache } from './text.js';
import { visionToOpenAi, textToOpenAi } from './names.js';

export interface ClipOutput {
  /** (B, E) before normalisation */
  image_embeds: Tensor;
  /** (T, E) before normalisation */
  text_embeds: Tensor;
  /** (B, T) */
  logits_per_image: Tensor;
  /** (T, B) */
  logits_per_text: Tensor;
}

/** Everything backward needs from a training forward of both towers. */
export interface ClipCache {
  vision?: ForwardCache;
  /** image tower class-token features after ln_post (B, Wv) */
  pooled?: Float32Array;
  text?: TextCache;
}

/** The model's parameter specs (OpenAI names and shapes), and where each tower's part lies. */
export function clipParamLayout(c: ClipConfig): { specs: ParamSpec[]; vision: ParamSpec[]; text: ParamSpec[]; visionLen: number; textOffset: number; textLen: number } {
  const vision = vitParamSpecs(visionViTConfig(c));
  const text = textParamSpecs(c);
  const specs: ParamSpec[] = [];
  const ocShape = (name: string, shape: number[]) => (name === 'visual.class_embedding' ? [shape[2]!] : name === 'visual.positional_embedding' ? shape.slice(1) : shape);
  const trunk = c.vision.vit !== undefined;
  for (const s of vision) { const n = visionToOpenAi(s.name, trunk); specs.push({ name: n, shape: trunk ? s.shape : ocShape(n, s.shape) }); }
  specs.push({ name: 'visual.proj', shape: [c.vision.width, c.embed_dim] });
  for (const s of text) specs.push({ name: textToOpenAi(s.name), shape: s.shape });
  specs.push({ name: 'logit_scale', shape: [] });
  const visionLen = vision.reduce((a, s) => a + numel(s.shape), 0);
  const textLen = text.reduce((a, s) => a + numel(s.shape), 0);
  return { specs, vision, text, visionLen, textOffset: visionLen + c.vision.width * c.embed_dim, textLen };
}

export class ClipModel {
  readonly config: ClipConfig;
  readonly params: ParamTable;
  readonly visual: VisionTransformer;
  readonly text: TextTower;
  private readonly layout: ReturnType<typeof clipParamLayout>;
  private _backend: Backend;

  constructor(config: ClipConfig, params?: ParamTable, backend?: Backend) {
    this.config = config;
    this.layout = clipParamLayout(config);
    this.params = params ?? new ParamTable(this.layout.specs);
    const want = this.layout.specs.reduce((a, s) => a + numel(s.shape), 0);
    if (this.params.count !== want) throw new VitkitError(`ClipModel: the parameter table has ${this.params.count} values but the config needs ${want}`);
    this._backend = backend ?? getBackend();
    const [vp, tp] = this.towerTables(this.params);
    this.visual = new VisionTransformer(visionViTConfig(config), vp, this._backend);
    this.text = new TextTower(config, textBlockConfig(config), tp, this._backend);
  }

  get backend(): Backend {
    return this._backend;
  }

  set backend(be: Backend) {
    this._backend = be;
    this.visual.backend = be;
    this.text.setBackend(be);
  }

  get numParams(): number {
    return this.params.count;
  }

  /** the image and text tower views of a table with this model's layout (params or gradients) */
  towerTables(t: ParamTable): [ParamTable, ParamTable] {
    const L = this.layout;
    return [
      new ParamTable(L.vision, t.buffer.subarray(0, L.visionLen)),
      new ParamTable(L.text, t.buffer.subarray(L.textOffset, L.textOffset + L.textLen)),
    ];
  }

  get logitScale(): number {
    return this.params.get('logit_scale')[0]!;
  }

  /** pooled image-tower outputs (B, Wv) -> image_embeds (B, E) = pooled @ visual.proj */
  project(pooled: Float32Array, B: number): Tensor {
    const c = this.config, E = c.embed_dim, Wv = c.vision.width;
    const out = new Float32Array(B * E); // (B, E)
    this._backend.gemm(false, false, B, E, Wv, 1, pooled, Wv, this.params.get('visual.proj'), E, 0, out, E);
    return new Tensor([B, E], out);
  }

  /** pixel_values (B, 3, H, W) -> image_embeds (B, E), before normalisation */
  encodeImage(x: Tensor, cache?: ClipCache): Tensor {
    const c = this.config, E = c.embed_dim, Wv = c.vision.width;
    const vc = cache ? emptyCache() : undefined;
    const f = this.visual.forwardFeatures(x, vc ? { cache: vc } : {});
    const pooled = this.visual.forwardHead(f.features, vc ? { preLogits: true, cache: vc } : { preLogits: true }).data; // (B, Wv)
    const B = x.shape[0]!;
    const out = new Float32Array(B * E); // (B, E)
    this._backend.gemm(false, false, B, E, Wv, 1, pooled, Wv, this.params.get('visual.proj'), E, 0, out, E);
    if (cache) { cache.vision = vc!; cache.pooled = pooled; }
    return new Tensor([B, E], out);
  }

  /** input_ids (T, L) -> text_embeds (T, E), before normalisation */
  encodeText(ids: Int32Array | BigInt64Array | readonly number[], shape: readonly number[], cache?: ClipCache): Tensor {
    const i32 = idsToInt32(ids, shape, this.config);
    const T = shape[0]!;
    const tc = cache ? ({} as TextCache) : undefined;
    const out = this.text.forward(i32, T, tc);
    if (cache) cache.text = tc!;
    return new Tensor([T, this.config.embed_dim], out);
  }

  /** Both towers and the scaled cosine similarities. */
  forward(x: Tensor, ids: Int32Array | BigInt64Array | readonly number[], idsShape: readonly number[], cache?: ClipCache): ClipOutput {
    const img = this.encodeImage(x, cache), txt = this.encodeText(ids, idsShape, cache);
    const lpi = similarityLogits(img, txt, Math.exp(this.logitScale));
    return { image_embeds: img, text_embeds: txt, logits_per_image: lpi, logits_per_text: transpose(lpi) };
  }

  /**
   * Accumulate dL/dparam into `grads` (this model's layout) from dL/d image_embeds (B, E) and
   * dL/d text_embeds (T, E); dlogitScale goes to logit_scale. A tower whose gradient is null is skipped.
   */
  backward(cache: ClipCache, dImage: Float32Array | null, dText: Float32Array | null, dLogitScale: number, grads: ParamTable): void {
    if (grads.count !== this.params.count) throw new VitkitError(`Gradient table has ${grads.count} values but the model has ${this.params.count} parameters; use model.params.like()`);
    const c = this.config, E = c.embed_dim, Wv = c.vision.width, be = this._backend;
    const [gv, gt] = this.towerTables(grads);
    if (dImage) {
      if (!cache.vision || !cache.pooled) throw new VitkitError('backward needs the cache of a training forward of the image tower');
      const B = cache.vision.B;
      if (dImage.length !== B * E) throw new VitkitError(`Expected dImage of (${B}, ${E}) but received ${dImage.length} values`);
      be.gemm(true, false, Wv, E, B, 1, cache.pooled, Wv, dImage, E, 1, grads.get('visual.proj'), E);
      const dpooled = new Float32Array(B * Wv); // (B, Wv)
      be.gemm(false, true, B, Wv, E, 1, dImage, E, this.params.get('visual.proj'), E, 0, dpooled, Wv);
      this.visual.backward(cache.vision, dpooled, gv);
    }
    if (dText) {
      if (!cache.text) throw new VitkitError('backward needs the cache of a training forward of the text tower');
      this.text.backward(cache.text, dText, gt);
    }
    const g = grads.get('logit_scale');
    g[0] = g[0]! + dLogitScale;
  }
}

/** rows normalised to unit L2 norm (F.normalize, eps 1e-12) */
export function normalizeRows(x: Tensor): Tensor {
  const [R, C] = x.shape as [number, number];
  const out = new Float32Array(R * C); // (R, C)
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x.data[r * C + c]! * x.data[r * C + c]!;
    const n = Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < C; c++) out[r * C + c] = x.data[r * C + c]! / n;
  }
  return new Tensor([R, C], out);
}

/** scale * normalize(a) @ normalize(b)^T: (A, E), (B, E) -> (A, B) */
export function similarityLogits(a: Tensor, b: Tensor, scale: number): Tensor {
  if (a.shape[1] !== b.shape[1]) throw new VitkitError(`Embedding widths differ: ${shapeStr(a.shape)} vs ${shapeStr(b.shape)}`);
  const an = normalizeRows(a), bn = normalizeRows(b);
  const A = a.shape[0]!, Bn = b.shape[0]!, E = a.shape[1]!;
  const out = new Float32Array(A * Bn); // (A, B)
  for (let i = 0; i < A; i++) {
    for (let j = 0; j < Bn; j++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += an.data[i * E + e]! * bn.data[j * E + e]!;
      out[i * Bn + j] = scale * s;
    }
  }
  return new Tensor([A, Bn], out);
}

function transpose(t: Tensor): Tensor {
  const [R, C] = t.shape as [number, number];
  const out = new Float32Array(R * C); // (C, R)
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = t.data[r * C + c]!;
  return new Tensor([C, R], out);
}

/** softmax over the last dim of a (R, C) tensor */
export function softmaxRows(t: Tensor): Tensor {
  const [R, C] = t.shape as [number, number];
  const out = new Float32Array(R * C); // (R, C)
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, t.data[r * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(t.data[r * C + c]! - m);
    for (let c = 0; c < C; c++) out[r * C + c] = Math.exp(t.data[r * C + c]! - m) / s;
  }
  return new Tensor([R, C], out);
}
