/**
 * The training run: epochs of Trainer steps over a BatchLoader, validation after every epoch, and
 * a checkpoint directory that is always complete and resumable.
 *
 * `<out>/` after every epoch (and on Ctrl-C), a folder timm loads as it is
 * (`timm.create_model('local-dir:<out>', pretrained=True)`; layout: train/state.ts STATE_DIR):
 *   config.json + model.safetensors   the model in timm's layout (saveCheckpoint)
 *   ema/                              the EMA weights, same layout (with --ema-decay)
 *   checkpoint/train_state.safetensors  everything a resume needs, in ONE atomically written file:
 *                                     model weights, AdamW moments, EMA, and (metadata "run") the
 *                                     run state: epoch, batch within the epoch, step, settings,
 *                                     the RNG seed, the partial-epoch sums and the metrics history
 *   checkpoint/train_state.json       a readable copy of the run state
 *   metrics.jsonl                     one line per epoch (rewritten whole, atomically)
 *   curves.png                        loss and accuracy curves
 * Each file is written to a temporary name and renamed. Resuming reads train_state.safetensors
 * only, so a crash between two of these writes cannot mix epochs. A run folder from before
 * checkpoint/ (the state at the top level) is read, and its next save moves the state.
 *
 * Exact resume: the sample order of epoch e and the augmentation of batch b are pure functions of
 * (seed, e, b) (data/rng.ts), so a run resumed at (e, b) sees the same batches, in the same order,
 * as a run that never stopped; weights, moments and the schedule position are restored bit for bit.
 */
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { Model } from '../models/model.js';
import { saveCheckpoint, timmConfigJson } from '../checkpoint/checkpoint.js';
import { Trainer, type TrainerState } from './trainer.js';
import { openDevice, type DeviceName } from '../backend/devices.js';
import type { VisionTransformer } from '../models/vit.js';
import { crossEntropy } from './loss.js';
import { BatchLoader } from '../data/loader.js';
import type { Dataset } from '../data/dataset.js';
import type { Pipeline } from '../data/batch.js';
import { defaultAugment, type AugmentSpec } from '../data/augment.js';
import { epochRng } from '../data/rng.js';
import { renderCurves } from './plot.js';
import { RUN_STATE, STATE_DIR, findStateFile, prepareStateDir, readTrainingState, removeLegacyState, stateWritePath, validateRunState, writeTrainingState } from './state.js';
import { cleanStaleTemps, makeDirs, writeFileAtomic } from '../io/files.js';
import { imgHW } from '../models/config.js';
import { argmax } from '../nn/functional.js';
import { StopSignals, type StopSignalName } from './signals.js';
import { DEFAULT_SETTINGS, type DataRecord, type EpochMetrics, type RunState, type TrainSettings } from './state.js';

// the run-state schema lives in state.ts; re-exported for the loop's users
export { DEFAULT_SETTINGS, type DataRecord, type EpochMetrics, type RunState, type TrainSettings };

export interface ModelMeta {
  /** architecture name for config.json */
  name: string;
  pretrainedCfg: Record<string, unknown>;
  labels: string[];
}

export interface ProgressSink {
  epochStart(epoch: number, epochs: number, totalSteps: number, doneSteps: number): void;
  step(s: { done: number; total: number; loss: number; lr: number; imgPerSec: number; etaSeconds: number }): void;
  epochEnd(m: EpochMetrics, epochs: number): void;
  /** a line of text (warnings, notes) */
  message(line: string): void;
}

export interface RunOptions {
  model: Model;
  meta: ModelMeta;
  train: Dataset;
  val: Dataset | null;
  pipeline: Pipeline;
  settings: TrainSettings;
  out: string;
  /** data worker threads (0: inline) */
  workers: number;
  /** continue from this state (readRunState) */
  resume?: LoadedRunState | null;
  progress?: ProgressSink;
  /** stop as Ctrl-C does after this many steps of this call (tests) */
  stopAfterSteps?: number;
  /** install the SIGINT and SIGTERM handlers (default true) */
  handleSigint?: boolean;
  /** recorded in the run state */
  data?: DataRecord;
  /** DeiT hard distillation: the distillation head learns this model's argmax (Trainer's teacher) */
  teacher?: Model;
  /** where the steps run (default cpu) */
  device?: DeviceName;
}

export interface RunResult {
  history: EpochMetrics[];
  /** stopped early (Ctrl-C, SIGTERM or stopAfterSteps) with a resumable checkpoint */
  interrupted: boolean;
  /** the stop came from SIGINT or SIGTERM */
  signal?: boolean;
  /** which of them (the CLI exits 130 for SIGINT, 143 for SIGTERM) */
  signalName?: StopSignalName;
  state: RunState;
}

