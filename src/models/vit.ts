/**
 * The Vision Transformer family, as timm's VisionTransformer (and VisionTransformerDistilled)
 * computes it:
 *   x = patch_embed(img) (B, NP, D); x = _pos_embed(x): [cls, dist | reg..., patches] + pos_embed (B, N, D)
 *   x = norm_pre(x); for each block: x = x + ls1(attn(norm1(x))); x = x + ls2(mlp(norm2(x)))
 *   features = norm(x); pooled = token / avg / MAP attention pool / none; logits = head(fc_norm(pooled))
 *   DeiT: logits = (head(x[:, 0]) + head_dist(x[:, 1])) / 2
 * Parameter names are timm's, so a timm checkpoint loads key by key. The layers with their
 * backward and their saved-activation tables live in ./layers.ts.
 */
import type { Backend } from '../backend/backend.js';
import type { Ops } from '../backend/ops.js';
import { getBackend } from '../backend/select.js';
import { Tensor } from '../tensor.js';
import { VitkitError, shapeStr } from '../errors.js';
import { ParamTable, type ParamSpec } from '../nn/params.js';
import type { Arena } from '../nn/arena.js';
import { type Mem, type Params, hostMem } from '../nn/mem.js';
import { type ViTConfig, type TokenLayout, dims, imgHW, tokenLayout } from './config.js';
import { resampleAbsPosEmbed, sincos2dPosEmbed } from './pos_embed.js';
import type { Model } from './model.js';
import { checkFeatureShape } from './checks.js';
import {
  type BlockCache, type Saved, type HeadKey, type PoolKey, type GradCtx, type LayerCtx, type Scratch, type HeadOut,
  allocSaved, blockSaves, blockForward, blockBackward, headSaves, headForward, headBackward, headRows,
  poolSaves, attnPoolForward, attnPoolBackward, patchEmbedForward, patchEmbedBackward, tokensForward, tokensBackward, copyOf,
} from './layers.js';

export type { BlockCache } from './layers.js';

/** Activations of the embedding stage per (B, grid): the table behind ForwardCache's embedding buffers. */
export function embedSaves(c: ViTConfig, B: number, gridH: number, gridW: number) {
  const t = tokenLayout(c, gridH, gridW), D = c.embed_dim, KP = c.in_chans * c.patch_size * c.patch_size;
  return {
    cols: B * t.numPatches * KP,            // im2col of the input (B*NP, KP)
    patches: B * t.numPatches * D,          // patch embeddings (B*NP, D) (+ pos_embed with no_embed_class)
    tokens: t.numPrefix + t.det > 0 ? B * t.N * D : 0, // prefix tokens + patches (+ det tokens) (+ pos_embed) (B*N, D)
    normPre: c.pre_norm ? B * t.N * D : 0,  // norm_pre output (B*N, D)
    preMean: c.pre_norm ? B * t.N : 0, preRstd: c.pre_norm ? B * t.N : 0,
  } satisfies Record<string, number>;
}
export type EmbedKey = keyof ReturnType<typeof embedSaves>;

/** Activations of the final norm per (B, N). */
export function normSaves(c: ViTConfig, B: number, N: number, useFcNorm: boolean) {
  const D = c.embed_dim;
  return { features: useFcNorm ? 0 : B * N * D, normMean: useFcNorm ? 0 : B * N, normRstd: useFcNorm ? 0 : B * N } satisfies Record<string, number>;
}
export type NormKey = keyof ReturnType<typeof normSaves>;

/**
 * Everything backward needs from a training forward (filled by forward(x, { cache })), in the
 * backend's buffer type T (Float32Array on the host, DeviceTensor on a device).
 */
export interface ForwardCache<T = Float32Array> {
  B: number;
  /** token layout of this forward (the grid follows the input with dynamic_img_size) */
  layout: TokenLayout;
  /** true when pos_embed was resampled for this input size */
  posResampled: boolean;
  embed: Saved<EmbedKey, T>;
  blocks: BlockCache<T>[];
  /** output of the last block (B*N, D) */
  xL: T;
  norm: Saved<NormKey, T>;
  /** after the final norm (B*N, D) */
  features: T;
  head: Saved<HeadKey, T>;
  pool?: Saved<PoolKey, T>;
  /** head input (R, D) */
  preLogits: T;
  /** host: when set, every buffer above comes from it (valid until its next reset) */
  arena?: Arena;
  /** where the cache's buffers come from (set by emptyCache; a device cache always has one) */
  mem?: Mem<T>;
}

