/**
 * The checks of validate.ts that need no file system (the core uses them to load a model from
 * bytes): a resolved config against the tensors a safetensors header declares, a config's size
 * against sane bounds, and the finite-value check for weights. validate.ts re-exports all of this
 * and adds the variants that read a weights file's header from disk.
 */
import { VitkitError, shapeStr } from '../errors.js';
import { dims, imgHW, type ViTConfig } from '../models/config.js';
import type { StEntry } from '../io/safetensors_bytes.js';

/** Most tokens per image any model may use: attention then needs NH x N x N floats per image. */
export const MAX_TOKENS = 16_384;
/** Most parameters a configuration may ask for (16 GB of float32). */
export const MAX_PARAMS = 4e9;
/** Most blocks / classes / width a configuration may ask for. */
export const MAX_DEPTH = 1_000;
export const MAX_EMBED_DIM = 65_536;
export const MAX_CLASSES = 1_000_000;
/** Most prefix tokens (class, distillation, registers) a position embedding may carry beside the patches. */
export const MAX_PREFIX_TOKENS = 64;

/** Block-index patterns of the layouts vitkit reads (timm `blocks.N.`, HF `encoder.layer.N.`, CLIP `layers.N.`, open_clip `resblocks.N.`). */
const BLOCK_RE = /(?:^|\.)(?:blocks|layer|layers|resblocks)\.(\d+)\./;
const PATCH_RE = /(?:^|\.)(?:patch_embed\.proj|patch_embeddings\.projection|patch_embedding|conv1)\.weight$/;
const POS_RE = /(?:^|\.)(?:pos_embed|position_embeddings|position_embedding\.weight|positional_embedding)$/;
const HEAD_RE = /^(?:head|classifier)\.weight$/;

function num(c: ViTConfig, k: string): number | undefined {
  const v = (c as unknown as Record<string, unknown>)[k];
  return typeof v === 'number' ? v : undefined;
}

/** Derived sizes, computed without allocating anything. */
function sizes(c: ViTConfig): { grid: number; tokens: number; params: number; H: number } {
  const [ih, iw] = imgHW(c);
  const grid = Math.max(ih, iw) / c.patch_size;
  const prefix = (c.class_token ? 1 : 0) + (num(c, 'reg_tokens') ?? 0) + (c.distilled ? 1 : 0);
  const tokens = (ih / c.patch_size) * (iw / c.patch_size) + prefix;
  const D = c.embed_dim;
  const H = dims(c).H;
  const perBlock = 4 * D * D + 2 * D * H + 9 * D + H;
  const params = c.depth * perBlock + (c.pos_embed === 'learn' ? tokens * D : 0) + D * c.in_chans * c.patch_size * c.patch_size + (D + 1) * c.num_classes;
  return { grid, tokens, params, H };
}

/**
 * Bound what a configuration may ask for, before a model is built: tokens per image, blocks,
 * width, classes and the total parameter count. `where` names the config in the message.
 */
export function checkConfigResources(c: ViTConfig, where: string): void {
  const s = sizes(c);
  const fail = (what: string, limit: string, got: string) => new VitkitError(`Expected ${what} of at most ${limit} for ${where} but received ${got}`);
  if (c.depth > MAX_DEPTH) throw fail('depth', String(MAX_DEPTH), String(c.depth));
  if (c.embed_dim > MAX_EMBED_DIM) throw fail('embed_dim', String(MAX_EMBED_DIM), String(c.embed_dim));
  if (c.num_classes > MAX_CLASSES) throw fail('num_classes', String(MAX_CLASSES), String(c.num_classes));
  if (s.tokens > MAX_TOKENS) {
    throw fail('tokens per image', `${MAX_TOKENS}`, `${s.tokens} (img_size ${c.img_size} / patch_size ${c.patch_size} = a ${s.grid}x${s.grid} grid)`);
  }
  if (!(s.params <= MAX_PARAMS)) throw fail('parameters', `${MAX_PARAMS / 1e9}e9`, `${(s.params / 1e9).toFixed(2)}e9 (depth ${c.depth}, embed_dim ${c.embed_dim}, mlp width ${s.H})`);
}

export interface WeightsCheckOptions {
  /** the image size is being changed on purpose (pos_embed resampled): img_size is not checked against it */
  resample?: boolean;
  /** the head is being replaced (fine-tuning to other classes): num_classes is not checked against it */
  newHead?: boolean;
}

/**
 * Check config `c` (read from `configFile`) against the header entries of `weightsFile` (a name
 * for messages) before the model is allocated. Throws a VitkitError naming the config field, the
 * tensor, and both values.
 */
