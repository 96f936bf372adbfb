/**
 * The layers of the Vision Transformer family, each with its forward and its backward side by
 * side (llm.c's habit), and each declaring the activations it saves for backward as a table of
 * named buffers sized per (batch, tokens, config): `blockSaves`, `embedSaves`, `headSaves`,
 * `poolSaves`. A training forward allocates exactly those buffers (one per row of the table)
 * and backward reads them by the same names. Every buffer touch is a backend op.
 *
 * Conventions: row-major float32; a (R, C) comment on every buffer; outputs first.
 * Gradients of parameters accumulate (+=) into the gradient table.
 */
import type { Ops } from '../backend/ops.js';
import type { Mem, Params } from '../nn/mem.js';
import { type Activation, type ViTConfig, dims } from './config.js';

/** activation kind code of the backend ops (actForward / gluForward / linearForward's fused act) */
export function actKind(a: Activation): number {
  return a === 'gelu' ? 0 : a === 'gelu_tanh' ? 1 : a === 'quick_gelu' ? 2 : 3;
}

/**
 * Everything a layer needs: the backend's ops, the parameters (and their gradients in backward)
 * and where buffers come from, all over the backend's buffer type T.
 */
export interface LayerCtx<T> {
  be: Ops<T>;
  params: Params<T>;
  mem: Mem<T>;
}

export interface GradCtx<T> extends LayerCtx<T> {
  grads: Params<T>;
}

/** A table of saved activations: name -> number of floats. */
export type SaveTable<K extends string> = Record<K, number>;
/** The buffers of a table. */
export type Saved<K extends string, T = Float32Array> = Record<K, T>;

/** allocate one buffer per row of a save table (rows of size 0 get an empty buffer) */
export function allocSaved<K extends string, T>(table: SaveTable<K>, mem: Mem<T>): Saved<K, T> {
  const out = {} as Saved<K, T>;
  for (const k of Object.keys(table) as K[]) out[k] = mem.take(table[k], false);
  return out;
}

// ---------------------------------------------------------------- linear (nn.Linear)

/** out (M, N) = inp (M, K) @ W (N, K)^T + b; accumulate adds into out; act -1 none, 0/1 GELU fused */
export function linear<T>(be: Ops<T>, out: T, inp: T, W: T, b: T | null,
  M: number, N: number, K: number, accumulate = false, act = -1): void {
  be.linearForward(out, inp, W, b, M, N, K, accumulate, act);
}

/** dW (N, K) += dout (M, N)^T @ inp (M, K); db (N) += column sums of dout */
export function linearParamGrads<T>(be: Ops<T>, dW: T, db: T | null, dout: T, inp: T,
  M: number, N: number, K: number): void {
  be.gemm(true, false, N, K, M, 1, dout, N, inp, K, 1, dW, K);
  if (db) be.biasBackward(db, dout, M, N);
}

/** dinp (M, K) = dout (M, N) @ W (N, K), or += with `into` */
export function linearInputGrad<T>(be: Ops<T>, dout: T, W: T, M: number, N: number, K: number,
  mem: Mem<T>, into?: T): T {
  const dinp = into ?? mem.take(M * K, false); // (M, K)
  be.gemm(false, false, M, K, N, 1, dout, N, W, K, into ? 1 : 0, dinp, K);
  return dinp;
}

/** a fresh copy of x (n) through the backend */
export function copyOf<T>(be: Ops<T>, x: T, n: number, mem: Mem<T>): T {
  const y = mem.take(n, false); // (n)
  be.copyRows(y, x, 1, 0, 0, 0, 0, 1, n, false);
  return y;
}

// ---------------------------------------------------------------- patch embedding

