/**
 * Optimization over the one parameter buffer of a ParamTable:
 * - `AdamW`: torch.optim.AdamW (the single-tensor path of torch/optim/adam.py with decoupled
 *   weight decay), with timm's parameter groups (no decay for 1-D tensors, biases and
 *   pos_embed / cls_token; optional layer-wise lr decay) applied per tensor.
 * - `clipGradNorm`: torch.nn.utils.clip_grad_norm_ (global L2 norm).
 * - `ModelEma`: timm's ModelEmaV2 (ema = decay * ema + (1 - decay) * param).
 */
import { VitkitError } from '../errors.js';
import type { ParamTable } from '../nn/params.js';
import type { Backend } from '../backend/backend.js';
import { reference } from '../backend/reference.js';

/** timm's VisionTransformer.no_weight_decay() */
export const DEFAULT_NO_WEIGHT_DECAY: readonly string[] = ['pos_embed', 'cls_token', 'dist_token'];

/** One parameter tensor's place in the buffer and its group settings. */
export interface ParamSegment {
  name: string;
  offset: number;
  length: number;
  /** weight decay applied to this tensor (0 for no-decay tensors) */
  weightDecay: number;
  /** multiplies the scheduled lr (layer-wise lr decay; 1 without it) */
  lrScale: number;
}

export interface ParamGroupOptions {
  /** decoupled weight decay for the tensors that decay */
  weightDecay: number;
  /** names never decayed besides 1-D tensors and biases; default pos_embed, cls_token, dist_token */
  noWeightDecay?: readonly string[];
  /** layer-wise lr decay (timm param_groups_layer_decay), e.g. 0.65 or 0.75; undefined = none */
  layerDecay?: number;
  /** which tensors decay, replacing timm's rule (e.g. YOLOS main.py's groups); noWeightDecay is then unused */
  decays?: (name: string, shape: readonly number[]) => boolean;
}

/** Number of transformer blocks in a table (1 + the largest `blocks.<i>.` index). */
export function countBlocks(names: readonly string[]): number {
  let depth = 0;
  for (const n of names) {
    const m = /^blocks\.(\d+)\./.exec(n);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  return depth;
}

/**
 * timm's layer id for layer-wise decay on a ViT, as param_groups_layer_decay derives it from
 * VisionTransformer.group_matcher (stem = cls_token / pos_embed / patch_embed; blocks.i;
 * `^norm` with MATCH_PREV_GROUP, i.e. merged into the last block's group; anything unmatched,
 * such as fc_norm and head, in one final group):
 *   0 for the stem, i + 1 for blocks.i, depth for norm, depth + 1 for the rest.
 */
export function layerId(name: string, depth: number): number {
  if (/^(cls_token|pos_embed|patch_embed|reg_token|dist_token)/.test(name)) return 0;
  const m = /^blocks\.(\d+)\./.exec(name);
  if (m) return Number(m[1]) + 1;
  if (/^norm\./.test(name)) return depth;
  return depth + 1;
}

/** Per-tensor weight decay and lr scale, as timm's param_groups_weight_decay / param_groups_layer_decay. */
export function paramGroups(params: ParamTable, opts: ParamGroupOptions): ParamSegment[] {
  const noWd = new Set(opts.noWeightDecay ?? DEFAULT_NO_WEIGHT_DECAY);
  const depth = countBlocks(params.names());
  if (opts.layerDecay !== undefined && !(opts.layerDecay > 0 && opts.layerDecay <= 1)) {
    throw new VitkitError(`Expected layerDecay in (0, 1] but received ${opts.layerDecay}`);
  }
  // timm: scale = decay^(layer_max - layer_id), layer_max = the largest id present
  const layerMax = Math.max(...params.names().map((n) => layerId(n, depth)));
  const segs: ParamSegment[] = [];
  let offset = 0;
  for (const spec of params.specs) {
    const length = spec.shape.reduce((a, b) => a * b, 1);
    const decays = opts.decays ? opts.decays(spec.name, spec.shape) : spec.shape.length > 1 && !spec.name.endsWith('.bias') && !noWd.has(spec.name);
    const lrScale = opts.layerDecay === undefined ? 1 : opts.layerDecay ** (layerMax - layerId(spec.name, depth));
    segs.push({ name: spec.name, offset, length, weightDecay: decays ? opts.weightDecay : 0, lrScale });
    offset += length;
  }
  return segs;
}

export interface AdamWOptions extends ParamGroupOptions {
  /** base learning rate (a schedule may pass another one to each step) */
  lr: number;
  /** default [0.9, 0.999] */
  betas?: [number, number];
  /** added to sqrt(v_hat); default 1e-8 */
  eps?: number;
  /** where the update runs (the adamwStep op); default the reference backend */
  backend?: Backend;
}

/** Validates AdamW's hyper-parameters (host and device optimizers) and returns betas and eps with their defaults. */
export function checkAdamW(opts: { lr: number; weightDecay: number; betas?: [number, number]; eps?: number }): { betas: [number, number]; eps: number } {
  const [b1, b2] = opts.betas ?? [0.9, 0.999];
  const eps = opts.eps ?? 1e-8;
  if (!(opts.lr >= 0)) throw new VitkitError(`Expected lr >= 0 but received ${opts.lr}`);
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new VitkitError(`Expected betas in [0, 1) but received [${b1}, ${b2}]`);
  if (!(eps >= 0)) throw new VitkitError(`Expected eps >= 0 but received ${eps}`);
  if (!(opts.weightDecay >= 0)) throw new VitkitError(`Expected weightDecay >= 0 but received ${opts.weightDecay}`);
  return { betas: [b1, b2], eps };
}

export function checkEmaDecay(decay: number): void {
  if (!(decay >= 0 && decay <= 1)) throw new VitkitError(`Expected emaDecay in [0, 1] but received ${decay}`);
}

/** What `AdamW.state()` returns: everything needed to resume bit-exactly. */
export interface AdamWState {
  /** number of steps taken (torch's state['step']) */
  step: number;
  /** first moments, same layout as the params buffer */
  expAvg: Float32Array;
  /** second moments */
  expAvgSq: Float32Array;
}

/**
 * torch.optim.AdamW. Per step t (1-based), for each element with lr' = lr * lrScale:
 *   p  -= lr' * wd * p                      (decoupled decay, before the update)
 *   m   = m + (1 - b1) * (g - m)            (exp_avg.lerp_(grad, 1 - beta1))
 *   v   = b2 * v + (1 - b2) * g^2
 *   p  -= lr' / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly segments: readonly ParamSegment[];
  private readonly params: ParamTable;
  private expAvg: Float32Array;
  private expAvgSq: Float32Array;
  private t = 0;
  private readonly be: Backend;

  constructor(params: ParamTable, opts: AdamWOptions) {
    const { betas: [b1, b2], eps } = checkAdamW(opts);
    this.params = params;
    this.be = opts.backend ?? reference;
    this.lr = opts.lr;
    this.beta1 = b1;
    this.beta2 = b2;
    this.eps = eps;
    this.segments = paramGroups(params, opts);
    this.expAvg = new Float32Array(params.count);
    this.expAvgSq = new Float32Array(params.count);
  }

  /** steps taken so far */
  get stepCount(): number {
    return this.t;
  }

  /** One update of every parameter from `grads` (same layout), at `lr` (default this.lr). */
  step(grads: ParamTable | Float32Array, lr = this.lr): void {
    const g = grads instanceof Float32Array ? grads : grads.buffer;
    const p = this.params.buffer, m = this.expAvg, v = this.expAvgSq;
    if (g.length !== p.length) throw new VitkitError(`Gradient buffer has ${g.length} values but there are ${p.length} parameters`);
    this.t++;
    for (const s of this.segments) {
      const a = s.offset, e = s.offset + s.length;
      this.be.adamwStep(p.subarray(a, e), g.subarray(a, e), m.subarray(a, e), v.subarray(a, e), s.length,
        lr * s.lrScale, this.beta1, this.beta2, this.eps, s.weightDecay, this.t);
    }
  }

  state(): AdamWState {
    return { step: this.t, expAvg: this.expAvg.slice(), expAvgSq: this.expAvgSq.slice() };
  }

  loadState(s: AdamWState): void {
    const n = this.params.count;
    if (!Number.isInteger(s.step) || s.step < 0) throw new VitkitError(`Optimizer state has an invalid step count ${s.step}`);
    if (s.expAvg.length !== n || s.expAvgSq.length !== n) {
      throw new VitkitError(`Optimizer state has ${s.expAvg.length} / ${s.expAvgSq.length} moments but the model has ${n} parameters`);
    }
    this.t = s.step;
    this.expAvg = Float32Array.from(s.expAvg);
    this.expAvgSq = Float32Array.from(s.expAvgSq);
  }
}

