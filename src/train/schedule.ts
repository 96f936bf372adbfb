/**
 * Learning-rate schedules, stepped once per iteration (step s = 0, 1, 2, ... is the s-th optimizer
 * step). Cosine with linear warmup is the recipe of shared/anchors/mnist_pytorch_calibration.py
 * (a torch LambdaLR), extended with a floor minLr:
 *   s <  warm: lr = base * (s + 1) / warm
 *   s >= warm: lr = minLr + (base - minLr) * 0.5 * (1 + cos(pi * min(1, (s - warm) / max(1, total - warm))))
 * With minLr = 0 this is exactly the calibration recipe for s < total; past total it stays at minLr.
 * Constant: base after the same linear warmup.
 */
import { VitkitError } from '../errors.js';

export type ScheduleKind = 'cosine' | 'constant';

export interface ScheduleOptions {
  kind: ScheduleKind;
  /** peak learning rate */
  lr: number;
  /** linear warmup steps (0 = none) */
  warmupSteps?: number;
  /** total optimizer steps of the run (cosine only) */
  totalSteps?: number;
  /** cosine floor (default 0) */
  minLr?: number;
}

export class LrSchedule {
  readonly kind: ScheduleKind;
  readonly base: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly minLr: number;

  constructor(opts: ScheduleOptions) {
    this.kind = opts.kind;
    this.base = opts.lr;
    this.warmupSteps = opts.warmupSteps ?? 0;
    this.totalSteps = opts.totalSteps ?? 0;
    this.minLr = opts.minLr ?? 0;
    if (opts.kind !== 'cosine' && opts.kind !== 'constant') throw new VitkitError(`Expected schedule 'cosine' or 'constant' but received ${JSON.stringify(opts.kind)}`);
    if (!(this.base >= 0)) throw new VitkitError(`Expected lr >= 0 but received ${this.base}`);
    if (!Number.isInteger(this.warmupSteps) || this.warmupSteps < 0) throw new VitkitError(`Expected warmupSteps to be an integer >= 0 but received ${this.warmupSteps}`);
    if (!(this.minLr >= 0)) throw new VitkitError(`Expected minLr >= 0 but received ${this.minLr}`);
    if (this.kind === 'cosine' && (!Number.isInteger(this.totalSteps) || this.totalSteps < 1)) {
      throw new VitkitError(`The cosine schedule needs totalSteps, an integer >= 1 (received ${opts.totalSteps})`);
    }
  }

  /** learning rate for optimizer step s (0-based) */
  at(s: number): number {
    const warm = this.warmupSteps;
    if (s < warm) return this.base * (s + 1) / warm;
    if (this.kind === 'constant') return this.base;
    const progress = Math.min(1, (s - warm) / Math.max(1, this.totalSteps - warm));
    return this.minLr + (this.base - this.minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
}
