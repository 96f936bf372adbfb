/**
 * facebookresearch/mae's `MaskedAutoencoderViT` (models_mae.py; transformers' ViTMAEForPreTraining
 * is the same computation):
 *   x = patch_embed(imgs) + pos_embed[1:]                      (B, L, D)
 *   random_masking: ids_shuffle = argsort(noise), keep the first K = int(L (1 - ratio)),
 *     ids_restore = argsort(ids_shuffle), mask = 1 on removed patches (B, L)
 *   x = [cls_token + pos_embed[0], x[ids_keep]] -> blocks -> norm = latent (B, 1 + K, D)
 *   y = decoder_embed(latent) (B, 1 + K, Dd); y = [y0, unshuffle([y1.., mask_token x (L - K)], ids_restore)]
 *     + decoder_pos_embed -> decoder_blocks -> decoder_norm -> decoder_pred, cls row dropped = pred (B, L, p*p*C)
 *   loss = mean over masked patches of mean((pred - patchify(imgs))^2) (target normalised per patch
 *     with norm_pix_loss: (t - mean) / sqrt(var + 1e-6), var unbiased)
 * The blocks are the engine's (layers.ts blockForward / blockBackward, the decoder's under
 * `decoder_blocks.*` with its own width and heads); the position embeddings are MAE's fixed 2-D
 * sin-cos tables (not parameters: they are not trained and not decayed).
 */
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/select.js';
import { VitkitError, shapeStr } from '../errors.js';
import { Rng } from '../data/rng.js';
import { ParamTable, type ParamSpec } from '../nn/params.js';
import { type Mem, hostMem } from '../nn/mem.js';
import type { Arena } from '../nn/arena.js';
import type { ViTConfig } from '../models/config.js';
import { sincos2dPosEmbed } from '../models/pos_embed.js';
import { hostScratch } from '../models/vit.js';
import {
  type BlockCache, type GradCtx, type LayerCtx, type Scratch, allocSaved, blockBackward, blockForward, blockSaves,
  linear, linearInputGrad, linearParamGrads, patchEmbedBackward, patchEmbedForward,
} from '../models/layers.js';
import { type MaeConfig, checkMaskRatio, decoderVitConfig, encoderVitConfig } from './config.js';

/** The trainable parameters, in facebookresearch/mae's state_dict names and order (pos embeddings excluded). */
export function maeParamSpecs(c: MaeConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const add = (name: string, ...shape: number[]) => specs.push({ name, shape });
  const D = c.embed_dim, Dd = c.decoder_embed_dim, P = c.patch_size;
  add('cls_token', 1, 1, D);
  add('mask_token', 1, 1, Dd);
  add('patch_embed.proj.weight', D, c.in_chans, P, P); add('patch_embed.proj.bias', D);
  const block = (stack: string, i: number, w: number, ratio: number) => {
    const p = `${stack}.${i}.`, H = Math.floor(w * ratio);
    add(p + 'norm1.weight', w); add(p + 'norm1.bias', w);
    add(p + 'attn.qkv.weight', 3 * w, w); if (c.qkv_bias) add(p + 'attn.qkv.bias', 3 * w);
    add(p + 'attn.proj.weight', w, w); add(p + 'attn.proj.bias', w);
    add(p + 'norm2.weight', w); add(p + 'norm2.bias', w);
    add(p + 'mlp.fc1.weight', H, w); add(p + 'mlp.fc1.bias', H);
    add(p + 'mlp.fc2.weight', w, H); add(p + 'mlp.fc2.bias', w);
  };
  for (let i = 0; i < c.depth; i++) block('blocks', i, D, c.mlp_ratio);
  add('norm.weight', D); add('norm.bias', D);
  add('decoder_embed.weight', Dd, D); add('decoder_embed.bias', Dd);
  for (let i = 0; i < c.decoder_depth; i++) block('decoder_blocks', i, Dd, c.decoder_mlp_ratio);
  add('decoder_norm.weight', Dd); add('decoder_norm.bias', Dd);
  add('decoder_pred.weight', P * P * c.in_chans, Dd); add('decoder_pred.bias', P * P * c.in_chans);
  return specs;
}

