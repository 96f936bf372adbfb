/**
 * CLIP's text tower (open_clip's TextTransformer with OpenAI's defaults):
 *   x = token_embedding[ids] + positional_embedding          (B, L, W)
 *   x = blocks(x) with a causal mask (pre-norm blocks, the engine's ViT block)
 *   pooled = ln_final(x)[b, eos_b]                            (B, W)   eos_b: argmax(ids_b) or the first eos id
 *   text_embeds = pooled @ text_projection                    (B, E)
 * ln_final is a row-wise LayerNorm, so it is applied to the pooled rows only (the same values).
 *
 * Causal attention: `causalBackend` wraps a backend so that the blocks' attention forward and
 * backward pass the kernels' causal flag (j > i gets probability exactly 0, as PyTorch's -inf mask).
 */
import { hostMem } from '../../nn/mem.js';
import { argmax } from '../../nn/functional.js';
import type { Backend } from '../../backend/backend.js';
import { VitkitError, shapeStr } from '../../errors.js';
import type { ParamSpec, ParamTable } from '../../nn/params.js';
import { type ViTConfig, dims } from '../config.js';
import { type BlockCache, type GradCtx, type LayerCtx, allocSaved, blockSaves, blockForward, blockBackward } from '../layers.js';
import { type ClipConfig, textBlockConfig } from './config.js';

/** `be` with causal attention in forward and backward (the kernels' causal flag; every other op unchanged). */
export function causalBackend(be: Backend): Backend {
  const w = Object.create(be) as { -readonly [K in keyof Backend]: Backend[K] };
  w.attentionForward = (out, probs, qkv, B, N, NH, HD, scale) => be.attentionForward(out, probs, qkv, B, N, NH, HD, scale, true);
  w.attentionBackward = (dqkv, dout, qkv, probs, B, N, NH, HD, scale) => be.attentionBackward(dqkv, dout, qkv, probs, B, N, NH, HD, scale, true);
  return w as Backend;
}

/** The text tower's parameter table (engine names: CLIP's own plus the ViT block names). */
export function textParamSpecs(c: ClipConfig): ParamSpec[] {
  const W = c.text.width, H = dims(textBlockConfig(c)).H;
  const specs: ParamSpec[] = [
    { name: 'token_embedding.weight', shape: [c.text.vocab_size, W] },
    { name: 'positional_embedding', shape: [c.text.context_length, W] },
  ];
  for (let i = 0; i < c.text.layers; i++) {
    const p = `blocks.${i}.`;
    specs.push(
      { name: p + 'norm1.weight', shape: [W] }, { name: p + 'norm1.bias', shape: [W] },
      { name: p + 'attn.qkv.weight', shape: [3 * W, W] }, { name: p + 'attn.qkv.bias', shape: [3 * W] },
      { name: p + 'attn.proj.weight', shape: [W, W] }, { name: p + 'attn.proj.bias', shape: [W] },
      { name: p + 'norm2.weight', shape: [W] }, { name: p + 'norm2.bias', shape: [W] },
      { name: p + 'mlp.fc1.weight', shape: [H, W] }, { name: p + 'mlp.fc1.bias', shape: [H] },
      { name: p + 'mlp.fc2.weight', shape: [W, H] }, { name: p + 'mlp.fc2.bias', shape: [W] },
    );
  }
  specs.push({ name: 'ln_final.weight', shape: [W] }, { name: 'ln_final.bias', shape: [W] }, { name: 'text_projection', shape: [W, c.embed_dim] });
  return specs;
}

/** What the text backward needs from a training forward. */
export interface TextCache {
  B: number;
  ids: Int32Array;
  /** pooled position per text (B) */
  eos: Int32Array;
  blocks: BlockCache[];
  /** last block output at the pooled positions (B, W) */
  pooled: Float32Array;
  lnMean: Float32Array;
  lnRstd: Float32Array;
  /** ln_final(pooled) (B, W) */
  ln: Float32Array;
}

/** ids (B, L) as int32 (checked against the vocabulary and the context length) */
export function idsToInt32(ids: Int32Array | BigInt64Array | readonly number[], shape: readonly number[], c: ClipConfig): Int32Array {
  const L = c.text.context_length, V = c.text.vocab_size;
  if (shape.length !== 2 || shape[1] !== L || !(shape[0]! >= 1)) {
    throw new VitkitError(`Expected input_ids of shape (B, ${L}) for this model but received ${shapeStr(shape)}`);
  }
  if (ids.length !== shape[0]! * L) throw new VitkitError(`input_ids has ${ids.length} values but shape ${shapeStr(shape)} needs ${shape[0]! * L}`);
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v = Number(ids[i]!);
    if (!Number.isInteger(v) || v < 0 || v >= V) {
      throw new VitkitError(`input_ids[${Math.floor(i / L)}, ${i % L}] = ${v} is outside the vocabulary [0, ${V - 1}]`);
    }
    out[i] = v;
  }
  return out;
}

export class TextTower {
  readonly clip: ClipConfig;
  readonly blockCfg: ViTConfig;
  readonly params: ParamTable;
  backend: Backend;
  private causal: Backend;

