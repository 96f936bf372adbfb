/**
 * `vitkit train --task detect --model <YOLOS dir> --data <COCO folder | .safetensors>`: fine-tunes
 * YOLOS with DETR's set criterion (DetTrainer: Hungarian matching every step, YOLOS main.py's AdamW
 * groups, gradient clipping --clip-grad, YOLOS's default 0.1).
 *
 * --data: a COCO folder (coco_data.ts; images through the eval transform at --shortest-edge /
 * --longest-edge, with YOLOS's random horizontal flip and a multi-scale short side, each image's
 * boxes normalised to its own size, the batch zero-padded) or a .safetensors file with x (B, 3, H, W)
 * and per image b `targets.{b}.labels` (n_b) int64 and `targets.{b}.boxes` (n_b, 4) normalised cx cy w h.
 * --random-size-crop [min,max] (folders): YOLOS/DETR's RandomSelect between the plain multi-scale
 * resize and RandomResize([400, 500, 600]) + RandomSizeCrop(min, max) + the multi-scale resize
 * (augment.ts; DETR's 384,600 when given without a value).
 *
 * Each epoch: a seeded shuffle (seed + epoch), batches of --batch-size (the last partial one kept).
 * After every epoch (and on Ctrl-C, SIGTERM or --stop-after-steps, after the step in flight) the model is
 * written to --out in hustvl's layout (model.safetensors + yolos_config.json) and
 * `checkpoint/det_train_state.safetensors` (weights, AdamW moments, position), each atomically, so
 * --resume continues exactly (the run folder's layout: train/state.ts STATE_DIR; a legacy top-level
 * state is still read).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { parseFloatOpt, parseIntOpt } from '../cli/common.js';
import path from 'node:path';
import { VitkitError, expected } from '../errors.js';
import { Tensor } from '../tensor.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../io/safetensors.js';
import { cleanStaleTemps, makeDirs, writeFileAtomic } from '../io/files.js';
import { StopSignals, type StopSignalName } from '../train/signals.js';
import { DET_STATE, STATE_DIR, findStateFile, prepareStateDir, readTrainingState, removeLegacyState, runStateEntries, stateWritePath, writeTrainingState, type TrainingState } from '../train/state.js';
import { loadImage } from '../io/image.js';
import { Rng, mulberry32, shuffleInPlace } from '../data/rng.js';
import { DETR_CROP_RESIZE, DETR_CROP_SIZE, augmentDetection, checkCropOptions, flipTarget, type DetCropOptions } from './augment.js';
import { loadYolos, type LoadedYolos } from './load.js';
import { Yolos, initLinear, type YolosConfig } from './yolos.js';
import { DetTrainer } from './train.js';
import type { DetTarget } from './criterion.js';
import { cocoTargets, readCocoFolder } from './coco_data.js';
import { detPreprocessImage, padBatch } from './detect.js';

export const DET_STATE_FILE = 'det_train_state.safetensors';

/** The position of a YOLOS run (train/state.ts DET_STATE checks it on --resume) */
interface DetRunState {
  format: 'vitkit-det-train-state';
  epoch: number;
  /** images done of `epoch` */
  position: number;
  steps: number;
  data: string;
}

export interface DetTrainCliOptions {
  model?: string;
  data?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  clipGrad?: number;
  betas?: [number, number];
  eps?: number;
  seed: number;
  shuffle: boolean;
  augment: boolean;
  out: string;
  resume?: string | boolean;
  overwrite?: boolean;
  stopAfterSteps?: number;
  numClasses?: number;
  eosCoef?: number;
  bboxLossCoef?: number;
  giouLossCoef?: number;
  shortestEdge?: number;
  longestEdge?: number;
  /** RandomSizeCrop's min,max (true: DETR's 384,600); folders only */
  randomSizeCrop?: [number, number] | true;
}

/** One training example: pixels made on demand (a file) or a row of a tensor. */
interface DetData {
  n: number;
  /** class names by index, when the data names its categories */
  labels?: string[];
  /** the batch of the given indices (flip / crop / scale drawn from rng when augmenting) */
  batch(idx: number[], rng: Rng | null): Promise<{ x: Tensor; targets: DetTarget[] }>;
  source: string;
}