export interface ForwardOptions {
  /** keep hidden_states: [block 0 input, block 0 output, ..., block L-1 output], each (B, N, D) */
  hiddenStates?: boolean;
  /** keep every block's attention probabilities (B, NH, N, N) */
  attentions?: boolean;
  /** fill this with the activations backward needs */
  cache?: ForwardCache;
  /** called with each block's output (B*N, D), which it may update in place (YOLOS's mid position embeddings) */
  afterBlock?: (block: number, h: Float32Array) => void;
}

export interface FeaturesOutput {
  /** (B, N, D) after the final norm */
  features: Tensor;
  hiddenStates?: Tensor[];
  attentions?: Tensor[];
}

export interface HeadsOutput {
  /** (B, D) head input (DeiT: mean of the class and distillation tokens) — (B, N, D) with global_pool '' */
  preLogits: Tensor;
  /** (B, K) eval output, or null without a head — (B, N, K) with global_pool '' */
  logits: Tensor | null;
  /** DeiT: the class-token head and the distillation head before averaging (B, K) */
  clsLogits?: Tensor;
  distLogits?: Tensor;
}

export interface BackwardOptions {
  /** if given, dL/d(pixel_values) (B, C, H, W) is accumulated into it (through col2im) */
  dinput?: Float32Array;
  /** called in each block's backward with dL/d(attention output before proj) (B*N, D), e.g. for gradient-weighted rollout */
  onAttnOutputGrad?: (block: number, dattn: Float32Array) => void;
  /** called with dL/d(block output) (B*N, D) before each block's backward (the gradient of what afterBlock added) */
  onBlockOutputGrad?: (block: number, dout: Float32Array) => void;
  /** DeiT: dL/d(distillation head logits) (B, K); dlogits is then dL/d(class head logits) */
  dDistLogits?: Float32Array;
  /** where the gradient buffers come from (default: the forward cache's arena) */
  arena?: Arena;
}

/** The parameter table of a config, in timm's state_dict order and names. */
export function vitParamSpecs(c: ViTConfig): ParamSpec[] {
  const d = dims(c);
  const D = d.D;
  const specs: ParamSpec[] = [];
  const add = (name: string, ...shape: number[]) => specs.push({ name, shape });
  if (c.class_token) add('cls_token', 1, 1, D);
  if (c.reg_tokens > 0) add('reg_token', 1, c.reg_tokens, D);
  if (c.pos_embed === 'learn') add('pos_embed', 1, d.posLen, D);
  if (c.det_tokens > 0) add('det_token', 1, c.det_tokens, D);
  if (c.distilled) add('dist_token', 1, 1, D);
  add('patch_embed.proj.weight', D, c.in_chans, c.patch_size, c.patch_size);
  if (!c.pre_norm) add('patch_embed.proj.bias', D); // timm: bias=not pre_norm (CLIP's conv1 has none)
  if (c.pre_norm) { add('norm_pre.weight', D); add('norm_pre.bias', D); }
  for (let i = 0; i < c.depth; i++) {
    const p = `blocks.${i}.`;
    add(p + 'norm1.weight', D); add(p + 'norm1.bias', D);
    add(p + 'attn.qkv.weight', 3 * D, D);
    if (c.qkv_bias) add(p + 'attn.qkv.bias', 3 * D);
    add(p + 'attn.proj.weight', D, D); add(p + 'attn.proj.bias', D);
    if (c.init_values !== null) add(p + 'ls1.gamma', D);
    add(p + 'norm2.weight', D); add(p + 'norm2.bias', D);
    add(p + 'mlp.fc1.weight', d.H, D); add(p + 'mlp.fc1.bias', d.H);
    add(p + 'mlp.fc2.weight', D, d.Hact); add(p + 'mlp.fc2.bias', D);
    if (c.init_values !== null) add(p + 'ls2.gamma', D);
  }
  if (!d.useFcNorm) { add('norm.weight', D); add('norm.bias', D); }
  if (c.global_pool === 'map') {
    const Hm = d.poolH;
    add('attn_pool.latent', 1, 1, D);
    add('attn_pool.q.weight', D, D); if (c.qkv_bias) add('attn_pool.q.bias', D);
    add('attn_pool.kv.weight', 2 * D, D); if (c.qkv_bias) add('attn_pool.kv.bias', 2 * D);
    add('attn_pool.proj.weight', D, D); add('attn_pool.proj.bias', D);
    add('attn_pool.norm.weight', D); add('attn_pool.norm.bias', D);
    add('attn_pool.mlp.fc1.weight', Hm, D); add('attn_pool.mlp.fc1.bias', Hm);
    add('attn_pool.mlp.fc2.weight', D, Hm); add('attn_pool.mlp.fc2.bias', D);
  }
  if (d.useFcNorm) { add('fc_norm.weight', D); add('fc_norm.bias', D); }
  if (c.num_classes > 0) { add('head.weight', c.num_classes, D); add('head.bias', c.num_classes); }
  if (c.distilled && c.num_classes > 0) { add('head_dist.weight', c.num_classes, D); add('head_dist.bias', c.num_classes); }
  return specs;
}