/** im2col + linear: x (B, C, H, W) -> patches (B*NP, D); saves cols (B*NP, KP) */
export function patchEmbedForward<T>(ctx: LayerCtx<T>, cols: T, patches: T, x: T,
  B: number, C: number, H: number, W: number, P: number, D: number): void {
  const NP = (H / P) * (W / P), KP = C * P * P;
  ctx.be.im2colPatches(cols, x, B, C, H, W, P);
  const bias = ctx.params.has('patch_embed.proj.bias') ? ctx.params.get('patch_embed.proj.bias') : null;
  linear(ctx.be, patches, cols, ctx.params.get('patch_embed.proj.weight'), bias, B * NP, D, KP);
}

/** dpatches (B*NP, D) -> weight / bias grads, and dinput (B, C, H, W) += when given */
export function patchEmbedBackward<T>(ctx: GradCtx<T>, dpatches: T, cols: T, dinput: T | undefined,
  B: number, C: number, H: number, W: number, P: number, D: number): void {
  const NP = (H / P) * (W / P), KP = C * P * P;
  const dbias = ctx.grads.has('patch_embed.proj.bias') ? ctx.grads.get('patch_embed.proj.bias') : null;
  linearParamGrads(ctx.be, ctx.grads.get('patch_embed.proj.weight'), dbias, dpatches, cols, B * NP, D, KP);
  if (dinput) {
    const dcols = linearInputGrad(ctx.be, dpatches, ctx.params.get('patch_embed.proj.weight'), B * NP, D, KP, ctx.mem); // (B*NP, KP)
    ctx.be.col2imPatches(dinput, dcols, B, C, H, W, P);
  }
}

// ---------------------------------------------------------------- token assembly (prefix tokens + position embedding)

/** Which prefix parameter goes to which token row: [cls, dist | reg...] as timm's _pos_embed. */
export function prefixParts(c: ViTConfig): { name: string; off: number; count: number }[] {
  const parts: { name: string; off: number; count: number }[] = [];
  let off = 0;
  if (c.class_token) parts.push({ name: 'cls_token', off: off++, count: 1 });
  if (c.distilled) parts.push({ name: 'dist_token', off: off++, count: 1 });
  if (c.reg_tokens > 0) parts.push({ name: 'reg_token', off, count: c.reg_tokens });
  return parts;
}

/**
 * tokens (B*N, D) from patches (B*NP, D): prefix tokens first, then the patches (then YOLOS's
 * det tokens, config det_tokens); the position
 * embedding `pos` is added to the patches only (posOnPatches: no_embed_class or sin-cos) or to
 * every token (pos (N, D)). `patches` is modified when posOnPatches.
 */
export function tokensForward<T>(ctx: LayerCtx<T>, c: ViTConfig, tokens: T, patches: T, pos: T | null,
  posOnPatches: boolean, B: number, NP: number, numPrefix: number, D: number): void {
  const be = ctx.be, det = c.det_tokens, N = NP + numPrefix + det;
  if (pos && posOnPatches) be.biasAdd(patches, pos, B, NP * D);
  if (numPrefix > 0 || det > 0) {
    be.copyRows(tokens, patches, B, N, numPrefix, NP, 0, NP, D, false);
    for (const p of prefixParts(c)) be.copyRows(tokens, ctx.params.get(p.name), B, N, p.off, 0, 0, p.count, D, false);
    // YOLOS: the detection tokens after the patches
    if (det > 0) be.copyRows(tokens, ctx.params.get('det_token'), B, N, numPrefix + NP, 0, 0, det, D, false);
  } else if (tokens !== patches) {
    be.copyRows(tokens, patches, 1, 0, 0, 0, 0, 1, B * NP * D, false);
  }
  if (pos && !posOnPatches) be.biasAdd(tokens, pos, B, N * D);
}

/**
 * dtokens (B*N, D) -> prefix grads and, into `dpos` (the position table used, learned pos only),
 * its gradient; returns dpatches (B*NP, D)
 */