function openTensors(file: string, numClasses: number): DetData {
  const st = readSafetensors(file);
  const xv = st.f32('x');
  if (xv.shape.length !== 4 || xv.shape[1] !== 3) throw new VitkitError(`${file}: expected x of shape (B, 3, H, W) but received (${xv.shape.join(', ')})`);
  const [B, , H, W] = xv.shape as [number, number, number, number];
  const targets: DetTarget[] = [];
  for (let b = 0; b < B; b++) {
    if (!st.has(`targets.${b}.labels`) || !st.has(`targets.${b}.boxes`)) throw new VitkitError(`${file}: expected targets.${b}.labels and targets.${b}.boxes for image ${b} of x (B = ${B})`);
    const labels = Array.from(st.i64(`targets.${b}.labels`).data, Number);
    const bx = st.f32(`targets.${b}.boxes`);
    if (bx.shape.length !== 2 || bx.shape[0] !== labels.length || bx.shape[1] !== 4) throw new VitkitError(`${file}: expected targets.${b}.boxes of shape (${labels.length}, 4) but received (${bx.shape.join(', ')})`);
    labels.forEach((l, i) => {
      if (!(Number.isInteger(l) && l >= 0 && l < numClasses)) throw new VitkitError(`${file}: targets.${b}.labels[${i}] is ${l}, outside the model's classes 0..${numClasses - 1}; pass --num-classes to re-initialise the class head`);
    });
    for (let i = 0; i < bx.data.length; i++) {
      const v = bx.data[i]!;
      if (!(v >= 0 && v <= 1)) throw new VitkitError(`${file}: targets.${b}.boxes[${Math.floor(i / 4)}] has ${v}; expected normalised cx cy w h in [0, 1]`);
    }
    targets.push({ labels, boxes: bx.data });
  }
  const per = 3 * H * W;
  return {
    n: B, source: file,
    batch: async (idx, rng) => {
      const x = new Float32Array(idx.length * per); // (b, 3, H, W)
      const t: DetTarget[] = [];
      idx.forEach((i, k) => {
        const flip = rng !== null && rng.next() < 0.5;
        const src = xv.data.subarray(i * per, (i + 1) * per);
        if (!flip) x.set(src, k * per);
        else for (let r = 0; r < 3 * H; r++) for (let c = 0; c < W; c++) x[k * per + r * W + c] = src[r * W + W - 1 - c]!;
        t.push(flip ? flipTarget(targets[i]!) : targets[i]!);
      });
      return { x: new Tensor([idx.length, 3, H, W], x), targets: t };
    },
  };
}

function openFolder(dir: string, numClasses: number, S: number, M: number, crop: DetCropOptions | null, log: (s: string) => void): DetData {
  const folder = readCocoFolder(dir);
  const { targets, skipped } = cocoTargets(folder, numClasses);
  const nSkip = skipped.crowd + skipped.empty + skipped.outside;
  if (nSkip) log(`skipped ${nSkip} annotation${nSkip === 1 ? '' : 's'} of ${folder.annotationFile}: ${skipped.crowd} crowd, ${skipped.empty} of zero area, ${skipped.outside} outside their image`);
  for (const im of folder.images) if (!existsSync(im.file)) throw new VitkitError(`${folder.annotationFile}: image ${im.id} is ${im.file}, which does not exist`);
  const labels = Array.from({ length: numClasses }, (_, k) => folder.categories.find((c) => c.id === k)?.name ?? `class_${k}`);
  return {
    n: folder.images.length, source: dir, labels,
    batch: async (idx, rng) => {
      const items: { pixels: Float32Array; h: number; w: number }[] = [], t: DetTarget[] = [];
      for (const i of idx) {
        const im = folder.images[i]!;
        let img = await loadImage(im.file, 3);
        if (img.width !== im.width || img.height !== im.height) throw new VitkitError(`${im.file} is ${img.width}x${img.height} but ${folder.annotationFile} says ${im.width}x${im.height}`);
        let tg = targets.get(im.id)!;
        // flip, then (with --random-size-crop) RandomSelect and the crop branch (augment.ts)
        if (rng) ({ img, target: tg } = augmentDetection(img, tg, rng, crop));
        // multi-scale: the short side drawn from S x {0.6, 0.7, ..., 1.0} (YOLOS draws from a list of scales up to S)
        const s = rng ? Math.max(16, Math.round(S * (0.6 + 0.1 * Math.floor(rng.next() * 5)))) : S;
        items.push(detPreprocessImage(img, s, M));
        t.push(tg);
      }
      return { x: padBatch(items), targets: t };
    },
  };
}