/** Multiply-accumulates per image, counted as timm's benchmark (fvcore) counts them: every
 * matmul and convolution MAC, plus LayerNorm at 5 per element (affine). */
export function vitMacs(c: ViTConfig): number {
  const d = dims(c);
  const { N, D, H, Hact } = d;
  const ln = 5 * N * D;
  let macs = d.numPatches * D * d.KP;
  if (c.pre_norm) macs += ln;
  const block = N * D * 3 * D + 2 * d.NH * N * N * d.HD + N * D * D + N * D * H + N * Hact * D + 2 * ln;
  macs += c.depth * block;
  macs += d.useFcNorm ? 5 * D : ln;
  if (c.global_pool === 'map') {
    const Hm = d.poolH;
    macs += D * D + N * D * 2 * D + 2 * d.NH * N * d.HD + D * D + 5 * D + 2 * D * Hm;
  }
  macs += c.num_classes * D * (c.distilled ? 2 : 1);
  return macs;
}

/**
 * Where the ViT code runs: the backend's ops, the parameters on that backend, inference scratch,
 * and the host-made tables (sin-cos position embedding, resampling matrices) placed on it.
 */
export interface VitRuntime<T> {
  readonly be: Ops<T>;
  readonly params: Params<T>;
  /** inference scratch: buffers reused across blocks and calls */
  readonly scratch: Scratch<T>;
  /** a table made on the host, placed on this backend once per key */
  constant(key: string, make: () => Float32Array): T;
  /**
   * the learned pos_embed resampled to grid t (prefix rows first when they carry a position, YOLOS's det rows last):
   * host: the exact resampler on the current weights; a device: M @ pos_embed with the matrix below
   */
  resampledPos(t: TokenLayout, prefix: number, mem: Mem<T>): T;
}

/** Backward's extra inputs and hooks in the buffer type of the backend. */
export interface CoreBackwardOptions<T> {
  dinput?: T | undefined;
  onAttnOutputGrad?: ((block: number, dattn: T) => void) | undefined;
  onBlockOutputGrad?: ((block: number, dout: T) => void) | undefined;
  dDistLogits?: T | undefined;
}

/**
 * The ViT computation over any backend: embedding, blocks, final norm, head and backward,
 * written once against Ops<T> (through the layers of ./layers.ts). The host model
 * (VisionTransformer) and the device model (DeviceViT, models/device.ts) are this code over
 * Float32Array and over DeviceTensor. Inputs are validated by those wrappers.
 */
export class VitCore<T> {
  constructor(readonly config: ViTConfig, readonly rt: VitRuntime<T>) {}

  private ctx(mem: Mem<T>): LayerCtx<T> {
    return { be: this.rt.be, params: this.rt.params, mem };
  }

  /**
   * The matrix M (m, n) of pos_embed resampling from the configured grid (n positions) to t's grid
   * (m positions): the resampler applied to the identity (n channels), once per grid.
   */
  resampleMatrix(t: TokenLayout): Float32Array {
    const d = dims(this.config), n = d.posGridH * d.posGridW;
    const eye = new Float32Array(n * n); // (n, n)
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    return resampleAbsPosEmbed(eye, n, [d.posGridH, d.posGridW], [t.gridH, t.gridW], 0, this.config.pos_embed_antialias); // (m, n)
  }

