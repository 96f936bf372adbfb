/**
 * Trainer: one object that owns everything a training run updates: the model's parameters, a
 * gradient table, AdamW with timm's parameter groups, the lr schedule, gradient clipping and an
 * optional weight EMA. Each `step` is: forward (keeping activations) -> cross entropy ->
 * backward -> clip -> AdamW at the scheduled lr -> EMA -> advance the schedule, the order of a
 * timm / PyTorch train loop (loss.backward(); clip_grad_norm_; opt.step(); ema.update; sched.step()).
 *
 *   const trainer = new Trainer(model, { lr: 2e-3, weightDecay: 0.05, labelSmoothing: 0.1,
 *     schedule: 'cosine', warmupSteps: 63, totalSteps: 1890 });
 *   for (...) { const { loss, lr, gradNorm } = trainer.step(x, y); }
 *   const { loss, correct, count } = trainer.evaluate(xTest, yTest);
 *   saveTrainerState(file, trainer.state()); ... trainer.loadState(loadTrainerState(file));  (trainer_file.ts, Node)
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { emptyCache } from '../models/vit.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import { ParamTable } from '../nn/params.js';
import { argmaxRows } from '../nn/functional.js';
import type { SafetensorsFile, StTensorIn } from '../io/safetensors_bytes.js';
import { Arena } from '../nn/arena.js';
import { crossEntropy, countCorrect } from './loss.js';
import { AdamW, ModelEma, clipGradNorm, gradNorm, type AdamWState } from './optim.js';
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
  /** cross-entropy label smoothing (torch's label_smoothing); default 0 */
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
   * DistillationLoss, distillation_type 'hard', alpha 0.5). The teacher runs in inference mode.
   */
  teacher?: Model;
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


