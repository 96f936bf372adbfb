/**
 * `vitkit train --task clip`: contrastive fine-tuning of a CLIP checkpoint on image–caption pairs.
 *
 * --data (and --val-data) take one of:
 *   - a folder holding `captions.jsonl`: one JSON object a line, {"image": "<path>", "caption": "<text>"}
 *     (also "file" / "text"), paths relative to the folder;
 *   - a `.tsv` file: `<path>\t<caption>` a line, paths relative to the file's folder;
 *   - a `.safetensors` file with x (B, 3, H, W) float32 pixel_values and input_ids (B, L) int64.
 * Images go through the checkpoint's eval transform (open_clip's resize + center crop + normalize).
 * Captions are tokenized with the checkpoint's tokenizer.
 *
 * Each epoch: a seeded shuffle (seed + epoch), batches of --batch-size pairs (the last partial batch
 * is dropped, as open_clip's loader does), ClipTrainer steps. After every epoch (and on
 * --stop-after-steps) the model is saved in the layout it was loaded from, plus
 * `checkpoint/clip_train_state.safetensors` (weights, AdamW moments, position) for an exact --resume
 * (the run folder's layout: train/state.ts STATE_DIR; a legacy top-level state is still read).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { readSafetensors } from '../io/safetensors.js';
import { preprocessImage, type PreprocessConfig } from '../io/preprocess.js';
import { Rng, permutation } from '../data/rng.js';
import { loadClip, clipLayoutOf, saveClip, type LoadedClip } from '../clip/load.js';
import { ClipTrainer } from './clip_train.js';
import type { BpeTokenizer } from '../text/bpe.js';
import { announceDevice, hostDevice } from '../backend/devices.js';
import { CLIP_STATE, STATE_DIR, findStateFile, prepareStateDir, readTrainingState, removeLegacyState, runStateEntries, stateWritePath, writeTrainingState, type TrainingState } from './state.js';

export const CLIP_STATE_FILE = 'clip_train_state.safetensors';

/** Pairs, either as files + captions or as tensors. */
export type ClipPairs =
  | { kind: 'files'; images: string[]; captions: string[]; source: string }
  | { kind: 'tensors'; x: Float32Array; xShape: number[]; ids: BigInt64Array; idsShape: number[]; source: string };

export function pairCount(p: ClipPairs): number {
  return p.kind === 'files' ? p.images.length : p.xShape[0]!;
}

/** Read a --data source of image–caption pairs (see the module comment). */
export function openClipPairs(source: string): ClipPairs {
  if (!existsSync(source)) throw new VitkitError(`CLIP training data ${source} does not exist: expected a folder with captions.jsonl, a .tsv of path<TAB>caption, or a .safetensors with x and input_ids`);
  if (statSync(source).isDirectory()) {
    const file = path.join(source, 'captions.jsonl');
    if (!existsSync(file)) throw new VitkitError(`No captions.jsonl in ${source}: a CLIP data folder holds captions.jsonl with {"image": ..., "caption": ...} a line`);
    const images: string[] = [], captions: string[] = [];
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let o: Record<string, unknown>;
      try { o = JSON.parse(line) as Record<string, unknown>; } catch (e) { throw new VitkitError(`${file} line ${i + 1} is not JSON (${(e as Error).message})`); }
      const img = o['image'] ?? o['file'], cap = o['caption'] ?? o['text'];
      if (typeof img !== 'string' || typeof cap !== 'string') throw new VitkitError(`${file} line ${i + 1}: expected {"image": "<path>", "caption": "<text>"} but received ${line.slice(0, 80)}`);
      images.push(path.resolve(source, img)); captions.push(cap);
    });
    return checkFiles({ kind: 'files', images, captions, source: file });
  }
  if (source.endsWith('.tsv')) {
    const dir = path.dirname(source);
    const images: string[] = [], captions: string[] = [];
    readFileSync(source, 'utf8').split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      const tab = line.indexOf('\t');
      if (tab < 1) throw new VitkitError(`${source} line ${i + 1}: expected <path><TAB><caption> but received ${JSON.stringify(line.slice(0, 80))}`);
      images.push(path.resolve(dir, line.slice(0, tab))); captions.push(line.slice(tab + 1).replace(/\r$/, ''));
    });
    return checkFiles({ kind: 'files', images, captions, source });
  }
  if (source.endsWith('.safetensors')) {
    const st = readSafetensors(source);
    for (const k of ['x', 'input_ids']) if (!st.has(k)) throw new VitkitError(`${source} has no tensor "${k}"; CLIP pairs need x (B, 3, H, W) and input_ids (B, L) int64`);
    const x = st.f32('x'), ids = st.i64('input_ids');
    if (x.shape.length !== 4 || ids.shape.length !== 2 || x.shape[0] !== ids.shape[0]) {
      throw new VitkitError(`${source}: expected x (B, 3, H, W) and input_ids (B, L) with the same B but received x (${x.shape.join(', ')}) and input_ids (${ids.shape.join(', ')})`);
    }
    return { kind: 'tensors', x: x.data, xShape: x.shape, ids: ids.data, idsShape: ids.shape, source };
  }
  throw new VitkitError(`Cannot read CLIP training data ${source}: expected a folder with captions.jsonl, a .tsv or a .safetensors file`);
}