  /** The position table for grid t and where it is added (see VisionTransformer.posEmbedFor). */
  posEmbed(t: TokenLayout, mem: Mem<T>): { pos: T | null; onPatches: boolean; resampled: boolean } {
    const c = this.config, d = dims(c);
    if (c.pos_embed === 'none') return { pos: null, onPatches: true, resampled: false };
    if (c.pos_embed === 'sincos') {
      return { pos: this.rt.constant(`sincos:${t.gridH}x${t.gridW}`, () => sincos2dPosEmbed(t.gridH, t.gridW, d.D)), onPatches: true, resampled: false };
    }
    const onPatches = c.no_embed_class;
    // YOLOS (det tokens) resamples only when the patch count differs (backbone.py forward_features)
    const same = c.det_tokens > 0 ? t.numPatches === d.posGridH * d.posGridW : t.gridH === d.posGridH && t.gridW === d.posGridW;
    if (same) return { pos: this.rt.params.get('pos_embed'), onPatches, resampled: false };
    return { pos: this.rt.resampledPos(t, onPatches ? 0 : t.numPrefix, mem), onPatches, resampled: true };
  }

  /** Embeddings of x (B, C, H, W): patch embedding, prefix tokens, position embedding, norm_pre -> (B*N, D). */
  embed(x: T, B: number, t: TokenLayout, mem: Mem<T>, cache?: ForwardCache<T>): T {
    const c = this.config, be = this.rt.be, D = c.embed_dim;
    const H = t.gridH * c.patch_size, W = t.gridW * c.patch_size;
    const { N, numPatches: NP, numPrefix } = t;
    const extra = numPrefix + t.det; // tokens besides the patches
    const s = cache ? allocSaved(embedSaves(c, B, t.gridH, t.gridW), mem) : null;
    const KP = c.in_chans * c.patch_size * c.patch_size;
    const cols = s ? s.cols : this.rt.scratch('cols', B * NP * KP); // (B*NP, KP)
    // without prefix tokens the patches are the tokens: a fresh buffer (blocks update it in place)
    const patches = s ? s.patches : extra > 0 ? this.rt.scratch('patches', B * NP * D) : mem.take(B * NP * D, false); // (B*NP, D)
    patchEmbedForward(this.ctx(mem), cols, patches, x, B, c.in_chans, H, W, c.patch_size, D);
    const { pos, onPatches, resampled } = this.posEmbed(t, mem);
    const tokens = extra === 0 ? patches : s ? s.tokens : mem.take(B * N * D, false); // (B*N, D)
    tokensForward(this.ctx(mem), c, tokens, patches, pos, onPatches, B, NP, numPrefix, D);
    let out = tokens; // (B*N, D)
    if (c.pre_norm) {
      out = s ? s.normPre : mem.take(B * N * D, false);
      be.layernormForward(out, s ? s.preMean : null, s ? s.preRstd : null, tokens, this.rt.params.get('norm_pre.weight'),
        this.rt.params.get('norm_pre.bias'), B * N, D, c.layer_norm_eps);
    }
    if (cache && s) { cache.embed = s; cache.posResampled = resampled; }
    return out;
  }