export interface LoadedRunState {
  /** the file it was read from (<run>/checkpoint/train_state.safetensors, or a legacy <run>/train_state.safetensors) */
  file: string;
  run: RunState;
  weights: Float32Array;
  trainer: TrainerState;
}

export const STATE_FILE = 'train_state.safetensors';

/** The readable copy of the run state, beside STATE_FILE */
const STATE_JSON = 'train_state.json';

/** Read the training state of the run folder `dir` (`<dir>/checkpoint/train_state.safetensors`, or a legacy `<dir>/train_state.safetensors`). */
export function readRunState(dir: string): LoadedRunState {
  const file = findStateFile(dir, STATE_FILE);
  if (file === null) throw new VitkitError(`Cannot resume: no ${STATE_DIR}/${STATE_FILE} in ${dir} (a training run writes it after its first epoch or on Ctrl-C)`);
  const st = readTrainingState<RunState>(file, RUN_STATE);
  const run = validateRunState(st.run, file); // typed, data: null where absent
  const trainer: TrainerState = { step: run.step, optimizer: { step: st.optimizerStep, expAvg: st.expAvg, expAvgSq: st.expAvgSq } };
  if (st.ema) trainer.ema = st.ema;
  return { file, run, weights: st.weights, trainer };
}

function writeAtomic(file: string, data: string | Uint8Array): void {
  writeFileAtomic(file, data, { overwrite: true });
}

function writeRunState(dir: string, model: Model, s: TrainerState, run: RunState): void {
  const tensors: Record<string, Float32Array> = { model: model.params.buffer, 'optimizer.exp_avg': s.optimizer.expAvg, 'optimizer.exp_avg_sq': s.optimizer.expAvgSq };
  if (s.ema) tensors['ema'] = s.ema;
  writeTrainingState(stateWritePath(dir, STATE_FILE), tensors,
    { format: RUN_STATE.fileFormat, step: String(s.step), optimizer_step: String(s.optimizer.step), run: JSON.stringify(run) });
}

/** The settings that matter for a Trainer. */
export function trainerOptions(s: TrainSettings, stepsPerEpoch: number) {
  return {
    lr: s.lr, weightDecay: s.weightDecay,
    // mixup / cutmix targets carry the smoothing (timm's mixup_target); the loss must not smooth again
    labelSmoothing: s.mixup > 0 || s.cutmix > 0 ? 0 : s.labelSmoothing,
    schedule: s.schedule, warmupSteps: Math.round(s.warmupEpochs * stepsPerEpoch), totalSteps: s.epochs * stepsPerEpoch, minLr: s.minLr,
    ...(s.clipGrad !== null ? { clipGrad: s.clipGrad } : {}),
    ...(s.layerDecay !== null ? { layerDecay: s.layerDecay } : {}),
    ...(s.emaDecay !== null ? { emaDecay: s.emaDecay } : {}),
    ...(s.betas ? { betas: s.betas } : {}),
    ...(s.eps !== undefined ? { eps: s.eps } : {}),
  };
}

export function augmentSpec(s: TrainSettings, numClasses: number): AugmentSpec | null {
  const mix = s.mixup > 0 || s.cutmix > 0
    ? { mixupAlpha: s.mixup, cutmixAlpha: s.cutmix, prob: 1, switchProb: 0.5, labelSmoothing: s.labelSmoothing, numClasses }
    : null;
  if (s.augment === 'none' && !mix) return null;
  return defaultAugment(s.augment, mix);
}

export interface EvalReport {
  /** mean cross entropy (no smoothing) */
  loss: number;
  /** top-1 accuracy, percent */
  acc: number;
  /** top-5 accuracy, percent (top-K when K < 5) */
  top5: number;
  count: number;
  /** confusion[true][pred] */
  confusion: number[][];
  /** per-class accuracy, percent (null for a class with no samples) */
  perClass: (number | null)[];
}