/** A copy of the model with a new class head's last layer for K classes (the rest kept) */
function reHead(m: Yolos, K: number, seed: number): Yolos {
  const config: YolosConfig = { ...m.config, numClasses: K, labels: null };
  const out = new Yolos(config, undefined, m.backend);
  for (const n of out.params.names()) if (!n.startsWith('class_embed.layers.2.')) out.params.get(n).set(m.params.get(n));
  const D = m.config.vit.embed_dim;
  initLinear(out.params.get('class_embed.layers.2.weight'), out.params.get('class_embed.layers.2.bias'), D, mulberry32(seed + 7919));
  return out;
}

/** Write the model in hustvl's layout (model.safetensors + yolos_config.json), atomically. */
export function saveYolos(dir: string, model: Yolos, opts: { overwrite?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  const c = model.config.vit, tensors: Record<string, StTensorIn> = {};
  for (const n of model.params.names()) tensors[n] = { dtype: 'F32', shape: model.params.shape(n), data: model.params.get(n) };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { producer: 'vitkit train --task detect' }, { overwrite: opts.overwrite ?? false });
  const [h, w] = Array.isArray(c.img_size) ? c.img_size : [c.img_size, c.img_size];
  const hidden = c.mlp_hidden ?? Math.floor(c.embed_dim * c.mlp_ratio);
  const cfg = {
    patch_size: c.patch_size, embed_dim: c.embed_dim, depth: c.depth, num_heads: c.num_heads, mlp_ratio: hidden / c.embed_dim,
    qkv_bias: c.qkv_bias, img_size: [h, w], num_classes: model.config.numClasses, det_token_num: c.det_tokens, init_pe_size: [h, w],
    mid_pe_size: model.config.midPe ? [model.config.midPe[0] * c.patch_size, model.config.midPe[1] * c.patch_size] : null, layer_norm_eps: c.layer_norm_eps, ...(model.config.labels ? { labels: model.config.labels } : {}),
  };
  writeFileAtomic(path.join(dir, 'yolos_config.json'), JSON.stringify(cfg, null, 1) + '\n', { overwrite: true, what: 'YOLOS config' });
}

export interface DetTrainCliResult {
  out: string;
  steps: number;
  epochs: number;
  lastLoss: number;
  stopped: boolean;
  /** a SIGINT or SIGTERM came */
  signal: boolean;
  /** which of them (the CLI exits 130 for SIGINT, 143 for SIGTERM) */
  signalName?: StopSignalName;
}