/**
 * torch.nn.utils.clip_grad_norm_(params, maxNorm): the global L2 norm of all gradients; when it
 * exceeds maxNorm, every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm before
 * clipping (NaN / Infinity propagate, as torch's default error_if_nonfinite=False).
 */
export function clipGradNorm(grads: ParamTable | Float32Array, maxNorm: number, be: Backend = reference): number {
  const g = grads instanceof Float32Array ? grads : grads.buffer;
  const norm = gradNorm(g, be);
  const coef = maxNorm / (norm + 1e-6);
  if (!(coef >= 1)) be.scale(g, g, Math.fround(coef), g.length);
  return norm;
}

/** Global L2 norm of a gradient buffer (double accumulation, the sumSquares op). */
export function gradNorm(grads: ParamTable | Float32Array, be: Backend = reference): number {
  const g = grads instanceof Float32Array ? grads : grads.buffer;
  return Math.sqrt(be.sumSquares(g, g.length));
}

/**
 * Exponential moving average of the weights (timm ModelEmaV2):
 * after each optimizer step, ema = decay * ema + (1 - decay) * param.
 */
export class ModelEma {
  readonly decay: number;
  /** the averaged weights, same layout as the model's params */
  readonly params: ParamTable;

  private readonly be: Backend;

  constructor(params: ParamTable, decay: number, be: Backend = reference) {
    checkEmaDecay(decay);
    this.decay = decay;
    this.be = be;
    this.params = params.like();
    this.params.buffer.set(params.buffer);
  }

  update(params: ParamTable): void {
    const e = this.params.buffer, p = params.buffer, d = this.decay;
    if (p.length !== e.length) throw new VitkitError(`EMA has ${e.length} values but the model has ${p.length} parameters`);
    this.be.emaUpdate(e, p, d, e.length);
  }

  state(): Float32Array {
    return this.params.buffer.slice();
  }

  loadState(s: Float32Array): void {
    if (s.length !== this.params.count) throw new VitkitError(`EMA state has ${s.length} values but the model has ${this.params.count} parameters`);
    this.params.buffer.set(s);
  }
}
