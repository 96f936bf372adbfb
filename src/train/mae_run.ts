/**
 * `vitkit train --task mae`: MAE pre-training (facebookresearch/mae main_pretrain.py's recipe, see
 * mae_train.ts) of a MaskedAutoencoder on unlabelled images.
 *
 * --data: a .safetensors file with x (N, C, H, W) float32 pixel_values and optionally noise (N, L)
 * (the masking noise of each sample: fixed, for reproducible checks against a reference), or any
 * image source `vitkit train` reads (an image folder, mnist; labels are ignored). Folders of photos
 * get MAE's RandomResizedCrop(scale 0.2-1.0, bicubic) + horizontal flip; digits the data's own shift.
 * Without noise in the data, each step's masking noise comes from the seeded generator of
 * (--seed, epoch, batch), so a resumed run masks exactly as an uninterrupted one.
 *
 * The run writes into --out after every epoch and on Ctrl-C or SIGTERM (or --stop-after-steps):
 * model.safetensors + mae_config.json (facebookresearch/mae's layout), checkpoint/mae_train_state.safetensors
 * (weights, AdamW moments, position: --resume continues bit-exactly; the run folder's layout is
 * train/state.ts STATE_DIR, a legacy top-level state is still read), metrics.jsonl and curves.png.
 */
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { Rng, batchRng } from '../data/rng.js';
import { epochBatches, BatchLoader } from '../data/loader.js';
import { openData, type DataSource } from '../data/open.js';
import type { AugmentSpec } from '../data/augment.js';
import { readSafetensors } from '../io/safetensors.js';
import { preprocessFromTimm } from '../io/preprocess.js';
import { type MaeCache, MaskedAutoencoder } from '../mae/model.js';
import { saveMae } from '../mae/load.js';
import { AdamW, clipGradNorm } from './optim.js';
import { Arena } from '../nn/arena.js';
import { ParamTable } from '../nn/params.js';
import { LrSchedule, type ScheduleKind } from './schedule.js';
import { maeAdamWOptions } from './mae_train.js';
import { renderCurves } from './plot.js';
import type { EpochMetrics } from './loop.js';
import { MAE_STATE, findStateFile, prepareStateDir, readTrainingState, removeLegacyState, stateWritePath, writeTrainingState, type TrainingState } from './state.js';
import { cleanStaleTemps, makeDirs, writeFileAtomic } from '../io/files.js';
import { announceDevice, hostDevice } from '../backend/devices.js';
import { StopSignals, type StopSignalName } from './signals.js';

export const MAE_STATE_FILE = 'mae_train_state.safetensors';

export interface MaeTrainerOptions {
  lr: number;
  weightDecay: number;
  betas?: [number, number];
  eps?: number;
  schedule: ScheduleKind;
  warmupSteps: number;
  totalSteps: number;
  minLr: number;
  clipGrad?: number;
  maskRatio?: number;
}

/** One MAE pre-training step after another: forward with a cache, backward, AdamW at the scheduled lr. */
export class MaeTrainer {
  readonly opt: AdamW;
  readonly schedule: LrSchedule;
  private steps = 0;
  /** every step's activations come from this arena (reset per step), so a step allocates nothing new */
  private readonly arena = new Arena();
  private readonly grads: ParamTable;
  constructor(readonly model: MaskedAutoencoder, readonly o: MaeTrainerOptions) {
    this.grads = model.params.like();
    this.opt = new AdamW(model.params, {
      ...maeAdamWOptions(o.lr, o.weightDecay), ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}), backend: model.backend,
    });
    this.schedule = new LrSchedule({ kind: o.schedule, lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: Math.max(1, o.totalSteps), minLr: o.minLr });
  }
  get stepCount(): number { return this.steps; }
  get lr(): number { return this.schedule.at(this.steps); }

  /** x (B, C, S, S) with its masking noise (B, L) or an rng for it; returns the loss before the update */
  step(x: Float32Array, shape: readonly number[], noise: Float32Array | Rng): { loss: number; lr: number } {
    const cache = {} as MaeCache;
    this.arena.reset();
    const out = this.model.forward(x, shape, {
      ...(noise instanceof Float32Array ? { noise } : { rng: noise }), ...(this.o.maskRatio !== undefined ? { maskRatio: this.o.maskRatio } : {}), cache, arena: this.arena,
    });
    const grads = this.grads;
    grads.buffer.fill(0);
    this.model.backward(cache, out.pred, grads, this.arena);
    if (this.o.clipGrad !== undefined) clipGradNorm(grads, this.o.clipGrad, this.model.backend);
    const lr = this.lr;
    this.opt.step(grads, lr);
    this.steps++;
    return { loss: out.loss, lr };
  }

  state() { return { step: this.steps, optimizer: this.opt.state() }; }
  loadState(s: { step: number; optimizer: { step: number; expAvg: Float32Array; expAvgSq: Float32Array } }): void {
    this.steps = s.step;
    this.opt.loadState(s.optimizer);
  }
}

