/**
 * Trainer: the one training step of vitkit, on every device. It owns everything a training run
 * updates: the model's parameters on the device, a gradient table, AdamW with timm's parameter
 * groups, the lr schedule, gradient clipping and an optional weight EMA. Each `step` is: forward
 * (keeping activations) -> cross entropy (hard labels, soft mixup / cutmix targets, or DeiT hard
 * distillation against a teacher run on the same device) -> backward -> clip -> AdamW at the
 * scheduled lr -> EMA -> advance the schedule, the order of a timm / PyTorch train loop
 * (loss.backward(); clip_grad_norm_; opt.step(); ema.update; sched.step()). Every op is enqueued
 * on the device and the host reads once per step (the losses and the gradient norm).
 *
 * The model is a DeviceViT (models/device.ts) over a ComputeDevice, or a host model, which is put
 * on `opts.device` (default: the cpu device, HostDevice over the model's backend, which shares the
 * host weights without a copy, so on cpu the host model is always the trained one).
 *
 *   const trainer = new Trainer(model, { lr: 2e-3, weightDecay: 0.05, labelSmoothing: 0.1,
 *     schedule: 'cosine', warmupSteps: 63, totalSteps: 1890 });            // + device: webgpu
 *   for (...) { const { loss, lr, gradNorm } = await trainer.step(x, y); }
 *   const { loss, correct, count } = await trainer.evaluate(xTest, yTest);
 *   await trainer.download();  // weights back into the host model (nothing to do on cpu)
 *   saveTrainerState(file, await trainer.state()); ... trainer.loadState(loadTrainerState(file));  (trainer_file.ts, Node)
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { DeviceTensor } from '../backend/device.js';
import { HostDevice } from '../backend/host_device.js';
import { checkPixelShape, type ForwardCache, type VisionTransformer } from '../models/vit.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import { DeviceArena, DeviceParamTable, DeviceViT, type ComputeDevice } from '../models/device.js';
import { ParamTable } from '../nn/params.js';
import type { SafetensorsFile, StTensorIn } from '../io/safetensors_bytes.js';
import { checkLabels, countCorrect } from './loss.js';
import { checkAdamW, checkEmaDecay, paramGroups, type AdamWState, type ParamSegment } from './optim.js';
import { LrSchedule, type ScheduleKind } from './schedule.js';

export interface TrainerOptions {
  /** peak (base) learning rate */
  lr: number;
  /** AdamW decoupled weight decay on tensors with ndim >= 2 except pos_embed / cls_token (timm's grouping); default 0.05 */
  weightDecay?: number;
  /** AdamW betas; default [0.9, 0.999] */
  betas?: [number, number];
  /** AdamW eps (outside the sqrt); default 1e-8 */
  eps?: number;
  /**
   * cross-entropy label smoothing (torch's label_smoothing); default 0. With soft targets torch's
   * probability-target smoothing (1 - ε) t + ε / K; timm's mixup folds it into the targets: pass 0 there.
   */
  labelSmoothing?: number;
  /** clip the global gradient L2 norm to this (torch clip_grad_norm_); undefined = no clipping */
  clipGrad?: number;
  /** lr schedule stepped per iteration; default 'cosine' when totalSteps is given, else 'constant' */
  schedule?: ScheduleKind;
  /** linear warmup iterations: lr = lr * (s + 1) / warmupSteps for s < warmupSteps; default 0 */
  warmupSteps?: number;
  /** total iterations of the run (needed by 'cosine') */
  totalSteps?: number;
  /** cosine floor; default 0 */
  minLr?: number;
  /** layer-wise lr decay (timm param_groups_layer_decay), e.g. 0.75 for fine-tuning; undefined = none */
  layerDecay?: number;
  /** keep an EMA of the weights with this decay (timm ModelEmaV2), e.g. 0.9998; undefined = none */
  emaDecay?: number;
  /** parameter names excluded from weight decay besides 1-D tensors; default pos_embed, cls_token, dist_token */
  noWeightDecay?: string[];
  /**
   * DeiT hard distillation (the student must be `distilled`): loss = (CE(class head, y) +
   * CE(distillation head, argmax teacher(x))) / 2, label smoothing on the first term only (DeiT's
   * DistillationLoss, distillation_type 'hard', alpha 0.5). The teacher runs in inference mode on
   * the trainer's device (a host model is put there; on cpu without a copy).
   */
  teacher?: Model | DeviceViT;
  /** where a host model trains (default: the cpu device over the model's backend); a DeviceViT brings its own */
  device?: ComputeDevice;
}

