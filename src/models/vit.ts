/**
 * The Vision Transformer, as timm's VisionTransformer computes it:
 *   x = patch_embed(img) (B, NP, D); x = [cls_token; x] + pos_embed (B, N, D)
 *   for each block: x = x + attn(norm1(x)); x = x + mlp(norm2(x))
 *   features = norm(x); pooled = features[:, 0] or mean of the patch tokens; logits = head(fc_norm(pooled))
 * Parameter names are timm's, so a timm checkpoint loads key by key.
 */
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import { Tensor } from '../tensor.js';
import { VitkitError, shapeStr } from '../errors.js';
import { ParamTable, type ParamSpec } from '../nn/params.js';
import { type Arena, allocFrom } from '../nn/arena.js';
import { type ViTConfig, dims } from './config.js';
import { sincos2dPosEmbed } from './pos_embed.js';

/** Activations of one block kept for backward (training only). */
export interface BlockCache {
  x: Float32Array;        // (B*N, D) block input
  ln1: Float32Array;      // (B*N, D) norm1 output
  ln1Mean: Float32Array;  // (B*N)
  ln1Rstd: Float32Array;  // (B*N)
  qkv: Float32Array;      // (B*N, 3D)
  probs: Float32Array;    // (B, NH, N, N)
  attn: Float32Array;     // (B*N, D) attention output before proj
  x2: Float32Array;       // (B*N, D) after the attention residual
  ln2: Float32Array;      // (B*N, D) norm2 output
  ln2Mean: Float32Array;  // (B*N)
  ln2Rstd: Float32Array;  // (B*N)
  fc1: Float32Array;      // (B*N, H) before GELU
  act: Float32Array;      // (B*N, H) after GELU
}

/** Everything backward needs from a training forward. */
export interface ForwardCache {
  B: number;
  cols: Float32Array;           // (B*NP, KP) im2col of the input
  blocks: BlockCache[];
  xL: Float32Array;             // (B*N, D) output of the last block
  normMean: Float32Array;       // (B*N) final norm stats (unused with fc_norm)
  normRstd: Float32Array;       // (B*N)
  features: Float32Array;       // (B*N, D) after the final norm
  pooled: Float32Array;         // (B, D) before fc_norm
  fcNormMean: Float32Array;     // (B) fc_norm stats (only with fc_norm)
  fcNormRstd: Float32Array;     // (B)
  preLogits: Float32Array;      // (B, D) head input
  /** when set, every buffer above comes from it (valid until its next reset) */
  arena?: Arena;
}

export interface ForwardOptions {
  /** keep hidden_states: [embeddings, block 0 output, ..., block L-1 output], each (B, N, D) */
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

/** The parameter table of a config, in timm's state_dict order and names. */
export function vitParamSpecs(c: ViTConfig): ParamSpec[] {
  const d = dims(c);
  const D = d.D;
  const specs: ParamSpec[] = [];
  const add = (name: string, ...shape: number[]) => specs.push({ name, shape });
  if (c.class_token) add('cls_token', 1, 1, D);
  if (c.pos_embed === 'learn') add('pos_embed', 1, d.N, D);
  add('patch_embed.proj.weight', D, c.in_chans, c.patch_size, c.patch_size);
  add('patch_embed.proj.bias', D);
  for (let i = 0; i < c.depth; i++) {
    const p = `blocks.${i}.`;
    add(p + 'norm1.weight', D); add(p + 'norm1.bias', D);
    add(p + 'attn.qkv.weight', 3 * D, D);
    if (c.qkv_bias) add(p + 'attn.qkv.bias', 3 * D);
    add(p + 'attn.proj.weight', D, D); add(p + 'attn.proj.bias', D);
    add(p + 'norm2.weight', D); add(p + 'norm2.bias', D);
    add(p + 'mlp.fc1.weight', d.H, D); add(p + 'mlp.fc1.bias', d.H);
    add(p + 'mlp.fc2.weight', D, d.H); add(p + 'mlp.fc2.bias', D);
  }
  if (!d.useFcNorm) { add('norm.weight', D); add('norm.bias', D); }
  if (d.useFcNorm) { add('fc_norm.weight', D); add('fc_norm.bias', D); }
  if (c.num_classes > 0) { add('head.weight', c.num_classes, D); add('head.bias', c.num_classes); }
  return specs;
}

/** Multiply-accumulates per image, counted as timm's benchmark (fvcore) counts them: every
 * matmul and convolution MAC, plus LayerNorm at 5 per element (affine). */
export function vitMacs(c: ViTConfig): number {
  const d = dims(c);
  const { N, D, H } = d;
  const ln = 5 * N * D;
  let macs = d.numPatches * D * d.KP;
  const block = N * D * 3 * D + 2 * d.NH * N * N * d.HD + N * D * D + N * D * H + N * H * D + 2 * ln;
  macs += c.depth * block;
  macs += d.useFcNorm ? 5 * D : ln;
  macs += c.num_classes * D;
  return macs;
}

export class VisionTransformer {
  readonly config: ViTConfig;
  readonly params: ParamTable;
  backend: Backend;
  /** fixed sin-cos position embedding (N, D), prefix rows zero, when config.pos_embed is 'sincos' */
  private readonly sincos: Float32Array | null;

