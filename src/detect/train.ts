/**
 * One YOLOS training step as hustvl/YOLOS `engine.py` train_one_epoch runs it: forward, the set
 * criterion (matching redone every step), backward, optional gradient clipping (main.py's
 * --clip_max_norm, default 0.1 there; 0 = off) and AdamW with YOLOS main.py's parameter groups:
 * every tensor outside the backbone decays (biases included); backbone tensors of ndim 1, names
 * ending `.bias` and pos_embed / cls_token / det_token do not.
 */
import { VitkitError } from '../errors.js';
import { AdamW, clipGradNorm, checkAdamW } from '../train/optim.js';
import type { ParamTable } from '../nn/params.js';
import type { Tensor } from '../tensor.js';
import { setCriterion, type CriterionOptions, type CriterionResult, type DetTarget } from './criterion.js';
import { emptyYolosCache, type Yolos } from './yolos.js';

/** YOLOS main.py build_optimizer: does this tensor decay? */
export function yolosDecays(name: string, shape: readonly number[]): boolean {
  if (!name.includes('backbone')) return true;
  const last = name.split('.').pop()!;
  return !(shape.length === 1 || name.endsWith('.bias') || last === 'pos_embed' || last === 'cls_token' || last === 'det_token');
}

export interface DetTrainerOptions extends CriterionOptions {
  lr: number;
  weightDecay: number;
  betas?: [number, number];
  eps?: number;
  /** global gradient L2 norm clipping (0 = none) */
  clipMaxNorm?: number;
}

export interface DetStepResult extends CriterionResult {
  /** gradient norm before clipping (when clipping) */
  gradNorm?: number;
}

export class DetTrainer {
  readonly optimizer: AdamW;
  readonly grads: ParamTable;
  private readonly opts: DetTrainerOptions;

  constructor(readonly model: Yolos, opts: DetTrainerOptions) {
    checkAdamW(opts);
    if (opts.clipMaxNorm !== undefined && !(opts.clipMaxNorm >= 0)) throw new VitkitError(`Expected clipMaxNorm >= 0 but received ${opts.clipMaxNorm}`);
    this.opts = opts;
    const adam: ConstructorParameters<typeof AdamW>[1] = { lr: opts.lr, weightDecay: opts.weightDecay, decays: yolosDecays, backend: model.backend };
    if (opts.betas) adam.betas = opts.betas;
    if (opts.eps !== undefined) adam.eps = opts.eps;
    this.optimizer = new AdamW(model.params, adam);
    this.grads = model.params.like();
  }

  /** loss and gradients of one batch (x (B, C, H, W), one target per image), without updating */
  lossAndGrads(x: Tensor, targets: readonly DetTarget[]): CriterionResult {
    const m = this.model, B = x.shape[0]!, Q = m.numDetTokens, K1 = m.config.numClasses + 1;
    if (targets.length !== B) throw new VitkitError(`Expected ${B} targets (one per image of x ${x.shape.join('x')}) but received ${targets.length}`);
    const cache = emptyYolosCache();
    const out = m.forward(x, { cache });
    const res = setCriterion(out.logits.data, out.boxes.data, B, Q, K1, targets, this.opts);
    this.grads.buffer.fill(0);
    m.backward(cache, res.dlogits, res.dboxes, this.grads);
    return res;
  }

  /** one AdamW step on a batch; lr overrides the base rate (a schedule) */
  step(x: Tensor, targets: readonly DetTarget[], lr?: number): DetStepResult {
    const res: DetStepResult = this.lossAndGrads(x, targets);
    if (!Number.isFinite(res.loss)) throw new VitkitError(`Detection loss is ${res.loss} (loss_ce ${res.lossCe}, loss_bbox ${res.lossBbox}, loss_giou ${res.lossGiou}); lower the learning rate`);
    const clip = this.opts.clipMaxNorm ?? 0;
    if (clip > 0) res.gradNorm = clipGradNorm(this.grads, clip, this.model.backend);
    this.optimizer.step(this.grads, lr);
    return res;
  }
}