export function checkConfigAgainstEntries(c: ViTConfig, entries: Map<string, StEntry>, weightsFile: string, configFile: string, opts: WeightsCheckOptions = {}): void {
  const mismatch = (field: string, value: number | string, tensor: string, shape: number[], implied: string) =>
    new VitkitError(`Expected ${field} ${implied} in ${configFile} (from tensor ${JSON.stringify(tensor)} ${shapeStr(shape)} in ${weightsFile}) but received ${value}`);

  // depth: per group of blocks (the key before the index: "blocks", "vision_model.encoder.layers",
  // or two towers in one file), the distinct indices, which must run 0 .. n-1; depth must equal one group's n
  const groups = new Map<string, Set<number>>();
  for (const k of entries.keys()) {
    const m = BLOCK_RE.exec(k);
    if (!m) continue;
    const g = k.slice(0, m.index + m[0].length - m[1]!.length - 2);
    let set = groups.get(g);
    if (!set) groups.set(g, (set = new Set()));
    set.add(Number(m[1]));
  }
  const counts = [...groups.values()].map((set) => ({ n: set.size, max: Math.max(...set) }));
  if (counts.length === 0 ? c.depth > 0 : !counts.some((g) => g.n === c.depth && g.max === c.depth - 1)) {
    const g = counts[0];
    const has = !g ? 'no blocks' : counts.length === 1 ? `${g.n} blocks (indices 0..${g.max}${g.max !== g.n - 1 ? ', with gaps' : ''})` : `blocks in groups of ${counts.map((x) => x.n).join(', ')}`;
    throw new VitkitError(`Expected depth ${g ? counts.map((x) => x.n).join(' or ') : 0} in ${configFile} (${weightsFile} holds ${has}) but received ${c.depth}`);
  }
  // width, channels, patch size: the patch embedding (D, C, P, P)
  const patch = [...entries].find(([k, e]) => PATCH_RE.test(k) && e.shape.length === 4);
  if (patch) {
    const [name, e] = patch;
    const [D, C, P, P2] = e.shape as [number, number, number, number];
    if (c.embed_dim !== D) throw mismatch('embed_dim', c.embed_dim, name, e.shape, String(D));
    if (c.in_chans !== C) throw mismatch('in_chans', c.in_chans, name, e.shape, String(C));
    if (c.patch_size !== P || P !== P2) throw mismatch('patch_size', c.patch_size, name, e.shape, String(P));
  }
  // img_size: the position embedding's token count: the patches plus at most a few prefix tokens
  // (class, distillation, register tokens) that may carry a position too. With several candidates
  // (a text tower's positional_embedding beside the image tower's), one must fit.
  const posAll = [...entries].filter(([k, e]) => POS_RE.test(k) && (e.shape.length === 3 || e.shape.length === 2));
  const posWide = posAll.filter(([, e]) => e.shape[e.shape.length - 1] === c.embed_dim); // the image tower's width
  const pos = posWide.length ? posWide : posAll;
  const dynamic = (c as unknown as Record<string, unknown>)['dynamic_img_size'] === true;
  if (pos.length && !opts.resample && !dynamic) {
    const [ph, pw] = imgHW(c);
    const patches = (ph / c.patch_size) * (pw / c.patch_size);
    const fits = ([, e]: [string, StEntry]) => {
      const T = e.shape[e.shape.length - 2]!;
      return T >= patches && T <= patches + MAX_PREFIX_TOKENS;
    };
    if (!pos.some(fits)) {
      const [name, e] = pos[0]!;
      const T = e.shape[e.shape.length - 2]!;
      const pre = c.class_token ? 1 : 0;
      const g = Math.round(Math.sqrt(T - pre));
      const implied = g * g === T - pre ? `${g * c.patch_size} (a ${g}x${g} grid of patch_size ${c.patch_size})` : `consistent with ${T} tokens`;
      throw new VitkitError(
        `Expected img_size ${implied} in ${configFile} (from tensor ${JSON.stringify(name)} ${shapeStr(e.shape)} in ${weightsFile}) but received ${c.img_size}, ` +
        `which needs ${patches} patch positions; pass --img-size to resample the position embedding`,
      );
    }
  }
  // classes: the classifier (K, D)
  const head = [...entries].find(([k, e]) => HEAD_RE.test(k) && e.shape.length === 2);
  if (head && !opts.newHead) {
    const [name, e] = head;
    if (c.num_classes !== e.shape[0]) throw mismatch('num_classes', c.num_classes, name, e.shape, String(e.shape[0]));
  }
  checkConfigResources(c, configFile);
}

/**
 * Largest weight magnitude accepted. Trained weights are far below it (the largest in timm's ViTs,
 * DINOv2's register outliers included, are in the thousands); a value above it is a flipped
 * exponent bit or garbage, and overflows float32 in the first matmul (the forward pass then
 * returns NaN for every input).
 */
export const MAX_WEIGHT_MAGNITUDE = 1e10;

/** Refuse NaN / Inf (and magnitudes above `maxAbs`) in a tensor, naming it and the first bad index. */
export function checkFinite(data: ArrayLike<number>, shape: readonly number[], tensor: string, file: string, maxAbs = MAX_WEIGHT_MAGNITUDE): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      throw new VitkitError(`Expected finite values in tensor ${JSON.stringify(tensor)} ${shapeStr(shape)} of ${file} but received ${v} at index ${unravel(i, shape)} (flat ${i})`);
    }
    if (v > maxAbs || v < -maxAbs) {
      throw new VitkitError(
        `Expected values of magnitude at most ${maxAbs} in tensor ${JSON.stringify(tensor)} ${shapeStr(shape)} of ${file} but received ${v} at index ${unravel(i, shape)} (flat ${i}; a corrupt file?)`,
      );
    }
  }
}

function unravel(i: number, shape: readonly number[]): string {
  if (shape.length <= 1) return `[${i}]`;
  const idx: number[] = [];
  let r = i;
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k]! || 1;
    idx.unshift(r % d);
    r = Math.floor(r / d);
  }
  return `[${idx.join(', ')}]`;
}

export { checkFeatureShape } from '../models/checks.js';

/**
 * The load-path check before a model is built: `base` is the config as the checkpoint states it,
 * `final` after the caller's overrides (--img-size, --num-classes); `entries` is the weights' header.
 */
export function checkCheckpointEntries(
  base: ViTConfig, final: ViTConfig, entries: Map<string, StEntry>, weightsFile: string, configFile: string,
  opts: { imgSize?: number; numClasses?: number } = {},
): void {
  checkConfigAgainstEntries(base, entries, weightsFile, configFile, { resample: opts.imgSize !== undefined, newHead: opts.numClasses !== undefined });
  checkConfigResources(final, opts.imgSize !== undefined || opts.numClasses !== undefined ? `${configFile} with the requested overrides` : configFile);
}