/** Evaluate a model over the loader's validation set. */
export async function evaluateModel(model: Model, loader: BatchLoader, batchSize: number,
  forward: (x: Tensor) => Tensor | Promise<Tensor> = (x) => model.forward(x)): Promise<EvalReport> {
  const K = model.config.num_classes;
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let lossSum = 0, count = 0, top1 = 0, top5 = 0;
  const { in_chans: C } = model.config;
  for await (const b of loader.evalBatches(batchSize)) {
    if (b.size === 0) continue;
    const logits = await forward(new Tensor([b.size, C, ...imgHW(model.config)], b.x));
    lossSum += crossEntropy(logits, b.y, 0, K).loss * b.size;
    for (let i = 0; i < b.size; i++) {
      const row = logits.data.subarray(i * K, (i + 1) * K);
      const y = b.y[i]!;
      const best = argmax(row);
      // rank of the true class: classes with a strictly larger logit (ties resolved like torch.topk: lower index first)
      let rank = 0;
      for (let k = 0; k < K; k++) if (row[k]! > row[y]! || (row[k] === row[y] && k < y)) rank++;
      if (best === y) top1++;
      if (rank < 5) top5++;
      confusion[y]![best]!++;
    }
    count += b.size;
  }
  if (!Number.isFinite(lossSum)) {
    throw new VitkitError(`Expected finite logits on ${loader.valName} but the loss is ${lossSum}: the model's weights or the input are not finite`);
  }
  if (count === 0) {
    throw new VitkitError(`Expected images to evaluate in ${loader.valName} but received none${loader.skippedCount ? ` (all ${loader.skippedCount} were skipped as unreadable)` : ''}: accuracy and loss would be NaN`);
  }
  const perClass = confusion.map((r, k) => {
    const n = r.reduce((a, v) => a + v, 0);
    return n ? (100 * r[k]!) / n : null;
  });
  return { loss: count ? lossSum / count : NaN, acc: count ? (100 * top1) / count : NaN, top5: count ? (100 * top5) / count : NaN, count, confusion, perClass };
}

const round = (v: number, d: number) => Number(v.toFixed(d));