function checkFiles(p: ClipPairs & { kind: 'files' }): ClipPairs {
  if (p.images.length === 0) throw new VitkitError(`${p.source} lists no image–caption pairs`);
  const missing = p.images.filter((f) => !existsSync(f));
  if (missing.length) throw new VitkitError(`${p.source} names ${missing.length} missing image${missing.length > 1 ? 's' : ''}, e.g. ${missing[0]}`);
  return p;
}

/** One batch of pairs by index: pixel_values (B, 3, H, W) and input_ids (B, L). */
export async function clipBatch(p: ClipPairs, idx: readonly number[], pre: PreprocessConfig, tok: BpeTokenizer, L: number): Promise<{ x: Tensor; ids: Int32Array | BigInt64Array; idsShape: number[] }> {
  const B = idx.length;
  if (p.kind === 'tensors') {
    const per = p.xShape[1]! * p.xShape[2]! * p.xShape[3]!, Lt = p.idsShape[1]!;
    if (Lt !== L) throw new VitkitError(`input_ids in ${p.source} have length ${Lt} but the model's context length is ${L}`);
    const x = new Float32Array(B * per), ids = new BigInt64Array(B * L); // (B, C, H, W), (B, L)
    idx.forEach((j, b) => { x.set(p.x.subarray(j * per, (j + 1) * per), b * per); ids.set(p.ids.subarray(j * L, (j + 1) * L), b * L); });
    return { x: new Tensor([B, ...p.xShape.slice(1)], x), ids, idsShape: [B, L] };
  }
  const per = 3 * pre.height * pre.width;
  const x = new Float32Array(B * per); // (B, 3, H, W)
  for (let b = 0; b < B; b++) x.set(await preprocessImage(p.images[idx[b]!]!, pre), b * per);
  const t = tok.tokenize(idx.map((j) => p.captions[j]!), L);
  return { x: new Tensor([B, 3, pre.height, pre.width], x), ids: t.ids, idsShape: [B, L] };
}

/** the order of epoch e: data/rng.ts's Fisher–Yates from seed·1000 + e (identity with shuffle off; the orders CLIP runs were saved with) */
function clipEpochOrder(n: number, seed: number, epoch: number, shuffle: boolean): number[] {
  if (!shuffle) return Array.from({ length: n }, (_, i) => i);
  return Array.from(permutation(n, new Rng(seed * 1000 + epoch)));
}

