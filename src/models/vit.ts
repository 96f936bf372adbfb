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
import { getBackend } from '../backend/select.js';
import { Tensor } from '../tensor.js';
import { VitkitError, shapeStr } from '../errors.js';
import { ParamTable, type ParamSpec } from '../nn/params.js';
import { type Arena, allocFrom } from '../nn/arena.js';
import { type ViTConfig, type TokenLayout, dims, imgHW, tokenLayout } from './config.js';
import { resampleAbsPosEmbed, sincos2dPosEmbed } from './pos_embed.js';
import type { Model } from './model.js';
import { checkFeatureShape } from './checks.js';
import {
  type BlockCache, type Saved, type HeadKey, type PoolKey, type GradCtx, type LayerCtx,
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
    tokens: t.numPrefix > 0 ? B * t.N * D : 0, // prefix tokens + patches (+ pos_embed) (B*N, D)
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

/** Everything backward needs from a training forward (filled by forward(x, { cache })). */
export interface ForwardCache {
  B: number;
  /** token layout of this forward (the grid follows the input with dynamic_img_size) */
  layout: TokenLayout;
  /** true when pos_embed was resampled for this input size */
  posResampled: boolean;
  embed: Saved<EmbedKey>;
  blocks: BlockCache[];
  /** output of the last block (B*N, D) */
  xL: Float32Array;
  norm: Saved<NormKey>;
  /** after the final norm (B*N, D) */
  features: Float32Array;
  head: Saved<HeadKey>;
  pool?: Saved<PoolKey>;
  /** head input (R, D) */
  preLogits: Float32Array;
  /** when set, every buffer above comes from it (valid until its next reset) */
  arena?: Arena;
}

export interface ForwardOptions {
  /** keep hidden_states: [block 0 input, block 0 output, ..., block L-1 output], each (B, N, D) */
  hiddenStates?: boolean;
  /** keep every block's attention probabilities (B, NH, N, N) */
  attentions?: boolean;
  /** fill this with the activations backward needs */
  cache?: ForwardCache;
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
    const Hm = Math.floor(D * c.mlp_ratio);
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
    const Hm = Math.floor(D * c.mlp_ratio);
    macs += D * D + N * D * 2 * D + 2 * d.NH * N * d.HD + D * D + 5 * D + 2 * D * Hm;
  }
  macs += c.num_classes * D * (c.distilled ? 2 : 1);
  return macs;
}

export class VisionTransformer implements Model {
  readonly family = 'vit';
  readonly config: ViTConfig;
  readonly params: ParamTable;
  backend: Backend;
  private readonly sincos = new Map<string, Float32Array>();

  constructor(config: ViTConfig, params?: ParamTable, backend?: Backend) {
    this.config = config;
    this.params = params ?? new ParamTable(vitParamSpecs(config));
    this.backend = backend ?? getBackend();
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

  private ctx(arena?: Arena): LayerCtx {
    return { be: this.backend, params: this.params, arena };
  }

  /** Inference scratch buffers, reused across blocks and calls (training uses the saved tables). */
  private workspace = new Map<string, Float32Array>();
  private scratch = (name: string, n: number): Float32Array => {
    let b = this.workspace.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.workspace.set(name, b);
    }
    return b.length === n ? b : b.subarray(0, n);
  };

  /** Validate pixel_values (B, C, H, W) and return the token layout of that size. */
  checkInput(x: Tensor): TokenLayout {
    const c = this.config;
    const [h, w] = imgHW(c);
    if (x.shape.length !== 4) {
      throw new VitkitError(`Expected pixel_values of shape (B, ${c.in_chans}, ${h}, ${w}) but received ${shapeStr(x.shape)}`);
    }
    const [B, C, H, W] = x.shape as [number, number, number, number];
    if (C !== c.in_chans) {
      throw new VitkitError(`Input has ${C} channels but the model expects in_chans ${c.in_chans} (pixel_values ${shapeStr(x.shape)})`);
    }
    if (!(B >= 1)) throw new VitkitError(`Expected at least one image in pixel_values but received ${shapeStr(x.shape)}`);
    if (c.dynamic_img_size) {
      if (H % c.patch_size !== 0 || W % c.patch_size !== 0 || H < c.patch_size || W < c.patch_size) {
        throw new VitkitError(`Input size ${H}x${W} (pixel_values ${shapeStr(x.shape)}) must be a positive multiple of patch_size ${c.patch_size} on both sides`);
      }
    } else {
      if (H !== h) throw new VitkitError(`Input height (${H}) doesn't match model (${h}).`);
      if (W !== w) throw new VitkitError(`Input width (${W}) doesn't match model (${w}).`);
    }
    return this.layout(H, W);
  }