export function tokensBackward<T>(ctx: GradCtx<T>, c: ViTConfig, dtokens: T, dpos: T | null, posOnPatches: boolean,
  B: number, NP: number, numPrefix: number, D: number): T {
  const be = ctx.be, det = c.det_tokens, N = NP + numPrefix + det;
  if (dpos && !posOnPatches) be.biasBackward(dpos, dtokens, B, N * D);
  let dpatches = dtokens;
  if (numPrefix > 0 || det > 0) {
    for (const p of prefixParts(c)) be.copyRows(ctx.grads.get(p.name), dtokens, B, 0, 0, N, p.off, p.count, D, true);
    if (det > 0) be.copyRows(ctx.grads.get('det_token'), dtokens, B, 0, 0, N, numPrefix + NP, det, D, true);
    dpatches = ctx.mem.take(B * NP * D, false); // (B*NP, D): every row copied
    be.copyRows(dpatches, dtokens, B, NP, 0, N, numPrefix, NP, D, false);
  }
  if (dpos && posOnPatches) be.biasBackward(dpos, dpatches, B, NP * D);
  return dpatches;
}

// ---------------------------------------------------------------- transformer block

/** Activations one block saves, per (B, N): the table that maps one-to-one onto its buffers. */
export function blockSaves(c: ViTConfig, B: number, N: number) {
  const { D, H, Hact } = dims(c), BN = B * N;
  const ls = c.init_values !== null;
  return {
    ln1: BN * D, ln1Mean: BN, ln1Rstd: BN,      // norm1 output and row stats
    qkv: BN * 3 * D,                            // fused q, k, v
    probs: B * c.num_heads * N * N,             // attention probabilities (B, NH, N, N)
    attn: BN * D,                               // attention output before proj
    proj: ls ? BN * D : 0,                      // proj output (LayerScale input) when ls1
    x2: BN * D,                                 // after the attention residual
    ln2: BN * D, ln2Mean: BN, ln2Rstd: BN,      // norm2 output and row stats
    fc1: BN * H,                                // fc1 output (pre-activation; packed [x1, x2] for SwiGLU)
    act: BN * Hact,                             // fc2 input
    fc2: ls ? BN * D : 0,                       // fc2 output (LayerScale input) when ls2
    out: BN * D,                                // block output
  } satisfies Record<string, number>;
}
export type BlockKey = keyof ReturnType<typeof blockSaves>;
/** a block's saved buffers, plus `x`: its input (the previous block's `out`, not a buffer of its own) */
export type BlockCache<T = Float32Array> = Saved<BlockKey, T> & { x: T };

/** Inference scratch: buffers reused across blocks and calls. */
export type Scratch<T> = (name: string, n: number) => T;

/**
 * One pre-norm block: x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(.))).
 * With `saved` (training), every intermediate goes to its saved buffer and `saved.out` is
 * returned; without, x is updated in place through scratch buffers and returned.
 * `stack` names the block list in the checkpoint (`blocks`, or MAE's `decoder_blocks`).
 */