export interface ClipTrainCliOptions {
  model?: string;
  data?: string;
  valData?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  warmupEpochs: number;
  schedule?: 'cosine' | 'constant';
  clipGrad?: number;
  seed: number;
  shuffle: boolean;
  out: string;
  resume?: string | boolean;
  overwrite?: boolean;
  stopAfterSteps?: number;
  lockImage?: boolean;
  lockText?: boolean;
  betas?: [number, number];
  eps?: number;
}

/** The run's settings as saved (train/state.ts CLIP_STATE checks each field on --resume) */
interface ClipRunSettings {
  data: string; valData?: string; epochs: number; batchSize: number; lr: number; minLr: number; weightDecay: number; warmupEpochs: number;
  schedule?: 'cosine' | 'constant'; clipGrad?: number; seed: number; shuffle: boolean; out: string; lockImage?: boolean; lockText?: boolean;
  betas?: [number, number]; eps?: number;
}

interface ClipRunState {
  format: 'vitkit-clip-train-state';
  source: string;
  epoch: number;
  /** batches of `epoch` already done */
  batch: number;
  step: number;
  settings: ClipRunSettings;
}

export interface ClipTrainCliResult {
  out: string;
  steps: number;
  epochs: number;
  lastLoss: number;
  val?: { loss: number; i2t: number; t2i: number; count: number };
  stopped: boolean;
}

/** The defaults `vitkit train` gives classification that differ for CLIP (open_clip's): used unless given on the command line. */
export const CLIP_DEFAULTS = { lr: 5e-5, weightDecay: 0.2 };