/** MAE's fixed table with its zero class-token row: get_2d_sincos_pos_embed(D, grid, cls_token=True) (1 + grid^2, D). */
export function maeSincosPosEmbed(grid: number, D: number): Float32Array {
  const out = new Float32Array((1 + grid * grid) * D); // (1 + L, D)
  out.set(sincos2dPosEmbed(grid, grid, D), D);
  return out;
}

/** The masking of a batch: MAE's random_masking from noise (B, L). */
export interface Masking {
  B: number;
  L: number;
  /** patches kept per image: int(L * (1 - ratio)) */
  K: number;
  /** (B, K) the kept patch indices in order of increasing noise */
  idsKeep: Int32Array;
  /** (B, L) position of each patch in the shuffled order */
  idsRestore: Int32Array;
  /** (B, L) 1 on removed patches */
  mask: Float32Array;
}

/** random_masking: ids_shuffle = argsort(noise (B, L)) (ties by index), keep the first int(L (1 - ratio)). */
export function randomMasking(noise: Float32Array, B: number, L: number, ratio: number): Masking {
  checkMaskRatio(ratio, 'the mask ratio');
  if (noise.length !== B * L) throw new VitkitError(`Expected noise of shape (${B}, ${L}) (${B * L} values) but received ${noise.length} values`);
  const K = Math.trunc(L * (1 - ratio)); // Python int(L * (1 - mask_ratio)) in float64
  const idsKeep = new Int32Array(B * K), idsRestore = new Int32Array(B * L), mask = new Float32Array(B * L);
  const order = new Array<number>(L);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) order[l] = l;
    const row = noise.subarray(b * L, (b + 1) * L);
    order.sort((i, j) => row[i]! - row[j]! || i - j);
    for (let r = 0; r < L; r++) {
      idsRestore[b * L + order[r]!] = r;
      if (r < K) idsKeep[b * K + r] = order[r]!;
      else mask[b * L + order[r]!] = 1;
    }
  }
  return { B, L, K, idsKeep, idsRestore, mask };
}

/** noise (B, L) uniform in [0, 1) from the project's seeded generator (torch.rand's role in random_masking) */
export function maskingNoise(B: number, L: number, rng: Rng): Float32Array {
  const noise = new Float32Array(B * L); // (B, L)
  for (let i = 0; i < noise.length; i++) noise[i] = rng.next();
  return noise;
}

/** imgs (B, C, H, W) -> (B, L, p*p*C) in MAE's patchify order (h, w, p, q, c) */
export function patchify(imgs: Float32Array, B: number, C: number, S: number, P: number): Float32Array {
  const G = S / P, L = G * G, KP = P * P * C;
  const out = new Float32Array(B * L * KP); // (B, L, KP)
  for (let b = 0; b < B; b++) for (let h = 0; h < G; h++) for (let w = 0; w < G; w++) {
    const o = (b * L + h * G + w) * KP;
    for (let p = 0; p < P; p++) for (let q = 0; q < P; q++) for (let c = 0; c < C; c++) {
      out[o + (p * P + q) * C + c] = imgs[((b * C + c) * S + h * P + p) * S + w * P + q]!;
    }
  }
  return out;
}

/** (B, L, p*p*C) -> imgs (B, C, H, W): MAE's unpatchify */
export function unpatchify(x: Float32Array, B: number, C: number, S: number, P: number): Float32Array {
  const G = S / P, L = G * G, KP = P * P * C;
  const out = new Float32Array(B * C * S * S); // (B, C, S, S)
  for (let b = 0; b < B; b++) for (let h = 0; h < G; h++) for (let w = 0; w < G; w++) {
    const o = (b * L + h * G + w) * KP;
    for (let p = 0; p < P; p++) for (let q = 0; q < P; q++) for (let c = 0; c < C; c++) {
      out[((b * C + c) * S + h * P + p) * S + w * P + q] = x[o + (p * P + q) * C + c]!;
    }
  }
  return out;
}