  /**
   * The position embedding for a grid and where it is added: to the patches (no_embed_class, and
   * the fixed sin-cos table) or to every token. At another grid than the configured one (only with
   * dynamic_img_size) the learned table is resampled as timm's _pos_embed does (bicubic, antialias unless
   * pos_embed_antialias is false, as in HF Dinov2Model).
   */
  posEmbedFor(t: TokenLayout): { pos: Float32Array | null; onPatches: boolean; resampled: boolean } {
    const c = this.config, d = dims(c);
    if (c.pos_embed === 'none') return { pos: null, onPatches: true, resampled: false };
    if (c.pos_embed === 'sincos') {
      const key = `${t.gridH}x${t.gridW}`;
      let tab = this.sincos.get(key);
      if (!tab) { tab = sincos2dPosEmbed(t.gridH, t.gridW, d.D); this.sincos.set(key, tab); }
      return { pos: tab, onPatches: true, resampled: false };
    }
    const p = this.params.get('pos_embed');
    const onPatches = c.no_embed_class;
    if (t.gridH === d.posGridH && t.gridW === d.posGridW) return { pos: p, onPatches, resampled: false };
    const prefix = onPatches ? 0 : t.numPrefix;
    const pos = resampleAbsPosEmbed(p, d.D, [d.posGridH, d.posGridW], [t.gridH, t.gridW], prefix, c.pos_embed_antialias);
    return { pos, onPatches, resampled: true };
  }

  private readonly resampleMats = new Map<string, Float32Array>();
  /**
   * The matrix M (m, n) of pos_embed resampling from the configured grid (n positions) to t's grid
   * (m positions): the resampler applied to the identity (n channels), once per grid.
   */
  private resampleMatrix(t: TokenLayout): Float32Array {
    const d = dims(this.config), key = `${t.gridH}x${t.gridW}`;
    let M = this.resampleMats.get(key);
    if (!M) {
      const n = d.posGridH * d.posGridW;
      const eye = new Float32Array(n * n); // (n, n)
      for (let i = 0; i < n; i++) eye[i * n + i] = 1;
      M = resampleAbsPosEmbed(eye, n, [d.posGridH, d.posGridW], [t.gridH, t.gridW], 0, this.config.pos_embed_antialias); // (m, n)
      this.resampleMats.set(key, M);
    }
    return M;
  }

  /** Embeddings: patch embedding, prefix tokens, position embedding, norm_pre. Returns (B*N, D). */
  embed(x: Tensor, t: TokenLayout, cache?: ForwardCache): Float32Array {
    const c = this.config, be = this.backend, D = c.embed_dim;
    const B = x.shape[0]!, H = x.shape[2]!, W = x.shape[3]!;
    const { N, numPatches: NP, numPrefix } = t;
    const s = cache ? allocSaved(embedSaves(c, B, t.gridH, t.gridW), cache.arena) : null;
    const KP = c.in_chans * c.patch_size * c.patch_size;
    const cols = s ? s.cols : this.scratch('cols', B * NP * KP); // (B*NP, KP)
    // without prefix tokens the patches are the tokens: a fresh buffer (blocks update it in place)
    const patches = s ? s.patches : numPrefix > 0 ? this.scratch('patches', B * NP * D) : new Float32Array(B * NP * D); // (B*NP, D)
    patchEmbedForward(this.ctx(), cols, patches, x.data, B, c.in_chans, H, W, c.patch_size, D);
    const { pos, onPatches, resampled } = this.posEmbedFor(t);
    const tokens = numPrefix === 0 ? patches : s ? s.tokens : new Float32Array(B * N * D); // (B*N, D)
    tokensForward(this.ctx(), c, tokens, patches, pos, onPatches, B, NP, numPrefix, D);
    let out = tokens; // (B*N, D)
    if (c.pre_norm) {
      out = s ? s.normPre : new Float32Array(B * N * D);
      be.layernormForward(out, s ? s.preMean : null, s ? s.preRstd : null, tokens, this.params.get('norm_pre.weight'),
        this.params.get('norm_pre.bias'), B * N, D, c.layer_norm_eps);
    }
    if (cache && s) { cache.embed = s; cache.posResampled = resampled; }
    return out;
  }