/** Run `vitkit train --task clip`. `explicit` names the options given on the command line. */
export async function clipTrainCli(o: ClipTrainCliOptions, explicit: ReadonlySet<string>, log: (s: string) => void = (s) => console.log(s)): Promise<ClipTrainCliResult> {
  const resumeDir = o.resume === undefined || o.resume === false ? undefined : o.resume === true ? o.out : o.resume;
  let state: TrainingState<ClipRunState> | undefined;
  if (resumeDir) {
    const file = findStateFile(resumeDir, CLIP_STATE_FILE);
    if (file === null) throw new VitkitError(`Cannot resume: no ${STATE_DIR}/${CLIP_STATE_FILE} in ${resumeDir}`);
    state = readTrainingState<ClipRunState>(file, CLIP_STATE);
    // the run continues with its saved settings, each field checked by CLIP_STATE; it writes where it is (not the saved --out)
    const s = state.run.settings;
    o = {
      ...o, data: s.data, epochs: s.epochs, batchSize: s.batchSize, lr: s.lr, minLr: s.minLr, weightDecay: s.weightDecay, warmupEpochs: s.warmupEpochs,
      seed: s.seed, shuffle: s.shuffle, out: resumeDir, lockImage: s.lockImage, lockText: s.lockText, valData: s.valData, schedule: s.schedule,
      clipGrad: s.clipGrad, betas: s.betas, eps: s.eps,
    };
  }
  const source = state ? resumeDir! : o.model;
  if (!source) throw new VitkitError('--task clip needs --model <CLIP checkpoint directory> (open_clip hub layout or Hugging Face CLIPModel)');
  if (!clipLayoutOf(source)) throw new VitkitError(`--task clip needs a CLIP checkpoint but ${source} is not one (expected open_clip_config.json, or config.json with model_type "clip")`);
  if (!o.data) throw new VitkitError('--task clip needs --data: a folder with captions.jsonl, a .tsv of path<TAB>caption, or a .safetensors with x and input_ids');
  if (!state) {
    const found = existsSync(o.out) ? [...['open_clip_model.safetensors', 'model.safetensors'].filter((f) => existsSync(path.join(o.out, f))), ...runStateEntries(o.out, CLIP_STATE_FILE)] : [];
    if (found.length && !o.overwrite) throw new VitkitError(`Output directory ${o.out} already holds a checkpoint (${found.join(', ')}); pass --resume to continue that run or --overwrite to replace it`);
  }
  const lr = explicit.has('lr') || state ? o.lr : CLIP_DEFAULTS.lr;
  const wd = explicit.has('weightDecay') || state ? o.weightDecay : CLIP_DEFAULTS.weightDecay;
  const loaded: LoadedClip = loadClip(source);
  const model = loaded.model;
  const train = openClipPairs(o.data);
  announceDevice(hostDevice(model.backend)); // CLIP training runs both towers on the host backend
  const val = o.valData ? openClipPairs(o.valData) : null;
  const n = pairCount(train);
  if (o.batchSize < 2) throw new VitkitError(`Expected --batch-size >= 2 for contrastive training (each pair needs negatives) but received ${o.batchSize}`);
  if (n < o.batchSize) throw new VitkitError(`${train.source} has ${n} pairs, fewer than one batch of --batch-size ${o.batchSize}`);
  const perEpoch = Math.floor(n / o.batchSize);
  const totalSteps = perEpoch * o.epochs;
  const trainer = new ClipTrainer(model, {
    lr, weightDecay: wd, minLr: o.minLr, warmupSteps: Math.round(o.warmupEpochs * perEpoch), totalSteps, schedule: o.schedule ?? 'cosine',
    ...(o.clipGrad !== undefined ? { clipGrad: o.clipGrad } : {}), ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}),
    ...(o.lockImage ? { lockImage: true } : {}), ...(o.lockText ? { lockText: true } : {}),
  });
  let epoch = 0, batch = 0;
  if (state) {
    if (state.weights.length !== model.params.count) throw new VitkitError(`Expected ${model.params.count} weights (the model's) in ${state.file} but received ${state.weights.length}`);
    if (state.run.batch >= perEpoch) throw new VitkitError(`Expected a batch within the epoch, 0 to ${perEpoch - 1} (${n} pairs / --batch-size ${o.batchSize}), for batch in ${state.file} but received ${state.run.batch}`);
    model.params.buffer.set(state.weights);
    trainer.loadState({ step: state.run.step, optimizer: { step: state.optimizerStep, expAvg: state.expAvg, expAvgSq: state.expAvgSq } });
    epoch = state.run.epoch; batch = state.run.batch;
  }
  const settings: ClipRunSettings = {
    data: o.data, valData: o.valData, epochs: o.epochs, batchSize: o.batchSize, lr, minLr: o.minLr, weightDecay: wd, warmupEpochs: o.warmupEpochs, schedule: o.schedule,
    clipGrad: o.clipGrad, seed: o.seed, shuffle: o.shuffle, out: o.out, lockImage: o.lockImage, lockText: o.lockText, betas: o.betas, eps: o.eps,
  };
  const L = model.config.text.context_length;
  const save = (ep: number, b: number) => {
    const saved = { model, layout: loaded.layout, configJson: loaded.configJson, dir: loaded.dir };
    saveClip(o.out, saved, { overwrite: true, metadata: { producer: 'vitkit train --task clip' } });
    prepareStateDir(o.out);
    const s = trainer.state();
    const run: ClipRunState = { format: 'vitkit-clip-train-state', source: path.resolve(state ? state.run.source : source), epoch: ep, batch: b, step: trainer.stepCount, settings };
    writeTrainingState(stateWritePath(o.out, CLIP_STATE_FILE), { model: model.params.buffer, 'optimizer.exp_avg': s.optimizer.expAvg, 'optimizer.exp_avg_sq': s.optimizer.expAvgSq },
      { format: CLIP_STATE.fileFormat, optimizer_step: String(s.optimizer.step), run: JSON.stringify(run) });
    removeLegacyState(o.out, [CLIP_STATE_FILE]);
  };
  let lastLoss = NaN, stepsThisRun = 0, stopped = false;
  log(`CLIP ${loaded.layout} model ${source}: ${model.numParams.toLocaleString()} parameters; ${n} pairs, ${perEpoch} steps/epoch x ${o.epochs} epochs${o.lockImage ? ' (image tower locked)' : ''}${o.lockText ? ' (text tower locked)' : ''}`);
  for (; epoch < o.epochs && !stopped; epoch++, batch = 0) {
    const order = clipEpochOrder(n, o.seed, epoch, o.shuffle);
    let sum = 0, cnt = 0;
    for (; batch < perEpoch; batch++) {
      const b = await clipBatch(train, order.slice(batch * o.batchSize, (batch + 1) * o.batchSize), loaded.preprocess, loaded.tokenizer, L);
      const r = trainer.step(b.x, b.ids, b.idsShape);
      if (!Number.isFinite(r.loss)) throw new VitkitError(`Loss became ${r.loss} at step ${trainer.stepCount}; lower --lr`);
      lastLoss = r.loss; sum += r.loss; cnt++; stepsThisRun++;
      if (o.stopAfterSteps !== undefined && stepsThisRun >= o.stopAfterSteps) { stopped = true; batch++; break; }
    }
    if (stopped) { save(batch >= perEpoch ? epoch + 1 : epoch, batch >= perEpoch ? 0 : batch); break; }
    save(epoch + 1, 0);
    let line = `epoch ${epoch + 1}/${o.epochs}: loss ${(sum / Math.max(cnt, 1)).toFixed(4)} scale ${Math.exp(model.logitScale).toFixed(2)} lr ${trainer.lr.toExponential(2)}`;
    if (val) { const v = await evaluateClip(trainer, val, loaded, o.batchSize); line += ` | val loss ${v.loss.toFixed(4)} i2t ${(100 * v.i2t / v.count).toFixed(1)}% t2i ${(100 * v.t2i / v.count).toFixed(1)}%`; }
    log(line);
  }
  const res: ClipTrainCliResult = { out: o.out, steps: trainer.stepCount, epochs: o.epochs, lastLoss, stopped };
  if (val && !stopped) res.val = await evaluateClip(trainer, val, loaded, o.batchSize);
  log(`${stopped ? 'stopped' : 'done'} after ${trainer.stepCount} steps; saved the ${loaded.layout} checkpoint in ${o.out} and its training state in ${path.join(o.out, STATE_DIR)}`);
  return res;
}