/** The checks every trainer (host and device) makes of its model's head and of the loss and clipping options. */
export function checkTrainerOptions(numClasses: number, opts: TrainerOptions): void {
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

export class Trainer {
  readonly model: Model;
  /** dL/dparams of the last step (before clipping is applied in place), model.params layout */
  readonly grads: ParamTable;
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly ema: ModelEma | null;
  readonly options: Readonly<TrainerOptions>;
  private iteration = 0;
  private emaView: Model | null = null;
  /** the step's activation and gradient buffers, reused across steps */
  private readonly arena = new Arena();

  constructor(model: Model, opts: TrainerOptions) {
    checkTrainerOptions(model.config.num_classes, opts);
    if (opts.teacher) {
      if (!model.config.distilled) throw new VitkitError('A teacher needs a distilled student (config.distilled true: a dist_token and head_dist)');
      if (opts.teacher.config.num_classes !== model.config.num_classes) {
        throw new VitkitError(`The teacher has ${opts.teacher.config.num_classes} classes but the student has ${model.config.num_classes}`);
      }
    }
    this.model = model;
    this.options = { ...opts };
    this.grads = model.params.like();
    this.optimizer = new AdamW(model.params, {
      lr: opts.lr, weightDecay: opts.weightDecay ?? 0.05,
      ...(opts.betas ? { betas: opts.betas } : {}),
      ...(opts.eps !== undefined ? { eps: opts.eps } : {}),
      ...(opts.layerDecay !== undefined ? { layerDecay: opts.layerDecay } : {}),
      ...(opts.noWeightDecay ? { noWeightDecay: opts.noWeightDecay } : {}),
      backend: model.backend,
    });
    this.schedule = scheduleFor(opts);
    this.ema = opts.emaDecay !== undefined ? new ModelEma(model.params, opts.emaDecay, model.backend) : null;
  }

  /** iterations done so far */
  get stepCount(): number {
    return this.iteration;
  }

  /** learning rate the next step will use */
  get lr(): number {
    return this.schedule.at(this.iteration);
  }

  /**
   * One training iteration on a batch x (B, C, H, W) with hard labels (Int32Array (B)) or soft
   * targets (Float32Array (B*K)). Returns the loss before the update, the lr used and the
   * gradient norm before clipping.
   */
  step(x: Tensor, target: Int32Array | Float32Array): StepResult {
    const m = this.model, K = m.config.num_classes;
    const B = x.shape[0] ?? 0;
    const want = target instanceof Int32Array ? B : B * K;
    if (target.length !== want) {
      throw new VitkitError(`Batch has ${B} images but the targets have ${target.length} values (expected ${target instanceof Int32Array ? `${B} labels` : `${B} x ${K} soft targets`})`);
    }
    // activations and gradients reuse the previous step's buffers (they are dead by now)
    this.arena.reset();
    const be = m.backend;
    const cache = emptyCache(this.arena);
    const ls = this.options.labelSmoothing ?? 0;
    this.grads.buffer.fill(0);
    let loss: number;
    const extra: Partial<StepResult> = {};
    const teacher = this.options.teacher;
    if (teacher) {
      // DeiT hard distillation: the distillation head learns the teacher's argmax
      const yt = argmaxRows(teacher.forward(x).data, B, K);
      const f = m.forwardFeatures(x, { cache });
      const h = m.forwardHeads(f.features, { cache });
      const a = crossEntropy(h.clsLogits!, target, ls, K, be), b = crossEntropy(h.distLogits!, yt, 0, K, be);
      be.scale(a.dlogits, a.dlogits, 0.5, B * K);
      be.scale(b.dlogits, b.dlogits, 0.5, B * K);
      m.backward(cache, a.dlogits, this.grads, { dDistLogits: b.dlogits });
      loss = (a.loss + b.loss) / 2;
      extra.clsLoss = a.loss;
      extra.distLoss = b.loss;
    } else {
      const logits = m.forward(x, { cache });
      const r = crossEntropy(logits, target, ls, K, be);
      m.backward(cache, r.dlogits, this.grads);
      loss = r.loss;
    }
    const norm = this.options.clipGrad !== undefined ? clipGradNorm(this.grads, this.options.clipGrad, be) : gradNorm(this.grads, be);
    const lr = this.schedule.at(this.iteration);
    this.optimizer.step(this.grads, lr);
    this.ema?.update(m.params);
    this.iteration++;
    return { loss, lr, gradNorm: norm, ...extra };
  }

  /** A model sharing the EMA weights (null without EMA); its weights follow every step. */
  emaModel(): Model | null {
    if (!this.ema) return null;
    this.emaView ??= createModel(this.model.config, { family: this.model.family, params: this.ema.params, backend: this.model.backend });
    this.emaView.backend = this.model.backend;
    return this.emaView;
  }

  /** Loss (no smoothing) and correct count on a batch, without touching any state; `ema` evaluates the EMA weights. */
  evaluate(x: Tensor, y: Int32Array, opts: { ema?: boolean } = {}): EvalResult {
    const model = opts.ema ? this.emaModel() : this.model;
    if (!model) throw new VitkitError('evaluate({ ema: true }) needs a Trainer created with emaDecay');
    const B = x.shape[0] ?? 0, K = model.config.num_classes;
    if (y.length !== B) throw new VitkitError(`Batch has ${B} images but ${y.length} labels`);
    const logits = model.forward(x);
    const { loss } = crossEntropy(logits, y, 0, K, model.backend);
    return { loss, correct: countCorrect(logits.data, y, K), count: B, logits };
  }

  state(): TrainerState {
    const s: TrainerState = { step: this.iteration, optimizer: this.optimizer.state() };
    if (this.ema) s.ema = this.ema.state();
    return s;
  }

  /** Restore optimizer moments, step counts and EMA (the weights are loaded separately, e.g. loadModel). */
  loadState(s: TrainerState): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new VitkitError(`Trainer state has an invalid step ${s.step}`);
    this.optimizer.loadState(s.optimizer);
    if (this.ema) {
      if (s.ema) this.ema.loadState(s.ema);
      else this.ema.params.buffer.set(this.model.params.buffer); // resuming a run that had no EMA: start it here
    }
    this.iteration = s.step;
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