export async function detTrainCli(o: DetTrainCliOptions, explicit: Set<string>, log: (s: string) => void = (s) => console.log(s)): Promise<DetTrainCliResult> {
  const resumeDir = o.resume === undefined || o.resume === false ? undefined : o.resume === true ? o.out : o.resume;
  let state: TrainingState<DetRunState> | null = null;
  if (resumeDir) {
    const f = findStateFile(resumeDir, DET_STATE_FILE);
    if (f === null) throw new VitkitError(`Cannot resume: no ${STATE_DIR}/${DET_STATE_FILE} in ${resumeDir}`);
    state = readTrainingState<DetRunState>(f, DET_STATE); // every field checked before the model is built
    o = { ...o, out: resumeDir }; // the run continues where it is (with --resume <dir>, not into the default --out)
  }
  const source = state ? resumeDir! : o.model;
  if (!source) throw new VitkitError('train --task detect needs --model <YOLOS checkpoint directory> (or --resume)');
  if (!o.data) throw new VitkitError('train --task detect needs --data <COCO folder | .safetensors with x and targets.{b}.*>');
  if (!state && existsSync(o.out) && !o.overwrite) {
    const found = [...['model.safetensors', 'yolos_config.json'].filter((f) => existsSync(path.join(o.out, f))), ...runStateEntries(o.out, DET_STATE_FILE)];
    if (found.length) throw new VitkitError(`Output directory ${o.out} already holds a checkpoint (${found.join(', ')}); pass --resume to continue that run or --overwrite to replace it`);
  }
  const isFolder = existsSync(o.data) && statSync(o.data).isDirectory();
  let crop: DetCropOptions | null = null;
  if (o.randomSizeCrop !== undefined) {
    if (!o.augment) throw new VitkitError('--random-size-crop is an augmentation; it cannot be combined with --no-augment');
    if (!isFolder) throw new VitkitError(`--random-size-crop crops images of a COCO folder, but --data ${o.data} is not a folder (a .safetensors batch is used as it is, flipped only)`);
    crop = { size: o.randomSizeCrop === true ? DETR_CROP_SIZE : o.randomSizeCrop, resize: DETR_CROP_RESIZE };
    checkCropOptions(crop);
  }
  const loaded: LoadedYolos = loadYolos(source);
  let model = loaded.model;
  if (o.numClasses !== undefined && !state && o.numClasses !== model.config.numClasses) {
    if (o.numClasses < 1) throw new VitkitError(`Expected --num-classes >= 1 but received ${o.numClasses}`);
    model = reHead(model, o.numClasses, o.seed);
    log(`re-initialised the class head's last layer for ${o.numClasses} classes (+ no object)`);
  }
  const K = model.config.numClasses;
  const S = o.shortestEdge ?? loaded.preprocess.shortestEdge, M = o.longestEdge ?? loaded.preprocess.longestEdge;
  const data = isFolder ? openFolder(o.data, K, S, M, crop, log)
    : o.data.endsWith('.safetensors') ? openTensors(o.data, K)
      : (() => { throw new VitkitError(`--data ${o.data}: expected a COCO folder (annotations/*.json + images/) or a .safetensors file with x and targets.{b}.*`); })();
  if (data.n === 0) throw new VitkitError(`No training images in ${data.source}`);
  if (data.labels && (model.config.labels === null || model !== loaded.model)) model.config.labels = data.labels;
  // YOLOS main.py's defaults where the command line did not set them
  const lr = explicit.has('lr') ? o.lr : 1e-4, wd = explicit.has('weightDecay') ? o.weightDecay : 1e-4;
  const bs = explicit.has('batchSize') ? o.batchSize : 2;
  const clip = o.clipGrad ?? 0.1;
  const trainer = new DetTrainer(model, {
    lr, weightDecay: wd, clipMaxNorm: clip, ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}),
    eosCoef: o.eosCoef ?? 0.1, bboxLossCoef: o.bboxLossCoef ?? 5, giouLossCoef: o.giouLossCoef ?? 2,
  });
  let epoch0 = 0, pos0 = 0, steps = 0;
  if (state) {
    epoch0 = state.run.epoch; pos0 = state.run.position; steps = state.run.steps;
    if (pos0 >= data.n) throw new VitkitError(`Expected a position within the epoch, 0 to ${data.n - 1} (the images of ${data.source}), for position in ${state.file} but received ${pos0}`);
    if (state.weights.length !== model.params.count) throw new VitkitError(`Expected ${model.params.count} weights (the model's) in ${state.file} but received ${state.weights.length}`);
    model.params.buffer.set(state.weights);
    trainer.optimizer.loadState({ step: state.optimizerStep, expAvg: state.expAvg, expAvgSq: state.expAvgSq });
    log(`resuming at epoch ${epoch0 + 1}, image ${pos0} of ${data.n} (${steps} steps done)`);
  }
  makeDirs(o.out, 'run folder');
  cleanStaleTemps(o.out); // what a killed run left (prepareStateDir cleans checkpoint/)
  prepareStateDir(o.out);
  const save = (epoch: number, position: number) => {
    saveYolos(o.out, model, { overwrite: true });
    const st = trainer.optimizer.state();
    const run: DetRunState = { format: 'vitkit-det-train-state', epoch, position, steps, data: data.source };
    writeTrainingState(stateWritePath(o.out, DET_STATE_FILE), { model: model.params.buffer, 'optimizer.exp_avg': st.expAvg, 'optimizer.exp_avg_sq': st.expAvgSq },
      { format: DET_STATE.fileFormat, optimizer_step: String(st.step), run: JSON.stringify(run) });
    removeLegacyState(o.out, [DET_STATE_FILE]);
  };
  // Ctrl-C and SIGTERM (docker stop, systemd, CI runners): finish the step, save, the CLI exits 130 / 143
  const stop = new StopSignals((line) => console.error(line));
  let lastLoss = NaN, stopped = false;
  try {
    for (let e = epoch0; e < o.epochs; e++) {
      const order = Int32Array.from({ length: data.n }, (_, i) => i); // (N)
      if (o.shuffle) shuffleInPlace(order, new Rng(o.seed + e));
      let sum = 0, count = 0;
      for (let p = e === epoch0 ? pos0 : 0; p < data.n; p += bs) {
        const idx = Array.from(order.subarray(p, p + bs));
        const rng = o.augment ? new Rng((o.seed + 1) * 1_000_003 + steps) : null;
        const { x, targets } = await data.batch(idx, rng);
        const r = trainer.step(x, targets);
        steps++; lastLoss = r.loss; sum += r.loss * idx.length; count += idx.length;
        const next = p + bs;
        // in-memory batches never wait on I/O: yield to the event loop so a signal is seen after this step
        if (await stop.pause() || (o.stopAfterSteps !== undefined && steps >= o.stopAfterSteps)) {
          save(next >= data.n ? e + 1 : e, next >= data.n ? 0 : next);
          stopped = true;
          log(`stopped after step ${steps} (loss ${r.loss.toFixed(4)}); saved to ${o.out}, continue with --resume`);
          return { out: o.out, steps, epochs: e, lastLoss, stopped, ...stop.outcome() };
        }
      }
      save(e + 1, 0);
      log(`epoch ${e + 1}/${o.epochs}  loss ${(sum / Math.max(count, 1)).toFixed(4)}  (${steps} steps)`);
      if (stop.received && e + 1 < o.epochs) { // the signal came during that save
        log(`stopped after step ${steps}; saved to ${o.out}, continue with --resume`);
        return { out: o.out, steps, epochs: e + 1, lastLoss, stopped: true, ...stop.outcome() };
      }
    }
    // a signal during the last save: the run is complete, but the signal is reported
    return { out: o.out, steps, epochs: o.epochs, lastLoss, stopped, ...stop.outcome() };
  } finally {
    stop.dispose();
  }
}