/** mean ClipLoss and in-batch retrieval accuracy over full batches of a pair set */
export async function evaluateClip(trainer: ClipTrainer, p: ClipPairs, loaded: LoadedClip, batchSize: number): Promise<{ loss: number; i2t: number; t2i: number; count: number }> {
  const n = pairCount(p), L = loaded.model.config.text.context_length;
  const bs = Math.min(batchSize, n);
  let loss = 0, i2t = 0, t2i = 0, count = 0, batches = 0;
  for (let s = 0; s + bs <= n; s += bs) {
    const b = await clipBatch(p, Array.from({ length: bs }, (_, i) => s + i), loaded.preprocess, loaded.tokenizer, L);
    const r = trainer.evaluate(b.x, b.ids, b.idsShape);
    loss += r.loss; i2t += r.i2t; t2i += r.t2i; count += r.count; batches++;
  }
  return { loss: loss / Math.max(batches, 1), i2t, t2i, count };
}

/** `--resume [dir]` of a CLIP run (the directory holds checkpoint/clip_train_state.safetensors, or a legacy top-level one) */
export function isClipResume(resume: string | boolean | undefined, out: string): boolean {
  if (resume === undefined || resume === false) return false;
  return findStateFile(resume === true ? out : resume, CLIP_STATE_FILE) !== null;
}

/** The options `--task clip` adds to `vitkit train` (--betas and --eps, shared by every task, are the train command's). */
export function addClipTrainOptions(cmd: Command): Command {
  return cmd
    .option('--task <task>', 'classification (default), clip (contrastive image–caption training of a CLIP checkpoint), detect (YOLOS on a COCO folder or tensors) or mae (masked-autoencoder pre-training, no labels)')
    .option('--lock-image', 'clip: freeze the image tower (LiT)')
    .option('--lock-text', 'clip: freeze the text tower');
}