/** MAE pre-training data: tensors (x and optional noise) or an image source through the batch loader. */
export type MaeData =
  | { kind: 'tensors'; source: string; x: Float32Array; shape: number[]; noise: Float32Array | null }
  | { kind: 'images'; source: string; data: DataSource };

export function openMaeData(source: string, model: MaskedAutoencoder, seed: number): MaeData {
  const c = model.config;
  if (source.endsWith('.safetensors')) {
    const st = readSafetensors(source);
    if (!st.has('x')) throw new VitkitError(`Expected a tensor "x" (N, ${c.in_chans}, ${c.img_size}, ${c.img_size}) in ${source} but received ${st.keys().map((k) => JSON.stringify(k)).join(', ') || 'no tensors'}`);
    const x = st.f32('x');
    model.checkInput(x.shape);
    let noise: Float32Array | null = null;
    if (st.has('noise')) {
      const n = st.f32('noise');
      if (n.shape.length !== 2 || n.shape[0] !== x.shape[0] || n.shape[1] !== model.L) {
        throw new VitkitError(`Expected noise of shape (${x.shape[0]}, ${model.L}) in ${source} (one row of masking noise per image, ${model.L} patches) but received (${n.shape.join(', ')})`);
      }
      noise = n.data;
    }
    return { kind: 'tensors', source, x: x.data, shape: x.shape, noise };
  }
  const data = openData(source, { purpose: 'train', seed });
  const ds = data.train!;
  if (ds.kind !== 'files' && (ds.channels !== c.in_chans || ds.height !== c.img_size || ds.width !== c.img_size)) {
    throw new VitkitError(`Expected images of ${c.in_chans}x${c.img_size}x${c.img_size} for the model in ${source} but received ${ds.channels}x${ds.height}x${ds.width}`);
  }
  return { kind: 'images', source, data };
}

export interface MaeRunSettings {
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  warmupEpochs: number;
  schedule: ScheduleKind;
  seed: number;
  shuffle: boolean;
  augment: boolean;
  maskRatio: number;
  clipGrad?: number;
  betas?: [number, number];
  eps?: number;
}

interface MaeRunState {
  format: 'vitkit-mae-train-state';
  epoch: number;
  batch: number;
  step: number;
  stepsPerEpoch: number;
  samples: number;
  data: string;
  settings: MaeRunSettings;
  history: EpochMetrics[];
  partial: { lossSum: number; images: number; seconds: number };
}

export interface MaeRunResult {
  history: EpochMetrics[];
  interrupted: boolean;
  /** a SIGINT or SIGTERM came */
  signal: boolean;
  /** which of them (the CLI exits 130 for SIGINT, 143 for SIGTERM) */
  signalName?: StopSignalName;
  steps: number;
  lastLoss: number;
}

function writeAtomic(file: string, data: string | Uint8Array): void {
  writeFileAtomic(file, data, { overwrite: true });
}

/** A resumable run's saved state in the run folder `dir` (checkpoint/, or a legacy top-level state), every field checked (train/state.ts MAE_STATE), or null. */
export function readMaeRunState(dir: string): TrainingState<MaeRunState> | null {
  const file = findStateFile(dir, MAE_STATE_FILE);
  return file === null ? null : readTrainingState<MaeRunState>(file, MAE_STATE);
}