  constructor(config: ViTConfig, params?: ParamTable, backend?: Backend) {
    this.config = config;
    this.params = params ?? new ParamTable(vitParamSpecs(config));
    this.backend = backend ?? getBackend();
    const d = dims(config);
    if (config.pos_embed === 'sincos') {
      const full = new Float32Array(d.N * d.D);
      full.set(sincos2dPosEmbed(d.grid, d.grid, d.D), d.numPrefix * d.D);
      this.sincos = full;
    } else {
      this.sincos = null;
    }
  }

  get numParams(): number {
    return this.params.count;
  }

  private p(name: string): Float32Array {
    return this.params.get(name);
  }

  /** out (M, N) = inp (M, K) @ weight (N, K)^T + bias (N), as nn.Linear; `accumulate` adds into out (a residual) */
  linear(out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null, M: number, N: number, K: number,
    opts: { accumulate?: boolean; gelu?: boolean } = {}): void {
    const act = opts.gelu ? (this.config.act === 'gelu' ? 0 : 1) : -1;
    this.backend.linearForward(out, inp, weight, bias, M, N, K, opts.accumulate ?? false, act);
  }

  /** Inference scratch buffers, reused across blocks and calls (training allocates fresh ones to keep them). */
  private workspace = new Map<string, Float32Array>();
  private scratch(name: string, n: number): Float32Array {
    let b = this.workspace.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.workspace.set(name, b);
    }
    return b.length === n ? b : b.subarray(0, n);
  }

  checkInput(x: Tensor): void {
    const c = this.config;
    if (x.shape.length !== 4) {
      throw new VitkitError(`Expected pixel_values of shape (B, ${c.in_chans}, ${c.img_size}, ${c.img_size}) but received ${shapeStr(x.shape)}`);
    }
    const [, C, H, W] = x.shape as [number, number, number, number];
    if (C !== c.in_chans) {
      throw new VitkitError(`Input has ${C} channels but the model expects in_chans ${c.in_chans} (pixel_values ${shapeStr(x.shape)})`);
    }
    if (H !== c.img_size) throw new VitkitError(`Input height (${H}) doesn't match model (${c.img_size}).`);
    if (W !== c.img_size) throw new VitkitError(`Input width (${W}) doesn't match model (${c.img_size}).`);
  }

  /** Embeddings: patch embedding, class token, position embedding. Returns (B*N, D). */
  embed(x: Tensor, cache?: ForwardCache): Float32Array {
    const c = this.config, d = dims(c), be = this.backend;
    const B = x.shape[0]!;
    const { N, D, numPatches: NP, numPrefix, KP } = d;
    const cols = cache ? allocFrom(cache.arena, B * NP * KP, false) : this.scratch('cols', B * NP * KP); // (B*NP, KP)
    be.im2colPatches(cols, x.data, B, c.in_chans, c.img_size, c.img_size, c.patch_size);
    const patches = cache ? allocFrom(cache.arena, B * NP * D, false) : this.scratch('patches', B * NP * D); // (B*NP, D)
    this.linear(patches, cols, this.p('patch_embed.proj.weight'), this.p('patch_embed.proj.bias'), B * NP, D, KP);
    const out = allocFrom(cache?.arena, B * N * D, false); // (B*N, D): every row written below
    for (let b = 0; b < B; b++) {
      if (c.class_token) out.set(this.p('cls_token'), b * N * D);
      out.set(patches.subarray(b * NP * D, (b + 1) * NP * D), (b * N + numPrefix) * D);
    }
    const pos = c.pos_embed === 'learn' ? this.p('pos_embed') : this.sincos;
    if (pos) {
      for (let b = 0; b < B; b++) {
        const xb = out.subarray(b * N * D, (b + 1) * N * D);
        be.add(xb, xb, pos, N * D);
      }
    }
    if (cache) cache.cols = cols;
    return out;
  }