  /**
   * forward_features of x (B, C, H, W) -> features (B*N, D) after the final norm; hidden states
   * (each (B, N, D)) and attention maps (each (B, NH, N, N)) on request; `cache` for backward.
   */
  features(x: T, B: number, t: TokenLayout, mem: Mem<T>, opts: { hiddenStates?: boolean; attentions?: boolean; cache?: ForwardCache<T>; afterBlock?: ((block: number, h: T) => void) | undefined } = {}):
    { features: T; hidden?: T[]; attentions?: T[] } {
    const c = this.config, d = dims(c), be = this.rt.be;
    const { N } = t;
    const { D, NH } = d;
    const BN = B * N;
    const cache = opts.cache;
    if (cache) { cache.B = B; cache.layout = t; cache.blocks = []; }
    let h = this.embed(x, B, t, mem, cache);
    // blocks update h in place at inference: hidden states are copies
    const hidden: T[] | undefined = opts.hiddenStates ? [copyOf(be, h, BN * D, mem)] : undefined;
    const attns: T[] | undefined = opts.attentions ? [] : undefined;
    for (let i = 0; i < c.depth; i++) {
      const probs = attns ? mem.take(B * NH * N * N, false) : null; // (B, NH, N, N)
      let saved: BlockCache<T> | null = null;
      if (cache) saved = { ...allocSaved(blockSaves(c, B, N), mem), x: h };
      h = blockForward(this.ctx(mem), c, i, h, B, N, probs, saved, this.rt.scratch);
      opts.afterBlock?.(i, h);
      if (cache) cache.blocks.push(saved!);
      if (attns) attns.push(probs!);
      if (hidden) hidden.push(cache ? h : copyOf(be, h, BN * D, mem));
    }
    let features = h;
    if (!d.useFcNorm) {
      const s = cache ? allocSaved(normSaves(c, B, N, false), mem) : null;
      features = s ? s.features : mem.take(BN * D, false);
      be.layernormForward(features, s ? s.normMean : null, s ? s.normRstd : null, h, this.rt.params.get('norm.weight'),
        this.rt.params.get('norm.bias'), BN, D, c.layer_norm_eps);
      if (cache) cache.norm = s!;
    } else if (cache) {
      cache.norm = allocSaved(normSaves(c, B, N, true), mem);
    }
    if (cache) { cache.xL = h; cache.features = features; }
    const out: { features: T; hidden?: T[]; attentions?: T[] } = { features };
    if (hidden) out.hidden = hidden;
    if (attns) out.attentions = attns;
    return out;
  }

  /** features (B*N, D) -> pooled -> fc_norm -> head(s); `poolProbs` (B, NH, 1, N) receives the MAP pool's attention */
  head(features: T, B: number, N: number, wantLogits: boolean, mem: Mem<T>, cache?: ForwardCache<T>, poolProbs?: T | null): HeadOut<T> & { R: number } {
    const c = this.config, d = dims(c);
    const hs = allocSaved(headSaves(c, B, N, d.useFcNorm), mem);
    let pool: (() => T) | null = null;
    if (c.global_pool === 'map') {
      const ps = allocSaved(poolSaves(c, B, N), mem);
      if (cache) cache.pool = ps;
      pool = () => attnPoolForward(this.ctx(mem), c, ps, features, B, N, poolProbs ?? null);
    }
    const out = headForward(this.ctx(mem), c, hs, features, B, N, d.numPrefix, d.useFcNorm, wantLogits, pool);
    if (cache) { cache.head = hs; cache.preLogits = out.pre; }
    return { ...out, R: headRows(c, B, N) };
  }