export interface StepResult {
  /** mean loss of the batch before the update */
  loss: number;
  /** with a teacher: the two terms of the distillation loss (class head vs labels, distillation head vs the teacher) */
  clsLoss?: number;
  distLoss?: number;
  /** learning rate used by this step (before any layer-decay scale) */
  lr: number;
  /** global L2 norm of the gradients before clipping */
  gradNorm: number;
}

export interface EvalResult {
  /** mean cross entropy (no label smoothing) */
  loss: number;
  /** rows whose argmax is the label */
  correct: number;
  /** rows evaluated */
  count: number;
  /** (B, K) */
  logits: Tensor;
}

/** Everything besides the model weights needed to resume a run exactly. */
export interface TrainerState {
  /** iterations done (the schedule position) */
  step: number;
  optimizer: AdamWState;
  /** EMA weights (params layout) when the trainer keeps an EMA */
  ema?: Float32Array;
}

/** The checks of a trainer's model head and of the loss and clipping options. */
function checkTrainerOptions(numClasses: number, opts: TrainerOptions): void {
  if (numClasses < 1) throw new VitkitError('Training needs a classifier head: the model has num_classes 0');
  const ls = opts.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls < 1)) throw new VitkitError(`Expected labelSmoothing in [0, 1) but received ${ls}`);
  if (opts.clipGrad !== undefined && !(opts.clipGrad > 0)) throw new VitkitError(`Expected clipGrad > 0 but received ${opts.clipGrad}`);
}

/** The lr schedule of a trainer's options: cosine when totalSteps is given, else constant, unless `schedule` says. */
export function scheduleFor(opts: TrainerOptions): LrSchedule {
  return new LrSchedule({
    kind: opts.schedule ?? (opts.totalSteps !== undefined ? 'cosine' : 'constant'), lr: opts.lr,
    warmupSteps: opts.warmupSteps ?? 0, totalSteps: opts.totalSteps ?? 0, minLr: opts.minLr ?? 0,
  });
}

/** a host model on `dev` (the cpu device over its backend by default), or the DeviceViT itself */
function onDevice(m: Model | DeviceViT, dev: ComputeDevice | undefined, what: string): DeviceViT {
  if (m instanceof DeviceViT) {
    if (dev && m.dev !== dev) throw new VitkitError(`The ${what} is a device model on ${m.dev.name} but the trainer's device option is ${dev.name}`);
    return m;
  }
  return new DeviceViT(m as VisionTransformer, dev ?? new HostDevice(m.backend));
}

export class Trainer {
  /** the model on the device (its weights are trained in place) */
  readonly deviceModel: DeviceViT;
  readonly options: Readonly<TrainerOptions>;
  readonly schedule: LrSchedule;
  readonly segments: readonly ParamSegment[];
  /** dL/dparams of the last step (after clipping), the model's layout, on the device */
  readonly grads: DeviceParamTable;
  private readonly expAvg: DeviceParamTable;
  private readonly expAvgSq: DeviceParamTable;
  private readonly ema: DeviceParamTable | null;
  private readonly teacher: DeviceViT | null;
  private readonly arena: DeviceArena;
  private readonly scalars: DeviceTensor; // (3): class-head loss, distillation loss, gradient norm
  private labels: DeviceTensor | null = null; // (B) i32
  private teacherLabels: DeviceTensor | null = null; // (B) i32
  private soft: DeviceTensor | null = null; // (B, K)
  private swap: DeviceTensor | null = null; // (P): the trained weights while the EMA weights are evaluated
  private emaHost: Model | null = null;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private iteration = 0;
  private optStep = 0;