/** MAE's crop for photos: RandomResizedCrop(scale (0.2, 1.0), bicubic) + horizontal flip */
export const MAE_AUGMENT: AugmentSpec = { kind: 'rrc_flip', pad: 0, scale: [0.2, 1], ratio: [3 / 4, 4 / 3], flip: 0.5, mixup: null };

/** Train (or resume) a MAE run into `out`. */
export async function maeTrainRun(o: {
  model: MaskedAutoencoder; data: MaeData; settings: MaeRunSettings; out: string; resume?: ReturnType<typeof readMaeRunState>;
  stopAfterSteps?: number; handleSigint?: boolean; log?: (s: string) => void; workers?: number;
  /** the lines a SIGINT / SIGTERM brings (default: log) */
  message?: (s: string) => void;
}): Promise<MaeRunResult> {
  const { model, data, settings: s, out } = o;
  const log = o.log ?? (() => {});
  const n = data.kind === 'tensors' ? data.shape[0]! : data.data.train!.n;
  if (n === 0) throw new VitkitError(`Expected training images in ${data.source} but received none`);
  const stepsPerEpoch = Math.ceil(n / s.batchSize);
  const trainer = new MaeTrainer(model, {
    lr: s.lr, weightDecay: s.weightDecay, schedule: s.schedule, warmupSteps: Math.round(s.warmupEpochs * stepsPerEpoch), totalSteps: s.epochs * stepsPerEpoch,
    minLr: s.minLr, maskRatio: s.maskRatio, ...(s.clipGrad !== undefined ? { clipGrad: s.clipGrad } : {}), ...(s.betas ? { betas: s.betas } : {}), ...(s.eps !== undefined ? { eps: s.eps } : {}),
  });
  let run: MaeRunState;
  if (o.resume) {
    const r = o.resume;
    if (r.run.samples !== n) throw new VitkitError(`Cannot resume: the run trained on ${r.run.samples} samples but ${data.source} now has ${n}`);
    if (r.weights.length !== model.params.count) throw new VitkitError(`Cannot resume: the saved state has ${r.weights.length} weights but the model has ${model.params.count}`);
    model.params.buffer.set(r.weights);
    trainer.loadState({ step: r.run.step, optimizer: { step: r.optimizerStep, expAvg: r.expAvg, expAvgSq: r.expAvgSq } });
    run = { ...r.run, settings: s, stepsPerEpoch };
  } else {
    run = { format: 'vitkit-mae-train-state', epoch: 0, batch: 0, step: 0, stepsPerEpoch, samples: n, data: data.source, settings: s, history: [], partial: { lossSum: 0, images: 0, seconds: 0 } };
  }
  makeDirs(out, 'run folder');
  cleanStaleTemps(out); // what a killed run left (prepareStateDir cleans checkpoint/)
  prepareStateDir(out);
  const checkpoint = async () => {
    run.step = trainer.stepCount;
    const st = trainer.state();
    writeTrainingState(stateWritePath(out, MAE_STATE_FILE), { model: model.params.buffer, 'optimizer.exp_avg': st.optimizer.expAvg, 'optimizer.exp_avg_sq': st.optimizer.expAvgSq },
      { format: MAE_STATE.fileFormat, optimizer_step: String(st.optimizer.step), run: JSON.stringify(run) });
    removeLegacyState(out, [MAE_STATE_FILE]);
    saveMae(model, out, { overwrite: true });
    writeAtomic(path.join(out, 'metrics.jsonl'), run.history.map((m) => JSON.stringify(m) + '\n').join(''));
    if (run.history.length) writeAtomic(path.join(out, 'curves.png'), await renderCurves(run.history));
  };
  // Ctrl-C and SIGTERM (docker stop, systemd, CI runners): finish the step, save, the CLI exits 130 / 143
  const stop = new StopSignals(o.message ?? log, o.handleSigint ?? true);
  announceDevice(hostDevice(model.backend)); // MAE trains on the host backend (the cpu device); the handlers are in place
  const c = model.config, shapeOf = (B: number) => [B, c.in_chans, c.img_size, c.img_size];
  const per = c.in_chans * c.img_size * c.img_size, L = model.L;
  let loader: BatchLoader | null = null;
  const aug = data.kind === 'images' && s.augment ? (data.data.augment === 'rrc_flip' ? MAE_AUGMENT : { ...MAE_AUGMENT, kind: 'shift' as const, pad: 2 }) : null;
  if (data.kind === 'images') {
    const pcfg = data.data.pretrainedCfg ?? {};
    const pp = preprocessFromTimm({ interpolation: 'bicubic', ...pcfg, input_size: [c.in_chans, c.img_size, c.img_size] }, c.img_size, c.in_chans);
    loader = new BatchLoader({ train: data.data.train, val: null, workers: o.workers ?? 0, pipeline: { channels: c.in_chans as 1 | 3, height: c.img_size, width: c.img_size, preprocess: pp, onBadImage: 'error' } });
  }
  let interrupted = false, stepsThisCall = 0, lastLoss = NaN, lastLr = trainer.lr;
  try {
    for (let epoch = run.epoch; epoch < s.epochs; epoch++) {
      const t0 = performance.now(), p = run.partial;
      const batches = epochBatches(n, s.batchSize, s.seed, epoch, s.shuffle);
      const source: AsyncIterable<{ x: Float32Array; size: number }> | Iterable<{ x: Float32Array; size: number }> = loader
        ? loader.trainEpoch(epoch, { batchSize: s.batchSize, seed: s.seed, shuffle: s.shuffle, augment: aug, start: run.batch })
        : batches.slice(run.batch).map((idx) => {
          const x = new Float32Array(idx.length * per); // (B, C, S, S)
          if (data.kind === 'tensors') idx.forEach((j, r) => x.set(data.x.subarray(j * per, (j + 1) * per), r * per));
          return { x, size: idx.length };
        });
      let b = run.batch;
      for await (const batch of source) {
        const idx = batches[b]!;
        let noise: Float32Array | Rng = new Rng(batchRng(s.seed ^ 0x4d4145, epoch, b).state);
        if (data.kind === 'tensors' && data.noise) {
          const nz = new Float32Array(idx.length * L); // (B, L)
          const dn = data.noise;
          idx.forEach((j, r) => nz.set(dn.subarray(j * L, (j + 1) * L), r * L));
          noise = nz;
        }
        const r = trainer.step(batch.x, shapeOf(batch.size), noise);
        if (!Number.isFinite(r.loss)) throw new VitkitError(`Training diverged: the loss is ${r.loss} at epoch ${epoch + 1}, step ${b + 1}; lower --lr or pass --clip-grad 1`);
        lastLoss = r.loss; lastLr = r.lr;
        p.lossSum += r.loss * batch.size; p.images += batch.size;
        b++; run.batch = b; stepsThisCall++;
        if (await stop.pause() || (o.stopAfterSteps !== undefined && stepsThisCall >= o.stopAfterSteps)) {
          interrupted = true;
          if (b >= stepsPerEpoch) break; // the epoch is complete: its end writes the checkpoint
          p.seconds += (performance.now() - t0) / 1000;
          await checkpoint();
          return { history: run.history, interrupted: true, ...stop.outcome(), steps: trainer.stepCount, lastLoss };
        }
      }
      const seconds = p.seconds + (performance.now() - t0) / 1000;
      const m: EpochMetrics = { epoch: epoch + 1, train_loss: p.lossSum / Math.max(1, p.images), val_loss: null, val_acc: null, val_top5: null, lr: lastLr, seconds, img_s: p.images / Math.max(1e-9, seconds) };
      run.history.push(m);
      run.epoch = epoch + 1; run.batch = 0; run.partial = { lossSum: 0, images: 0, seconds: 0 };
      await checkpoint();
      log(`epoch ${epoch + 1}/${s.epochs}  train_loss ${m.train_loss.toFixed(4)}  lr ${m.lr.toExponential(2)}  ${m.seconds.toFixed(1)}s  ${Math.round(m.img_s)} img/s`);
      if ((interrupted || stop.received) && epoch + 1 < s.epochs) return { history: run.history, interrupted: true, ...stop.outcome(), steps: trainer.stepCount, lastLoss };
    }
    return { history: run.history, interrupted: false, ...stop.outcome(), steps: trainer.stepCount, lastLoss };
  } finally {
    stop.dispose();
    if (loader) await loader.close();
  }
}