  /** Accumulates dL/dparams into `grads` from the cache of a training forward and dlogits (R, K) (or d pre-logits (R, D)). */
  backward(cache: ForwardCache<T>, dlogits: T, grads: Params<T>, mem: Mem<T>, options: CoreBackwardOptions<T> = {}): void {
    const c = this.config, d = dims(c), be = this.rt.be, params = this.rt.params;
    const B = cache.B, t = cache.layout, N = t.N, D = d.D;
    const ctx: GradCtx<T> = { be, params, grads, mem };
    const pool = cache.pool;
    const poolBack = pool ? (dz: T, dfeat: T) => attnPoolBackward(ctx, c, pool, cache.features, dz, dfeat, B, N) : null;
    const dfeat = headBackward(ctx, c, cache.head, cache.features, dlogits, options.dDistLogits, B, N, t.numPrefix, d.useFcNorm, poolBack);
    let dx = dfeat; // (B*N, D)
    if (!d.useFcNorm) {
      dx = mem.take(B * N * D); // zeroed: layernormBackward accumulates
      be.layernormBackward(dx, grads.get('norm.weight'), grads.get('norm.bias'), dfeat, cache.xL, params.get('norm.weight'),
        cache.norm.normMean, cache.norm.normRstd, B * N, D);
    }
    for (let i = c.depth - 1; i >= 0; i--) {
      options.onBlockOutputGrad?.(i, dx);
      dx = blockBackward(ctx, c, i, cache.blocks[i]!, dx, B, N, options.onAttnOutputGrad);
    }
    const e = cache.embed;
    if (c.pre_norm) {
      const dtok = mem.take(B * N * D); // zeroed
      const tokens = t.numPrefix + t.det > 0 ? e.tokens : e.patches;
      be.layernormBackward(dtok, grads.get('norm_pre.weight'), grads.get('norm_pre.bias'), dx, tokens, params.get('norm_pre.weight'),
        e.preMean, e.preRstd, B * N, D);
      dx = dtok;
    }
    const learned = c.pos_embed === 'learn', onPatches = c.pos_embed !== 'learn' || c.no_embed_class;
    // the gradient of the position table used: pos_embed itself, or its resampled copy (folded back below)
    const posPrefix = onPatches ? 0 : t.numPrefix;
    const posSuffix = onPatches ? 0 : t.det; // YOLOS's det-token rows, copied like the prefix rows
    const dposUsed = !learned ? null : cache.posResampled ? mem.take((posPrefix + t.numPatches + posSuffix) * D) : grads.get('pos_embed');
    const dpatches = tokensBackward(ctx, c, dx, dposUsed, onPatches, B, t.numPatches, t.numPrefix, D);
    if (learned && cache.posResampled) {
      // resampling is linear, pos' = M pos on the grid rows (prefix rows copied): dpos += M^T dpos'
      const dpos = grads.get('pos_embed');
      const n = d.posGridH * d.posGridW, m = t.numPatches;
      if (posPrefix > 0) {
        const head = mem.sub(dpos, 0, posPrefix * D);
        be.add(head, head, mem.sub(dposUsed!, 0, posPrefix * D), posPrefix * D);
      }
      if (posSuffix > 0) {
        const tail = mem.sub(dpos, (posPrefix + n) * D, posSuffix * D);
        be.add(tail, tail, mem.sub(dposUsed!, (posPrefix + m) * D, posSuffix * D), posSuffix * D);
      }
      const M = this.rt.constant(`resample:${t.gridH}x${t.gridW}`, () => this.resampleMatrix(t)); // (m, n)
      be.gemm(true, false, n, D, m, 1, M, n, mem.sub(dposUsed!, posPrefix * D, m * D), D, 1, mem.sub(dpos, posPrefix * D, n * D), D);
    }
    const H = t.gridH * c.patch_size, W = t.gridW * c.patch_size;
    patchEmbedBackward(ctx, dpatches, e.cols, options.dinput, B, c.in_chans, H, W, c.patch_size, D);
  }
}

/** A scratch allocator over named host buffers, grown on demand. */
export function hostScratch(): Scratch<Float32Array> {
  const workspace = new Map<string, Float32Array>();
  return (name: string, n: number): Float32Array => {
    let b = workspace.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      workspace.set(name, b);
    }
    return b.length === n ? b : b.subarray(0, n);
  };
}

export class VisionTransformer implements Model {
  readonly family = 'vit';
  readonly config: ViTConfig;
  readonly params: ParamTable;
  backend: Backend;
  /** the computation, over this model's host backend (read at every op, so `backend` may be swapped) */
  readonly core: VitCore<Float32Array>;

  constructor(config: ViTConfig, params?: ParamTable, backend?: Backend) {
    this.config = config;
    this.params = params ?? new ParamTable(vitParamSpecs(config));
    this.backend = backend ?? getBackend();
    const model = this;
    const constants = new Map<string, Float32Array>();
    this.core = new VitCore<Float32Array>(config, {
      get be() { return model.backend; },
      params: this.params,
      scratch: hostScratch(),
      constant(key, make) {
        let v = constants.get(key);
        if (!v) { v = make(); constants.set(key, v); }
        return v;
      },
      resampledPos(t, prefix) {
        const d = dims(config);
        return resampleAbsPosEmbed(model.params.get('pos_embed'), d.D, [d.posGridH, d.posGridW], [t.gridH, t.gridW], prefix, config.pos_embed_antialias,
          config.no_embed_class ? 0 : t.det);
      },
    });
  }

  get numParams(): number {
    return this.params.count;
  }

  /** class, distillation and register tokens before the patches */
  get numPrefixTokens(): number {
    return tokenLayout(this.config).numPrefix;
  }