  constructor(model: Model | DeviceViT, opts: TrainerOptions) {
    const cfg = model.config;
    checkTrainerOptions(cfg.num_classes, opts);
    if (opts.teacher) {
      if (!cfg.distilled) throw new VitkitError('A teacher needs a distilled student (config.distilled true: a dist_token and head_dist)');
      if (opts.teacher.config.num_classes !== cfg.num_classes) {
        throw new VitkitError(`The teacher has ${opts.teacher.config.num_classes} classes but the student has ${cfg.num_classes}`);
      }
    }
    const wd = opts.weightDecay ?? 0.05;
    const { betas: [b1, b2], eps } = checkAdamW({ lr: opts.lr, weightDecay: wd, ...(opts.betas ? { betas: opts.betas } : {}), ...(opts.eps !== undefined ? { eps: opts.eps } : {}) });
    if (opts.emaDecay !== undefined) checkEmaDecay(opts.emaDecay);
    this.schedule = scheduleFor(opts);
    const host = model instanceof DeviceViT ? model.model.params : model.params;
    this.segments = paramGroups(host, {
      weightDecay: wd,
      ...(opts.layerDecay !== undefined ? { layerDecay: opts.layerDecay } : {}),
      ...(opts.noWeightDecay ? { noWeightDecay: opts.noWeightDecay } : {}),
    });
    const dm = onDevice(model, opts.device, 'model');
    const dev = dm.dev;
    this.deviceModel = dm;
    this.teacher = opts.teacher ? onDevice(opts.teacher, dev, 'teacher') : null;
    this.beta1 = b1;
    this.beta2 = b2;
    this.eps = eps;
    const { teacher: _t, device: _d, ...plain } = opts;
    this.options = plain;
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
      dev.copy(this.ema.buffer, dm.params.buffer, host.count);
    }
    this.arena = new DeviceArena(dev);
    this.scalars = dev.alloc([3]);
  }

  /** the host model (its weights are the trained ones after `download()`; always on cpu) */
  get model(): VisionTransformer {
    return this.deviceModel.model;
  }

  get dev(): ComputeDevice {
    return this.deviceModel.dev;
  }

  /** iterations done so far */
  get stepCount(): number {
    return this.iteration;
  }

  /** learning rate the next step will use */
  get lr(): number {
    return this.schedule.at(this.iteration);
  }

  private reuse(t: DeviceTensor | null, n: number, dtype: 'f32' | 'i32'): DeviceTensor {
    if (t && t.size === n) return t;
    if (t) this.dev.release(t);
    return this.dev.alloc([n], dtype);
  }

  private labelTensor(y: Int32Array): DeviceTensor {
    this.labels = this.reuse(this.labels, y.length, 'i32');
    this.dev.write(this.labels, y);
    return this.labels;
  }

  /** the teacher's argmax (B) i32 of the batch already on the device, x (B, C, H, W), enqueued */
  private teacherTargets(x: DeviceTensor, shape: readonly number[], B: number): DeviceTensor {
    const t = this.teacher!, K = t.config.num_classes;
    const layout = checkPixelShape(t.config, shape);
    t.arena.reset();
    const mem = t.arena.mem();
    const f = t.featuresOn(x, B, layout, mem);
    const logits = t.core.head(f.features, B, layout.N, true, mem).logits!; // (B, K)
    this.teacherLabels = this.reuse(this.teacherLabels, B, 'i32');
    this.dev.argmaxRows(this.teacherLabels, logits, B, K);
    return this.teacherLabels;
  }

  /**
   * One training iteration on a batch x (B, C, H, W) with hard labels (Int32Array (B)) or soft
   * targets (Float32Array (B*K), mixup / cutmix). Returns the loss before the update, the lr used
   * and the gradient norm before clipping (with a teacher also both terms of the loss).
   */
  async step(x: Tensor, target: Int32Array | Float32Array): Promise<StepResult> {
    const m = this.deviceModel, dev = m.dev, K = m.config.num_classes;
    const B = x.shape[0] ?? 0;
    const hard = target instanceof Int32Array;
    const want = hard ? B : B * K;
    if (target.length !== want) {
      throw new VitkitError(`Batch has ${B} images but the targets have ${target.length} values (expected ${hard ? `${B} labels` : `${B} x ${K} soft targets`})`);
    }
    if (hard) checkLabels(target, K);
    // activations and gradients reuse the previous step's buffers (they are dead by now)
    this.arena.reset();
    const mem = this.arena.mem();
    const inp = m.input(x, mem);
    let tgt: DeviceTensor;
    if (hard) {
      tgt = this.labelTensor(target);
    } else {
      this.soft = this.reuse(this.soft, B * K, 'f32');
      dev.write(this.soft, target);
      tgt = this.soft;
    }
    const ls = this.options.labelSmoothing ?? 0;
    const clsLoss = dev.view(this.scalars, 0, [1]), distLoss = dev.view(this.scalars, 1, [1]), norm = dev.view(this.scalars, 2, [1]);
    const teacherY = this.teacher ? this.teacherTargets(inp.x, x.shape, B) : null;
    const cache = { mem } as unknown as ForwardCache<DeviceTensor>;
    const f = m.featuresOn(inp.x, B, inp.layout, mem, { cache });
    const h = m.core.head(f.features, B, inp.layout.N, true, mem, cache);
    const ce = (loss: DeviceTensor, dlogits: DeviceTensor, logits: DeviceTensor) => {
      if (hard) {
        dev.crossEntropyForward(loss, logits, tgt, B, K, ls);
        dev.crossEntropyBackward(dlogits, logits, tgt, B, K, ls);
      } else {
        dev.softCrossEntropyForward(loss, logits, tgt, B, K, ls);
        dev.softCrossEntropyBackward(dlogits, logits, tgt, B, K, ls);
      }
    };
    dev.fill(this.grads.buffer, 0);
    if (teacherY) {
      // DeiT hard distillation: the distillation head learns the teacher's argmax, no smoothing
      const da = mem.take(B * K, false), db = mem.take(B * K, false); // (B, K), (B, K)
      ce(clsLoss, da, h.cls!);
      dev.crossEntropyForward(distLoss, h.dist!, teacherY, B, K, 0);
      dev.crossEntropyBackward(db, h.dist!, teacherY, B, K, 0);
      dev.scale(da, da, 0.5, B * K);
      dev.scale(db, db, 0.5, B * K);
      m.core.backward(cache, da, this.grads, mem, { dDistLogits: db });
    } else {
      const dlogits = mem.take(B * K, false); // (B, K)
      ce(clsLoss, dlogits, h.logits!);
      m.core.backward(cache, dlogits, this.grads, mem);
    }
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
    if (!teacherY) return { loss: r[0]!, lr, gradNorm: r[2]! };
    return { loss: (r[0]! + r[1]!) / 2, clsLoss: r[0]!, distLoss: r[1]!, lr, gradNorm: r[2]! };
  }

  /** runs `f` with the EMA weights in the model's place when `ema` (the trained weights are put back after) */
  private async withWeights<R>(ema: boolean, f: () => Promise<R>): Promise<R> {
    if (!ema) return f();
    if (!this.ema) throw new VitkitError('evaluate({ ema: true }) needs a Trainer created with emaDecay');
    const dev = this.dev, p = this.deviceModel.params.buffer, n = p.size;
    this.swap ??= dev.alloc([n]);
    dev.copy(this.swap, p, n);
    dev.copy(p, this.ema.buffer, n);
    try {
      return await f();
    } finally {
      dev.copy(p, this.swap, n);
    }
  }

  /** Logits (B, K) of x with the current weights (`ema`: the EMA weights), e.g. for validation. */
  async forward(x: Tensor, opts: { ema?: boolean } = {}): Promise<Tensor> {
    return this.withWeights(opts.ema ?? false, () => this.deviceModel.forward(x));
  }

  /** Loss (no smoothing) and correct count on a batch, without touching any state; `ema` evaluates the EMA weights. */
  async evaluate(x: Tensor, y: Int32Array, opts: { ema?: boolean } = {}): Promise<EvalResult> {
    const m = this.deviceModel, dev = m.dev, K = m.config.num_classes;
    if (opts.ema && !this.ema) throw new VitkitError('evaluate({ ema: true }) needs a Trainer created with emaDecay');
    const B = x.shape[0] ?? 0;
    if (y.length !== B) throw new VitkitError(`Batch has ${B} images but ${y.length} labels`);
    checkLabels(y, K);
    return this.withWeights(opts.ema ?? false, async () => {
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
    });
  }

  /** Brings the trained weights into the host model (`model`); nothing to do on the cpu device, which shares them. */
  async download(): Promise<void> {
    await this.deviceModel.download();
  }

  /** A host model with the EMA weights as of this call (null without EMA), e.g. for a checkpoint. */
  async emaModel(): Promise<Model | null> {
    if (!this.ema) return null;
    const host = this.model;
    this.emaHost ??= createModel(host.config, { family: host.family, params: new ParamTable(host.params.specs), backend: host.backend });
    this.emaHost.params.buffer.set(await this.dev.read(this.ema.buffer));
    return this.emaHost;
  }

  /** Everything needed to resume (read from the device). */
  async state(): Promise<TrainerState> {
    const dev = this.dev;
    const s: TrainerState = {
      step: this.iteration,
      optimizer: { step: this.optStep, expAvg: (await dev.read(this.expAvg.buffer)).slice(), expAvgSq: (await dev.read(this.expAvgSq.buffer)).slice() },
    };
    if (this.ema) s.ema = (await dev.read(this.ema.buffer)).slice();
    return s;
  }

  /**
   * Restores optimizer moments, step counts and EMA. The weights are the host model's (load them
   * first, e.g. loadModel or params.buffer.set): they are written to the device here.
   */
  loadState(s: TrainerState): void {
    const dev = this.dev, n = this.grads.buffer.size;
    if (!Number.isInteger(s.step) || s.step < 0) throw new VitkitError(`Trainer state has an invalid step ${s.step}`);
    if (!Number.isInteger(s.optimizer.step) || s.optimizer.step < 0) throw new VitkitError(`Optimizer state has an invalid step count ${s.optimizer.step}`);
    if (s.optimizer.expAvg.length !== n || s.optimizer.expAvgSq.length !== n) {
      throw new VitkitError(`Optimizer state has ${s.optimizer.expAvg.length} / ${s.optimizer.expAvgSq.length} moments but the model has ${n} parameters`);
    }
    this.deviceModel.upload();
    dev.write(this.expAvg.buffer, s.optimizer.expAvg);
    dev.write(this.expAvgSq.buffer, s.optimizer.expAvgSq);
    if (this.ema) {
      if (s.ema) {
        if (s.ema.length !== n) throw new VitkitError(`EMA state has ${s.ema.length} values but the model has ${n} parameters`);
        dev.write(this.ema.buffer, s.ema);
      } else {
        dev.copy(this.ema.buffer, this.deviceModel.params.buffer, n); // resuming a run that had no EMA: start it here
      }
    }
    this.iteration = s.step;
    this.optStep = s.optimizer.step;
  }

  /** Gives the trainer's device buffers back (the models keep theirs). */
  release(): void {
    const dev = this.dev;
    this.arena.release();
    for (const t of [this.grads, this.expAvg, this.expAvgSq, this.ema]) t?.release();
    dev.release(this.scalars);
    for (const t of [this.labels, this.teacherLabels, this.soft, this.swap]) if (t) dev.release(t);
  }
}