function parseCropSize(v: string): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(v);
  const mn = m ? Number(m[1]) : NaN, mx = m ? Number(m[2]) : NaN;
  if (!(mn >= 1 && mx >= mn)) throw new InvalidArgumentError(expected('min,max integers with 1 <= min <= max (DETR: 384,600)', '--random-size-crop', v).message);
  return [mn, mx];
}

/** The detection options of `vitkit train` (with --task detect). */
export function addDetTrainOptions(cmd: Command): Command {
  return cmd
    .option('--eos-coef <w>', 'detect: classification weight of "no object" (default 0.1)', parseFloatOpt('--eos-coef', 0))
    .option('--bbox-loss-coef <w>', 'detect: weight of the L1 box loss (default 5)', parseFloatOpt('--bbox-loss-coef', 0))
    .option('--giou-loss-coef <w>', 'detect: weight of the GIoU loss (default 2)', parseFloatOpt('--giou-loss-coef', 0))
    .option('--shortest-edge <px>', 'detect: training short side for COCO folders (default: the checkpoint\'s preprocessor, else 800)', parseIntOpt('--shortest-edge'))
    .option('--longest-edge <px>', 'detect: long side limit (default: the checkpoint\'s, else 1333)', parseIntOpt('--longest-edge'))
    .option('--random-size-crop [min,max]', 'detect, COCO folders: YOLOS/DETR\'s random crop — for half the images RandomResize([400, 500, 600]) then RandomSizeCrop(min, max) before the multi-scale resize, boxes clipped and emptied ones dropped (no value: DETR\'s 384,600)', parseCropSize);
}
