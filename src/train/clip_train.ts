/**
 * Contrastive fine-tuning of a ClipModel as open_clip's training loop does it:
 *   loss = ClipLoss(image_embeds, text_embeds, logit_scale) -> backward through both towers
 *   -> AdamW (betas 0.9 / 0.98, eps 1e-6 by default) -> logit_scale.clamp_(0, ln 100)
 * open_clip's main.py excludes from weight decay every tensor with ndim < 2 and every name
 * containing bn, ln, bias or logit_scale; it clamps logit_scale in place right after each
 * optimizer step (train.py: `unwrap_model(model).logit_scale.clamp_(0, math.log(100))`).
 * LiT: `lockImage` freezes the image tower and its projection (no gradient is computed for it and
 * AdamW leaves it untouched); `lockText` does the same for the text tower.
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { ParamTable } from '../nn/params.js';
import type { ClipModel, ClipCache } from '../models/clip/model.js';
import { LOGIT_SCALE_MAX } from '../models/clip/config.js';
import { clipLoss } from './clip_loss.js';
import { AdamW, clipGradNorm, gradNorm, type AdamWState } from './optim.js';
import { LrSchedule, type ScheduleKind } from './schedule.js';

/** open_clip main.py: `exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n` */
export function openClipExcludeFromDecay(name: string, shape: readonly number[]): boolean {
  return shape.length < 2 || name.includes('bn') || name.includes('ln') || name.includes('bias') || name.includes('logit_scale');
}

/** the image tower's tensors (locked by LiT) */
export function isImageTensor(name: string): boolean {
  return name.startsWith('visual.');
}

export interface ClipTrainerOptions {
  lr: number;
  /** default 0.2 (open_clip's default wd) */
  weightDecay?: number;
  /** default [0.9, 0.98] */
  betas?: [number, number];
  /** default 1e-6 */
  eps?: number;
  clipGrad?: number;
  schedule?: ScheduleKind;
  warmupSteps?: number;
  totalSteps?: number;
  minLr?: number;
  /** LiT: freeze the image tower and visual.proj */
  lockImage?: boolean;
  /** freeze the text tower, token/positional embeddings and text_projection */
  lockText?: boolean;
}

export interface ClipStepResult {
  loss: number;
  lr: number;
  gradNorm: number;
  /** exp(logit_scale) after the step */
  scale: number;
}

export interface ClipTrainerState {
  step: number;
  optimizer: AdamWState;
}

export class ClipTrainer {
  readonly model: ClipModel;
  readonly grads: ParamTable;
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly options: Readonly<ClipTrainerOptions>;
  private iteration = 0;

  constructor(model: ClipModel, opts: ClipTrainerOptions) {
    if (opts.lockImage && opts.lockText) throw new VitkitError('Locking both towers leaves only logit_scale to train; unlock one tower');
    if (opts.clipGrad !== undefined && !(opts.clipGrad > 0)) throw new VitkitError(`Expected clipGrad > 0 but received ${opts.clipGrad}`);
    this.model = model;
    this.options = { ...opts };
    this.grads = model.params.like();
    const wd = opts.weightDecay ?? 0.2;
    this.optimizer = new AdamW(model.params, {
      lr: opts.lr, weightDecay: wd, betas: opts.betas ?? [0.9, 0.98], eps: opts.eps ?? 1e-6,
    });
    // open_clip's groups instead of timm's: the segments are per tensor, in the table's order
    for (const seg of this.optimizer.segments as import('./optim.js').ParamSegment[]) {
      const shape = model.params.shape(seg.name);
      seg.weightDecay = openClipExcludeFromDecay(seg.name, shape) ? 0 : wd;
      if (this.frozen(seg.name)) { seg.lrScale = 0; seg.weightDecay = 0; }
    }
    this.schedule = new LrSchedule({
      kind: opts.schedule ?? (opts.totalSteps !== undefined ? 'cosine' : 'constant'), lr: opts.lr,
      warmupSteps: opts.warmupSteps ?? 0, totalSteps: opts.totalSteps ?? 0, minLr: opts.minLr ?? 0,
    });
  }

  frozen(name: string): boolean {
    if (name === 'logit_scale') return false;
    return isImageTensor(name) ? !!this.options.lockImage : !!this.options.lockText;
  }

  get stepCount(): number {
    return this.iteration;
  }

  get lr(): number {
    return this.schedule.at(this.iteration);
  }

  /** loss and gradients of one batch of pairs into this.grads (zeroed first); no update */
  lossAndGrads(x: Tensor, ids: Int32Array | BigInt64Array, idsShape: readonly number[]): { loss: number; logitsPerImage: Float32Array } {
    const m = this.model, B = x.shape[0] ?? 0, E = m.config.embed_dim;
    if (idsShape[0] !== B) throw new VitkitError(`Batch has ${B} images but ${idsShape[0]} texts (input_ids ${JSON.stringify(idsShape)}); CLIP trains on pairs`);
    const cache: ClipCache = {};
    const img = this.options.lockImage ? m.encodeImage(x) : m.encodeImage(x, cache);
    const txt = this.options.lockText ? m.encodeText(ids, idsShape) : m.encodeText(ids, idsShape, cache);
    const r = clipLoss(img.data, txt.data, B, E, m.logitScale);
    this.grads.buffer.fill(0);
    m.backward(cache, this.options.lockImage ? null : r.dImage, this.options.lockText ? null : r.dText, r.dLogitScale, this.grads);
    return { loss: r.loss, logitsPerImage: r.logitsPerImage };
  }

  /** One iteration: loss -> backward -> (clip) -> AdamW -> clamp logit_scale to [0, ln 100]. */
  step(x: Tensor, ids: Int32Array | BigInt64Array, idsShape: readonly number[]): ClipStepResult {
    const { loss } = this.lossAndGrads(x, ids, idsShape);
    const norm = this.options.clipGrad !== undefined ? clipGradNorm(this.grads, this.options.clipGrad) : gradNorm(this.grads);
    const lr = this.schedule.at(this.iteration);
    this.optimizer.step(this.grads, lr);
    const ls = this.model.params.get('logit_scale');
    ls[0] = Math.min(Math.max(ls[0]!, 0), LOGIT_SCALE_MAX);
    this.iteration++;
    return { loss, lr, gradNorm: norm, scale: Math.exp(ls[0]!) };
  }

  /** mean ClipLoss and image->text / text->image retrieval accuracy of a batch, no state touched */
  evaluate(x: Tensor, ids: Int32Array | BigInt64Array, idsShape: readonly number[]): { loss: number; i2t: number; t2i: number; count: number } {
    const m = this.model, B = x.shape[0] ?? 0, E = m.config.embed_dim;
    const img = m.encodeImage(x), txt = m.encodeText(ids, idsShape);
    const r = clipLoss(img.data, txt.data, B, E, m.logitScale);
    let i2t = 0, t2i = 0;
    const L = r.logitsPerImage;
    for (let i = 0; i < B; i++) {
      let bi = 0, bt = 0;
      for (let j = 1; j < B; j++) {
        if (L[i * B + j]! > L[i * B + bi]!) bi = j;
        if (L[j * B + i]! > L[bt * B + i]!) bt = j;
      }
      if (bi === i) i2t++;
      if (bt === i) t2i++;
    }
    return { loss: r.loss, i2t, t2i, count: B };
  }

  state(): ClipTrainerState {
    return { step: this.iteration, optimizer: this.optimizer.state() };
  }

  loadState(s: ClipTrainerState): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new VitkitError(`Trainer state has an invalid step ${s.step}`);
    this.optimizer.loadState(s.optimizer);
    this.iteration = s.step;
  }
}