  /** token layout for an input of H x W pixels (default: the configured size) */
  layout(H?: number, W?: number): TokenLayout {
    const [h, w] = imgHW(this.config);
    return tokenLayout(this.config, (H ?? h) / this.config.patch_size, (W ?? w) / this.config.patch_size);
  }

  /** Validate pixel_values (B, C, H, W) and return the token layout of that size. */
  checkInput(x: Tensor): TokenLayout {
    return checkPixelShape(this.config, x.shape);
  }

  /**
   * The position embedding for a grid and where it is added: to the patches (no_embed_class, and
   * the fixed sin-cos table) or to every token. At another grid than the configured one (only with
   * dynamic_img_size) the learned table is resampled as timm's _pos_embed does (bicubic, antialias unless
   * pos_embed_antialias is false, as in HF Dinov2Model).
   */
  posEmbedFor(t: TokenLayout): { pos: Float32Array | null; onPatches: boolean; resampled: boolean } {
    return this.core.posEmbed(t, hostMem());
  }

  private memOf(cache?: ForwardCache): Mem<Float32Array> {
    if (!cache) return hostMem();
    cache.mem ??= hostMem(cache.arena);
    return cache.mem;
  }

  /** Embeddings: patch embedding, prefix tokens, position embedding, norm_pre. Returns (B*N, D). */
  embed(x: Tensor, t: TokenLayout, cache?: ForwardCache): Float32Array {
    return this.core.embed(x.data, x.shape[0]!, t, this.memOf(cache), cache);
  }

  /** forward_features: (B, C, H, W) -> (B, N, D) after the final norm */
  forwardFeatures(x: Tensor, opts: ForwardOptions = {}): FeaturesOutput {
    const t = this.checkInput(x);
    const B = x.shape[0]!, D = this.config.embed_dim, NH = this.config.num_heads, N = t.N;
    const f = this.core.features(x.data, B, t, this.memOf(opts.cache), opts);
    const out: FeaturesOutput = { features: new Tensor([B, N, D], f.features) };
    if (f.hidden) out.hiddenStates = f.hidden.map((h) => new Tensor([B, N, D], h));
    if (f.attentions) out.attentions = f.attentions.map((a) => new Tensor([B, NH, N, N], a));
    return out;
  }

  /** forward_intermediates-style: every block's output tokens (or the chosen indices) and the features. */
  forwardIntermediates(x: Tensor, opts: { indices?: number[] } = {}): { features: Tensor; intermediates: Tensor[] } {
    const L = this.config.depth;
    const idx = opts.indices ?? Array.from({ length: L }, (_, i) => i);
    for (const i of idx) if (!Number.isInteger(i) || i < 0 || i >= L) throw new VitkitError(`Expected block indices in [0, ${L - 1}] but received ${i}`);
    const f = this.forwardFeatures(x, { hiddenStates: true });
    return { features: f.features, intermediates: idx.map((i) => f.hiddenStates![i + 1]!) };
  }

  /** forward_head: pool, fc_norm, head. preLogits returns the head input (B, D). */
  forwardHead(features: Tensor, opts: { preLogits?: boolean; cache?: ForwardCache } = {}): Tensor {
    const h = this.forwardHeads(features, opts);
    if (opts.preLogits || !h.logits) return h.preLogits;
    return h.logits;
  }

  /** The head's outputs: pre-logits, logits and (DeiT) both heads' logits. */
  forwardHeads(features: Tensor, opts: { preLogits?: boolean; cache?: ForwardCache; poolAttention?: Float32Array } = {}): HeadsOutput {
    const c = this.config, d = dims(c), D = c.embed_dim, K = c.num_classes;
    checkFeatureShape(features.shape, d.D, 'forwardHead', d.numPrefix + 1);
    const [B, N] = features.shape as [number, number, number];
    const r = this.core.head(features.data, B, N, !opts.preLogits, this.memOf(opts.cache), opts.cache, opts.poolAttention ?? null);
    const rowShape = (w: number) => (c.global_pool === '' ? [B, N, w] : [B, w]);
    const out: HeadsOutput = { preLogits: new Tensor(rowShape(D), r.pre), logits: r.logits ? new Tensor(rowShape(K), r.logits) : null };
    if (r.cls) out.clsLogits = new Tensor([B, K], r.cls);
    if (r.dist) out.distLogits = new Tensor([B, K], r.dist);
    return out;
  }