/** A TrainerState as safetensors tensors (optimizer.exp_avg, optimizer.exp_avg_sq, ema) and metadata (the steps). */
export function trainerStateTensors(s: TrainerState): { tensors: Record<string, StTensorIn>; metadata: Record<string, string> } {
  const n = s.optimizer.expAvg.length;
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {
    'optimizer.exp_avg': { dtype: 'F32', shape: [n], data: s.optimizer.expAvg }, // (P)
    'optimizer.exp_avg_sq': { dtype: 'F32', shape: [n], data: s.optimizer.expAvgSq }, // (P)
  };
  if (s.ema) tensors['ema'] = { dtype: 'F32', shape: [n], data: s.ema }; // (P)
  return { tensors, metadata: { format: 'vitkit-trainer-state', step: String(s.step), optimizer_step: String(s.optimizer.step) } };
}

/** The TrainerState stored in a parsed safetensors file (`file` names it in errors). */
export function trainerStateFrom(st: SafetensorsFile, file: string): TrainerState {
  const step = Number(st.metadata['step']), ostep = Number(st.metadata['optimizer_step']);
  if (!Number.isInteger(step) || !Number.isInteger(ostep)) throw new VitkitError(`${file} is not a vitkit trainer state (no step metadata)`);
  const s: TrainerState = {
    step,
    optimizer: { step: ostep, expAvg: st.f32('optimizer.exp_avg').data, expAvgSq: st.f32('optimizer.exp_avg_sq').data },
  };
  if (st.has('ema')) s.ema = st.f32('ema').data;
  return s;
}