  /**
   * One pre-norm block on x (B*N, D); returns the block output. Without a cache the residual
   * stream is updated in place (x itself is returned) and the intermediates live in reusable
   * scratch buffers; with a cache every intermediate is a fresh buffer that backward reads.
   */
  block(i: number, x: Float32Array, B: number, probsOut: Float32Array | null, cache?: ForwardCache): Float32Array {
    const c = this.config, d = dims(c), be = this.backend;
    const { N, D, NH, HD, H } = d;
    const BN = B * N, eps = c.layer_norm_eps;
    const pre = `blocks.${i}.`;
    const keep = cache !== undefined;
    // every buffer below is fully overwritten by the op that fills it
    const fresh = (n: number) => allocFrom(cache?.arena, n, false);
    const buf = (name: string, n: number) => (keep ? fresh(n) : this.scratch(name, n));
    const copy = (a: Float32Array) => { const b = fresh(a.length); b.set(a); return b; };
    // x2 = x + proj(attn(norm1(x)))
    const ln1 = buf('ln', BN * D); // (BN, D)
    const ln1Mean = keep ? fresh(BN) : null;
    const ln1Rstd = keep ? fresh(BN) : null;
    be.layernormForward(ln1, ln1Mean, ln1Rstd, x, this.p(pre + 'norm1.weight'), this.p(pre + 'norm1.bias'), BN, D, eps);
    const qkv = buf('qkv', BN * 3 * D); // (BN, 3D)
    this.linear(qkv, ln1, this.p(pre + 'attn.qkv.weight'), c.qkv_bias ? this.p(pre + 'attn.qkv.bias') : null, BN, 3 * D, D);
    const probs = probsOut ?? (keep ? fresh(B * NH * N * N) : null); // (B, NH, N, N)
    const attn = buf('attn', BN * D); // (BN, D)
    be.attentionForward(attn, probs, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
    const x2 = keep ? copy(x) : x; // (BN, D)
    this.linear(x2, attn, this.p(pre + 'attn.proj.weight'), this.p(pre + 'attn.proj.bias'), BN, D, D, { accumulate: true });
    // out = x2 + fc2(gelu(fc1(norm2(x2))))
    const ln2 = keep ? fresh(BN * D) : ln1; // (BN, D)
    const ln2Mean = keep ? fresh(BN) : null;
    const ln2Rstd = keep ? fresh(BN) : null;
    be.layernormForward(ln2, ln2Mean, ln2Rstd, x2, this.p(pre + 'norm2.weight'), this.p(pre + 'norm2.bias'), BN, D, eps);
    const act = buf('act', BN * H); // (BN, H)
    let fc1 = act; // (BN, H) before GELU: kept apart only for backward
    if (keep) {
      fc1 = fresh(BN * H);
      this.linear(fc1, ln2, this.p(pre + 'mlp.fc1.weight'), this.p(pre + 'mlp.fc1.bias'), BN, H, D);
      be.geluForward(act, fc1, BN * H, c.act === 'gelu' ? 0 : 1);
    } else {
      this.linear(act, ln2, this.p(pre + 'mlp.fc1.weight'), this.p(pre + 'mlp.fc1.bias'), BN, H, D, { gelu: true });
    }
    const out = keep ? copy(x2) : x2; // (BN, D)
    this.linear(out, act, this.p(pre + 'mlp.fc2.weight'), this.p(pre + 'mlp.fc2.bias'), BN, D, H, { accumulate: true });
    if (cache) {
      cache.blocks.push({
        x, ln1, ln1Mean: ln1Mean!, ln1Rstd: ln1Rstd!, qkv, probs: probs!, attn, x2, ln2,
        ln2Mean: ln2Mean!, ln2Rstd: ln2Rstd!, fc1, act,
      });
    }
    return out;
  }

  /** forward_features: (B, C, H, W) -> (B, N, D) after the final norm */
  forwardFeatures(x: Tensor, opts: ForwardOptions = {}): FeaturesOutput {
    this.checkInput(x);
    const c = this.config, d = dims(c), be = this.backend;
    const B = x.shape[0]!;
    const { N, D, NH } = d;
    const BN = B * N;
    const cache = opts.cache;
    if (cache) { cache.B = B; cache.blocks = []; }
    let h = this.embed(x, cache);
    // blocks update h in place at inference: hidden states are copies
    const hidden: Tensor[] | undefined = opts.hiddenStates ? [new Tensor([B, N, D], h.slice())] : undefined;
    const attns: Tensor[] | undefined = opts.attentions ? [] : undefined;
    for (let i = 0; i < c.depth; i++) {
      const probs = attns ? new Float32Array(B * NH * N * N) : null;
      h = this.block(i, h, B, probs, cache);
      if (attns) attns.push(new Tensor([B, NH, N, N], probs!));
      if (hidden) hidden.push(new Tensor([B, N, D], cache ? h : h.slice()));
    }
    let features = h;
    if (!d.useFcNorm) {
      features = allocFrom(cache?.arena, BN * D, false);
      const mean = cache ? allocFrom(cache.arena, BN, false) : null, rstd = cache ? allocFrom(cache.arena, BN, false) : null;
      be.layernormForward(features, mean, rstd, h, this.p('norm.weight'), this.p('norm.bias'), BN, D, c.layer_norm_eps);
      if (cache) { cache.normMean = mean!; cache.normRstd = rstd!; }
    }
    if (cache) { cache.xL = h; cache.features = features; }
    const out: FeaturesOutput = { features: new Tensor([B, N, D], features) };
    if (hidden) out.hiddenStates = hidden;
    if (attns) out.attentions = attns;
    return out;
  }

  /** forward_head: pool, fc_norm, head. preLogits returns the head input (B, D). */
  forwardHead(features: Tensor, opts: { preLogits?: boolean; cache?: ForwardCache } = {}): Tensor {
    const c = this.config, d = dims(c), be = this.backend;
    const [B, N, D] = features.shape as [number, number, number];
    const f = features.data;
    const cache = opts.cache;
    const pooled = allocFrom(cache?.arena, B * D); // (B, D), zeroed: 'avg' accumulates into it
    for (let b = 0; b < B; b++) {
      if (c.global_pool === 'token') {
        pooled.set(f.subarray(b * N * D, b * N * D + D), b * D);
      } else {
        const np = N - d.numPrefix;
        for (let t = d.numPrefix; t < N; t++) {
          const row = (b * N + t) * D;
          for (let j = 0; j < D; j++) pooled[b * D + j]! += f[row + j]!;
        }
        for (let j = 0; j < D; j++) pooled[b * D + j] = pooled[b * D + j]! / np;
      }
    }
    let pre = pooled;
    if (d.useFcNorm) {
      pre = allocFrom(cache?.arena, B * D, false);
      const mean = cache ? allocFrom(cache.arena, B, false) : null, rstd = cache ? allocFrom(cache.arena, B, false) : null;
      be.layernormForward(pre, mean, rstd, pooled, this.p('fc_norm.weight'), this.p('fc_norm.bias'), B, D, c.layer_norm_eps);
      if (cache) { cache.fcNormMean = mean!; cache.fcNormRstd = rstd!; }
    }
    if (cache) { cache.pooled = pooled; cache.preLogits = pre; }
    if (opts.preLogits || c.num_classes === 0) return new Tensor([B, D], pre);
    const K = c.num_classes;
    const logits = allocFrom(cache?.arena, B * K, false); // (B, K)
    this.linear(logits, pre, this.p('head.weight'), this.p('head.bias'), B, K, D);
    return new Tensor([B, K], logits);
  }

  /** (B, C, H, W) -> logits (B, K) */
  forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    const f = this.forwardFeatures(x, opts);
    return this.forwardHead(f.features, opts.cache ? { cache: opts.cache } : {});
  }
}
