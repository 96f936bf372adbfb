/**
 * Training on a device: the Trainer's step (forward keeping activations -> cross entropy ->
 * backward -> clip -> AdamW with timm's groups at the scheduled lr -> EMA) with every op enqueued
 * on the device and one read per step (the loss and the gradient norm, after the update is
 * enqueued). The same model code (VitCore over DeviceTensor) and the same options as Trainer;
 * the moments, the EMA and the weights stay on the device until `download()` / `state()`.
 *
 *   const t = new DeviceTrainer(new DeviceViT(model, dev), { lr: 1e-3, totalSteps: 100 });
 *   const { loss } = await t.step(x, y);
 *   await t.download();   // weights back into model.params
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { DeviceTensor } from '../backend/device.js';
import { DeviceArena, DeviceParamTable, type DeviceViT } from '../models/device.js';
import type { ForwardCache } from '../models/vit.js';
import { checkAdamW, checkEmaDecay, paramGroups, type ParamSegment } from './optim.js';
import type { LrSchedule } from './schedule.js';
import { checkTrainerOptions, scheduleFor, type EvalResult, type StepResult, type TrainerOptions, type TrainerState } from './trainer.js';
import { checkLabels, countCorrect } from './loss.js';

export class DeviceTrainer {
  readonly options: Readonly<TrainerOptions>;
  readonly schedule: LrSchedule;
  readonly segments: readonly ParamSegment[];
  /** dL/dparams of the last step, the model's layout */
  readonly grads: DeviceParamTable;
  private readonly expAvg: DeviceParamTable;
  private readonly expAvgSq: DeviceParamTable;
  private readonly ema: DeviceParamTable | null;
  private readonly arena: DeviceArena;
  private readonly scalars: DeviceTensor; // (2): loss, gradient norm
  private labels: DeviceTensor | null = null; // (B) i32
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private iteration = 0;
  private optStep = 0;

  constructor(readonly model: DeviceViT, opts: TrainerOptions) {
    if (opts.teacher) throw new VitkitError('Hard distillation (a teacher) runs on the cpu device only for now; drop --teacher or use --device cpu');
    checkTrainerOptions(model.config.num_classes, opts);
    const wd = opts.weightDecay ?? 0.05;
    const { betas: [b1, b2], eps } = checkAdamW({ lr: opts.lr, weightDecay: wd, ...(opts.betas ? { betas: opts.betas } : {}), ...(opts.eps !== undefined ? { eps: opts.eps } : {}) });
    if (opts.emaDecay !== undefined) checkEmaDecay(opts.emaDecay);
    this.beta1 = b1;
    this.beta2 = b2;
    this.eps = eps;
    this.options = { ...opts };
    const host = model.model.params, dev = model.dev;
    this.segments = paramGroups(host, {
      weightDecay: wd,
      ...(opts.layerDecay !== undefined ? { layerDecay: opts.layerDecay } : {}),
      ...(opts.noWeightDecay ? { noWeightDecay: opts.noWeightDecay } : {}),
    });
    this.schedule = scheduleFor(opts);
    const zeros = (): DeviceParamTable => {
      const t = new DeviceParamTable(dev, host.specs, host.count);
      dev.fill(t.buffer, 0);
      return t;
    };
    this.grads = zeros();
    this.expAvg = zeros();
    this.expAvgSq = zeros();
    this.ema = null;
    if (opts.emaDecay !== undefined) {
      this.ema = new DeviceParamTable(dev, host.specs, host.count);
      dev.copy(this.ema.buffer, model.params.buffer, host.count);
    }
    this.arena = new DeviceArena(dev);
    this.scalars = dev.alloc([2]);
  }

  get stepCount(): number {
    return this.iteration;
  }

  get lr(): number {
    return this.schedule.at(this.iteration);
  }

  private labelTensor(y: Int32Array): DeviceTensor {
    const dev = this.model.dev;
    if (!this.labels || this.labels.size !== y.length) {
      if (this.labels) dev.release(this.labels);
      this.labels = dev.alloc([y.length], 'i32');
    }
    dev.write(this.labels, y);
    return this.labels;
  }

  /** One iteration on x (B, C, H, W) with hard labels (B); the loss before the update, the lr, the gradient norm before clipping. */
  async step(x: Tensor, y: Int32Array | Float32Array): Promise<StepResult> {
    const m = this.model, dev = m.dev, c = m.config, K = c.num_classes;
    if (!(y instanceof Int32Array)) throw new VitkitError('Soft targets (mixup / cutmix) train on the cpu device only for now; drop --mixup/--cutmix or use --device cpu');
    const B = x.shape[0] ?? 0;
    if (y.length !== B) throw new VitkitError(`Batch has ${B} images but the targets have ${y.length} values (expected ${B} labels)`);
    checkLabels(y, K);
    this.arena.reset();
    const mem = this.arena.mem();
    const inp = m.input(x, mem);
    const labels = this.labelTensor(y);
    const cache = { mem } as unknown as ForwardCache<DeviceTensor>;
    const f = m.featuresOn(inp.x, B, inp.layout, mem, { cache });
    const logits = m.core.head(f.features, B, inp.layout.N, true, mem, cache).logits!; // (B, K)
    const ls = this.options.labelSmoothing ?? 0;
    const loss = dev.view(this.scalars, 0, [1]), norm = dev.view(this.scalars, 1, [1]);
    dev.crossEntropyForward(loss, logits, labels, B, K, ls);
    const dlogits = mem.take(B * K, false); // (B, K)
    dev.crossEntropyBackward(dlogits, logits, labels, B, K, ls);
    dev.fill(this.grads.buffer, 0);
    m.core.backward(cache, dlogits, this.grads, mem);
    const n = this.grads.buffer.size;
    if (this.options.clipGrad !== undefined) dev.clipGradNorm(this.grads.buffer, norm, n, this.options.clipGrad);
    else dev.gradNorm(norm, this.grads.buffer, n);
    const lr = this.schedule.at(this.iteration);
    this.optStep++;
    for (const s of this.segments) {
      dev.adamw(m.params.get(s.name), this.grads.get(s.name), this.expAvg.get(s.name), this.expAvgSq.get(s.name), s.length,
        lr * s.lrScale, this.beta1, this.beta2, this.eps, s.weightDecay, this.optStep);
    }
    if (this.ema) dev.emaUpdate(this.ema.buffer, m.params.buffer, this.options.emaDecay!, n);
    this.iteration++;
    const r = await dev.read(this.scalars);
    return { loss: r[0]!, lr, gradNorm: r[1]! };
  }

  /** Loss (no smoothing) and correct count on a batch with the current device weights (`ema`: the EMA weights). */
  async evaluate(x: Tensor, y: Int32Array, opts: { ema?: boolean } = {}): Promise<EvalResult> {
    const m = this.model, dev = m.dev, K = m.config.num_classes;
    if (opts.ema && !this.ema) throw new VitkitError('evaluate({ ema: true }) needs a DeviceTrainer created with emaDecay');
    const B = x.shape[0] ?? 0;
    if (y.length !== B) throw new VitkitError(`Batch has ${B} images but ${y.length} labels`);
    checkLabels(y, K);
    if (opts.ema) dev.copy(this.evalSwap(), m.params.buffer, m.params.buffer.size);
    if (opts.ema) dev.copy(m.params.buffer, this.ema!.buffer, m.params.buffer.size);
    try {
      this.arena.reset();
      const mem = this.arena.mem();
      const inp = m.input(x, mem);
      const f = m.featuresOn(inp.x, B, inp.layout, mem);
      const logits = m.core.head(f.features, B, inp.layout.N, true, mem).logits!; // (B, K)
      const loss = dev.view(this.scalars, 0, [1]);
      dev.crossEntropyForward(loss, logits, this.labelTensor(y), B, K, 0);
      const host = (await dev.read(logits)).slice();
      const l = (await dev.read(this.scalars))[0]!;
      return { loss: l, correct: countCorrect(host, y, K), count: B, logits: new Tensor([B, K], host) };
    } finally {
      if (opts.ema) dev.copy(m.params.buffer, this.evalSwap(), m.params.buffer.size);
    }
  }

  private swap: DeviceTensor | null = null;
  private evalSwap(): DeviceTensor {
    this.swap ??= this.model.dev.alloc([this.model.params.buffer.size]);
    return this.swap;
  }

  /** Weights (and, with `ema`, the EMA weights into `ema`) back into host memory. */
  async download(): Promise<void> {
    await this.model.download();
  }

  /** The EMA weights on the host (model layout), or null without EMA. */
  async emaWeights(): Promise<Float32Array | null> {
    return this.ema ? (await this.model.dev.read(this.ema.buffer)).slice() : null;
  }

  /** Everything needed to resume (read from the device): the same TrainerState the host Trainer saves. */
  async state(): Promise<TrainerState> {
    const dev = this.model.dev;
    const s: TrainerState = {
      step: this.iteration,
      optimizer: { step: this.optStep, expAvg: (await dev.read(this.expAvg.buffer)).slice(), expAvgSq: (await dev.read(this.expAvgSq.buffer)).slice() },
    };
    const e = await this.emaWeights();
    if (e) s.ema = e;
    return s;
  }

  /** Restores a TrainerState (from either trainer); the weights come with the model (upload them first). */
  loadState(s: TrainerState): void {
    const dev = this.model.dev, n = this.grads.buffer.size;
    if (!Number.isInteger(s.step) || s.step < 0) throw new VitkitError(`Trainer state has an invalid step ${s.step}`);
    if (!Number.isInteger(s.optimizer.step) || s.optimizer.step < 0) throw new VitkitError(`Optimizer state has an invalid step count ${s.optimizer.step}`);
    if (s.optimizer.expAvg.length !== n || s.optimizer.expAvgSq.length !== n) {
      throw new VitkitError(`Optimizer state has ${s.optimizer.expAvg.length} / ${s.optimizer.expAvgSq.length} moments but the model has ${n} parameters`);
    }
    dev.write(this.expAvg.buffer, s.optimizer.expAvg);
    dev.write(this.expAvgSq.buffer, s.optimizer.expAvgSq);
    if (this.ema) {
      if (s.ema) {
        if (s.ema.length !== n) throw new VitkitError(`EMA state has ${s.ema.length} values but the model has ${n} parameters`);
        dev.write(this.ema.buffer, s.ema);
      } else {
        dev.copy(this.ema.buffer, this.model.params.buffer, n);
      }
    }
    this.iteration = s.step;
    this.optStep = s.optimizer.step;
  }

  /** Gives the trainer's device buffers back (the model keeps its own). */
  release(): void {
    const dev = this.model.dev;
    this.arena.release();
    for (const t of [this.grads, this.expAvg, this.expAvgSq, this.ema]) t?.release();
    dev.release(this.scalars);
    if (this.labels) dev.release(this.labels);
    if (this.swap) dev.release(this.swap);
  }
}