  constructor(clip: ClipConfig, blockCfg: ViTConfig, params: ParamTable, backend: Backend) {
    this.clip = clip;
    this.blockCfg = blockCfg;
    this.params = params;
    this.backend = backend;
    this.causal = causalBackend(backend);
  }

  setBackend(be: Backend): void {
    this.backend = be;
    this.causal = causalBackend(be);
  }

  private workspace = new Map<string, Float32Array>();
  private scratch = (name: string, n: number): Float32Array => {
    let b = this.workspace.get(name);
    if (!b || b.length < n) { b = new Float32Array(n); this.workspace.set(name, b); }
    return b.length === n ? b : b.subarray(0, n);
  };

  /** the pooled position of each text: open_clip's argmax of the ids (first maximum, as torch), or HF's first eos id (0 when absent) */
  eosPositions(ids: Int32Array, B: number): Int32Array {
    const L = this.clip.text.context_length, pool = this.clip.text.pool;
    const out = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      if (pool.kind === 'argmax') {
        out[b] = argmax(ids, b * L, L);
      } else {
        let at = 0;
        for (let t = 0; t < L; t++) if (ids[b * L + t] === pool.id) { at = t; break; }
        out[b] = at;
      }
    }
    return out;
  }

  /** ids (B, L) int32 -> text_embeds (B, E) before normalisation; fills `cache` for backward */
  forward(ids: Int32Array, B: number, cache?: TextCache): Float32Array {
    const c = this.clip, W = c.text.width, L = c.text.context_length, E = c.embed_dim;
    const P = (n: string) => this.params.get(n);
    const tok = P('token_embedding.weight'), pos = P('positional_embedding');
    let x: Float32Array = new Float32Array(B * L * W); // (B*L, W)
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const o = (b * L + t) * W, e = ids[b * L + t]! * W, p = t * W;
        for (let d = 0; d < W; d++) x[o + d] = tok[e + d]! + pos[p + d]!;
      }
    }
    const ctx: LayerCtx<Float32Array> = { be: this.causal, params: this.params, mem: hostMem() };
    const blocks: BlockCache[] = [];
    for (let i = 0; i < c.text.layers; i++) {
      const saved: BlockCache | null = cache ? { ...allocSaved(blockSaves(this.blockCfg, B, L), ctx.mem), x } : null;
      x = blockForward(ctx, this.blockCfg, i, x, B, L, null, saved, this.scratch);
      if (saved) blocks.push(saved);
    }
    const eos = this.eosPositions(ids, B);
    const pooled = new Float32Array(B * W); // (B, W)
    for (let b = 0; b < B; b++) pooled.set(x.subarray((b * L + eos[b]!) * W, (b * L + eos[b]! + 1) * W), b * W);
    const ln = new Float32Array(B * W), mean = new Float32Array(B), rstd = new Float32Array(B); // (B, W), (B), (B)
    this.backend.layernormForward(ln, mean, rstd, pooled, P('ln_final.weight'), P('ln_final.bias'), B, W, c.layer_norm_eps);
    const out = new Float32Array(B * E); // (B, E)
    this.backend.gemm(false, false, B, E, W, 1, ln, W, P('text_projection'), E, 0, out, E);
    if (cache) Object.assign(cache, { B, ids, eos, blocks, pooled, lnMean: mean, lnRstd: rstd, ln });
    return out;
  }

  /** dtext (B, E) -> parameter gradients accumulated into `grads` (the tower's layout) */
  backward(cache: TextCache, dtext: Float32Array, grads: ParamTable): void {
    const c = this.clip, W = c.text.width, L = c.text.context_length, E = c.embed_dim, B = cache.B, be = this.backend;
    const P = (n: string) => this.params.get(n), G = (n: string) => grads.get(n);
    if (dtext.length !== B * E) throw new VitkitError(`Expected dtext of (${B}, ${E}) but received ${dtext.length} values`);
    be.gemm(true, false, W, E, B, 1, cache.ln, W, dtext, E, 1, G('text_projection'), E);
    const dln = new Float32Array(B * W); // (B, W)
    be.gemm(false, true, B, W, E, 1, dtext, E, P('text_projection'), E, 0, dln, W);
    const dpooled = new Float32Array(B * W); // (B, W), zeroed: accumulated
    be.layernormBackward(dpooled, G('ln_final.weight'), G('ln_final.bias'), dln, cache.pooled, P('ln_final.weight'), cache.lnMean, cache.lnRstd, B, W);
    let dx: Float32Array = new Float32Array(B * L * W); // (B*L, W)
    for (let b = 0; b < B; b++) dx.set(dpooled.subarray(b * W, (b + 1) * W), (b * L + cache.eos[b]!) * W);
    const ctx: GradCtx<Float32Array> = { be: this.causal, params: this.params, grads, mem: hostMem() };
    for (let i = c.text.layers - 1; i >= 0; i--) dx = blockBackward(ctx, this.blockCfg, i, cache.blocks[i]!, dx, B, L);
    be.biasBackward(G('positional_embedding'), dx, B, L * W);
    const dtok = G('token_embedding.weight');
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const o = (b * L + t) * W, e = cache.ids[b * L + t]! * W;
        for (let d = 0; d < W; d++) dtok[e + d] = dtok[e + d]! + dx[o + d]!;
      }
    }
  }
}