/** per-patch normalisation of norm_pix_loss: (t - mean) / sqrt(var + 1e-6), var unbiased, in place on (R, KP) */
export function normalizePatches(t: Float32Array, R: number, KP: number): void {
  for (let r = 0; r < R; r++) {
    const row = t.subarray(r * KP, (r + 1) * KP);
    let mean = 0;
    for (let i = 0; i < KP; i++) mean += row[i]!;
    mean /= KP;
    let v = 0;
    for (let i = 0; i < KP; i++) v += (row[i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / (KP - 1) + 1e-6);
    for (let i = 0; i < KP; i++) row[i] = (row[i]! - mean) * inv;
  }
}

/** What a training forward keeps for backward. */
export interface MaeCache {
  B: number;
  m: Masking;
  cols: Float32Array;          // (B*L, KP) im2col of the input
  encBlocks: BlockCache[];     // encoder block caches over (B, 1 + K)
  encOut: Float32Array;        // last encoder block output (B*(1+K), D)
  latMean: Float32Array; latRstd: Float32Array; // norm stats (B*(1+K))
  latent: Float32Array;        // (B*(1+K), D)
  decIn: Float32Array;         // decoder tokens + decoder_pos_embed (B*(1+L), Dd)
  decBlocks: BlockCache[];     // decoder block caches over (B, 1 + L)
  decOut: Float32Array;        // last decoder block output (B*(1+L), Dd)
  decMean: Float32Array; decRstd: Float32Array; // decoder_norm stats (B*(1+L))
  decNormed: Float32Array;     // decoder_norm output (B*(1+L), Dd)
  target: Float32Array;        // patchified (normalised with norm_pix_loss) input (B*L, KP)
}

export interface MaeOutput {
  loss: number;
  /** (B, L, p*p*C) */
  pred: Float32Array;
  /** (B, 1 + K, D) */
  latent: Float32Array;
  masking: Masking;
}

export class MaskedAutoencoder {
  readonly family = 'mae';
  readonly params: ParamTable;
  /** (1 + L, D) and (1 + L, Dd): the fixed sin-cos tables with their class rows */
  readonly posEmbed: Float32Array;
  readonly decoderPosEmbed: Float32Array;
  readonly enc: ViTConfig;
  readonly dec: ViTConfig;
  backend: Backend;
  private readonly scratch: Scratch<Float32Array> = hostScratch();

  constructor(readonly config: MaeConfig, params?: ParamTable, backend?: Backend) {
    this.params = params ?? new ParamTable(maeParamSpecs(config));
    this.enc = encoderVitConfig(config);
    this.dec = decoderVitConfig(config);
    const G = config.img_size / config.patch_size;
    this.posEmbed = maeSincosPosEmbed(G, config.embed_dim);
    this.decoderPosEmbed = maeSincosPosEmbed(G, config.decoder_embed_dim);
    this.backend = backend ?? getBackend();
  }

  /** patches per image */
  get L(): number {
    const G = this.config.img_size / this.config.patch_size;
    return G * G;
  }

  /** p*p*C: pixels per patch */
  get KP(): number {
    return this.config.patch_size * this.config.patch_size * this.config.in_chans;
  }

  /** Validates pixel_values (B, C, H, W); returns B. */
  checkInput(shape: readonly number[]): number {
    const c = this.config, S = c.img_size;
    if (shape.length !== 4 || shape[1] !== c.in_chans) {
      throw new VitkitError(`Expected pixel_values of shape (B, ${c.in_chans}, ${S}, ${S}) but received ${shapeStr(shape)}`);
    }
    const [B, , H, W] = shape as [number, number, number, number];
    if (H % c.patch_size !== 0 || W % c.patch_size !== 0) {
      throw new VitkitError(`Image size ${H}x${W} (pixel_values ${shapeStr(shape)}) is not divisible by the patch size ${c.patch_size}`);
    }
    if (H !== S || W !== S) throw new VitkitError(`Expected pixel_values of shape (B, ${c.in_chans}, ${S}, ${S}) but received ${shapeStr(shape)}`);
    if (!(B >= 1)) throw new VitkitError(`Expected at least one image in pixel_values but received ${shapeStr(shape)}`);
    return B;
  }

  /** the masking of B images from given noise (B, L), or from `rng` */
  masking(B: number, opts: { noise?: Float32Array; rng?: Rng; maskRatio?: number }): Masking {
    const ratio = checkMaskRatio(opts.maskRatio ?? this.config.mask_ratio, 'the mask ratio');
    const noise = opts.noise ?? maskingNoise(B, this.L, opts.rng ?? new Rng(0));
    return randomMasking(noise, B, this.L, ratio);
  }

  private ctx(mem: Mem<Float32Array>): LayerCtx<Float32Array> {
    return { be: this.backend, params: this.params, mem };
  }

  /** The encoder on the kept patches: imgs (B, C, S, S) -> latent (B*(1+K), D). */
  encode(x: Float32Array, m: Masking, mem: Mem<Float32Array>, cache?: MaeCache): Float32Array {
    const c = this.config, be = this.backend, D = c.embed_dim, { B, L, K } = m, N = 1 + K;
    const KP = this.KP, ctx = this.ctx(mem);
    const cols = mem.take(B * L * KP, false); // (B*L, KP)
    const patches = mem.take(B * L * D, false); // (B*L, D)
    patchEmbedForward(ctx, cols, patches, x, B, c.in_chans, c.img_size, c.img_size, c.patch_size, D);
    be.biasAdd(patches, this.posEmbed.subarray(D), B, L * D);
    // [cls_token + pos_embed[0], kept patches in shuffled order]
    const tokens = mem.take(B * N * D, false); // (B*N, D)
    const cls = mem.take(D, false); // (D)
    be.add(cls, this.params.get('cls_token'), this.posEmbed.subarray(0, D), D);
    be.copyRows(tokens, cls, B, N, 0, 0, 0, 1, D, false);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < K; j++) be.copyRows(tokens, patches, 1, 0, b * N + 1 + j, 0, b * L + m.idsKeep[b * K + j]!, 1, D, false);
    }
    let h = tokens; // (B*N, D)
    const blocks: BlockCache[] = [];
    for (let i = 0; i < c.depth; i++) {
      const saved = cache ? { ...allocSaved(blockSaves(this.enc, B, N), mem), x: h } : null;
      h = blockForward(ctx, this.enc, i, h, B, N, null, saved, this.scratch, 'blocks');
      if (saved) blocks.push(saved);
    }
    const latent = mem.take(B * N * D, false); // (B*N, D)
    const mean = cache ? mem.take(B * N, false) : null, rstd = cache ? mem.take(B * N, false) : null; // (B*N)
    be.layernormForward(latent, mean, rstd, h, this.params.get('norm.weight'), this.params.get('norm.bias'), B * N, D, c.layer_norm_eps);
    if (cache) Object.assign(cache, { B, m, cols, encBlocks: blocks, encOut: h, latMean: mean, latRstd: rstd, latent });
    return latent;
  }

  /** The decoder: latent (B*(1+K), D) -> pred (B*L, p*p*C) */
  decode(latent: Float32Array, m: Masking, mem: Mem<Float32Array>, cache?: MaeCache): Float32Array {
    const c = this.config, be = this.backend, D = c.embed_dim, Dd = c.decoder_embed_dim, { B, L, K } = m;
    const N = 1 + K, M = 1 + L, KP = this.KP, ctx = this.ctx(mem);
    const y = mem.take(B * N * Dd, false); // (B*N, Dd)
    linear(be, y, latent, this.params.get('decoder_embed.weight'), this.params.get('decoder_embed.bias'), B * N, Dd, D);
    // [y0, gather([y1..yK, mask_token...], ids_restore)] + decoder_pos_embed
    const t = mem.take(B * M * Dd, false); // (B*M, Dd): every row written
    const maskTok = this.params.get('mask_token');
    for (let b = 0; b < B; b++) {
      be.copyRows(t, y, 1, 0, b * M, 0, b * N, 1, Dd, false);
      for (let l = 0; l < L; l++) {
        const r = m.idsRestore[b * L + l]!;
        if (r < K) be.copyRows(t, y, 1, 0, b * M + 1 + l, 0, b * N + 1 + r, 1, Dd, false);
        else be.copyRows(t, maskTok, 1, 0, b * M + 1 + l, 0, 0, 1, Dd, false);
      }
    }
    be.biasAdd(t, this.decoderPosEmbed, B, M * Dd);
    let h = t; // (B*M, Dd)
    const blocks: BlockCache[] = [];
    for (let i = 0; i < c.decoder_depth; i++) {
      const saved = cache ? { ...allocSaved(blockSaves(this.dec, B, M), mem), x: h } : null;
      h = blockForward(ctx, this.dec, i, h, B, M, null, saved, this.scratch, 'decoder_blocks');
      if (saved) blocks.push(saved);
    }
    const normed = mem.take(B * M * Dd, false); // (B*M, Dd)
    const mean = cache ? mem.take(B * M, false) : null, rstd = cache ? mem.take(B * M, false) : null; // (B*M)
    be.layernormForward(normed, mean, rstd, h, this.params.get('decoder_norm.weight'), this.params.get('decoder_norm.bias'), B * M, Dd, c.layer_norm_eps);
    const out = mem.take(B * M * KP, false); // (B*M, KP)
    linear(be, out, normed, this.params.get('decoder_pred.weight'), this.params.get('decoder_pred.bias'), B * M, KP, Dd);
    const pred = mem.take(B * L * KP, false); // (B*L, KP): the class row dropped
    be.copyRows(pred, out, B, L, 0, M, 1, L, KP, false);
    if (cache) Object.assign(cache, { decIn: t, decBlocks: blocks, decOut: h, decMean: mean, decRstd: rstd, decNormed: normed });
    return pred;
  }

  /** the reconstruction target (B*L, KP): patchify(imgs), normalised per patch with norm_pix_loss */
  target(x: Float32Array, B: number): Float32Array {
    const c = this.config;
    const t = patchify(x, B, c.in_chans, c.img_size, c.patch_size); // (B*L, KP)
    if (c.norm_pix_loss) normalizePatches(t, B * this.L, this.KP);
    return t;
  }

  /** forward_loss: mean over masked patches of the per-patch mean squared error (accumulated in float64) */
  loss(pred: Float32Array, target: Float32Array, m: Masking): number {
    const KP = this.KP;
    let num = 0, den = 0;
    for (let r = 0; r < m.B * m.L; r++) {
      if (m.mask[r] === 0) continue;
      let e = 0;
      for (let i = 0; i < KP; i++) e += (pred[r * KP + i]! - target[r * KP + i]!) ** 2;
      num += e / KP;
      den += 1;
    }
    return den === 0 ? 0 : num / den;
  }

  /**
   * The full forward of pixel_values x (B, C, S, S) with the masking from `noise` (B, L) or `rng`
   * (mask ratio default the config's); `cache` for backward.
   */
  forward(x: Float32Array, shape: readonly number[], opts: { noise?: Float32Array; rng?: Rng; maskRatio?: number; cache?: MaeCache; arena?: Arena } = {}): MaeOutput {
    const B = this.checkInput(shape);
    if (x.length !== B * this.config.in_chans * this.config.img_size ** 2) throw new VitkitError(`pixel_values has ${x.length} values for shape ${shapeStr(shape)}`);
    const m = this.masking(B, opts);
    const mem = hostMem(opts.arena);
    const latent = this.encode(x, m, mem, opts.cache);
    const pred = this.decode(latent, m, mem, opts.cache);
    const target = this.target(x, B);
    if (opts.cache) opts.cache.target = target;
    return { loss: this.loss(pred, target, m), pred, latent, masking: m };
  }

  /** dL/dparams of forward_loss accumulated into grads (this.params.like()) from a training forward's cache and its pred */
  backward(cache: MaeCache, pred: Float32Array, grads: ParamTable, arena?: Arena): void {
    const c = this.config, be = this.backend, mem = hostMem(arena);
    const D = c.embed_dim, Dd = c.decoder_embed_dim, { B, L, K, mask } = cache.m;
    const N = 1 + K, M = 1 + L, KP = this.KP;
    const ctx: GradCtx<Float32Array> = { be, params: this.params, grads, mem };
    const G = (n: string) => grads.get(n), P = (n: string) => this.params.get(n);
    let den = 0;
    for (let r = 0; r < B * L; r++) den += mask[r]!;
    // dL/dout (B*M, KP): 2 (pred - target) / KP on masked rows / number masked; the class row 0
    const dout = mem.take(B * M * KP); // (B*M, KP), zeroed
    if (den > 0) {
      const s = 2 / (KP * den);
      for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) {
        const r = b * L + l;
        if (mask[r] === 0) continue;
        const o = (b * M + 1 + l) * KP;
        for (let i = 0; i < KP; i++) dout[o + i] = s * (pred[r * KP + i]! - cache.target[r * KP + i]!);
      }
    }
    linearParamGrads(be, G('decoder_pred.weight'), G('decoder_pred.bias'), dout, cache.decNormed, B * M, KP, Dd);
    const dnormed = linearInputGrad(be, dout, P('decoder_pred.weight'), B * M, KP, Dd, mem); // (B*M, Dd)
    let dh = mem.take(B * M * Dd); // (B*M, Dd), zeroed: layernormBackward accumulates
    be.layernormBackward(dh, G('decoder_norm.weight'), G('decoder_norm.bias'), dnormed, cache.decOut, P('decoder_norm.weight'),
      cache.decMean, cache.decRstd, B * M, Dd);
    for (let i = c.decoder_depth - 1; i >= 0; i--) dh = blockBackward(ctx, this.dec, i, cache.decBlocks[i]!, dh, B, M, undefined, 'decoder_blocks');
    // un-shuffle backward: rows back to the decoder_embed output, mask rows to mask_token
    const dy = mem.take(B * N * Dd); // (B*N, Dd), zeroed
    const dMask = G('mask_token');
    for (let b = 0; b < B; b++) {
      be.copyRows(dy, dh, 1, 0, b * N, 0, b * M, 1, Dd, true);
      for (let l = 0; l < L; l++) {
        const r = cache.m.idsRestore[b * L + l]!;
        if (r < K) be.copyRows(dy, dh, 1, 0, b * N + 1 + r, 0, b * M + 1 + l, 1, Dd, true);
        else be.copyRows(dMask, dh, 1, 0, 0, 0, b * M + 1 + l, 1, Dd, true);
      }
    }
    linearParamGrads(be, G('decoder_embed.weight'), G('decoder_embed.bias'), dy, cache.latent, B * N, Dd, D);
    const dlatent = linearInputGrad(be, dy, P('decoder_embed.weight'), B * N, Dd, D, mem); // (B*N, D)
    let dx = mem.take(B * N * D); // (B*N, D), zeroed
    be.layernormBackward(dx, G('norm.weight'), G('norm.bias'), dlatent, cache.encOut, P('norm.weight'), cache.latMean, cache.latRstd, B * N, D);
    for (let i = c.depth - 1; i >= 0; i--) dx = blockBackward(ctx, this.enc, i, cache.encBlocks[i]!, dx, B, N, undefined, 'blocks');
    // tokens backward: the class row to cls_token (summed over images), kept rows back to their patches
    be.copyRows(G('cls_token'), dx, B, 0, 0, N, 0, 1, D, true);
    const dpatches = mem.take(B * L * D); // (B*L, D), zeroed: removed patches get no gradient
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < K; j++) be.copyRows(dpatches, dx, 1, 0, b * L + cache.m.idsKeep[b * K + j]!, 0, b * N + 1 + j, 1, D, true);
    }
    patchEmbedBackward(ctx, dpatches, cache.cols, undefined, B, c.in_chans, c.img_size, c.img_size, c.patch_size, D);
  }

  /**
   * MAE's demo pictures: reconstruction = unpatchify(pred) and pasted = the visible patches of the
   * input with the reconstruction in the masked ones; both (B, C, S, S). With norm_pix_loss the
   * prediction is per-patch normalised pixels: each visible patch is de-normalised with its own
   * mean / std, each masked one with the mean of the visible patches' means and stds of its image
   * (the masked pixels' own statistics are not used: they are what is being reconstructed).
   */
  pictures(x: Float32Array, pred: Float32Array, m: Masking): { reconstruction: Float32Array; pasted: Float32Array; maskPixels: Float32Array } {
    const c = this.config, KP = this.KP, B = m.B, L = m.L;
    let p = pred;
    if (c.norm_pix_loss) {
      const t = patchify(x, B, c.in_chans, c.img_size, c.patch_size); // (B*L, KP)
      const mean = new Float64Array(B * L), sd = new Float64Array(B * L); // (B, L)
      for (let r = 0; r < B * L; r++) {
        let mu = 0;
        for (let i = 0; i < KP; i++) mu += t[r * KP + i]!;
        mu /= KP;
        let v = 0;
        for (let i = 0; i < KP; i++) v += (t[r * KP + i]! - mu) ** 2;
        mean[r] = mu;
        sd[r] = Math.sqrt(v / (KP - 1) + 1e-6);
      }
      p = new Float32Array(pred.length);
      for (let b = 0; b < B; b++) {
        let vm = 0, vs = 0, nv = 0;
        for (let l = 0; l < L; l++) if (m.mask[b * L + l] === 0) { vm += mean[b * L + l]!; vs += sd[b * L + l]!; nv++; }
        if (nv > 0) { vm /= nv; vs /= nv; } else { vs = 1; }
        for (let l = 0; l < L; l++) {
          const r = b * L + l, vis = m.mask[r] === 0;
          const mu = vis ? mean[r]! : vm, s = vis ? sd[r]! : vs;
          for (let i = 0; i < KP; i++) p[r * KP + i] = pred[r * KP + i]! * s + mu;
        }
      }
    }
    const reconstruction = unpatchify(p, B, c.in_chans, c.img_size, c.patch_size);
    const mp = new Float32Array(B * L * KP); // (B*L, KP)
    for (let r = 0; r < B * L; r++) if (m.mask[r] === 1) mp.fill(1, r * KP, (r + 1) * KP);
    const maskPixels = unpatchify(mp, B, c.in_chans, c.img_size, c.patch_size); // (B, C, S, S)
    const pasted = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) pasted[i] = maskPixels[i] === 1 ? reconstruction[i]! : x[i]!;
    return { reconstruction, pasted, maskPixels };
  }
}

/**
 * MAE's initialize_weights, seeded: xavier_uniform for every Linear weight and the patch
 * embedding (as a (D, C*p*p) matrix), normal(0.02) for cls_token and mask_token, zero biases,
 * LayerNorm weight 1 and bias 0. (The pos tables are fixed sin-cos.)
 */
export function initMae(model: MaskedAutoencoder, seed: number): void {
  const rng = new Rng(seed);
  for (const spec of model.params.specs) {
    const p = model.params.get(spec.name), n = spec.name;
    if (n === 'cls_token' || n === 'mask_token') { for (let i = 0; i < p.length; i++) p[i] = 0.02 * rng.normal(); continue; }
    if (n.endsWith('.bias')) { p.fill(0); continue; }
    if (spec.shape.length === 1) { p.fill(1); continue; } // LayerNorm weights
    const fanOut = spec.shape[0]!, fanIn = p.length / fanOut;
    const a = Math.sqrt(6 / (fanIn + fanOut));
    for (let i = 0; i < p.length; i++) p[i] = rng.uniform(-a, a);
  }
}