  /** forward_features: (B, C, H, W) -> (B, N, D) after the final norm */
  forwardFeatures(x: Tensor, opts: ForwardOptions = {}): FeaturesOutput {
    const t = this.checkInput(x);
    const c = this.config, d = dims(c), be = this.backend;
    const B = x.shape[0]!;
    const { N } = t;
    const { D, NH } = d;
    const BN = B * N;
    const cache = opts.cache;
    if (cache) { cache.B = B; cache.layout = t; cache.blocks = []; }
    let h = this.embed(x, t, cache);
    // blocks update h in place at inference: hidden states are copies
    const hidden: Tensor[] | undefined = opts.hiddenStates ? [new Tensor([B, N, D], h.slice())] : undefined;
    const attns: Tensor[] | undefined = opts.attentions ? [] : undefined;
    for (let i = 0; i < c.depth; i++) {
      const probs = attns ? new Float32Array(B * NH * N * N) : null; // (B, NH, N, N)
      let saved: BlockCache | null = null;
      if (cache) saved = { ...allocSaved(blockSaves(c, B, N), cache.arena), x: h };
      h = blockForward(this.ctx(), c, i, h, B, N, probs, saved, this.scratch);
      if (cache) cache.blocks.push(saved!);
      if (attns) attns.push(new Tensor([B, NH, N, N], probs!));
      if (hidden) hidden.push(new Tensor([B, N, D], cache ? h : h.slice()));
    }
    let features = h;
    if (!d.useFcNorm) {
      const s = cache ? allocSaved(normSaves(c, B, N, false), cache.arena) : null;
      features = s ? s.features : new Float32Array(BN * D);
      be.layernormForward(features, s ? s.normMean : null, s ? s.normRstd : null, h, this.params.get('norm.weight'),
        this.params.get('norm.bias'), BN, D, c.layer_norm_eps);
      if (cache) cache.norm = s!;
    } else if (cache) {
      cache.norm = allocSaved(normSaves(c, B, N, true), cache.arena);
    }
    if (cache) { cache.xL = h; cache.features = features; }
    const out: FeaturesOutput = { features: new Tensor([B, N, D], features) };
    if (hidden) out.hiddenStates = hidden;
    if (attns) out.attentions = attns;
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

  private runHead(features: Tensor, wantLogits: boolean, cache?: ForwardCache, probsOut?: Float32Array | null): ReturnType<typeof headForward> & { R: number } {
    const c = this.config, d = dims(c);
    checkFeatureShape(features.shape, d.D, 'forwardHead', d.numPrefix + 1);
    const [B, N] = features.shape as [number, number, number];
    const numPrefix = d.numPrefix;
    const arena = cache?.arena;
    const hs = allocSaved(headSaves(c, B, N, d.useFcNorm), arena);
    let pool: (() => Float32Array) | null = null;
    if (c.global_pool === 'map') {
      const ps = allocSaved(poolSaves(c, B, N), arena);
      if (cache) cache.pool = ps;
      pool = () => attnPoolForward(this.ctx(arena), c, ps, features.data, B, N, probsOut ?? null);
    }
    const out = headForward(this.ctx(arena), c, hs, features.data, B, N, numPrefix, d.useFcNorm, wantLogits, pool);
    if (cache) { cache.head = hs; cache.preLogits = out.pre; }
    return { ...out, R: headRows(c, B, N) };
  }

  /** forward_head: pool, fc_norm, head. preLogits returns the head input (B, D). */
  forwardHead(features: Tensor, opts: { preLogits?: boolean; cache?: ForwardCache } = {}): Tensor {
    const h = this.forwardHeads(features, opts);
    if (opts.preLogits || !h.logits) return h.preLogits;
    return h.logits;
  }

  /** The head's outputs: pre-logits, logits and (DeiT) both heads' logits. */
  forwardHeads(features: Tensor, opts: { preLogits?: boolean; cache?: ForwardCache; poolAttention?: Float32Array } = {}): HeadsOutput {
    const c = this.config, D = c.embed_dim, K = c.num_classes;
    const [B, N] = features.shape as [number, number, number];
    const r = this.runHead(features, !opts.preLogits, opts.cache, opts.poolAttention ?? null);
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
    const c = this.config, d = dims(c), be = this.backend;
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
    const arena = options.arena ?? cache.arena;
    const ctx: GradCtx = { be, params: this.params, grads, arena };
    const pool = cache.pool;
    const poolBack = pool ? (dz: Float32Array, dfeat: Float32Array) => attnPoolBackward(ctx, c, pool, cache.features, dz, dfeat, B, N) : null;
    const dfeat = headBackward(ctx, c, cache.head, cache.features, dlogits, options.dDistLogits, B, N, t.numPrefix, d.useFcNorm, poolBack);
    let dx = dfeat; // (B*N, D)
    if (!d.useFcNorm) {
      dx = allocFrom(arena, B * N * D); // zeroed: layernormBackward accumulates
      be.layernormBackward(dx, grads.get('norm.weight'), grads.get('norm.bias'), dfeat, cache.xL, this.params.get('norm.weight'),
        cache.norm.normMean, cache.norm.normRstd, B * N, D);
    }
    for (let i = c.depth - 1; i >= 0; i--) dx = blockBackward(ctx, c, i, cache.blocks[i]!, dx, B, N, options.onAttnOutputGrad);
    const e = cache.embed;
    if (c.pre_norm) {
      const dtok = allocFrom(arena, B * N * D); // zeroed
      const tokens = t.numPrefix > 0 ? e.tokens : e.patches;
      be.layernormBackward(dtok, grads.get('norm_pre.weight'), grads.get('norm_pre.bias'), dx, tokens, this.params.get('norm_pre.weight'),
        e.preMean, e.preRstd, B * N, D);
      dx = dtok;
    }
    const learned = c.pos_embed === 'learn', onPatches = c.pos_embed !== 'learn' || c.no_embed_class;
    // the gradient of the position table used: pos_embed itself, or its resampled copy (folded back below)
    const posPrefix = onPatches ? 0 : t.numPrefix;
    const dposUsed = !learned ? null : cache.posResampled ? allocFrom(arena, (posPrefix + t.numPatches) * D) : grads.get('pos_embed');
    const dpatches = tokensBackward(ctx, c, dx, dposUsed, onPatches, B, t.numPatches, t.numPrefix, D);
    if (learned && cache.posResampled) {
      // resampling is linear, pos' = M pos on the grid rows (prefix rows copied): dpos += M^T dpos'
      const dpos = grads.get('pos_embed');
      if (posPrefix > 0) be.add(dpos.subarray(0, posPrefix * D), dpos.subarray(0, posPrefix * D), dposUsed!.subarray(0, posPrefix * D), posPrefix * D);
      const n = d.posGridH * d.posGridW, m = t.numPatches;
      const M = this.resampleMatrix(t); // (m, n)
      be.gemm(true, false, n, D, m, 1, M, n, dposUsed!.subarray(posPrefix * D), D, 1, dpos.subarray(posPrefix * D), D);
    }
    const H = t.gridH * c.patch_size, W = t.gridW * c.patch_size;
    if (options.dinput) {
      const want = B * c.in_chans * H * W;
      if (options.dinput.length !== want) throw new VitkitError(`dinput has ${options.dinput.length} values, expected ${want} (B, C, H, W)`);
    }
    patchEmbedBackward(ctx, dpatches, e.cols, options.dinput, B, c.in_chans, H, W, c.patch_size, D);
  }
}

/** An empty cache to pass to forward(x, { cache }) (the forward fills every field). */
export function emptyCache(arena?: Arena): ForwardCache {
  const cache = { B: 0, blocks: [] } as unknown as ForwardCache;
  if (arena) cache.arena = arena;
  return cache;
}

export { copyOf };