  /** (B, C, H, W) -> logits (B, K) (pre-logits (B, D) without a head) */
  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    const f = this.forwardFeatures(x, opts);
    return this.forwardHead(f.features, opts.cache ? { cache: opts.cache } : {});
  }

  /**
   * Accumulate dL/dparam into `grads` (the model's layout, `params.like()`), given dlogits = dL/dlogits
   * (B, K) (dL/d pre-logits (B, D) without a head) and the cache of the forward that produced them.
   */
  backward(cache: ForwardCache, dlogits: Float32Array, grads: ParamTable, options: BackwardOptions = {}): void {
    const c = this.config, d = dims(c);
    if (!cache || !cache.blocks || cache.blocks.length !== c.depth || !cache.preLogits || !cache.layout) {
      throw new VitkitError('backward needs the cache of a full training forward: model.forward(x, { cache })');
    }
    if (grads.count !== this.params.count) {
      throw new VitkitError(`Gradient table has ${grads.count} values but the model has ${this.params.count} parameters; use model.params.like()`);
    }
    const B = cache.B, t = cache.layout, N = t.N, D = d.D, K = c.num_classes;
    const R = headRows(c, B, N);
    const wantLen = R * (K > 0 ? K : D);
    const rows = c.global_pool === '' ? `(${B}, ${N}, ` : `(${B}, `;
    if (dlogits.length !== wantLen) {
      throw new VitkitError(`Expected dlogits of ${rows}${K > 0 ? K : D}) (${wantLen} values) but received ${dlogits.length} values`);
    }
    if (options.dDistLogits !== undefined) {
      if (!c.distilled || K === 0) throw new VitkitError('dDistLogits needs a distilled model with a head (config.distilled, num_classes > 0)');
      if (options.dDistLogits.length !== B * K) throw new VitkitError(`Expected dDistLogits of (${B}, ${K}) (${B * K} values) but received ${options.dDistLogits.length} values`);
    }
    if (options.dinput) {
      const want = B * c.in_chans * t.gridH * c.patch_size * t.gridW * c.patch_size;
      if (options.dinput.length !== want) throw new VitkitError(`dinput has ${options.dinput.length} values, expected ${want} (B, C, H, W)`);
    }
    const mem = options.arena ? hostMem(options.arena) : this.memOf(cache);
    this.core.backward(cache, dlogits, grads, mem, options);
  }
}

/** Validate a pixel_values shape (B, C, H, W) against a config and return the token layout of that size. */
export function checkPixelShape(c: ViTConfig, shape: readonly number[]): TokenLayout {
  const [h, w] = imgHW(c);
  if (shape.length !== 4) {
    throw new VitkitError(`Expected pixel_values of shape (B, ${c.in_chans}, ${h}, ${w}) but received ${shapeStr(shape)}`);
  }
  const [B, C, H, W] = shape as [number, number, number, number];
  if (C !== c.in_chans) {
    throw new VitkitError(`Input has ${C} channels but the model expects in_chans ${c.in_chans} (pixel_values ${shapeStr(shape)})`);
  }
  if (!(B >= 1)) throw new VitkitError(`Expected at least one image in pixel_values but received ${shapeStr(shape)}`);
  if (c.dynamic_img_size) {
    if (H % c.patch_size !== 0 || W % c.patch_size !== 0 || H < c.patch_size || W < c.patch_size) {
      throw new VitkitError(`Input size ${H}x${W} (pixel_values ${shapeStr(shape)}) must be a positive multiple of patch_size ${c.patch_size} on both sides`);
    }
  } else {
    if (H !== h) throw new VitkitError(`Input height (${H}) doesn't match model (${h}).`);
    if (W !== w) throw new VitkitError(`Input width (${W}) doesn't match model (${w}).`);
  }
  return tokenLayout(c, H / c.patch_size, W / c.patch_size);
}

/** An empty cache to pass to forward(x, { cache }) (the forward fills every field). */
export function emptyCache(arena?: Arena): ForwardCache {
  const cache = { B: 0, blocks: [] } as unknown as ForwardCache;
  if (arena) cache.arena = arena;
  cache.mem = hostMem(arena);
  return cache;
}

export { copyOf };