/** Train (or continue training) `opts.model`, writing checkpoints into `opts.out`. */
export async function trainRun(opts: RunOptions): Promise<RunResult> {
  const { model, settings: s, train, val, out } = opts;
  const progress = opts.progress;
  const K = model.config.num_classes;
  const stepsPerEpoch = Math.ceil(train.n / s.batchSize);
  if (train.n === 0) throw new VitkitError(`Expected training samples in ${train.name} but received none`);
  const topts = { ...trainerOptions(s, stepsPerEpoch), ...(opts.teacher ? { teacher: opts.teacher } : {}) };
  if (model.family !== 'vit') throw new VitkitError(`train trains the ViT family; this model is ${model.family}`);
  // one trainer on every device; on cpu it shares the host model's weights
  const dev = await openDevice(opts.device ?? 'cpu', model.backend);
  const device = dev.kind;
  const trainer = new Trainer(model as VisionTransformer, { ...topts, device: dev.compute });
  const meta = opts.meta;
  let run: RunState;
  if (opts.resume) {
    const r = opts.resume;
    if (r.run.trainSamples !== train.n) {
      throw new VitkitError(`Cannot resume: the run trained on ${r.run.trainSamples} samples but the training data now has ${train.n}`);
    }
    if (r.weights.length !== model.params.count) {
      throw new VitkitError(`Cannot resume: the saved state has ${r.weights.length} weights but the model has ${model.params.count}`);
    }
    model.params.buffer.set(r.weights);
    trainer.loadState(r.trainer);
    run = { ...r.run, settings: s, stepsPerEpoch, complete: r.run.epoch >= s.epochs };
  } else {
    run = {
      format: 'vitkit-train-state', version: 1, epoch: 0, batch: 0, step: 0, stepsPerEpoch, trainSamples: train.n, settings: s,
      model: { config: timmConfigJson(meta.name, model.config, meta.pretrainedCfg, meta.labels), name: meta.name, pretrainedCfg: meta.pretrainedCfg, labels: meta.labels },
      partial: { lossSum: 0, images: 0, seconds: 0, trainSeconds: 0, lr: trainer.lr }, history: [], rng: { seed: s.seed, epochOrderState: epochRng(s.seed, 0).state }, complete: false, data: opts.data ?? null,
    };
  }
  makeDirs(out, 'run folder');
  cleanStaleTemps(out);
  cleanStaleTemps(path.join(out, 'ema'));
  prepareStateDir(out);
  const aug = augmentSpec(s, K);
  const evalBatch = Math.max(s.batchSize, 64);
  const loader = new BatchLoader({
    train, val, pipeline: opts.pipeline, workers: opts.workers,
    onSkip: (f) => progress?.message(`warning: skipped unreadable image ${f}`),
  });

  // SIGTERM (docker stop, systemd, Kubernetes, CI runners) stops like Ctrl-C: finish the step, save, exit 143
  const stop = new StopSignals((line) => progress?.message(line), opts.handleSigint ?? true);

  const checkpoint = async (final: boolean) => {
    run.step = trainer.stepCount;
    run.rng = { seed: s.seed, epochOrderState: epochRng(s.seed, run.epoch).state };
    await trainer.download();
    writeRunState(out, model, await trainer.state(), run);
    saveCheckpoint(out, model, meta, { overwrite: true });
    const ema = await trainer.emaModel();
    if (ema) saveCheckpoint(path.join(out, 'ema'), ema, meta, { overwrite: true });
    writeAtomic(stateWritePath(out, STATE_JSON), JSON.stringify(run, null, 1) + '\n');
    removeLegacyState(out, [STATE_FILE, STATE_JSON]); // a run folder from before checkpoint/: its state has moved
    writeAtomic(path.join(out, 'metrics.jsonl'), run.history.map((m) => JSON.stringify(m) + '\n').join(''));
    if (final || run.batch === 0) {
      if (run.history.length) await writeAtomicPng(path.join(out, 'curves.png'), run.history);
    }
  };

  let stepsThisCall = 0;
  try {
    for (let epoch = run.epoch; epoch < s.epochs; epoch++) {
      const start = run.batch;
      const t0 = performance.now();
      const p = run.partial;
      progress?.epochStart(epoch + 1, s.epochs, stepsPerEpoch, start);
      let b = start;
      let last = performance.now();
      for await (const batch of loader.trainEpoch(epoch, { batchSize: s.batchSize, seed: s.seed, shuffle: s.shuffle, augment: aug, start })) {
        if (batch.size > 0) {
          const { channels: C, height: H, width: W } = opts.pipeline;
          const r = await trainer.step(new Tensor([batch.size, C, H, W], batch.x), batch.soft ?? batch.y);
          if (!Number.isFinite(r.loss)) {
            throw new VitkitError(`Training diverged: the loss is ${r.loss} at epoch ${epoch + 1}, step ${b + 1}; lower --lr or pass --clip-grad 1`);
          }
          p.lossSum += r.loss * batch.size;
          p.images += batch.size;
          p.lr = r.lr;
        }
        b++;
        run.batch = b;
        const now = performance.now();
        p.trainSeconds += (now - last) / 1000;
        last = now;
        stepsThisCall++;
        const elapsed = p.seconds + (performance.now() - t0) / 1000;
        const ips = p.images / Math.max(1e-9, elapsed);
        const remainingImages = Math.max(0, train.n - p.images) + (s.epochs - epoch - 1) * train.n;
        progress?.step({ done: b, total: stepsPerEpoch, loss: p.images ? p.lossSum / p.images : NaN, lr: p.lr, imgPerSec: ips, etaSeconds: remainingImages / Math.max(ips, 1e-9) });
        // in-memory data never waits on I/O: yield to the event loop so a signal is seen after this step
        if (await stop.pause() || (opts.stopAfterSteps !== undefined && stepsThisCall >= opts.stopAfterSteps)) {
          p.seconds += (performance.now() - t0) / 1000;
          await checkpoint(false);
          return { history: run.history, interrupted: true, ...stop.outcome(), state: run };
        }
      }
      if (p.images === 0) {
        throw new VitkitError(
          `Expected training images in epoch ${epoch + 1} of ${train.name} but every one of its ${train.n} images was skipped as unreadable: train_loss would be NaN; no checkpoint was written for this epoch`,
        );
      }
      let vl: number | null = null, va: number | null = null, v5: number | null = null, vaEma: number | null = null;
      if (val && val.n > 0) {
        const r = await evaluateModel(model, loader, evalBatch, (x) => trainer.forward(x));
        vl = r.loss; va = r.acc; v5 = r.top5;
        if (s.emaDecay !== null) vaEma = (await evaluateModel(model, loader, evalBatch, (x) => trainer.forward(x, { ema: true }))).acc;
      }
      const seconds = p.seconds + (performance.now() - t0) / 1000;
      const m: EpochMetrics = {
        epoch: epoch + 1, train_loss: round(p.images ? p.lossSum / p.images : NaN, 6), val_loss: vl === null ? null : round(vl, 6),
        val_acc: va === null ? null : round(va, 2), val_top5: v5 === null ? null : round(v5, 2), lr: p.lr, seconds: round(seconds, 3),
        img_s: round(p.images / Math.max(1e-9, p.trainSeconds), 1), device,
      };
      if (s.emaDecay !== null) m.val_acc_ema = vaEma === null ? null : round(vaEma, 2);
      run.history.push(m);
      run.epoch = epoch + 1;
      run.batch = 0;
      run.partial = { lossSum: 0, images: 0, seconds: 0, trainSeconds: 0, lr: p.lr };
      run.complete = run.epoch >= s.epochs;
      await checkpoint(run.complete);
      progress?.epochEnd(m, s.epochs);
      if (stop.received && epoch + 1 < s.epochs) return { history: run.history, interrupted: true, ...stop.outcome(), state: run };
    }
    run.complete = true;
    // a Ctrl-C that came during the last validation or checkpoint: the run is complete, but the signal is reported
    return { history: run.history, interrupted: false, ...(stop.received ? stop.outcome() : {}), state: run };
  } finally {
    stop.dispose();
    await loader.close();
  }
}

async function writeAtomicPng(file: string, history: EpochMetrics[]): Promise<void> {
  const png = await renderCurves(history);
  writeAtomic(file, png);
}