export function blockForward<T>(ctx: LayerCtx<T>, c: ViTConfig, i: number, x: T, B: number, N: number,
  probsOut: T | null, saved: BlockCache<T> | null, scratch: Scratch<T>, stack = 'blocks'): T {
  const be = ctx.be, { D, NH, HD, H, Hact } = dims(c);
  const BN = B * N, eps = c.layer_norm_eps, kind = actKind(c.act);
  const glu = c.mlp_layer === 'swiglu_packed';
  const ls = c.init_values !== null;
  const P = (n: string) => ctx.params.get(`${stack}.${i}.${n}`);
  const s = saved;
  // x2 = x + ls1(proj(attn(norm1(x))))
  const ln1 = s ? s.ln1 : scratch('ln', BN * D); // (BN, D)
  be.layernormForward(ln1, s ? s.ln1Mean : null, s ? s.ln1Rstd : null, x, P('norm1.weight'), P('norm1.bias'), BN, D, eps);
  const qkv = s ? s.qkv : scratch('qkv', BN * 3 * D); // (BN, 3D)
  linear(be, qkv, ln1, P('attn.qkv.weight'), c.qkv_bias ? P('attn.qkv.bias') : null, BN, 3 * D, D);
  const probs = s ? s.probs : probsOut; // (B, NH, N, N)
  const attn = s ? s.attn : scratch('attn', BN * D); // (BN, D)
  be.attentionForward(attn, probs, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
  if (s && probsOut) be.copyRows(probsOut, s.probs, 1, 0, 0, 0, 0, 1, B * NH * N * N, false);
  let x2 = x; // (BN, D)
  if (s) { x2 = s.x2; be.copyRows(x2, x, 1, 0, 0, 0, 0, 1, BN * D, false); }
  if (ls) {
    const proj = s ? s.proj : scratch('branch', BN * D); // (BN, D)
    linear(be, proj, attn, P('attn.proj.weight'), P('attn.proj.bias'), BN, D, D);
    be.mulColumnsAdd(x2, proj, P('ls1.gamma'), BN, D);
  } else {
    linear(be, x2, attn, P('attn.proj.weight'), P('attn.proj.bias'), BN, D, D, true);
  }
  // out = x2 + ls2(fc2(act(fc1(norm2(x2)))))
  const ln2 = s ? s.ln2 : ln1; // (BN, D)
  be.layernormForward(ln2, s ? s.ln2Mean : null, s ? s.ln2Rstd : null, x2, P('norm2.weight'), P('norm2.bias'), BN, D, eps);
  const act = s ? s.act : scratch('act', BN * Hact); // (BN, Hact)
  if (!s && !glu && kind <= 1) {
    linear(be, act, ln2, P('mlp.fc1.weight'), P('mlp.fc1.bias'), BN, H, D, false, kind); // fused GELU epilogue
  } else {
    const fc1 = s ? s.fc1 : scratch('fc1', BN * H); // (BN, H)
    linear(be, fc1, ln2, P('mlp.fc1.weight'), P('mlp.fc1.bias'), BN, H, D);
    if (glu) be.gluForward(act, fc1, BN, Hact, kind);
    else be.actForward(act, fc1, BN * H, kind);
  }
  let out = x2; // (BN, D)
  if (s) { out = s.out; be.copyRows(out, x2, 1, 0, 0, 0, 0, 1, BN * D, false); }
  if (ls) {
    const fc2 = s ? s.fc2 : scratch('branch', BN * D); // (BN, D)
    linear(be, fc2, act, P('mlp.fc2.weight'), P('mlp.fc2.bias'), BN, D, Hact);
    be.mulColumnsAdd(out, fc2, P('ls2.gamma'), BN, D);
  } else {
    linear(be, out, act, P('mlp.fc2.weight'), P('mlp.fc2.bias'), BN, D, Hact, true);
  }
  return out;
}

/** Backward of block i of `stack`: dout (B*N, D) = dL/d(block output) -> dL/d(block input) (B*N, D). */
export function blockBackward<T>(ctx: GradCtx<T>, c: ViTConfig, i: number, s: BlockCache<T>, dout: T, B: number, N: number,
  onAttnOutputGrad?: (block: number, dattn: T) => void, stack = 'blocks'): T {
  const be = ctx.be, { D, NH, HD, H, Hact } = dims(c);
  const BN = B * N, kind = actKind(c.act), mem = ctx.mem;
  const glu = c.mlp_layer === 'swiglu_packed';
  const ls = c.init_values !== null;
  const pre = `${stack}.${i}.`;
  const P = (n: string) => ctx.params.get(pre + n);
  const G = (n: string) => ctx.grads.get(pre + n);
  // out = x2 + ls2(fc2(act)): the residual passes dout to x2 unchanged
  let dfc2 = dout; // (BN, D)
  if (ls) {
    dfc2 = mem.take(BN * D, false);
    be.mulColumnsBackward(dfc2, G('ls2.gamma'), dout, s.fc2, P('ls2.gamma'), BN, D);
  }
  linearParamGrads(be, G('mlp.fc2.weight'), G('mlp.fc2.bias'), dfc2, s.act, BN, D, Hact);
  const dact = linearInputGrad(be, dfc2, P('mlp.fc2.weight'), BN, D, Hact, mem); // (BN, Hact)
  const dfc1 = mem.take(BN * H, false); // (BN, H), overwritten
  if (glu) be.gluBackward(dfc1, s.fc1, dact, BN, Hact, kind);
  else be.actBackward(dfc1, s.fc1, dact, BN * H, kind);
  linearParamGrads(be, G('mlp.fc1.weight'), G('mlp.fc1.bias'), dfc1, s.ln2, BN, H, D);
  const dln2 = linearInputGrad(be, dfc1, P('mlp.fc1.weight'), BN, H, D, mem); // (BN, D)
  const dx2 = copyOf(be, dout, BN * D, mem); // (BN, D): residual + norm2 backward
  be.layernormBackward(dx2, G('norm2.weight'), G('norm2.bias'), dln2, s.x2, P('norm2.weight'), s.ln2Mean, s.ln2Rstd, BN, D);
  // x2 = x + ls1(proj(attn))
  let dproj = dx2; // (BN, D)
  if (ls) {
    dproj = mem.take(BN * D, false);
    be.mulColumnsBackward(dproj, G('ls1.gamma'), dx2, s.proj, P('ls1.gamma'), BN, D);
  }
  linearParamGrads(be, G('attn.proj.weight'), G('attn.proj.bias'), dproj, s.attn, BN, D, D);
  const dattn = linearInputGrad(be, dproj, P('attn.proj.weight'), BN, D, D, mem); // (BN, D)
  onAttnOutputGrad?.(i, dattn);
  const dqkv = mem.take(BN * 3 * D, false); // (BN, 3D), overwritten
  be.attentionBackward(dqkv, dattn, s.qkv, s.probs, B, N, NH, HD, 1 / Math.sqrt(HD));
  linearParamGrads(be, G('attn.qkv.weight'), c.qkv_bias ? G('attn.qkv.bias') : null, dqkv, s.ln1, BN, 3 * D, D);
  const dln1 = linearInputGrad(be, dqkv, P('attn.qkv.weight'), BN, 3 * D, D, mem); // (BN, D)
  const dx = dx2; // (BN, D): accumulated in place, dx2 is dead
  be.layernormBackward(dx, G('norm1.weight'), G('norm1.bias'), dln1, s.x, P('norm1.weight'), s.ln1Mean, s.ln1Rstd, BN, D);
  return dx;
}

// ---------------------------------------------------------------- MAP attention pooling (timm AttentionPoolLatent)

/** Activations of the attention pool per batch B over N tokens (latent_len 1). */
export function poolSaves(c: ViTConfig, B: number, N: number) {
  const { D, poolH: Hm } = dims(c);
  return {
    q1: D,                       // q(latent) (1, D)
    q: B * D,                    // the latent query per image (B, 1, D)
    kv: B * N * 2 * D,           // kv(x) (B, N, 2D)
    probs: B * c.num_heads * N,  // (B, NH, 1, N)
    o: B * D,                    // attention output (B, D)
    y: B * D,                    // proj output (B, D)
    ln: B * D, lnMean: B, lnRstd: B,
    h1: B * Hm,                  // mlp.fc1 output (B, Hm)
    a: B * Hm,                   // activation (B, Hm)
    z: B * D,                    // y + mlp(norm(y)) (B, D): the pooled vector
  } satisfies Record<string, number>;
}
export type PoolKey = keyof ReturnType<typeof poolSaves>;

/** x (B*N, D) -> pooled (B, D) = s.z */
export function attnPoolForward<T>(ctx: LayerCtx<T>, c: ViTConfig, s: Saved<PoolKey, T>, x: T, B: number, N: number,
  probsOut: T | null): T {
  const be = ctx.be, { D, NH, HD, poolH: Hm } = dims(c);
  const P = (n: string) => ctx.params.get(`attn_pool.${n}`);
  linear(be, s.q1, P('latent'), P('q.weight'), c.qkv_bias ? P('q.bias') : null, 1, D, D);
  be.copyRows(s.q, s.q1, B, 1, 0, 0, 0, 1, D, false);
  linear(be, s.kv, x, P('kv.weight'), c.qkv_bias ? P('kv.bias') : null, B * N, 2 * D, D);
  be.crossAttentionForward(s.o, s.probs, s.q, s.kv, B, 1, N, NH, HD, 1 / Math.sqrt(HD));
  if (probsOut) be.copyRows(probsOut, s.probs, 1, 0, 0, 0, 0, 1, B * NH * N, false);
  linear(be, s.y, s.o, P('proj.weight'), P('proj.bias'), B, D, D);
  be.layernormForward(s.ln, s.lnMean, s.lnRstd, s.y, P('norm.weight'), P('norm.bias'), B, D, c.layer_norm_eps);
  linear(be, s.h1, s.ln, P('mlp.fc1.weight'), P('mlp.fc1.bias'), B, Hm, D);
  be.actForward(s.a, s.h1, B * Hm, actKind(c.act));
  be.copyRows(s.z, s.y, 1, 0, 0, 0, 0, 1, B * D, false);
  linear(be, s.z, s.a, P('mlp.fc2.weight'), P('mlp.fc2.bias'), B, D, Hm, true);
  return s.z;
}

/** dz (B, D) -> parameter grads; dx (B*N, D) += the token gradient */
export function attnPoolBackward<T>(ctx: GradCtx<T>, c: ViTConfig, s: Saved<PoolKey, T>, x: T, dz: T, dx: T,
  B: number, N: number): void {
  const be = ctx.be, { D, NH, HD, poolH: Hm } = dims(c), mem = ctx.mem;
  const P = (n: string) => ctx.params.get(`attn_pool.${n}`);
  const G = (n: string) => ctx.grads.get(`attn_pool.${n}`);
  linearParamGrads(be, G('mlp.fc2.weight'), G('mlp.fc2.bias'), dz, s.a, B, D, Hm);
  const da = linearInputGrad(be, dz, P('mlp.fc2.weight'), B, D, Hm, mem); // (B, Hm)
  const dh1 = mem.take(B * Hm, false); // (B, Hm)
  be.actBackward(dh1, s.h1, da, B * Hm, actKind(c.act));
  linearParamGrads(be, G('mlp.fc1.weight'), G('mlp.fc1.bias'), dh1, s.ln, B, Hm, D);
  const dln = linearInputGrad(be, dh1, P('mlp.fc1.weight'), B, Hm, D, mem); // (B, D)
  const dy = copyOf(be, dz, B * D, mem); // (B, D): residual + norm backward
  be.layernormBackward(dy, G('norm.weight'), G('norm.bias'), dln, s.y, P('norm.weight'), s.lnMean, s.lnRstd, B, D);
  linearParamGrads(be, G('proj.weight'), G('proj.bias'), dy, s.o, B, D, D);
  const dO = linearInputGrad(be, dy, P('proj.weight'), B, D, D, mem); // (B, D)
  const dq = mem.take(B * D, false); // (B, D)
  const dkv = mem.take(B * N * 2 * D, false); // (B*N, 2D)
  be.crossAttentionBackward(dq, dkv, dO, s.q, s.kv, s.probs, B, 1, N, NH, HD, 1 / Math.sqrt(HD));
  linearParamGrads(be, G('kv.weight'), c.qkv_bias ? G('kv.bias') : null, dkv, x, B * N, 2 * D, D);
  linearInputGrad(be, dkv, P('kv.weight'), B * N, 2 * D, D, mem, dx);
  const dq1 = mem.take(D); // (1, D), zeroed: summed over the batch
  be.copyRows(dq1, dq, B, 0, 0, 1, 0, 1, D, true);
  linearParamGrads(be, G('q.weight'), c.qkv_bias ? G('q.bias') : null, dq1, P('latent'), 1, D, D);
  linearInputGrad(be, dq1, P('q.weight'), 1, D, D, mem, G('latent'));
}

// ---------------------------------------------------------------- head: pooling, fc_norm, classifier(s)

/** Rows the head works on: B pooled vectors, or every token (global_pool ''). */
export function headRows(c: ViTConfig, B: number, N: number): number {
  return c.global_pool === '' ? B * N : B;
}

/** Activations the head saves per (B, N). */
export function headSaves(c: ViTConfig, B: number, N: number, useFcNorm: boolean) {
  const D = c.embed_dim, K = c.num_classes, R = headRows(c, B, N);
  const dist = c.distilled;
  return {
    pooled: c.global_pool === '' ? 0 : R * D,   // pooled vector (B, D) (a view of the features without pooling)
    pooledDist: dist ? B * D : 0,               // distillation token row (B, D)
    fcMean: useFcNorm ? R : 0, fcRstd: useFcNorm ? R : 0,
    pre: useFcNorm || dist ? R * D : 0,         // head input after fc_norm / DeiT pre_logits (mean of both tokens)
    logitsCls: dist && K > 0 ? B * K : 0,       // DeiT: class-token head
    logitsDist: dist && K > 0 ? B * K : 0,      // DeiT: distillation head
    logits: K > 0 ? R * K : 0,                  // head output (B, K) (DeiT: mean of both heads)
  } satisfies Record<string, number>;
}
export type HeadKey = keyof ReturnType<typeof headSaves>;

export interface HeadOut<T> {
  /** head input (R, D): fc_norm(pooled), or DeiT's (cls + dist) / 2 */
  pre: T;
  /** (R, K), or null without a head */
  logits: T | null;
  /** DeiT: the two heads before averaging, (B, K) each */
  cls?: T;
  dist?: T;
}

/**
 * features (B*N, D) -> pooled -> fc_norm -> head. `pool` pools the MAP head (it owns its buffers).
 * With `wantLogits` false only the head input is computed.
 */
export function headForward<T>(ctx: LayerCtx<T>, c: ViTConfig, s: Saved<HeadKey, T>, features: T, B: number, N: number,
  numPrefix: number, useFcNorm: boolean, wantLogits: boolean, pool: (() => T) | null): HeadOut<T> {
  const be = ctx.be, D = c.embed_dim, K = c.num_classes, R = headRows(c, B, N);
  const P = (n: string) => ctx.params.get(n);
  let pooled: T; // (R, D)
  if (c.global_pool === 'token') { pooled = s.pooled; be.copyRows(pooled, features, B, 1, 0, N, 0, 1, D, false); }
  else if (c.global_pool === 'avg') { pooled = s.pooled; be.meanRows(pooled, features, B, N, numPrefix, N - numPrefix, D); }
  else if (c.global_pool === 'map') { pooled = pool!(); be.copyRows(s.pooled, pooled, 1, 0, 0, 0, 0, 1, B * D, false); pooled = s.pooled; }
  else pooled = features;
  if (c.distilled) {
    be.copyRows(s.pooledDist, features, B, 1, 0, N, 1, 1, D, false);
    be.axpby(s.pre, pooled, s.pooledDist, 0.5, 0.5, B * D);
    if (!wantLogits || K === 0) return { pre: s.pre, logits: null };
    linear(be, s.logitsCls, pooled, P('head.weight'), P('head.bias'), B, K, D);
    linear(be, s.logitsDist, s.pooledDist, P('head_dist.weight'), P('head_dist.bias'), B, K, D);
    be.axpby(s.logits, s.logitsCls, s.logitsDist, 0.5, 0.5, B * K);
    return { pre: s.pre, logits: s.logits, cls: s.logitsCls, dist: s.logitsDist };
  }
  let pre = pooled; // (R, D)
  if (useFcNorm) {
    pre = s.pre;
    be.layernormForward(pre, s.fcMean, s.fcRstd, pooled, P('fc_norm.weight'), P('fc_norm.bias'), R, D, c.layer_norm_eps);
  }
  if (!wantLogits || K === 0) return { pre, logits: null };
  linear(be, s.logits, pre, P('head.weight'), P('head.bias'), R, K, D);
  return { pre, logits: s.logits };
}

/**
 * dlogits (R, K) (or d pre_logits (R, D) without a head) -> dfeatures (B*N, D), zeroed then
 * accumulated. DeiT: `dDist` (B, K) makes dlogits the class head's gradient and dDist the
 * distillation head's (hard-distillation training); without it dlogits is the gradient of their mean.
 * `poolBack` pools the MAP head backward: (dpooled, dfeatures) -> void.
 */
export function headBackward<T>(ctx: GradCtx<T>, c: ViTConfig, s: Saved<HeadKey, T>, features: T, dlogits: T,
  dDist: T | undefined, B: number, N: number, numPrefix: number, useFcNorm: boolean,
  poolBack: ((dpooled: T, dfeat: T) => void) | null): T {
  const be = ctx.be, D = c.embed_dim, K = c.num_classes, R = headRows(c, B, N), mem = ctx.mem;
  const P = (n: string) => ctx.params.get(n);
  const G = (n: string) => ctx.grads.get(n);
  const dfeat = mem.take(B * N * D); // (B*N, D), zeroed: pooling writes some rows
  if (c.distilled) {
    const dpooled = mem.take(B * D), dpooledDist = mem.take(B * D); // (B, D), zeroed: accumulated into
    if (K > 0) {
      let dc = dlogits, dd = dDist; // (B, K)
      if (!dd) {
        dc = mem.take(B * K, false);
        be.scale(dc, dlogits, 0.5, B * K);
        dd = dc;
      }
      linearParamGrads(be, G('head.weight'), G('head.bias'), dc, s.pooled, B, K, D);
      linearParamGrads(be, G('head_dist.weight'), G('head_dist.bias'), dd, s.pooledDist, B, K, D);
      linearInputGrad(be, dc, P('head.weight'), B, K, D, mem, dpooled);
      linearInputGrad(be, dd, P('head_dist.weight'), B, K, D, mem, dpooledDist);
    } else {
      be.scale(dpooled, dlogits, 0.5, B * D);
      be.scale(dpooledDist, dlogits, 0.5, B * D);
    }
    be.copyRows(dfeat, dpooled, B, N, 0, 1, 0, 1, D, true);
    be.copyRows(dfeat, dpooledDist, B, N, 1, 1, 0, 1, D, true);
    return dfeat;
  }
  let dpre = dlogits; // (R, D)
  if (K > 0) {
    const pre = useFcNorm ? s.pre : c.global_pool === '' ? features : s.pooled;
    linearParamGrads(be, G('head.weight'), G('head.bias'), dlogits, pre, R, K, D);
    dpre = linearInputGrad(be, dlogits, P('head.weight'), R, K, D, mem);
  }
  let dpooled = dpre; // (R, D)
  if (useFcNorm) {
    dpooled = mem.take(R * D); // zeroed: layernormBackward accumulates
    const pooled = c.global_pool === '' ? features : s.pooled;
    be.layernormBackward(dpooled, G('fc_norm.weight'), G('fc_norm.bias'), dpre, pooled, P('fc_norm.weight'), s.fcMean, s.fcRstd, R, D);
  }
  if (c.global_pool === 'token') be.copyRows(dfeat, dpooled, B, N, 0, 1, 0, 1, D, true);
  else if (c.global_pool === 'avg') be.meanRowsBackward(dfeat, dpooled, B, N, numPrefix, N - numPrefix, D);
  else if (c.global_pool === 'map') poolBack!(dpooled, dfeat);
  else be.copyRows(dfeat, dpooled, 1, 0, 0, 0, 0, 1, B * N * D, true);
  return dfeat;
}
